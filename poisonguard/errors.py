"""The exceptions poisonguard raises.

::

    PoisonguardError            base of everything below; the CLI prints it as one line, exit 2
    ├── DataError               bad input data: names the file and, when known, the row
    ├── UsageError              bad arguments or options (unknown detector, bad rate, ...)
    ├── MissingDependencyError  an optional extra is needed (``pip install poisonguard[torch]``)
    └── IntegrityError          a signature, manifest or ledger check failed

The gate failing (poison or drift above a threshold) is not an exception: commands
return it as exit code 1.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "IntegrityError",
    "MissingDependencyError",
    "PoisonguardError",
    "UsageError",
]


class PoisonguardError(Exception):
    """Base class of every error poisonguard raises on purpose."""


class DataError(PoisonguardError):
    """Input data that cannot be used, with the file and (when known) the 0-based row."""

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None) -> None:
        self.message = message
        self.path = path
        self.row = row
        where = []
        if path:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UsageError(PoisonguardError):
    """Arguments or options that do not make sense."""


class MissingDependencyError(PoisonguardError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package '{package}': "
            f"pip install 'poisonguard[{extra}]'"
        )
        self.package = package
        self.extra = extra


class IntegrityError(PoisonguardError):
    """A signature, manifest, proof or ledger chain did not verify."""
