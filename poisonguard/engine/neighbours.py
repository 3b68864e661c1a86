"""The k-NN detectors' neighbour search on an engine: per-shard searches, merged.

The rows are cut into reference *shards* of ``shard_rows`` consecutive rows (at most
16 shards by default). The
engine runs one task per block of query rows: shard after shard, the task finds each
query's k nearest rows of that shard and keeps the k best of its running list and the
shard's, ordered by (distance, row index). The k best over all shards are the k best
overall, so with the exact (flat) per-shard search the merged lists are the
in-process exact neighbours: the same scikit-learn brute-force search computes the
same distance for every pair; only rows at exactly equal distances may come in
another order (here: lower row index first).

``mode="ivf"`` is the approximate opt-in, built as in-process
(:mod:`poisonguard.detect.ivf`): one coarse quantizer trained once in the driver on a
seeded sample, shipped to every shard; each shard gets inverted lists over those
centroids (built once, in parallel); each query block computes its probes once and
searches every shard with them. Each shard's search returns the exact float64 k best
of its candidates, so the merged lists are the in-process IVF neighbours (flags equal,
distances bit for bit, on any machine). ``"auto"`` is exact up to
:data:`~poisonguard.detect.neighbours.EXACT_MAX_ROWS` rows and IVF beyond, as the
in-process search is. Memory per task: one query block's running lists, one shard's
distances (scikit-learn works in chunks) or one shard's index; the rows themselves are
one shared read-only copy per node (:func:`~poisonguard.engine.reduce.share`).

Inside :func:`engine_neighbours`, every ``nearest_neighbours(..., backend="auto")``
call of the detectors (label, knn, duplicate; outlier below its sample size) runs
this way; the rest of the scan runs in the driver (docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from poisonguard.detect.ivf import (
    LOCAL_SHARD_ROWS,
    IvfLayout,
    IvfLists,
    ivf_layout,
    ivf_lists,
    ivf_neighbours,
    ivf_probes,
    merge_neighbours,
    search_ivf_lists,
)
from poisonguard.engine.base import Engine, Handle, InProcessEngine
from poisonguard.engine.reduce import share
from poisonguard.errors import UsageError
from poisonguard.progress import NullProgress, Progress

__all__ = ["KNN_MODES", "KnnMode", "RowRange", "engine_neighbours", "sharded_neighbours"]

KnnMode = Literal["auto", "exact", "ivf"]
#: ``--knn`` choices: auto (exact up to 50,000 rows, IVF beyond), exact, ivf.
KNN_MODES: tuple[str, ...] = ("auto", "exact", "ivf")
#: Rows per reference shard and per query block (defaults). Every query visits every
#: shard (faiss pays per query, per probed list, per shard), so the shards are the
#: in-process search's (2**20 rows, detect/ivf.py); beyond MAX_SHARDS of them they grow.
#: Each task reads every shard's lists once: large query blocks, few reads.
SHARD_ROWS = LOCAL_SHARD_ROWS
MAX_SHARDS = 16
BLOCK_ROWS = 100_000


@dataclass(frozen=True)
class RowRange:
    """Rows ``start .. stop - 1``: a reference shard or a block of query rows."""

    start: int
    stop: int


@dataclass(frozen=True)
class _Search:
    """What every task of one search shares (shipped once with the task function)."""

    rows: Handle[np.ndarray]
    k: int
    shards: tuple[RowRange, ...]
    layout: IvfLayout | None  # the shared coarse quantizer (ivf)
    indexes: tuple[Handle[IvfLists], ...] | None  # each shard's inverted lists (ivf)


def _build_index(shard: RowRange, *, rows: Handle[np.ndarray], layout: IvfLayout) -> IvfLists:
    """One shard's inverted lists over the shared centroids (on a worker)."""
    return ivf_lists(layout, rows.get(), shard.start, shard.stop)


def _shard_search(search: _Search, s: int, queries: np.ndarray,
                  probes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Shard ``s``'s k nearest rows to data rows ``queries``."""
    begin, end = search.shards[s].start, search.shards[s].stop
    k = min(search.k, end - begin)
    rows = search.rows.get()
    if search.indexes is None:
        from sklearn.neighbors import NearestNeighbors

        ref = rows[begin:end]
        dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(ref).kneighbors(
            rows[queries])
        return np.asarray(dist, dtype=np.float64), np.asarray(idx, dtype=np.int64) + begin
    assert probes is not None
    return search_ivf_lists(search.indexes[s].get(), rows, queries, probes, k)  # squared


def _search_block(block: RowRange, *, search: _Search) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows (self included) of query rows ``block`` (runs on a worker)."""
    queries = np.arange(block.start, block.stop)
    probes, order = None, None
    if search.layout is not None:
        probes = ivf_probes(search.layout, search.rows.get(), block.start, block.stop)
        # queries in the order of their nearest list, as in-process (detect/ivf.py): the
        # block's queries scan the same lists together; each query's result is its own
        # and the merges are per query, so the order changes no result
        order = np.argsort(probes[:, 0], kind="stable")
        queries, probes = queries[order], probes[order]
    best = (np.zeros((len(queries), 0)), np.zeros((len(queries), 0), dtype=np.int64))
    for s in range(len(search.shards)):
        best = merge_neighbours(best, _shard_search(search, s, queries, probes), search.k)
    if order is not None:
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        best = (best[0][back], best[1][back])
    if search.layout is not None:
        best = (np.sqrt(best[0]).astype(np.float32), best[1])
    return best


def _ranges(n: int, size: int) -> tuple[RowRange, ...]:
    return tuple(RowRange(start, min(start + size, n)) for start in range(0, n, size))


def sharded_neighbours(x: np.ndarray, k: int, *, engine: Engine, mode: KnnMode = "auto",
                       seed: int = 0, shard_rows: int | None = None,
                       block_rows: int = BLOCK_ROWS,
                       progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of every row of ``x`` (itself included), on ``engine``.

    Returns N x k float32 distances and int32 row indices (int64 beyond 2**31 - 1
    rows), nearest first (ties: lower row index first). See the module docstring for
    how the search is cut; ``shard_rows`` defaults to 2**20 rows, or N / 16 when that
    is more. The driver holds only the result (filled block by block as they arrive),
    never the shards' indexes (they stay with the engine: :meth:`Engine.map_shared`).

    Examples
    --------
    >>> from poisonguard.engine import InProcessEngine
    >>> x = np.array([[0.0], [1.0], [3.0], [3.5]])
    >>> sharded_neighbours(x, 2, engine=InProcessEngine(), shard_rows=2)[1].tolist()
    [[0, 1], [1, 0], [2, 3], [3, 2]]
    """
    from poisonguard.detect.neighbours import EXACT_MAX_ROWS, faiss_available

    if mode not in KNN_MODES:
        raise UsageError(f"unknown neighbour search '{mode}' (known: {', '.join(KNN_MODES)})")
    x = np.asarray(x)
    n = len(x)
    if shard_rows is None:
        shard_rows = max(SHARD_ROWS, -(-n // MAX_SHARDS))
    if k < 1 or shard_rows < 1 or block_rows < 1:
        raise UsageError("k, shard_rows and block_rows must be at least 1")
    ivf = mode == "ivf" or (mode == "auto" and n > EXACT_MAX_ROWS and faiss_available())
    if ivf and not faiss_available():
        raise UsageError("the 'ivf' neighbour search needs the faiss-cpu package")
    progress = progress or NullProgress()
    rows = share(x, engine)
    shards = _ranges(n, shard_rows)
    indexes, layout = None, None
    if ivf:
        layout = ivf_layout(x, seed=seed)  # trained once, here: every shard shares it
        indexes = tuple(engine.map_shared(
            functools.partial(_build_index, rows=rows, layout=layout), shards,
            stage="indexing shards (faiss IVF)", progress=progress))
    k = min(k, n)
    search = _Search(rows, k, shards, layout, indexes)
    blocks = _ranges(n, block_rows)
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int32 if n <= np.iinfo(np.int32).max else np.int64)
    for block, (block_dist, block_idx) in zip(blocks, engine.map(
            functools.partial(_search_block, search=search), blocks,
            stage="searching neighbours", progress=progress), strict=True):
        dist[block.start:block.stop] = block_dist
        found = idx[block.start:block.stop]
        found[:] = block_idx
        missing = found < 0  # fewer than k hits over all shards: the row itself, far away
        if missing.any():
            found[missing] = np.nonzero(missing)[0] + block.start
    return dist, idx


@contextlib.contextmanager
def engine_neighbours(engine: Engine | None, *, mode: KnnMode = "auto",
                      progress: Progress | None = None,
                      **options: Any) -> Iterator[None]:
    """Inside this block, the detectors' neighbour searches run on ``engine``
    (:func:`sharded_neighbours`) with ``mode``.

    Without an engine (in-process), ``mode="auto"`` changes nothing (the classic
    search); ``"exact"`` forces the exact search at every size and ``"ivf"`` the shared
    IVF construction at every size: the neighbours a cluster finds with that mode.

    Examples
    --------
    >>> from poisonguard.engine import InProcessEngine
    >>> from poisonguard.detect.neighbours import nearest_neighbours
    >>> with engine_neighbours(InProcessEngine(), mode="exact"):
    ...     nearest_neighbours(np.array([[0.0], [1.0], [3.0]]), 1, cache=False)[1].tolist()
    [[1], [0], [1]]
    """
    if mode not in KNN_MODES:
        raise UsageError(f"unknown neighbour search '{mode}' (known: {', '.join(KNN_MODES)})")
    if engine is None and mode == "auto":
        yield
        return
    from poisonguard.detect.neighbours import searching_with

    def search(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if engine is None and mode == "ivf":  # one shard's index at a time, in place
            dist, idx = ivf_neighbours(x, k, seed=seed)
            missing = idx < 0
            if missing.any():
                idx[missing] = np.nonzero(missing)[0]
            return dist, idx
        return sharded_neighbours(x, k, engine=engine or InProcessEngine(), mode=mode,
                                  seed=seed, progress=progress, **options)

    with searching_with(f"{engine.name if engine else 'local'}-{mode}", search):
        yield
