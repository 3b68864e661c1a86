"""The ``poisonguard`` command line: thin wrappers over the library.

Each module registers its commands on the shared typer app when imported.
"""

from __future__ import annotations

from poisonguard.cli import (  # noqa: F401  (registers)
    attack,
    federated,
    influence,
    monitor,
    provenance,
    report,
    scan,
    service,
    train,
    validate,
)
from poisonguard.cli._app import app

__all__ = ["app", "main"]

# The order `poisonguard --help` lists commands in: the daily path first.
_ORDER = ("scan", "clean", "report", "profile", "check", "snapshot", "verify", "verify-proof",
          "attack", "bench", "score", "sign-model", "verify-model", "fl-sim", "train", "certify",
          "influence")
app.registered_commands.sort(
    key=lambda c: _ORDER.index(c.name) if c.name in _ORDER else len(_ORDER)
)


def main() -> None:
    """Entry point of the ``poisonguard`` console script."""
    app()
