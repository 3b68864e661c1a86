"""Nearest-neighbour search and neighbour label votes, shared by the label, knn,
outlier and duplicate detectors and the outlier's far groups
(:mod:`poisonguard.detect.far_groups`).

On the CPU: exact scikit-learn search up to ``exact_max_rows`` rows; beyond that an
inverted-file faiss index (approximate, about N log N) when faiss is installed, else
scikit-learn's exact search (slower but correct). With a CUDA device (torch already
loaded, as an image scan has it): exact search by blocked matrix products on the
device, in float64 like scikit-learn's (``backend="torch"``; on the CPU it gives the
same neighbours as scikit-learn where distances do not tie). Results exclude each
row itself, even when the row has exact duplicates.

Within a scan, detectors that search the same space (label, knn and duplicate on the
scaled features) share one search (:mod:`poisonguard.memo`, keyed on the array
object): the largest k asked for is kept and smaller requests are its first columns.
Outside a scan every call searches.

Inside :func:`searching_with`, the searches of ``backend="auto"`` run elsewhere (an
engine's sharded search, :mod:`poisonguard.engine.neighbours`), memoised the same way.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Literal

import numpy as np
from sklearn.neighbors import NearestNeighbors

from poisonguard.engine.rows import BLOCK_ROWS, map_rows
from poisonguard.errors import UsageError
from poisonguard.memo import current_memo

__all__ = [
    "EXACT_MAX_ROWS",
    "INDEX_DTYPE",
    "MEMO_NAME",
    "Backend",
    "faiss_available",
    "nearest_among",
    "nearest_in_sample",
    "reference_sample",
    "nearest_neighbours",
    "neighbour_votes",
    "searching_with",
    "torch_device",
]

EXACT_MAX_ROWS = 50_000
#: Neighbour indices are int32 (half the memory of int64; a row count above 2**31 - 1
#: is far beyond what one machine scans).
INDEX_DTYPE = np.int32
#: Query rows per block of the faiss search: its k + 1 results (and the work of
#: removing each row itself) exist for one block at a time.
FAISS_BLOCK_ROWS = 65_536
Backend = Literal["auto", "sklearn", "faiss", "torch"]
#: Rows per block of :func:`neighbour_votes` (their block x k label codes).
VOTE_BLOCK_ROWS = BLOCK_ROWS
#: Query rows per block of the torch search (a block x N distance matrix at a time).
TORCH_BLOCK_ROWS = 4_096

#: Searches a scan's memo keeps (the most recently used), under :data:`MEMO_NAME`.
MEMO_SIZE = 4
MEMO_NAME = "neighbours"

#: ``search(x, k, seed) -> (distances, indices)``: the k nearest rows of every row,
#: the row itself included (as a search of ``x`` against itself returns it).
Searcher = Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]
_SEARCHER: ContextVar[tuple[str, Searcher] | None] = ContextVar("searcher", default=None)


@contextlib.contextmanager
def searching_with(name: str, search: Searcher) -> Iterator[None]:
    """Run the ``backend="auto"`` searches of this block with ``search`` (named ``name``
    in the memo's keys), e.g. a Ray cluster's sharded search.

    Examples
    --------
    >>> from sklearn.neighbors import NearestNeighbors
    >>> def brute(x, k, seed):
    ...     return NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    >>> with searching_with("brute", brute):
    ...     nearest_neighbours(np.array([[0.0], [1.0], [3.0]]), 1, cache=False)[1].ravel().tolist()
    [1, 0, 1]
    """
    token = _SEARCHER.set((name, search))
    try:
        yield
    finally:
        _SEARCHER.reset(token)


def faiss_available() -> bool:
    """Whether the optional faiss package can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _drop_self(dist: np.ndarray, idx: np.ndarray, k: int,
               first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from its k + 1 results (else the farthest result).

    Row ``i`` of ``idx`` holds the results of data row ``first_row + i`` (a block of
    queries). Most rows find themselves first: those just lose column 0. Only the
    others (exact duplicates that tie with the row, approximate misses) go through a
    per-row sort. Indices come back as :data:`INDEX_DTYPE`, distances as float32.
    """
    n = len(idx)
    own = np.arange(first_row, first_row + n)
    own_first = idx[:, 0] == own
    out_d = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=INDEX_DTYPE)
    out_d[own_first] = dist[own_first, 1:k + 1]
    out_i[own_first] = idx[own_first, 1:k + 1]
    rest = np.flatnonzero(~own_first)
    if rest.size:
        sub_i = idx[rest]
        is_self = sub_i == own[rest][:, None]
        no_self = ~is_self.any(axis=1)
        is_self[no_self, -1] = True
        order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
        out_d[rest] = np.take_along_axis(dist[rest], order, axis=1)
        out_i[rest] = np.take_along_axis(sub_i, order, axis=1)
    return out_d, out_i


def torch_device() -> str | None:
    """"cuda" when torch is already loaded and sees a CUDA device, else None.

    torch is not imported here: a tabular scan never pays for loading it.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return "cuda"


def _torch_search(x: np.ndarray, k: int, *, device: str | None = None,
                  block_rows: int = TORCH_BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN by blocked ``|q|^2 + |r|^2 - 2 q.r`` in float64 on ``device``.

    Equal distances are ordered by row index. The rows stay on the device; each
    block of queries makes one block x N distance matrix there.
    """
    import torch

    dev = torch.device(device or torch_device() or "cpu")
    ref = torch.as_tensor(np.ascontiguousarray(x), device=dev).to(torch.float64)
    ref_sq = (ref * ref).sum(dim=1)
    dists, idxs = [], []
    for start in range(0, len(ref), block_rows):
        q = ref[start:start + block_rows]
        d2 = ref_sq[start:start + block_rows, None] + ref_sq[None, :] - 2.0 * (q @ ref.T)
        top = torch.topk(d2.clamp_(min=0.0), k, dim=1, largest=False, sorted=True)
        vals, cols = top.values.cpu().numpy(), top.indices.cpu().numpy()
        by_index = np.lexsort((cols, vals), axis=1)  # equal distances: lower index first
        dists.append(np.sqrt(np.take_along_axis(vals, by_index, axis=1)).astype(np.float32))
        idxs.append(np.take_along_axis(cols, by_index, axis=1).astype(INDEX_DTYPE))
    return np.concatenate(dists), np.concatenate(idxs)


def _sklearn_search(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return _sklearn_search_to(x, x, k)


def _faiss_search(x: np.ndarray, k: int, *, block_rows: int = FAISS_BLOCK_ROWS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row (self removed) by faiss's exact
    ``IndexFlatL2``, a block of queries at a time."""
    import faiss

    xf = np.ascontiguousarray(x, dtype=np.float32)
    n, d = xf.shape
    index = faiss.IndexFlatL2(d)
    index.add(xf)
    search_k = min(k + 1, n)
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=INDEX_DTYPE)
    for start in range(0, n, block_rows):
        sq, found = index.search(xf[start:start + block_rows], search_k)
        block_d, block_i = _drop_self(np.sqrt(np.maximum(sq, 0)), found, k, start)
        dist[start:start + len(found)] = block_d
        idx[start:start + len(found)] = block_i
    return dist, idx


def _ivf_search(x: np.ndarray, k: int, *, seed: int,
                block_rows: int = FAISS_BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row by the shared IVF construction
    (:func:`poisonguard.detect.ivf.ivf_neighbours`, the same on every engine). Each
    row's own entry is removed block by block, in place: the result is a view of the
    search's N x (k + 1) arrays (no second copy)."""
    from poisonguard.detect.ivf import ivf_neighbours

    return _drop_self_in_place(*ivf_neighbours(x, min(k + 1, len(x)), seed=seed), k,
                               block_rows=block_rows)


def _drop_self_in_place(dist: np.ndarray, idx: np.ndarray, k: int, *,
                        block_rows: int = FAISS_BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_drop_self` of N x (k + 1) search results, block by block, in place: the
    result is a view of the arrays given (no second copy). A missing entry (-1, fewer
    than k + 1 hits) counts as the row itself."""
    for start in range(0, len(idx), block_rows):
        d, i = dist[start:start + block_rows], idx[start:start + block_rows]
        missing = i < 0  # an IVF probe can return fewer than k hits
        if missing.any():
            i[missing] = np.arange(start, start + len(i)).repeat(missing.sum(axis=1))
        block_d, block_i = _drop_self(d, i, k, start)
        d[:, :k], i[:, :k] = block_d, block_i
    return dist[:, :k], idx[:, :k]


def reference_sample(n: int, max_reference: int, seed: int) -> np.ndarray:
    """The rows :func:`nearest_in_sample` searches among (sorted; every row when
    ``n <= max_reference``, else a seeded choice of ``max_reference``)."""
    if n <= max_reference:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_reference, replace=False))


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
    ref = reference_sample(n, max_reference, seed)
    # per block of query rows, on the scan's engine (poisonguard.engine.rows)
    dist, pos = map_rows(functools.partial(_sklearn_search_to, x[ref], k=k + 1), x,
                         stage="searching a reference sample")
    return _drop_self(dist, ref[pos], k)


def nearest_among(reference: np.ndarray, queries: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``reference`` to each row of ``queries`` (exact, brute
    force, Euclidean; scikit-learn's search): distances as scikit-learn gives them
    (float64) and row numbers of ``reference``, nearest first. A query row that is also
    a reference row finds itself. Needs ``1 <= k <= len(reference)``.

    Examples
    --------
    >>> dist, idx = nearest_among(np.array([[0.0], [1.0], [5.0]]), np.array([[0.9], [4.0]]), 2)
    >>> idx.tolist(), dist.round(2).tolist()
    ([[1, 0], [2, 1]], [[0.1, 0.9], [1.0, 3.0]])
    """
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    dist, idx = nn.kneighbors(queries)
    return dist, idx


def _sklearn_search_to(reference: np.ndarray, queries: np.ndarray,
                       k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_among` in the compact types of the searches here (float32,
    :data:`INDEX_DTYPE`)."""
    dist, idx = nearest_among(reference, queries, k)
    return dist.astype(np.float32), idx.astype(INDEX_DTYPE)


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
    the row itself. ``k`` is capped at N - 1. ``backend="auto"`` is the exact torch
    search on a CUDA device when torch is loaded and sees one (:func:`torch_device`);
    otherwise exact scikit-learn up to ``exact_max_rows`` rows and approximate faiss
    (IVF) beyond. ``backend="torch"`` without a CUDA device runs on the CPU.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [3.0]])
    >>> nearest_neighbours(x, 1, cache=False)[1].ravel().tolist()
    [1, 0, 1]
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise UsageError(f"nearest_neighbours needs an N x D array, got shape {x.shape}")
    n = len(x)
    if k < 1:
        raise UsageError("k must be at least 1")
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), INDEX_DTYPE)
    if backend not in ("auto", "sklearn", "faiss", "torch"):
        raise UsageError(f"unknown neighbour backend '{backend}' (auto, sklearn, faiss, torch)")
    if backend == "faiss" and not faiss_available():
        raise UsageError("neighbour backend 'faiss' needs the faiss-cpu package")
    chosen: str = backend
    outside = _SEARCHER.get() if backend == "auto" else None
    if outside is not None:
        chosen = outside[0]
    elif backend == "auto":
        chosen = "torch" if torch_device() else (
            "faiss" if n > exact_max_rows and faiss_available() else "sklearn")
    use_faiss = chosen == "faiss"
    # The seed shapes only the approximate (faiss IVF) search.
    key = (id(x), x.shape, chosen, seed if use_faiss or outside else 0)
    memo = current_memo() if cache else None
    hit = memo.get(MEMO_NAME, key) if memo is not None else None
    if hit is not None and hit[0] is x and hit[1].shape[1] >= k:
        return hit[1][:, :k], hit[2][:, :k]
    search_k = min(k + 1, n)
    if outside is not None:
        found_d, found_i = outside[1](x, search_k, seed)  # e.g. a cluster's: in place
        dist, idx = _drop_self_in_place(np.require(found_d, np.float32, "W"),
                                        np.require(found_i, INDEX_DTYPE, "W"), k)
    elif use_faiss:
        dist, idx = _faiss_search(x, k) if n <= exact_max_rows else _ivf_search(x, k, seed=seed)
    else:
        search = _torch_search if chosen == "torch" else _sklearn_search
        dist, idx = _drop_self(*search(x, search_k), k)
    dist.flags.writeable = False
    idx.flags.writeable = False
    if memo is not None:
        memo.put(MEMO_NAME, key, (x, dist, idx), keep=MEMO_SIZE)
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
    shares = np.zeros((n, n_classes), dtype=np.float64)
    if k:
        code = np.int16 if n_classes <= np.iinfo(np.int16).max else np.int64
        codes = np.asarray(labels).astype(code)
        for start in range(0, n, VOTE_BLOCK_ROWS):  # block x k small ints at a time
            voted = codes[neighbours[start:start + VOTE_BLOCK_ROWS]]
            for c in range(n_classes):
                shares[start:start + len(voted), c] = np.count_nonzero(voted == c, axis=1)
        shares /= k  # the same float64 quotient as (int counts) / k
    return shares
