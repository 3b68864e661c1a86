"""The approximate (inverted-file) neighbour search, built the same way on every engine.

One coarse quantizer is trained once, in the process that starts the search, on a
seeded sample of the rows (faiss k-means, ``seed``): an :class:`IvfLayout`. Every row
belongs to the inverted list of its nearest centroid; a query scans the lists of its
``nprobe`` nearest centroids. The rows may be cut into shards, each with its own
inverted lists over the *same* centroids: a query's candidates in a shard are that
shard's members of the query's lists, so over all shards they are exactly the
candidates of one index over all rows, and the k best by (distance, row index) are the
same whatever the cut (faiss computes each distance from the two rows alone and breaks
equal distances by row index). In-process (:func:`ivf_neighbours`) and on a cluster
(:mod:`poisonguard.engine.neighbours`) the layout, the probes and the merge are these
functions, so the engines return the same neighbours.

The probes (each query's nearest centroids) are refined here in float64
(:func:`ivf_probes`), so a row's probes never depend on how the queries were cut into
blocks.

Parameters from N (:func:`ivf_parameters`): ``2 sqrt(N)`` lists of at least
:data:`MIN_LIST_ROWS` rows, 8 probes: each query scans about ``4 sqrt(N)`` rows (4,000 of
1M). Recall@20 against the exact search and the cost of more probes are measured in
benchmarks/RESULTS.md ("session 6"); more probes buy recall at a proportional cost.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.errors import UsageError

__all__ = [
    "IvfLayout",
    "ivf_index",
    "ivf_layout",
    "ivf_neighbours",
    "ivf_parameters",
    "ivf_probes",
    "merge_neighbours",
    "release_freed_memory",
    "search_ivf_index",
]

#: Queries per block of probe computation, and the extra centroids refined in float64.
PROBE_ROWS = 4_096
PROBE_MARGIN = 8
#: Smallest average inverted list, and the lists each query scans.
MIN_LIST_ROWS = 40
NPROBE = 8
#: Training rows per list (seeded sample) and k-means iterations of the quantizer.
TRAIN_ROWS_PER_LIST = 32
TRAIN_ITERATIONS = 12
#: Rows per shard and per query block of the in-process search. Up to 2**20 rows the
#: index is one shard (a float32 copy of the rows): at 1M rows x 50 columns, four shards
#: of 262,144 rows cost 200 CPU s of list scans and 10 s of merges per million queries
#: against 151-159 s and 2 s for one (faiss pays per query, per probed list, per shard).
LOCAL_SHARD_ROWS = 1_048_576
LOCAL_BLOCK_ROWS = 16_384


def ivf_parameters(n: int) -> tuple[int, int]:
    """``(nlist, nprobe)`` for ``n`` rows: ``2 sqrt(n)`` lists (at least 40 rows each),
    8 probes (at most all lists): about ``4 sqrt(n)`` rows scanned per query.

    Examples
    --------
    >>> ivf_parameters(1_000_000)
    (2000, 8)
    >>> ivf_parameters(100)
    (2, 2)
    """
    if n < 1:
        raise UsageError("an IVF search needs at least one row")
    nlist = max(min(int(2 * math.sqrt(n)), n // MIN_LIST_ROWS), 1)
    return nlist, min(nlist, NPROBE)


@dataclass(frozen=True)
class IvfLayout:
    """The shared coarse quantizer: ``centroids`` (nlist x D float32) and ``nprobe``."""

    centroids: np.ndarray
    nprobe: int

    @property
    def nlist(self) -> int:
        """Number of inverted lists."""
        return len(self.centroids)


def ivf_layout(x: np.ndarray, *, seed: int = 0, nlist: int | None = None,
               nprobe: int | None = None) -> IvfLayout:
    """Train the coarse quantizer for rows ``x`` on a seeded sample of them; ``nlist``
    and ``nprobe`` default to :func:`ivf_parameters` (other values: for benchmarks).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(400, 3))
    >>> layout = ivf_layout(x, seed=0)
    >>> layout.centroids.shape, layout.nprobe
    ((10, 3), 8)
    """
    import faiss

    n, d = x.shape
    default_nlist, default_nprobe = ivf_parameters(n)
    nlist = min(nlist or default_nlist, n)
    nprobe = min(nprobe or default_nprobe, nlist)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, TRAIN_ROWS_PER_LIST * nlist), replace=False))
    train = np.ascontiguousarray(x[sample], dtype=np.float32)
    if nlist == 1:
        return IvfLayout(train.mean(axis=0, keepdims=True, dtype=np.float64).astype(
            np.float32), 1)
    kmeans = faiss.Kmeans(d, nlist, niter=TRAIN_ITERATIONS, seed=seed,
                          max_points_per_centroid=TRAIN_ROWS_PER_LIST,
                          min_points_per_centroid=1)
    kmeans.train(train)
    return IvfLayout(np.array(kmeans.centroids, dtype=np.float32), nprobe)


def ivf_probes(layout: IvfLayout, x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The ``nprobe`` nearest centroids (int64, nearest first) of rows ``start..stop-1``
    of ``x``.

    faiss finds :data:`PROBE_MARGIN` more candidates than needed in float32 on
    :data:`PROBE_ROWS`-aligned blocks of rows; their distances are then recomputed in
    float64 from the two vectors alone and the ``nprobe`` best kept by (distance,
    centroid number): a row's probes do not depend on the blocks queries come in.
    """
    import faiss

    quantizer = faiss.IndexFlatL2(layout.centroids.shape[1])
    quantizer.add(layout.centroids)
    centroids = layout.centroids.astype(np.float64)
    nprobe, wide = layout.nprobe, min(layout.nlist, layout.nprobe + PROBE_MARGIN)
    out = np.empty((stop - start, nprobe), dtype=np.int64)
    for lo in range(start - start % PROBE_ROWS, stop, PROBE_ROWS):
        hi = min(lo + PROBE_ROWS, len(x))
        q = np.ascontiguousarray(x[lo:hi], dtype=np.float32)
        near = quantizer.search(q, wide)[1]
        diff = centroids[near]  # B x wide x D float64 (a few tens of MB per block)
        diff -= q.astype(np.float64)[:, None, :]
        np.square(diff, out=diff)
        d2 = diff.sum(axis=2)  # each pair summed alone: the same value in any block
        order = np.lexsort((near, d2), axis=1)[:, :nprobe]
        keep_lo, keep_hi = max(lo, start), min(hi, stop)
        out[keep_lo - start:keep_hi - start] = np.take_along_axis(near, order, axis=1)[
            keep_lo - lo:keep_hi - lo]
    return out


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a
    no-op elsewhere).

    An index's inverted lists are many allocations of about 100 KB, below glibc's
    threshold for separate mappings: freed, they stay in the process's heap, resident,
    and the next large numpy arrays (separate mappings) do not reuse them. At 1M x 50
    that was 70-150 MiB held for the rest of the scan.

    Examples
    --------
    >>> release_freed_memory()  # returns nothing; the process holds less afterwards
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def ivf_index(layout: IvfLayout, rows: np.ndarray, first_row: int, *,
              list_sizes: np.ndarray | None = None) -> Any:
    """A faiss IVF index of ``rows`` (data rows ``first_row ...``) over the layout's
    centroids; its ids are the data row numbers. Rows are added in blocks, so no
    float32 copy of all of them exists beside the index's own.

    ``list_sizes`` (the expected rows of each list, e.g. a count of the rows' first
    probes) reserves each inverted list's memory before the rows are added: faiss grows
    a list by doubling it (at 1M x 50: 322 MiB resident for 199 MiB of rows and ids,
    199 MiB reserved). The index
    and its search are the same either way (faiss adds the rows itself); a list larger
    than expected just grows.
    """
    import faiss

    d = layout.centroids.shape[1]
    quantizer = faiss.IndexFlatL2(d)
    quantizer.add(layout.centroids)
    index = faiss.IndexIVFFlat(quantizer, d, layout.nlist)
    index.is_trained = True
    index.nprobe = layout.nprobe
    if list_sizes is not None:
        assert index.invlists is not None  # an IndexIVFFlat owns its lists
        lists = faiss.downcast_InvertedLists(index.invlists)
        for list_no, size in enumerate(np.asarray(list_sizes, dtype=np.int64).tolist()):
            if size:  # std::vector keeps its capacity when resized back to 0
                lists.resize(list_no, size)
                lists.resize(list_no, 0)
    for lo in range(0, len(rows), LOCAL_BLOCK_ROWS):
        block = np.ascontiguousarray(rows[lo:lo + LOCAL_BLOCK_ROWS], dtype=np.float32)
        index.add_with_ids(block, np.arange(first_row + lo, first_row + lo + len(block),
                                            dtype=np.int64))
    return index


def search_ivf_index(index: Any, queries: np.ndarray, probes: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``index`` in each query's probed lists: float32
    *squared* distances (inf where fewer than ``k`` were found) and int64 row numbers
    (-1 there), ordered by (distance, row number). The queries are split among the
    OpenMP threads allowed (``threadpoolctl.threadpool_limits``)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    probes = np.asarray(probes, dtype=np.int64)
    index.nprobe = probes.shape[1]
    # Mode 3: split the queries among faiss's OpenMP threads (the caller's limit, e.g.
    # the scan's ``threads``); mode 0, the default, runs this call on one thread. Each
    # query is searched alone either way: the same result with any number of threads.
    index.parallel_mode = 3
    sq, idx = index.search_preassigned(q, k, probes, np.zeros(probes.shape, np.float32))
    missing = idx < 0
    sq[missing] = np.inf
    return sq, idx


def merge_neighbours(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of two neighbour lists of the same queries, by (distance, row
    number); missing entries (row -1, distance inf) last.

    Examples
    --------
    >>> a = (np.array([[0.0, 2.0]]), np.array([[4, 9]]))
    >>> b = (np.array([[1.0, 2.0]]), np.array([[7, 3]]))
    >>> merge_neighbours(a, b, 3)[1].tolist()
    [[4, 7, 3]]
    """
    dist = np.concatenate([a[0], b[0]], axis=1)
    idx = np.concatenate([a[1], b[1]], axis=1)
    order = np.lexsort((np.where(idx < 0, np.iinfo(np.int64).max, idx), dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


def ivf_neighbours(x: np.ndarray, k: int, *, seed: int = 0,
                   shard_rows: int = LOCAL_SHARD_ROWS,
                   block_rows: int = LOCAL_BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of every row of ``x`` (itself included, normally first)
    by the shared IVF construction, in this process: shard after shard (one shard's
    index at a time), each merged into every row's running list.

    Returns float32 distances (inf where a row found fewer than ``k``) and int32 row
    numbers (-1 there). ``shard_rows`` and ``block_rows`` change memory, not the result.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [3.0], [3.5]])
    >>> ivf_neighbours(x, 2)[1].tolist()
    [[0, 1], [1, 0], [2, 3], [3, 2]]
    """
    n = len(x)
    k = min(k, n)
    layout = ivf_layout(x, seed=seed)
    code = np.int16 if layout.nlist <= np.iinfo(np.int16).max else np.int32
    probes = np.empty((n, layout.nprobe), dtype=code)
    for lo in range(0, n, block_rows):
        probes[lo:lo + block_rows] = ivf_probes(layout, x, lo, min(lo + block_rows, n))
    # Queries go to faiss in the order of their nearest list, so a block's queries scan
    # the same few lists while they are in the cache (faiss searches each query alone:
    # the same result in any order; 20-25% less CPU at 300k-1M rows x 50 columns).
    order = np.argsort(probes[:, 0], kind="stable").astype(np.int32)
    sq = np.full((n, k), np.inf, dtype=np.float32)
    idx = np.full((n, k), -1, dtype=np.int32)
    for first in range(0, n, shard_rows):
        index = ivf_index(layout, x[first:first + shard_rows], first,
                          list_sizes=np.bincount(probes[first:first + shard_rows, 0],
                                                 minlength=layout.nlist))
        for lo in range(0, n, block_rows):
            rows = order[lo:lo + block_rows]
            found = search_ivf_index(index, x[rows], probes[rows], k)
            sq[rows], idx[rows] = merge_neighbours((sq[rows], idx[rows]), found, k)
        del index
        release_freed_memory()
    np.sqrt(sq, out=sq)
    return sq, idx
