"""CLI commands: validate (filled in by its issue)."""
