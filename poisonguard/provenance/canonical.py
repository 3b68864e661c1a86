"""Canonical encodings: JSON for signing, per-row content hashes, per-cell fingerprints.

Row content hash
    SHA-256 of the row's canonical bytes, exactly :func:`poisonguard.data.row_ids`:
    ``b"poisonguard-row-v1\\0" + class name (UTF-8) + b"\\0" + values`` where the
    values are the features as little-endian float32 (tabular), the image shape as
    ``b"HxWxC\\0"`` then its pixels as little-endian float32 in H x W x C order
    (images), or the text in UTF-8 (text). The same values give the same hash
    whether they were read from CSV, Parquet or NPZ.

Cell fingerprints
    16 bits per cell, so that ``verify`` can name the columns that differ in a
    modified row. Feature cells: the splitmix64 finaliser of (float32 bits + column
    constant), top 16 bits. The label, text and image cells: the first two bytes of
    SHA-256 of their canonical bytes. Fingerprints only *locate* changes; integrity
    rests on the SHA-256 row hashes (a changed row whose fingerprints all collide,
    probability 2**-16 per changed cell, is still reported, with unknown columns).

Canonical JSON
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`` in UTF-8: what signatures and ledger hashes cover.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import Dataset, row_ids

__all__ = [
    "canonical_json",
    "cell_fingerprints",
    "columns_of",
    "file_sha256",
    "row_hashes",
    "sha256_hex",
]

_CHUNK = 65_536
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``obj`` (sorted keys, no whitespace, no NaN)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path, *, block: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def row_hashes(dataset: Dataset) -> np.ndarray:
    """Content hashes (hex strings), one per row, computed from the values.

    ``dataset.ids`` are these hashes unless the data brought its own id column, so
    they are recomputed here rather than trusted.
    """
    return row_ids(
        dataset.classes,
        dataset.labels,
        features=dataset.features,
        images=dataset.images,
        texts=dataset.texts,
    )


def columns_of(dataset: Dataset) -> list[str]:
    """The column names that fingerprints are kept for: values, then the label."""
    if dataset.features is not None:
        values = list(dataset.feature_names)
    elif dataset.images is not None:
        values = ["image"]
    else:
        values = ["text"]
    return [*values, dataset.label_column]


def _short(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[:2], "little")


def _mix(bits: np.ndarray, first_col: int) -> np.ndarray:
    """splitmix64 finaliser of float32 bits, salted by the column index; top 16 bits."""
    cols = np.arange(first_col + 1, first_col + 1 + bits.shape[1], dtype=np.uint64)
    z: Any = bits.astype(np.uint64) + cols * _GOLDEN
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(48)).astype("<u2")


def cell_fingerprints(dataset: Dataset) -> np.ndarray:
    """An N x C uint16 array of cell fingerprints, columns as :func:`columns_of`."""
    n = len(dataset)
    ncols = len(columns_of(dataset))
    out = np.empty((n, ncols), dtype="<u2")
    label_fp = np.array([_short(c.encode("utf-8")) for c in dataset.classes], dtype="<u2")
    out[:, -1] = label_fp[dataset.labels] if n else label_fp[:0]
    if dataset.features is not None:
        x = np.ascontiguousarray(dataset.features, dtype="<f4").view("<u4")
        with np.errstate(over="ignore"):
            for start in range(0, n, _CHUNK):
                out[start:start + _CHUNK, :-1] = _mix(x[start:start + _CHUNK], 0)
    elif dataset.images is not None:
        body = np.ascontiguousarray(dataset.images, dtype="<f4")
        out[:, 0] = [_short(body[i].tobytes()) for i in range(n)]
    else:
        assert dataset.texts is not None
        out[:, 0] = [_short(t.encode("utf-8")) for t in dataset.texts]
    return out
