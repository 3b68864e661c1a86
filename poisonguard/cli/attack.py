"""CLI commands: attack (filled in by its issue)."""
