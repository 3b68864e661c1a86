"""Pairs of items whose row sets overlap strongly (Jaccard similarity join).

The trigger search links (feature, value) items that mark almost the same rows. The
plain way, the sparse product ``B' B`` of the N x I item matrix, costs the sum over
rows of (items per row)^2: cheap on tables, hopeless on images (5,000 MNIST digits
hold 45,000 items and about 200 per row). Above a work bound the candidate pairs come
from MinHash locality-sensitive hashing instead (a pair with Jaccard 0.5 collides in
at least one of 32 bands of 4 hashes with probability 0.87, Jaccard 0.7 with 0.9998),
and every candidate pair is then verified exactly. Every item is kept: no cap on the
number of items, so a patch whose pixels hold common values is still seen. Plain
functions, usable alone.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["minhash_signatures", "pair_overlaps", "similar_pairs"]

#: Above this many row-level item co-occurrences the exact product gives way to MinHash.
MAX_EXACT_WORK = 20_000_000


def minhash_signatures(b: sparse.csc_matrix, n_hashes: int, *, seed: int = 0,
                       chunk: int = 1 << 22) -> np.ndarray:
    """H x I MinHash signatures of the columns of a binary CSC matrix (no empty column).

    Hash ``h`` is a seeded random permutation of the rows; a column's signature is
    the smallest permuted index among its rows. Columns are read in groups of about
    ``chunk`` entries (the permuted row numbers of one group exist at a time; the
    minima are the same whatever the grouping).
    """
    b = sparse.csc_matrix(b)
    n, n_items = b.shape
    rng = np.random.default_rng(seed)
    indptr = b.indptr.astype(np.int64)
    cuts = np.searchsorted(indptr, np.arange(0, indptr[-1], max(int(chunk), 1)), side="right") - 1
    groups = np.unique(np.concatenate([cuts, [0, n_items]]).clip(0, n_items))
    out = np.empty((n_hashes, n_items), dtype=np.int64)
    for h in range(n_hashes):
        perm = rng.permutation(n).astype(np.int32)
        for c0, c1 in zip(groups[:-1], groups[1:], strict=True):
            first, last = indptr[c0], indptr[c1]
            out[h, c0:c1] = np.minimum.reduceat(perm[b.indices[first:last]],
                                                indptr[c0:c1] - first)
    return out


def pair_overlaps(b: sparse.csc_matrix, first: np.ndarray, second: np.ndarray, *,
                  chunk: int = 20_000) -> np.ndarray:
    """How many rows columns ``first[k]`` and ``second[k]`` share, for every k (exact)."""
    b = sparse.csc_matrix(b)
    out = np.zeros(len(first), dtype=np.int64)
    for start in range(0, len(first), chunk):
        a = b[:, first[start:start + chunk]]
        c = b[:, second[start:start + chunk]]
        out[start:start + chunk] = np.asarray(a.multiply(c).sum(axis=0)).ravel()
    return out


def _lsh_candidates(sig: np.ndarray, rows_per_band: int, width: int) -> np.ndarray:
    """Candidate pairs (K x 2, first < second): columns that agree on a whole band.

    Within a band, columns are sorted by their band key and each is paired with up to
    ``width`` columns before it that share the key (enough to connect a large group of
    near-identical items without listing all its pairs).
    """
    n_hashes, n_items = sig.shape
    mix = np.random.default_rng(0x5EED).integers(1, 2**62, size=rows_per_band, dtype=np.uint64)
    pairs: list[np.ndarray] = []
    with np.errstate(over="ignore"):
        for start in range(0, n_hashes - rows_per_band + 1, rows_per_band):
            band = sig[start:start + rows_per_band].astype(np.uint64)
            key = (band * mix[:, None]).sum(axis=0) ^ (band[0] << np.uint64(17))
            order = np.argsort(key, kind="stable")
            ks = key[order]
            for d in range(1, width + 1):
                same = np.flatnonzero(ks[d:] == ks[:-d])
                if not len(same):
                    break
                pairs.append(np.column_stack([order[same], order[same + d]]))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    both = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(both, axis=0)


def similar_pairs(
    b: sparse.csc_matrix,
    *,
    min_jaccard: float,
    min_shared: int,
    seed: int = 0,
    max_exact_work: int = MAX_EXACT_WORK,
    bands: int = 32,
    rows_per_band: int = 4,
    width: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column pairs ``(a, b)``, ``a < b``, with Jaccard >= ``min_jaccard`` and at least
    ``min_shared`` shared rows: returns ``(a, b, shared, jaccard)``.

    Exact (the sparse product) when the sum over rows of (items per row)^2 is at most
    ``max_exact_work``; otherwise MinHash LSH with ``bands`` x ``rows_per_band`` hashes
    proposes the pairs and each is verified exactly, so no pair below the thresholds
    is ever returned (a qualifying pair of low similarity may be missed).
    """
    b = sparse.csc_matrix(b, dtype=np.float32)
    cnt = np.asarray(b.sum(axis=0)).ravel()
    per_row = np.bincount(b.indices, minlength=b.shape[0]).astype(np.int64)
    if int((per_row**2).sum()) <= max_exact_work:
        co = (b.T @ b).tocoo()
        a_idx, b_idx = co.row.astype(np.int64), co.col.astype(np.int64)
        shared = np.rint(co.data).astype(np.int64)
        upper = a_idx < b_idx
        a_idx, b_idx, shared = a_idx[upper], b_idx[upper], shared[upper]
    else:
        sig = minhash_signatures(b, bands * rows_per_band, seed=seed)
        cand = _lsh_candidates(sig, rows_per_band, width)
        a_idx, b_idx = cand[:, 0], cand[:, 1]
        shared = pair_overlaps(b, a_idx, b_idx)
    union = cnt[a_idx] + cnt[b_idx] - shared
    jac = shared / np.maximum(union, 1)
    keep = (shared >= min_shared) & (jac >= min_jaccard)
    return a_idx[keep], b_idx[keep], shared[keep], jac[keep]
