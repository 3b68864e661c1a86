"""Exact copies among rows: group ids by value, and the groups two or more rows share.

Plain functions, no detector: the ``duplicate`` detector groups conflicting copies with
them, and the ``trigger`` detector asks how much of a table is copies
(:func:`~poisonguard.detect.trigger_search.share_with_copies`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["exact_duplicate_groups", "shared_groups"]


def _row_hashes(flat: np.ndarray, *, chunk: int = 65_536) -> np.ndarray:
    """A 64-bit hash per row, computed in chunks (a few MiB of scratch at any N)."""
    width = flat.dtype.itemsize * (flat.shape[1] if flat.ndim > 1 else 1)
    pad = (-width) % 8
    weights = np.random.default_rng(0x9E3779B9).integers(
        1, 2**63, size=(width + pad) // 8, dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(flat), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(flat), chunk):
            values = flat[start:start + chunk]
            if values.dtype.kind == "f":
                values = values + 0.0  # -0.0 and 0.0 are the same value
            part = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), -1)
            if pad:
                part = np.pad(part, ((0, 0), (0, pad)))
            w = np.ascontiguousarray(part).view(np.uint64)
            mixed = (w * weights) ^ (w >> np.uint64(29))
            out[start:start + chunk] = (mixed * weights).sum(axis=1, dtype=np.uint64)
    return out


def shared_groups(group: np.ndarray) -> Iterator[np.ndarray]:
    """The row indices of each group id that two or more rows share."""
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    sizes = np.diff(np.r_[starts, len(group)])
    for s, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        yield order[s:s + size]


def exact_duplicate_groups(x: np.ndarray) -> np.ndarray:
    """A group id per row: rows with identical values share it.

    Rows are hashed to 64 bits in chunks and grouped by sorting the hashes (N log N,
    about 24 bytes per row); rows that share a hash are then compared value by value,
    so a hash collision never merges different rows.
    """
    flat = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    _, group = np.unique(_row_hashes(flat), return_inverse=True)
    group = np.asarray(group, dtype=np.int64).ravel()
    next_id = int(group.max()) + 1 if len(group) else 0
    for members in shared_groups(group):
        rest = members
        while len(rest):  # split a shared hash into groups of truly equal rows
            same = (flat[rest] == flat[rest[0]]).all(axis=1)
            if not same.all():
                group[rest[~same]] = next_id
                next_id += 1
            rest = rest[~same]
    return group
