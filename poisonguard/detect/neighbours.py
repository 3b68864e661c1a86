"""Nearest-neighbour search and neighbour label votes, shared by the label, knn,
outlier and duplicate detectors.

Exact scikit-learn search up to ``exact_max_rows`` rows; beyond that an inverted-file
faiss index (approximate, about N log N) when faiss is installed, else scikit-learn's
exact search (slower but correct). Results exclude each row itself, even when the row
has exact duplicates.

A small cache keyed on the array object lets detectors that search the same space
(say ``knn`` and ``duplicate`` on the scaled features) share one search per scan.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Literal

import numpy as np
from sklearn.neighbors import NearestNeighbors

from poisonguard.errors import UsageError

__all__ = [
    "EXACT_MAX_ROWS",
    "Backend",
    "clear_cache",
    "faiss_available",
    "nearest_in_sample",
    "nearest_neighbours",
    "neighbour_votes",
]

EXACT_MAX_ROWS = 50_000
Backend = Literal["auto", "sklearn", "faiss"]

_CACHE: OrderedDict[tuple[int, tuple[int, ...], str, int],
                    tuple[np.ndarray, np.ndarray, np.ndarray]]
_CACHE = OrderedDict()
_CACHE_SIZE = 4


def faiss_available() -> bool:
    """Whether the optional faiss package can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def clear_cache() -> None:
    """Forget cached neighbour searches (they hold references to their input arrays)."""
    _CACHE.clear()


def _drop_self(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from its k + 1 results (else the farthest result).

    Most rows find themselves first: those just lose column 0. Only the others (exact
    duplicates that tie with the row, approximate misses) go through a per-row sort.
    """
    n = len(idx)
    own_first = idx[:, 0] == np.arange(n)
    out_d = np.empty((n, k), dtype=dist.dtype)
    out_i = np.empty((n, k), dtype=idx.dtype)
    out_d[own_first] = dist[own_first, 1:k + 1]
    out_i[own_first] = idx[own_first, 1:k + 1]
    rest = np.flatnonzero(~own_first)
    if rest.size:
        sub_i = idx[rest]
        is_self = sub_i == rest[:, None]
        no_self = ~is_self.any(axis=1)
        is_self[no_self, -1] = True
        order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
        out_d[rest] = np.take_along_axis(dist[rest], order, axis=1)
        out_i[rest] = np.take_along_axis(sub_i, order, axis=1)
    return out_d, out_i


def _sklearn_search(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return _sklearn_search_to(x, x, k)


def _faiss_search(
    x: np.ndarray, k: int, *, exact: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    xf = np.ascontiguousarray(x, dtype=np.float32)
    n, d = xf.shape
    index: Any
    if exact:
        index = faiss.IndexFlatL2(d)
    else:
        nlist = max(int(min(2 * math.sqrt(n), n // 40)), 1)
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist)
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        index.train(xf[rng.choice(n, size=min(n, 64 * nlist), replace=False)])
        index.nprobe = min(nlist, 8)
    index.add(xf)
    sq, idx = index.search(xf, k)
    missing = idx < 0  # an IVF probe can return fewer than k hits
    if missing.any():
        sq[missing] = np.inf
        idx[missing] = np.arange(n).repeat(missing.sum(axis=1))
    return np.sqrt(np.maximum(sq, 0)).astype(np.float32), idx.astype(np.int64)


def nearest_in_sample(
    x: np.ndarray, k: int, *, max_reference: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row, searched among a random sample.

    Up to ``max_reference`` rows (seeded choice) form the reference; every row gets
    its nearest reference rows, never itself. Cost N x ``max_reference`` x D: linear
    in N, for density-style statistics (outlier scores) where a sample is plenty.
    Indices are row numbers of ``x``. With N <= ``max_reference`` this is the exact
    search of :func:`nearest_neighbours`.
    """
    n = len(x)
    if n <= max_reference:
        return nearest_neighbours(x, k, seed=seed, cache=False)
    k = min(k, max_reference - 1)
    ref = np.sort(np.random.default_rng(seed).choice(n, size=max_reference, replace=False))
    dist, pos = _sklearn_search_to(x[ref], x, k + 1)
    return _drop_self(dist, ref[pos], k)


def _sklearn_search_to(reference: np.ndarray, queries: np.ndarray,
                       k: int) -> tuple[np.ndarray, np.ndarray]:
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    dist, idx = nn.kneighbors(queries)
    return dist.astype(np.float32), idx.astype(np.int64)


def nearest_neighbours(
    x: np.ndarray,
    k: int,
    *,
    backend: Backend = "auto",
    exact_max_rows: int = EXACT_MAX_ROWS,
    seed: int = 0,
    cache: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row of ``x`` (Euclidean).

    Returns ``(distances, indices)``, both N x k, nearest first, never containing
    the row itself. ``k`` is capped at N - 1. ``backend="auto"`` is exact
    scikit-learn up to ``exact_max_rows`` rows and approximate faiss (IVF) beyond.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise UsageError(f"nearest_neighbours needs an N x D array, got shape {x.shape}")
    n = len(x)
    if k < 1:
        raise UsageError("k must be at least 1")
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    if backend not in ("auto", "sklearn", "faiss"):
        raise UsageError(f"unknown neighbour backend '{backend}' (auto, sklearn, faiss)")
    use_faiss = backend == "faiss" or (backend == "auto" and n > exact_max_rows
                                       and faiss_available())
    if backend == "faiss" and not faiss_available():
        raise UsageError("neighbour backend 'faiss' needs the faiss-cpu package")
    # The seed shapes only the approximate (faiss IVF) search.
    key = (id(x), x.shape, "faiss" if use_faiss else "sklearn", seed if use_faiss else 0)
    hit = _CACHE.get(key) if cache else None
    if hit is not None and hit[0] is x and hit[1].shape[1] >= k:
        _CACHE.move_to_end(key)
        return hit[1][:, :k], hit[2][:, :k]
    search_k = min(k + 1, n)
    if use_faiss:
        dist, idx = _faiss_search(x, search_k, exact=n <= exact_max_rows, seed=seed)
    else:
        dist, idx = _sklearn_search(x, search_k)
    dist, idx = _drop_self(dist, idx, k)
    dist.flags.writeable = False
    idx.flags.writeable = False
    if cache:
        _CACHE[key] = (x, dist, idx)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return dist, idx


def neighbour_votes(labels: np.ndarray, neighbours: np.ndarray, n_classes: int) -> np.ndarray:
    """N x C share of each row's neighbours that carry each label (a leave-one-out k-NN).

    Parameters
    ----------
    labels
        Label code per row (N,).
    neighbours
        N x k row indices, as :func:`nearest_neighbours` returns them.
    n_classes
        Number of classes C.

    Examples
    --------
    >>> neighbour_votes(np.array([0, 1, 1]), np.array([[1, 2], [0, 2], [0, 1]]), 2)
    array([[0. , 1. ],
           [0.5, 0.5],
           [0.5, 0.5]])
    """
    n, k = neighbours.shape
    cells = np.arange(n)[:, None] * n_classes + labels[neighbours]
    counts = np.bincount(cells.ravel(), minlength=n * n_classes).reshape(n, n_classes)
    return np.asarray(counts / max(k, 1), dtype=np.float64)
