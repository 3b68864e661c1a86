"""Snapshots: a signed manifest of a dataset's rows, schema and statistics.

A manifest is one JSON object (see docs/provenance.md for every field). Its
``signature`` covers the canonical JSON (:func:`~poisonguard.provenance.canonical.
canonical_json`) of every other field. The per-row part is ``row_hashes`` (hex
SHA-256 content hashes, the Merkle leaves), ``ids`` (only when the data brought its
own id column) and ``cells`` (16-bit fingerprints per cell, base64 of uint16 little
endian, row-major).
"""

from __future__ import annotations

import base64
import datetime as _dt
import getpass
import json
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poisonguard.data import Dataset, atomic_write_bytes
from poisonguard.errors import IntegrityError
from poisonguard.provenance.canonical import (
    canonical_json,
    cell_fingerprints,
    columns_of,
    file_sha256,
    row_hashes,
)
from poisonguard.provenance.crypto_at_rest import decrypt, encrypt
from poisonguard.provenance.keys import signature_block
from poisonguard.provenance.merkle import MerkleTree

__all__ = [
    "FORMAT",
    "build_manifest",
    "current_actor",
    "decode_cells",
    "manifest_body",
    "read_manifest",
    "sign_manifest",
    "write_manifest",
]

FORMAT = "poisonguard-manifest"
_REQUIRED = {"format": str, "version": int, "rows": int, "schema": dict, "merkle": dict,
             "row_hashes": list, "cells": dict, "created_at": str, "actor": str, "source": str}


def current_actor() -> str:
    """The OS user name (what the ledger and manifests record as the actor)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stats(dataset: Dataset, columns: list[str]) -> dict[str, Any]:
    counts = dataset.class_counts()
    by_class = {c: int(k) for c, k in zip(dataset.classes, counts, strict=True)}
    out: dict[str, Any] = {"class_counts": by_class}
    if dataset.features is not None and len(dataset):
        x = dataset.features.astype(np.float64)
        mean, std, lo, hi = x.mean(0), x.std(0), x.min(0), x.max(0)
        out["columns"] = {
            name: {"mean": float(mean[j]), "std": float(std[j]),
                   "min": float(lo[j]), "max": float(hi[j])}
            for j, name in enumerate(columns[:-1])
        }
    elif dataset.images is not None:
        im = dataset.images
        out["pixels"] = {"mean": float(im.mean(dtype=np.float64)),
                         "std": float(im.std(dtype=np.float64)),
                         "min": float(im.min()), "max": float(im.max())}
    elif dataset.texts is not None:
        lengths = np.array([len(t) for t in dataset.texts])
        out["text_length"] = {"mean": float(lengths.mean()), "min": int(lengths.min()),
                              "max": int(lengths.max())}
    return out


def _data_files(path: Path, dataset: Dataset) -> dict[str, Any]:
    info: dict[str, Any] = {"path": str(path), "format": dataset.meta.get("format", "")}
    if path.is_file():
        info["sha256"] = file_sha256(path)
    elif path.is_dir():
        files = json.loads(dataset.meta.get("files", "[]"))
        info["files"] = [{"path": f, "sha256": file_sha256(path / f)} for f in files]
    return info


def build_manifest(
    dataset: Dataset,
    *,
    path: str | Path | None = None,
    source: str = "",
    actor: str | None = None,
    row_hash_hex: np.ndarray | None = None,
) -> dict[str, Any]:
    """The unsigned manifest of ``dataset`` (read from ``path``, if it came from a file)."""
    hashes = row_hashes(dataset) if row_hash_hex is None else row_hash_hex
    tree = MerkleTree([bytes.fromhex(h) for h in hashes])
    columns = columns_of(dataset)
    cells = cell_fingerprints(dataset)
    schema: dict[str, Any] = {
        "modality": dataset.modality, "columns": columns, "label_column": dataset.label_column,
        "classes": list(dataset.classes), "dtype": "float32",
    }
    if dataset.images is not None:
        schema["image_shape"] = list(dataset.images.shape[1:])
    assert dataset.ids is not None
    ids = dataset.ids
    same_ids = len(ids) == len(hashes) and bool(np.all(ids == hashes))
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": 1, "created_at": now_iso(),
        "actor": actor or current_actor(), "source": source or dataset.source,
        "data": _data_files(Path(path), dataset) if path is not None else {},
        "rows": len(dataset), "schema": schema, "stats": _stats(dataset, columns),
        "merkle": {"algorithm": "sha256-rfc6962", "leaves": "row_hashes", "size": tree.size,
                   "root": tree.root},
        "row_hashes": hashes.tolist(),
        "ids": None if same_ids else [str(i) for i in ids],
        "cells": {"algorithm": "poisonguard-cell-v1", "dtype": "uint16le",
                  "shape": list(cells.shape),
                  "data": base64.b64encode(cells.tobytes()).decode("ascii")},
    }
    return manifest


def manifest_body(manifest: dict[str, Any]) -> bytes:
    """The bytes a manifest's signature covers: canonical JSON without ``signature``."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"})


def sign_manifest(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    signed = {k: v for k, v in manifest.items() if k != "signature"}
    signed["signature"] = signature_block(key, manifest_body(signed))
    return signed


def write_manifest(
    manifest: dict[str, Any], out: str | Path, *, data_key: bytes | None = None
) -> None:
    """Write atomically; encrypted with AES-GCM when ``data_key`` is given."""
    data = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(out, encrypt(data, data_key) if data_key is not None else data)


def read_manifest(path: str | Path, *, data_key: bytes | None = None) -> dict[str, Any]:
    """Read and structurally check a manifest; :class:`IntegrityError` if it is damaged."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"{p}: cannot read the manifest ({exc.strerror})") from None
    raw = decrypt(raw, data_key, where=str(p))
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{p}: the manifest is truncated or not JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise IntegrityError(f"{p}: not a poisonguard manifest")
    for name, kind in _REQUIRED.items():
        if not isinstance(obj.get(name), kind):
            raise IntegrityError(f"{p}: the manifest's '{name}' is missing or malformed")
    if obj["version"] != 1:
        raise IntegrityError(f"{p}: unsupported manifest version {obj['version']}")
    if len(obj["row_hashes"]) != obj["rows"]:
        raise IntegrityError(f"{p}: the manifest lists {len(obj['row_hashes'])} row hashes "
                             f"for {obj['rows']} rows")
    return obj


def decode_cells(manifest: dict[str, Any]) -> np.ndarray:
    """The manifest's cell fingerprints as an N x C uint16 array."""
    cells = manifest["cells"]
    try:
        shape = tuple(int(s) for s in cells["shape"])
        arr = np.frombuffer(base64.b64decode(cells["data"], validate=True), dtype="<u2")
        return arr.reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"the manifest's cell fingerprints are malformed ({exc})") from None
