"""Signed checkpoints of the ledger head (a transparency log's signed tree head).

A checkpoint is ``{"format": "poisonguard-ledger-checkpoint", "version": 1, "size": N,
"head": entry_hash of entry N, "created_at": ...}`` with an Ed25519 signature over its
canonical JSON. ``ledger verify`` with a trusted key checks every checkpoint kept in
the ledger (and any exported to files): entry N must still exist with that hash.
Deleting entries at the tail (truncation) or rewriting the chain, even with every
hash recomputed, breaks that; forging a new checkpoint needs the private key. A
checkpoint exported to a file kept elsewhere also catches an attacker who deletes
the checkpoints stored in the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poisonguard.errors import IntegrityError, UsageError
from poisonguard.provenance.canonical import canonical_json
from poisonguard.provenance.chain import GENESIS, LedgerEntry, LedgerProblem
from poisonguard.provenance.keys import signature_block
from poisonguard.provenance.trust import SignaturePolicy

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "read_checkpoint", "verify_checkpoints"]

CHECKPOINT_FORMAT = "poisonguard-ledger-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """A signed (size, head) of the ledger; ``body`` is what the signature covers.

    Examples
    --------
    >>> from poisonguard.provenance.keys import Ed25519PrivateKey
    >>> cp = Checkpoint.sign(2, "ab" * 32, "2026-01-01T00:00:00Z", Ed25519PrivateKey.generate())
    >>> cp.size, cp.head == "ab" * 32
    (2, True)
    """

    body: dict[str, Any]
    signature: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.body["size"])

    @property
    def head(self) -> str:
        return str(self.body["head"])

    @classmethod
    def sign(cls, size: int, head: str, created_at: str, key: Ed25519PrivateKey) -> Checkpoint:
        """Sign the head ``head`` of a ledger of ``size`` entries.

        Examples
        --------
        >>> from poisonguard.provenance.keys import Ed25519PrivateKey
        >>> Checkpoint.sign(0, GENESIS, "t", Ed25519PrivateKey.generate()).size
        0
        """
        body = {"format": CHECKPOINT_FORMAT, "version": 1, "size": int(size), "head": head,
                "created_at": created_at}
        return cls(body, signature_block(key, canonical_json(body)))

    def to_dict(self) -> dict[str, Any]:
        return {**self.body, "signature": self.signature}


def read_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint exported by ``ledger checkpoint --out``.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from poisonguard.provenance import Ledger
    >>> from poisonguard.provenance.keys import Ed25519PrivateKey
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> led = Ledger(d / "l.db")
    >>> _ = led.append("scan")
    >>> cp = led.checkpoint(Ed25519PrivateKey.generate())
    >>> _ = (d / "cp.json").write_text(json.dumps(cp.to_dict()))
    >>> read_checkpoint(d / "cp.json").size
    1
    """
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        body = {k: v for k, v in obj.items() if k != "signature"}
        if body.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a ledger checkpoint")
        cp = Checkpoint(body, obj["signature"])
        _ = cp.size, cp.head
        return cp
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the checkpoint ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: not a ledger checkpoint ({exc})") from None


def verify_checkpoints(entries: list[LedgerEntry], checkpoints: list[Checkpoint],
                       policy: SignaturePolicy) -> list[LedgerProblem]:
    """Problems: checkpoints badly signed, or whose entry is gone or different."""
    by_seq = {e.seq: e for e in entries}
    problems = []
    for n, cp in enumerate(checkpoints, 1):
        where = f"signed checkpoint {n} ({cp.body.get('created_at', '?')})"
        try:
            policy.check(cp.signature, canonical_json(cp.body), what=where)
        except IntegrityError as exc:
            problems.append(LedgerProblem(cp.size, f"{where}: {exc}"))
            continue
        if cp.size == 0:
            continue
        entry = by_seq.get(cp.size)
        if entry is None:
            problems.append(LedgerProblem(cp.size, f"gone: {where} covers {cp.size} entries "
                                          "(the ledger was truncated or rewritten)"))
        elif entry.entry_hash != cp.head:
            problems.append(LedgerProblem(cp.size, f"rewritten: its hash differs from the "
                                          f"head in {where}"))
    if checkpoints and not entries and any(c.head != GENESIS for c in checkpoints):
        problems.append(LedgerProblem(0, "the ledger is empty but was checkpointed"))
    return problems
