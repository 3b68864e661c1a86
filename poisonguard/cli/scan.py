"""CLI commands: scan (filled in by its issue)."""
