"""The monitor's records live in the provenance ledger (same database, same chain).

Registrations, golden sets, alias moves and gate verdicts are ledger entries of
kinds ``monitor-register``, ``monitor-golden``, ``monitor-alias`` and
``monitor-gate``; the registry's state is a replay of them in ``seq`` order.
Numbers that depend on order (a model's version, an alias's previous value) are
derived on replay, never trusted from the entry, so two concurrent writers cannot
make the same version twice: the ledger serialises appends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from poisonguard.errors import UsageError
from poisonguard.provenance.ledger import Ledger, LedgerEntry, open_ledger

__all__ = ["KINDS", "LedgerLike", "check_name", "monitor_entries", "using_ledger"]

LedgerLike = Ledger | str | os.PathLike[str] | None
KINDS = ("monitor-register", "monitor-golden", "monitor-alias", "monitor-gate")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(value: str, what: str) -> str:
    """A model, golden-set or alias name: letters, digits, ``. _ -``; 1 to 128 characters."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise UsageError(f"bad {what} name {value!r} (letters, digits, '.', '_', '-'; "
                         "starting with a letter or digit)")
    return value


@contextmanager
def using_ledger(ledger: LedgerLike) -> Iterator[Ledger]:
    """The ledger to use; closed afterwards only if it was opened here."""
    led = open_ledger(ledger)
    try:
        yield led
    finally:
        if led is not ledger:
            led.close()


def monitor_entries(ledger: LedgerLike, kind: str) -> list[LedgerEntry]:
    """The ledger's entries of one monitor kind, in ``seq`` order."""
    with using_ledger(ledger) as led:
        return [e for e in led.entries() if e.kind == kind and isinstance(e.details, dict)]
