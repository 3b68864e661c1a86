"""``snapshot``: build, sign, store (optionally encrypted) and record a manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poisonguard.data import Dataset, atomic_write_text
from poisonguard.provenance.canonical import file_sha256
from poisonguard.provenance.intoto import dsse_envelope, statement
from poisonguard.provenance.ledger import Ledger, LedgerEntry, record_event
from poisonguard.provenance.lineage import data_ref
from poisonguard.provenance.manifest import build_manifest, sign_manifest, write_manifest

__all__ = ["snapshot"]


def snapshot(
    dataset: Dataset,
    *,
    out: str | os.PathLike[str],
    path: str | os.PathLike[str] | None = None,
    source: str = "",
    key: Ed25519PrivateKey | None = None,
    data_key: bytes | None = None,
    intoto_out: str | os.PathLike[str] | None = None,
    ledger: Ledger | str | os.PathLike[str] | None = None,
    record: bool = True,
) -> tuple[dict[str, Any], LedgerEntry | None]:
    """Write the (signed) manifest of ``dataset`` to ``out`` and record a ledger entry.

    ``path`` is the file or folder the dataset was read from; ``data_key`` encrypts
    the stored manifest (AES-256-GCM); ``intoto_out`` also writes a DSSE envelope.
    """
    out = Path(out)
    path = Path(path) if path is not None else None
    manifest = build_manifest(dataset, path=path, source=source)
    if key is not None:
        manifest = sign_manifest(manifest, key)
    write_manifest(manifest, out, data_key=data_key)
    if intoto_out is not None:
        if key is None:
            from poisonguard.errors import UsageError

            raise UsageError("an in-toto statement needs a signing key (--key)")
        env = dsse_envelope(statement(manifest), key)
        atomic_write_text(intoto_out, json.dumps(env, indent=2) + "\n")
    entry = None
    if record:
        root = manifest["merkle"]["root"]
        src = data_ref(path, root=root) if path is not None else {"source": manifest["source"],
                                                                   "root": root}
        sig = manifest.get("signature")
        entry = record_event(
            "snapshot", inputs=[src],
            outputs=[data_ref(out, root=root, kind="manifest", sha256=file_sha256(out))],
            details={"rows": manifest["rows"], "source": manifest["source"],
                     "key_id": sig["key_id"] if sig else None, "encrypted": data_key is not None,
                     "modality": manifest["schema"]["modality"]},
            ledger=ledger,
        )
    return manifest, entry


