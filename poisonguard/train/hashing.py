"""Where each training row goes: partitions and buckets chosen by a hash of its content.

A row's place depends only on its feature values (never on its position in the file,
its id column or its label), so inserting, deleting or relabelling one row changes
exactly one partition (DPA) or one bucket (Finite Aggregation) and leaves every
other partition's contents, and the order of rows inside it, as they were.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["content_hashes", "fa_shifts", "members_of_buckets", "order_by_content"]

_PREFIX = b"poisonguard-train-partition-v1\x00"
#: Seed of the fixed spread of Finite Aggregation (part of the model's definition).
FA_SEED = 20220717


def content_hashes(x: np.ndarray) -> np.ndarray:
    """A 64-bit unsigned hash per row of the SHA-256 of its float32 little-endian values.

    Examples
    --------
    >>> h = content_hashes(np.array([[1.0, 2.0], [1.0, 2.0]]))
    >>> bool(h[0] == h[1])
    True
    """
    body = np.ascontiguousarray(np.asarray(x, dtype="<f4").reshape(len(x), -1))
    out = np.empty(len(body), dtype=np.uint64)
    for i in range(len(body)):
        digest = hashlib.sha256(_PREFIX + body[i].tobytes()).digest()
        out[i] = int.from_bytes(digest[:8], "big")
    return out


def order_by_content(rows: np.ndarray, hashes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``rows`` sorted by (hash, label): an order that depends on content alone."""
    return rows[np.lexsort((y[rows], hashes[rows]))]


def fa_shifts(n_partitions: int, spread: int) -> np.ndarray:
    """The ``spread`` distinct shifts of Finite Aggregation: bucket ``b`` feeds the base
    models ``(b + shift) mod (n_partitions * spread)``. Fixed by :data:`FA_SEED`."""
    total = n_partitions * spread
    if spread == 1:
        return np.zeros(1, dtype=np.int64)
    rng = np.random.default_rng(FA_SEED)
    return np.sort(rng.choice(total, size=spread, replace=False)).astype(np.int64)


def members_of_buckets(n_partitions: int, spread: int) -> np.ndarray:
    """(n_buckets x spread) array: the base models each bucket's rows train.

    Examples
    --------
    >>> members_of_buckets(4, 2).shape
    (8, 2)
    """
    total = n_partitions * spread
    shifts = fa_shifts(n_partitions, spread)
    return (np.arange(total, dtype=np.int64)[:, None] + shifts[None, :]) % total
