"""The approximate (inverted-file) neighbour search, built the same way on every engine.

One coarse quantizer is trained once, in the process that starts the search, on a
seeded sample of the rows (faiss k-means, ``seed``): an :class:`IvfLayout`. Every row
belongs to the inverted list of its nearest centroid (its first probe); a query scans
the lists of its ``nprobe`` nearest centroids. The rows may be cut into shards, each
with its own inverted lists over the *same* centroids (:func:`ivf_lists`): a query's
candidates in a shard are that shard's members of the query's lists, so over all shards
they are exactly the candidates of one index over all rows. In-process
(:func:`ivf_neighbours`) and on a cluster (:mod:`poisonguard.engine.neighbours`) the
layout, the probes and the merge are these functions, so the engines return the same
neighbours.

The probes (each query's nearest centroids) are refined here in float64
(:func:`ivf_probes`), so a row's probes never depend on how the queries were cut into
blocks.

The search is list-major (:func:`search_ivf_lists`): a block's queries are grouped by
the lists they probe, and one matrix product per list (float32 BLAS) scores all of that
list's rows against all of its queries; a bounded heap per query keeps the best few
(faiss's heaps). Those candidates' distances are then recomputed in float64 from the
two vectors alone, and the k best kept by (distance, row number). A query whose kept
candidates cannot be proven to contain its k best (a rounding bound of the float32
products, :data:`MARGIN` extra candidates) is searched again exactly over all its
candidates. So the neighbours are the exact k best of the probed lists by float64
distance: the same on every machine, BLAS kernel and thread count, and whatever the cut
into shards and blocks.

Parameters from N (:func:`ivf_parameters`): ``2 sqrt(N)`` lists of at least
:data:`MIN_LIST_ROWS` rows, 8 probes: each query scans about ``4 sqrt(N)`` rows (4,000 of
1M). Recall@20 against the exact search and the cost of more probes are measured in
benchmarks/RESULTS.md ("session 6"); more probes buy recall at a proportional cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from poisonguard.errors import UsageError

__all__ = [
    "IvfLayout",
    "IvfLists",
    "ivf_layout",
    "ivf_lists",
    "ivf_neighbours",
    "ivf_parameters",
    "ivf_probes",
    "merge_neighbours",
    "search_ivf_lists",
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
#: lists are one shard (a float32 copy of the rows); larger blocks make larger matrix
#: products per list (fewer, longer list scans).
LOCAL_SHARD_ROWS = 1_048_576
LOCAL_BLOCK_ROWS = 65_536
#: Candidates kept per query beyond k, and the rounding bound's safety factor (the
#: float32 scores' error is at most ``(D + 1) 2**-24 (|q| + |x|)**2``; this takes
#: ``EPS_UNITS (D + 8) 2**-24 (|q| + radius)**2``).
MARGIN = 3
EPS_UNITS = 2
#: Queries per block of the float64 recomputation (a block x (k + MARGIN) x D array).
EXACT_ROWS = 256


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


@dataclass(frozen=True)
class IvfLists:
    """One shard's inverted lists over a layout's centroids, list after list.

    ``rows`` (m x (D + 1) float32) holds each row as ``[-2 x, |x|^2]``, so that one
    matrix product with ``[q, 1]`` gives ``|x|^2 - 2 q.x``, the squared distance less
    the query's own ``|q|^2``; ``-2 x`` is exact in float32, so the rows' values are
    still there. ``ids`` are the data row numbers (int64, ascending within a list),
    ``offsets`` (nlist + 1) where each list starts, ``radius`` each list's largest
    ``|x|`` (float64; 0 for an empty list).

    Examples
    --------
    >>> x = np.array([[3.0], [0.0], [4.0]])
    >>> lists = ivf_lists(IvfLayout(np.array([[0.0], [3.5]], np.float32), 1), x, 0, 3)
    >>> lists.ids.tolist(), lists.offsets.tolist(), lists.rows.tolist()
    ([1, 0, 2], [0, 1, 3], [[-0.0, 0.0], [-6.0, 9.0], [-8.0, 16.0]])
    >>> lists.radius.tolist()
    [0.0, 4.0]
    """

    rows: np.ndarray
    ids: np.ndarray
    offsets: np.ndarray
    radius: np.ndarray

    @property
    def nlist(self) -> int:
        """Number of inverted lists."""
        return len(self.offsets) - 1


def ivf_lists(layout: IvfLayout, x: np.ndarray, start: int, stop: int, *,
              assignment: np.ndarray | None = None) -> IvfLists:
    """The inverted lists of rows ``start..stop-1`` of ``x`` (a shard) over the layout's
    centroids: each row in the list of its first probe (:func:`ivf_probes`; pass
    ``assignment``, those rows' first probes, when they are known already).

    Built :data:`LOCAL_BLOCK_ROWS` rows at a time: the lists (about the size of the
    rows in float32) are the only full-size array made.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(400, 3))
    >>> lists = ivf_lists(ivf_layout(x, seed=0), x, 0, 400)
    >>> lists.nlist, int(lists.offsets[-1]), sorted(lists.ids.tolist()) == list(range(400))
    (10, 400, True)
    """
    if assignment is None:
        assignment = ivf_probes(layout, x, start, stop)[:, 0]
    order = np.argsort(np.asarray(assignment), kind="stable")
    m, d = stop - start, x.shape[1]
    sizes = np.bincount(assignment, minlength=layout.nlist)
    offsets = np.zeros(layout.nlist + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    rows = np.empty((m, d + 1), dtype=np.float32)
    norms = np.empty(m, dtype=np.float64)
    for lo in range(0, m, LOCAL_BLOCK_ROWS):
        part = np.asarray(x[start + order[lo:lo + LOCAL_BLOCK_ROWS]], dtype=np.float32)
        hi = lo + len(part)
        norms[lo:hi] = np.square(part, dtype=np.float64).sum(axis=1)
        np.multiply(part, -2.0, out=rows[lo:hi, :d])
        rows[lo:hi, d] = norms[lo:hi]
    radius = np.zeros(layout.nlist)
    used = sizes > 0
    if m:
        radius[used] = np.sqrt(np.maximum.reduceat(norms, offsets[:-1][used]))
    return IvfLists(rows, order.astype(np.int64) + start, offsets, radius)


def _by_list(lists: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(list, positions)`` for each distinct value of ``lists``, positions ascending."""
    if not len(lists):
        return
    order = np.argsort(lists, kind="stable")
    sorted_lists = lists[order]
    cuts = np.flatnonzero(sorted_lists[1:] != sorted_lists[:-1]) + 1
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(order)], strict=True):
        yield int(sorted_lists[lo]), order[lo:hi]


def _list_scores(lists: IvfLists, q: np.ndarray, probed: np.ndarray,
                 owner: np.ndarray) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(lo, hi, members, scores)`` for each non-empty list in ``probed`` (one list per
    (query, probe) pair, ``owner`` its query): the list's rows ``lo:hi``, the queries
    that probe it, and their float32 scores ``|x|^2 - 2 q.x`` (members x rows)."""
    for list_no, group in _by_list(probed):
        lo, hi = int(lists.offsets[list_no]), int(lists.offsets[list_no + 1])
        if hi == lo:
            continue
        members = owner[group]
        yield lo, hi, members, q[members] @ lists.rows[lo:hi].T


def _exact_sq(lists: IvfLists, at: np.ndarray, twice_q: np.ndarray) -> np.ndarray:
    """Squared distances in float64 between queries (``2 q``, float64) and list rows
    ``at`` (positions in ``lists``, one query per leading index): each is
    ``sum((2 q - 2 x) ** 2) / 4`` summed over the last axis alone, the same value as
    ``sum((q - x) ** 2)`` (scaling by powers of 2 is exact) in any block."""
    d = twice_q.shape[-1]
    diff = np.add(np.take(lists.rows, at, axis=0)[..., :d], twice_q, dtype=np.float64)
    np.square(diff, out=diff)
    sq = diff.sum(axis=-1)
    sq *= 0.25
    return sq


def search_ivf_lists(lists: IvfLists, x: np.ndarray, queries: np.ndarray,
                     probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``lists`` to rows ``queries`` of ``x`` in each query's
    probed lists (``probes``, one row per query): float64 *squared* distances (inf
    where fewer than ``k`` were found) and int64 row numbers (-1 there), ordered by
    (distance, row number). Distances are exact in float64 (of the float32 values).

    The queries are grouped by list; each list's rows are scored against its queries by
    one float32 matrix product, and faiss keeps the ``k +`` :data:`MARGIN` best scores
    of each query in a heap. Those are recomputed in float64. The float32 score of a
    row is within ``EPS(q, list)`` of its true value (a bound on the rounding of a
    ``D + 1`` term product, whatever the kernel): when the best score left out (the
    heap's top) is more than that bound beyond the k-th exact distance, no row left out
    can belong to the k best; otherwise the query is searched again exactly over all
    its candidates. Memory: the block's heaps and one list's scores at a time.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [3.0], [3.5]])
    >>> layout = IvfLayout(np.array([[0.5], [3.2]], dtype=np.float32), 1)
    >>> lists = ivf_lists(layout, x, 0, 4)
    >>> sq, idx = search_ivf_lists(lists, x, np.arange(4), ivf_probes(layout, x, 0, 4), 2)
    >>> idx.tolist(), sq[2].tolist()
    ([[0, 1], [1, 0], [2, 3], [3, 2]], [0.0, 0.25])
    """
    import faiss

    queries = np.asarray(queries, dtype=np.int64)
    probes = np.asarray(probes, dtype=np.int64)
    b, nprobe = probes.shape
    d = x.shape[1]
    keep = k + MARGIN
    q = np.empty((b, d + 1), dtype=np.float32)  # [q, 1]
    q[:, :d] = x[queries]
    q[:, d] = 1.0
    score = np.full((b, keep), np.inf, dtype=np.float32)  # a max-heap per query
    at = np.full((b, keep), -1, dtype=np.int64)  # the kept rows' positions in the lists
    heaps = faiss.float_maxheap_array_t()
    heaps.nh, heaps.k = b, keep
    heaps.val, heaps.ids = faiss.swig_ptr(score), faiss.swig_ptr(at)
    offsets, owner = lists.offsets, np.repeat(np.arange(b, dtype=np.int64), nprobe)
    flat = probes.ravel()
    # One thread: thousands of small products and heap updates per block, each a
    # parallel region otherwise (on 2 busy cores, 2 threads took 7x the CPU of one).
    with threadpool_limits(limits=1):
        # First each query's nearest list (its heap fills with good rows), then the rest.
        for pairs in (np.arange(0, len(flat), nprobe),
                      np.flatnonzero(np.arange(len(flat)) % nprobe)):
            for lo, hi, members, scores in _list_scores(lists, q, flat[pairs], owner[pairs]):
                positions = np.arange(lo, hi, dtype=np.int64)
                heaps.addn_query_subset_with_ids(len(members), faiss.swig_ptr(members),
                                                 hi - lo, faiss.swig_ptr(scores),
                                                 faiss.swig_ptr(positions), 0)
    q_sq = np.square(q[:, :d], dtype=np.float64).sum(axis=1)
    eps = EPS_UNITS * (d + 8) * 2.0 ** -24 * (
        np.sqrt(q_sq) + lists.radius[probes].max(axis=1)) ** 2
    # every row left out scored at least the heap's top: its distance is at least this
    left_out = score[:, 0].astype(np.float64) + q_sq - eps
    twice_q = 2.0 * q[:, :d].astype(np.float64)
    found = (offsets[probes + 1] - offsets[probes]).sum(axis=1)
    sq = np.full((b, k), np.inf)
    idx = np.full((b, k), -1, dtype=np.int64)
    last = np.iinfo(np.int64).max
    again = []
    for lo in range(0, b, EXACT_ROWS):
        hi = min(lo + EXACT_ROWS, b)
        kept = at[lo:hi]
        valid = kept >= 0
        exact = _exact_sq(lists, np.maximum(kept, 0), twice_q[lo:hi, None, :])
        exact[~valid] = np.inf
        ids = np.where(valid, lists.ids[np.maximum(kept, 0)], last)
        best = np.lexsort((ids, exact), axis=1)[:, :k]
        sq[lo:hi] = np.take_along_axis(exact, best, axis=1)
        idx[lo:hi] = np.where(np.isfinite(sq[lo:hi]), np.take_along_axis(ids, best, axis=1), -1)
        everything = valid.sum(axis=1) == found[lo:hi]  # no candidate left out
        beyond = left_out[lo:hi]
        proven = everything | (np.isfinite(beyond) & (beyond > sq[lo:hi, -1]))
        again.extend((np.flatnonzero(~proven) + lo).tolist())
    if again:  # all of their candidates that can be among their k best, exactly
        j = np.asarray(again, dtype=np.int64)
        sq[j], idx[j] = _search_exactly(lists, q[j], probes[j], q_sq[j] - eps[j], sq[j, -1],
                                        twice_q[j], k)
    return sq, idx


def _search_exactly(lists: IvfLists, q: np.ndarray, probes: np.ndarray, shift: np.ndarray,
                    reach: np.ndarray, twice_q: np.ndarray,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` best of queries whose kept candidates proved nothing (many ties:
    exact copies), by (float64 distance, row number), over every row of their probed
    lists; list-major like the search, the queries together, never one by one.

    ``q`` ([q, 1] float32), ``probes`` and ``twice_q`` are the queries'; ``reach`` the
    k-th exact distance of their kept candidates (inf when fewer than ``k``); ``shift``
    ``|q|^2 - EPS``. A row's float32 score plus ``shift`` is at most its exact distance
    (the search's rounding bound), so a row scoring above ``reach - shift`` is farther
    than ``k`` rows already found: it cannot be among the k best and is not recomputed.
    Every other candidate (ties at ``reach`` included) is recomputed in float64; each
    list's k best per query (row numbers ascend within a list: a stable sort breaks
    ties by them) are merged into the queries' running lists.
    """
    b, nprobe = probes.shape
    owner = np.repeat(np.arange(b, dtype=np.int64), nprobe)
    chunk = EXACT_ROWS * (k + MARGIN)  # pairs recomputed at a time (as the search's blocks)
    sq = np.full((b, k), np.inf)
    idx = np.full((b, k), -1, dtype=np.int64)
    with threadpool_limits(limits=1):
        for lo, _hi, members, scores in _list_scores(lists, q, probes.ravel(), owner):
            m, at = np.nonzero(scores + shift[members, None] <= reach[members, None])
            exact = np.full(scores.shape, np.inf)
            for c in range(0, len(m), chunk):
                mc, ac = m[c:c + chunk], at[c:c + chunk]
                exact[mc, ac] = _exact_sq(lists, ac + lo, twice_q[members[mc]])
            best = np.argsort(exact, axis=1, kind="stable")[:, :k]
            found = np.take_along_axis(exact, best, axis=1)
            rows = np.where(np.isfinite(found), lists.ids[lo + best], -1)
            sq[members], idx[members] = merge_neighbours((sq[members], idx[members]),
                                                         (found, rows), k)
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
    lists at a time), each merged into every row's running list.

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
    # Blocks of queries with the same nearest lists: a block scans fewer lists, with
    # more queries each (each query's result is its own: the same in any order).
    order = np.argsort(probes[:, 0], kind="stable").astype(np.int32)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    idx = np.full((n, k), -1, dtype=np.int32)
    # Across shards the running lists keep float64 squared distances (merged exactly).
    running = np.full((n, k), np.inf) if n > shard_rows else None
    for first in range(0, n, shard_rows):
        last = min(first + shard_rows, n)
        lists = ivf_lists(layout, x, first, last, assignment=probes[first:last, 0])
        for lo in range(0, n, block_rows):
            rows = order[lo:lo + block_rows]
            found = search_ivf_lists(lists, x, rows, probes[rows], k)
            if running is not None:
                found = merge_neighbours((running[rows], idx[rows]), found, k)
                running[rows] = found[0]
            dist[rows], idx[rows] = np.sqrt(found[0]), found[1]
        del lists
    return dist, idx
