"""Canonical encodings: JSON for signing, typed cells -> row hashes, cell fingerprints.

Row hash (version 2)
    ``SHA-256(b"poisonguard-row-v2\\0" || cell_1 || ... || cell_C)`` over every column
    of the file in order, each cell typed (see :mod:`.typed`):

    ====================  ====================================================
    null                  ``0x00``
    int                   ``i`` + int64, 8 bytes little-endian
    float                 ``f`` + float64 bits, 8 bytes LE (-0.0 kept apart from
                          0.0; every NaN as the one quiet NaN 0x7ff8000000000000)
    bool                  ``b`` + 1 byte
    timestamp             ``t`` + int64 ns since the epoch (UTC), 8 bytes LE
    date                  ``d`` + int64 days since the epoch
    time                  ``T`` + int64 ns since midnight
    string / json         ``s`` + uint64 LE byte length + UTF-8 bytes
    binary / ndarray      ``y`` + uint64 LE byte length + bytes
    ====================  ====================================================

    The column names and logical types are in the (signed) manifest schema, so the
    same typed values in CSV and Parquet give the same row hashes and root.

Cell fingerprints
    16 bits per cell that *locate* a change (a splitmix64 mix of the cell's value, or
    for strings and bytes of its bytes with their positions). They are stored only
    encrypted (AES-256-GCM under a key derived from the signing key), so a shared
    manifest reveals nothing about single cells; integrity rests on the row hashes.

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
import pyarrow as pa

__all__ = [
    "ROW_PREFIX",
    "canonical_json",
    "cell_fingerprints",
    "encode_rows",
    "file_sha256",
    "hash_rows",
    "sha256_hex",
]

ROW_PREFIX = b"poisonguard-row-v2\x00"
_NAN = np.uint64(0x7FF8000000000000)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_FIXED_TAGS = {"int": b"i", "float": b"f", "bool": b"b", "date": b"d", "time": b"T"}


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``obj`` (sorted keys, no whitespace, no NaN).

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [True, None]})
    b'{"a":[true,null],"b":1}'
    """
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


def _valid(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _fixed_payload(arr: pa.Array, kind: str) -> np.ndarray:
    """The 8-byte (1 for bool) little-endian payload of each cell (nulls: zeros)."""
    if kind == "bool":
        return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False),
                          dtype=np.uint8).reshape(-1, 1)
    if kind == "float":
        bits = np.asarray(arr.fill_null(0.0).to_numpy(zero_copy_only=False),
                          dtype="<f8").view("<u8").copy()
        bits[np.isnan(bits.view("<f8"))] = _NAN
        return bits.view(np.uint8).reshape(-1, 8)
    ints = arr.cast(pa.int64()) if kind in ("date", "time") or kind.startswith("timestamp") \
        else arr
    values = np.asarray(ints.fill_null(0).to_numpy(zero_copy_only=False), dtype="<i8")
    return values.view(np.uint8).reshape(-1, 8)


def _var_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string or binary array, read with 64-bit offsets."""
    if not (pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)):
        arr = arr.cast(pa.large_binary())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype="<i8")[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else \
        np.zeros(0, dtype=np.uint8)
    return offsets, data


def _is_var(kind: str) -> bool:
    return kind in ("string", "json", "binary") or kind.startswith("ndarray")


def _tag(kind: str) -> bytes:
    if kind.startswith("timestamp"):
        return b"t"
    if _is_var(kind):
        return b"y" if kind == "binary" or kind.startswith("ndarray") else b"s"
    return _FIXED_TAGS.get(kind, b"\x00")


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n), vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + shift


def encode_rows(arrays: list[pa.Array], kinds: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The canonical bytes of each row: (buffer, offsets) with row i at
    ``buffer[offsets[i]:offsets[i + 1]]``.

    Examples
    --------
    >>> buf, off = encode_rows([pa.array([1, None])], ["int"])
    >>> bytes(buf[off[0]:off[1]]), bytes(buf[off[1]:off[2]])
    (b'i\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00', b'\\x00')
    """
    n = len(arrays[0]) if arrays else 0
    parts: list[tuple[str, np.ndarray, Any, np.ndarray]] = []
    lengths = np.zeros(n, dtype=np.int64)
    for arr, kind in zip(arrays, kinds, strict=True):
        valid = _valid(arr) if kind not in ("null",) and not kind.startswith("sha256:") \
            else np.zeros(n, dtype=bool)
        if not valid.any():
            cell_len = np.ones(n, dtype=np.int64)
            parts.append((kind, valid, None, cell_len))
        elif _is_var(kind):
            offsets, data = _var_parts(arr)
            size = np.diff(offsets)
            cell_len = 1 + valid * (8 + size)
            parts.append((kind, valid, (offsets, data, size), cell_len))
        else:
            payload = _fixed_payload(arr, kind)
            cell_len = 1 + valid * payload.shape[1]
            parts.append((kind, valid, payload, cell_len))
        lengths += cell_len
    offsets_out = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    buf = np.zeros(int(offsets_out[-1]), dtype=np.uint8)
    pos = offsets_out[:-1].copy()
    for kind, valid, payload, cell_len in parts:
        tag = np.frombuffer(_tag(kind), dtype=np.uint8)[0]
        buf[pos[valid]] = tag
        rows = np.flatnonzero(valid)
        if len(rows) and isinstance(payload, np.ndarray):
            width = payload.shape[1]
            idx = pos[rows, None] + 1 + np.arange(width)
            buf[idx] = payload[rows]
        elif len(rows) and payload is not None:
            offsets, data, size = payload
            head = pos[rows, None] + 1 + np.arange(8)
            buf[head] = size[rows].astype("<u8").view(np.uint8).reshape(-1, 8)
            src = _ranges(offsets[rows], size[rows])
            dst = _ranges(pos[rows] + 9, size[rows])
            buf[dst] = data[src]
        pos += cell_len
    return buf, offsets_out


def hash_rows(buffer: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """SHA-256 of ``ROW_PREFIX`` + each row's bytes: an N x 32 uint8 array.

    Examples
    --------
    >>> buf, off = encode_rows([pa.array(["a"])], ["string"])
    >>> hash_rows(buf, off).shape
    (1, 32)
    """
    n = len(offsets) - 1
    out = bytearray(32 * n)
    base = hashlib.sha256(ROW_PREFIX)
    view = memoryview(np.ascontiguousarray(buffer).data)
    bounds = offsets.tolist()
    for i in range(n):
        h = base.copy()
        h.update(view[bounds[i]:bounds[i + 1]])
        out[32 * i:32 * i + 32] = h.digest()
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(n, 32)


def _mix(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z ^ (z >> np.uint64(30))
        z = z * _M1
        z = z ^ (z >> np.uint64(27))
        z = z * _M2
        return z ^ (z >> np.uint64(31))


def cell_fingerprints(arrays: list[pa.Array], kinds: list[str]) -> np.ndarray:
    """An N x C uint16 array locating changed cells (not a commitment; see above).

    Examples
    --------
    >>> fp = cell_fingerprints([pa.array([1, 2, 1])], ["int"])
    >>> bool(fp[0, 0] == fp[2, 0]), fp.dtype.str
    (True, '<u2')
    """
    n = len(arrays[0]) if arrays else 0
    out = np.zeros((n, len(arrays)), dtype="<u2")
    with np.errstate(over="ignore"):
        for j, (arr, kind) in enumerate(zip(arrays, kinds, strict=True)):
            salt = np.uint64(j + 1) * _GOLDEN
            valid = _valid(arr) if kind != "null" and not kind.startswith("sha256:") \
                else np.zeros(n, dtype=bool)
            z = np.zeros(n, dtype=np.uint64)
            if valid.any() and _is_var(kind):
                offsets, data = _var_parts(arr)
                rel = offsets - offsets[0]
                body = data[offsets[0]:offsets[-1]]
                size = np.diff(rel)
                sums = np.zeros(n, dtype=np.uint64)
                nz = np.flatnonzero(size > 0)
                if len(nz):
                    local = np.arange(len(body), dtype=np.uint64) - np.repeat(
                        rel[:-1], size).astype(np.uint64)
                    contrib = _mix(body.astype(np.uint64) + (local << np.uint64(8)) + salt)
                    sums[nz] = np.add.reduceat(contrib, rel[:-1][nz])
                z = sums + size.astype(np.uint64) * _M1
            elif valid.any():
                payload = _fixed_payload(arr, kind)
                z = np.zeros(n, dtype=np.uint64)
                for b in range(payload.shape[1]):
                    z = z | (payload[:, b].astype(np.uint64) << np.uint64(8 * b))
            z = _mix(z + salt + valid.astype(np.uint64) * _M2)
            out[:, j] = (z >> np.uint64(48)).astype("<u2")
    return out
