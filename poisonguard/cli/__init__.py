"""The ``poisonguard`` command line: thin wrappers over the library.

Each module registers its commands on the shared typer app when imported.
"""

from __future__ import annotations

from poisonguard.cli import attack, provenance, report, scan, validate  # noqa: F401  (registers)
from poisonguard.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``poisonguard`` console script."""
    app()
