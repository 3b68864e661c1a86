"""The ledger's hash chain, independent of where it is stored.

``entry_hash`` = SHA-256 of the canonical JSON of (seq, kind, actor, created_at,
inputs, outputs, details, prev_hash); ``prev_hash`` is the previous entry's
``entry_hash``, or :data:`GENESIS` for the first entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poisonguard.provenance.canonical import canonical_json, sha256_hex

__all__ = ["GENESIS", "LedgerEntry", "LedgerProblem", "verify_chain"]

GENESIS = "0" * 64


@dataclass(frozen=True)
class LedgerEntry:
    """One entry of the hash chain: ``entry_hash`` covers its content and ``prev_hash``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import Ledger
    >>> e = Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.db").append("scan")
    >>> e.seq, e.prev_hash == GENESIS, e.computed_hash() == e.entry_hash
    (1, True, True)
    """

    seq: int
    kind: str
    actor: str
    created_at: str
    inputs: list[Any]
    outputs: list[Any]
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def content(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "actor": self.actor,
                "created_at": self.created_at, "inputs": self.inputs, "outputs": self.outputs,
                "details": self.details, "prev_hash": self.prev_hash}

    def computed_hash(self) -> str:
        return sha256_hex(canonical_json(self.content()))

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "entry_hash": self.entry_hash}


@dataclass(frozen=True)
class LedgerProblem:
    """One break in the chain, named by the entry where it was found.

    Examples
    --------
    >>> str(LedgerProblem(3, "its hash does not match its content"))
    'entry 3: its hash does not match its content'
    """

    seq: int
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.message}"


def verify_chain(entries: list[LedgerEntry], *, expected_head: str | None = None
                 ) -> list[LedgerProblem]:
    """Every break in the chain of ``entries`` (in ``seq`` order), named by entry."""
    problems: list[LedgerProblem] = []
    by_hash = {e.entry_hash: e.seq for e in entries}
    prev: LedgerEntry | None = None
    for e in entries:
        prev_seq = prev.seq if prev else 0
        if e.computed_hash() != e.entry_hash:
            problems.append(LedgerProblem(e.seq, "edited: its content does not match its hash"))
        for missing in range(prev_seq + 1, e.seq):
            problems.append(LedgerProblem(missing, "missing: the entry was deleted"))
        want = prev.entry_hash if prev else GENESIS
        if e.prev_hash != want:
            if e.prev_hash in by_hash and by_hash[e.prev_hash] != prev_seq:
                msg = (f"out of order: it was chained after entry {by_hash[e.prev_hash]}, "
                       f"not entry {prev_seq} (entries reordered or inserted)")
            elif e.seq == prev_seq + 1:
                msg = (f"its previous hash does not match entry {prev_seq}: entry {prev_seq} "
                       "was edited, or an entry was inserted or deleted before it")
            else:
                msg = "its previous hash does not match the entry before it"
            problems.append(LedgerProblem(e.seq, msg))
        prev = e
    if expected_head is not None and expected_head not in by_hash:
        last = entries[-1].seq if entries else 0
        problems.append(LedgerProblem(last + 1, f"the recorded head {expected_head[:16]}... is "
                                      "not in the ledger (entries were deleted or rewritten)"))
    return problems
