"""``snapshot``: hash every typed cell of a file in row batches, sign, store, record.

Memory is bounded by the row hashes (32 bytes per row, plus 2 bytes per cell for
signed snapshots' fingerprints) and one batch of rows, whatever the file's size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poisonguard.data import atomic_write_text
from poisonguard.data.folders import ParquetShard, parquet_shards
from poisonguard.engine import Engine
from poisonguard.errors import DataError, UsageError
from poisonguard.progress import Progress
from poisonguard.provenance.canonical import (
    cell_fingerprints,
    encode_rows,
    file_sha256,
    hash_rows,
)
from poisonguard.provenance.intoto import dsse_envelope, statement
from poisonguard.provenance.keys import key_id
from poisonguard.provenance.ledger import Ledger, LedgerEntry, open_ledger
from poisonguard.provenance.manifest import (
    FORMAT,
    Manifest,
    current_actor,
    now_iso,
    seal_cells,
    sign_manifest,
    write_manifest,
)
from poisonguard.provenance.merkle import root_and_path
from poisonguard.provenance.merkle_range import CompactRange
from poisonguard.provenance.typed import (
    InputLimits,
    TypedColumn,
    TypedSource,
    open_typed,
    read_row_group,
)

__all__ = ["HashTask", "HashedShard", "build_manifest", "hash_shard", "hash_shards",
           "hash_source", "snapshot"]


def hash_source(source: TypedSource, *, limits: InputLimits | None = None,
                fingerprints: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(N x 32 row hashes, N x C cell fingerprints or None), streamed batch by batch.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n2,b\\n")
    >>> hash_source(open_typed(p))[0].shape
    (2, 32)
    """
    limits = limits or InputLimits()
    kinds = [c.type for c in source.columns]
    hashes, cells, rows = [], [], 0
    for batch in source.batches():
        buf, offsets = encode_rows(batch, kinds)
        hashes.append(hash_rows(buf, offsets))
        if fingerprints:
            cells.append(cell_fingerprints(batch, kinds))
        rows += len(offsets) - 1
        limits.check_rows(rows, source.path)
    if rows == 0:
        raise DataError("file has no rows", path=source.path)
    all_hashes = np.concatenate(hashes) if len(hashes) > 1 else hashes[0]
    all_cells = (np.concatenate(cells) if len(cells) > 1 else cells[0]) if fingerprints else None
    return all_hashes, all_cells


@dataclass(frozen=True)
class HashTask:
    """Hash the rows of one Parquet row group (see :func:`hash_shard`)."""

    shard: ParquetShard
    columns: tuple[TypedColumn, ...]
    fingerprints: bool = False


@dataclass
class HashedShard:
    """A shard's row hashes, cell fingerprints (or None) and Merkle subtrees."""

    hashes: np.ndarray
    cells: np.ndarray | None
    subtrees: CompactRange


def hash_shard(task: HashTask) -> HashedShard:
    """Row hashes of one shard with the same code as :func:`hash_source` (runs on a
    worker); its compact Merkle range starts at the shard's first row."""
    kinds = [c.type for c in task.columns]
    hashes, cells = [], []
    for batch in read_row_group(task.shard.path, task.shard.row_group, list(task.columns)):
        buf, offsets = encode_rows(batch, kinds)
        hashes.append(hash_rows(buf, offsets))
        if task.fingerprints:
            cells.append(cell_fingerprints(batch, kinds))
    all_hashes = np.concatenate(hashes) if hashes else np.empty((0, 32), np.uint8)
    if len(all_hashes) != task.shard.rows:
        raise DataError(f"row group {task.shard.row_group} changed while it was read",
                        path=task.shard.path)
    return HashedShard(all_hashes, np.concatenate(cells) if task.fingerprints else None,
                       CompactRange.of_rows(all_hashes, begin=task.shard.offset))


def hash_shards(source: TypedSource, engine: Engine, *, fingerprints: bool = False,
                progress: Progress | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(row hashes, cell fingerprints or None, Merkle root) of a Parquet file or folder,
    row group by row group on ``engine``; the same values as :func:`hash_source` and
    :func:`~poisonguard.provenance.merkle.root_and_path`.
    """
    if source.format != "parquet":
        raise UsageError(f"{source.path}: a distributed snapshot reads Parquet files and "
                         f"folders, not {source.format} (use the local engine)")
    shards = parquet_shards(source.path)
    if not shards:
        raise DataError("file has no rows", path=source.path)
    tasks = [HashTask(s, tuple(source.columns), fingerprints) for s in shards]
    hashes, cells = [], []
    tree = CompactRange(0, 0)
    for part in engine.map(hash_shard, tasks, stage="hashing rows", progress=progress):
        hashes.append(part.hashes)
        if part.cells is not None:
            cells.append(part.cells)
        tree.extend(part.subtrees)
    all_cells = np.concatenate(cells) if fingerprints else None
    return np.concatenate(hashes), all_cells, tree.root()


def _schema(source: TypedSource, label: str | None, id_column: str | None) -> dict[str, Any]:
    names = [c.name for c in source.columns]
    if id_column is not None and id_column not in names:
        raise DataError(f"no id column '{id_column}'", path=source.path)
    return {"format": source.format, "columns": [c.to_dict() for c in source.columns],
            "label_column": label if label in names else None, "id_column": id_column}


def build_manifest(
    path: str | os.PathLike[str], *, source: str = "", actor: str | None = None,
    key: Ed25519PrivateKey | None = None, label: str | None = "label",
    id_column: str | None = None, limits: InputLimits | None = None,
    engine: Engine | None = None, progress: Progress | None = None,
) -> Manifest:
    """The manifest of the file (or folder) at ``path``; signed when ``key`` is given.

    With an ``engine`` (:mod:`poisonguard.engine`) a Parquet file or folder is hashed
    row group by row group there, and the Merkle root merged from the groups'
    subtrees: the same manifest as without it (only ``created_at`` differs).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n")
    >>> build_manifest(p).rows
    1
    """
    p = Path(path)
    typed = open_typed(p, limits=limits)
    if engine is None:
        hashes, cells = hash_source(typed, limits=limits, fingerprints=key is not None)
        root, _ = root_and_path(hashes)
    else:
        hashes, cells, root = hash_shards(typed, engine, fingerprints=key is not None,
                                          progress=progress)
    data: dict[str, Any] = {"path": str(p), "format": typed.format}
    if p.is_file():
        data["sha256"] = file_sha256(p)
    sealed = seal_cells(cells, key, root) if key is not None and cells is not None else None
    header: dict[str, Any] = {
        "format": FORMAT, "version": 2, "created_at": now_iso(),
        "actor": actor or current_actor(), "source": source or str(p), "data": data,
        "rows": len(hashes), "schema": _schema(typed, label, id_column),
        "merkle": {"algorithm": "sha256-rfc6962", "leaves": "row hashes (poisonguard-row-v2)",
                   "size": len(hashes), "root": root},
        "body": {"row_hash_bytes": int(hashes.size), "cells": None if sealed is None else {
            "algorithm": "poisonguard-cell-v2", "dtype": "uint16le",
            "shape": list(cells.shape) if cells is not None else [],
            "encryption": "aes-256-gcm, key hkdf-sha256(signing key), aad merkle root",
            "key_id": key_id(key.public_key()) if key is not None else None}},
    }
    manifest = Manifest(header, hashes, sealed)
    header["body"]["sha256"] = _sha256(manifest.body_bytes())
    return sign_manifest(manifest, key) if key is not None else manifest


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def snapshot(
    path: str | os.PathLike[str], *, out: str | os.PathLike[str], source: str = "",
    key: Ed25519PrivateKey | None = None, data_key: bytes | None = None,
    intoto_out: str | os.PathLike[str] | None = None,
    ledger: Ledger | str | os.PathLike[str] | None = None, record: bool = True,
    label: str | None = "label", id_column: str | None = None,
    limits: InputLimits | None = None, engine: Engine | None = None,
    progress: Progress | None = None,
) -> tuple[Manifest, LedgerEntry | None]:
    """Write the (signed) manifest of the data at ``path`` to ``out`` and record it.

    ``data_key`` encrypts the stored manifest (AES-256-GCM); ``intoto_out`` also
    writes a DSSE envelope. With a signing ``key`` the ledger's head is checkpointed
    (signed) after the entry is recorded.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("x,label\\n1,a\\n")
    >>> m, entry = snapshot(d / "t.csv", out=d / "m.pgm", record=False)
    >>> m.rows, entry
    (1, None)
    """
    if intoto_out is not None and key is None:
        raise UsageError("an in-toto statement needs a signing key (--key)")
    out = Path(out)
    manifest = build_manifest(path, source=source, key=key, label=label, id_column=id_column,
                              limits=limits, engine=engine, progress=progress)
    write_manifest(manifest, out, data_key=data_key)
    if intoto_out is not None and key is not None:
        env = dsse_envelope(statement(manifest.header), key)
        atomic_write_text(intoto_out, json.dumps(env, indent=2) + "\n")
    if not record:
        return manifest, None
    led = open_ledger(ledger)
    try:
        sig = manifest.signature
        entry = led.append(
            "snapshot",
            inputs=[{"path": str(Path(path).absolute()), "root": manifest.root,
                     "kind": "data"}],
            outputs=[{"path": str(out.absolute()), "root": manifest.root, "kind": "manifest",
                      "sha256": file_sha256(out)}],
            details={"rows": manifest.rows, "source": manifest.header["source"],
                     "key_id": sig["key_id"] if sig else None, "encrypted": data_key is not None,
                     "format": manifest.header["schema"]["format"]})
        if key is not None:
            led.checkpoint(key)
    finally:
        if led is not ledger:
            led.close()
    return manifest, entry
