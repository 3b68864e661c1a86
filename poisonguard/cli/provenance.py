"""CLI commands: provenance (filled in by its issue)."""
