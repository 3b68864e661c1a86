"""Global statistics as reductions: per-shard partials on an engine, merged in order.

A detector that needs a statistic over every row (class means and covariances,
confident-learning thresholds and the confident joint) calls these functions instead
of computing it in one pass. The rows are cut into shards of ``shard_rows``
consecutive rows; the engine computes each shard's partial (counts, means, centred
scatter matrices, count matrices) and the driver merges them in shard order. The
shards and the merge order do not depend on the engine, so every engine returns the
same bits; against a one-pass computation (``numpy.cov``, cleanlab) the results agree
to rounding (about 1e-15 relative for the moments, exactly for the counts).

The engine is the one in scope (:func:`using_engine`, entered by ``scan --engine``), or
the in-process engine. Inside that scope an array is shared with the engine's tasks
once (:func:`share`): the scan's row-wise work, reductions and neighbour search read
the same features many times, and a cluster keeps one copy of them in its object store.

Examples
--------
>>> x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 4.0], [1.0, 0.0]])
>>> moments = class_moments(x, np.array([0, 0, 1, 1]), 2, shard_rows=3)
>>> moments.counts.tolist(), moments.means.tolist()
([2, 2], [[1.0, 2.0], [2.5, 2.0]])
>>> moments.covariance(0).tolist()
[[2.0, 2.0], [2.0, 2.0]]
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from poisonguard.engine.base import Engine, Handle, InProcessEngine
from poisonguard.errors import UsageError

__all__ = ["ClassMoments", "class_moments", "confident_joint", "confident_thresholds",
           "current_engine", "share", "using_engine"]

#: Rows per shard of a reduction (the default).
SHARD_ROWS = 65_536
#: cleanlab's floor of a confident threshold and its threshold for a class without rows.
_THRESHOLD_FLOOR, _NO_ROWS_THRESHOLD = 2e-6, 2.0

_ENGINE: contextvars.ContextVar[Engine | None] = contextvars.ContextVar(
    "poisonguard_reduction_engine", default=None)
_Shared = OrderedDict[int, tuple["weakref.ref[np.ndarray]", int, Handle[np.ndarray]]]
#: Arrays shared in the current :func:`using_engine` block: id -> (array, CRC-32, handle).
_SHARED: contextvars.ContextVar[_Shared | None] = contextvars.ContextVar(
    "poisonguard_shared", default=None)
#: Arrays kept shared at a time (the scan's features, a class's rows, a result or two).
SHARED_KEEP = 4


def current_engine() -> Engine:
    """The engine reductions run on: the one of :func:`using_engine`, else in-process."""
    return _ENGINE.get() or InProcessEngine()


@contextlib.contextmanager
def using_engine(engine: Engine | None) -> Iterator[None]:
    """Inside this block, reductions run on ``engine`` (None: in-process).

    Examples
    --------
    >>> with using_engine(InProcessEngine()):
    ...     current_engine().name
    'local'
    """
    token = _ENGINE.set(engine)
    memo: _Shared = OrderedDict()
    shared = _SHARED.set(memo)
    try:
        yield
    finally:
        memo.clear()  # the shared copies go now, not at the next garbage collection
        _SHARED.reset(shared)
        _ENGINE.reset(token)


def _forget(memo: _Shared, key: int, gone: object) -> None:
    """An array shared in ``memo`` was freed: free its shared copy too."""
    entry = memo.get(key)
    if entry is not None and entry[0] is gone:
        del memo[key]


def _checksum(x: np.ndarray) -> int:
    return zlib.crc32(x.reshape(-1).view(np.uint8).data) if x.size else 0


def share(x: np.ndarray, engine: Engine | None = None) -> Handle[np.ndarray]:
    """``engine.put(x)``, once per array inside a :func:`using_engine` block of ``engine``.

    The last :data:`SHARED_KEEP` arrays shared in the block keep their handle (and so
    their one copy in a cluster's object store) while they live, until the block ends:
    sharing the same array object again returns that handle, unless its bytes changed
    since (CRC-32 checked, so a changed array is shared anew, never read stale). The
    block holds no array alive: when one is freed, so is its shared copy. Outside such
    a block, or for another engine, every call puts.

    Examples
    --------
    >>> x = np.arange(3.0)
    >>> with using_engine(InProcessEngine()):
    ...     share(x) is share(x)
    True
    >>> share(x) is share(x)  # outside: a new handle each time
    False
    """
    engine = engine or current_engine()
    memo = _SHARED.get()
    if (memo is None or engine is not _ENGINE.get() or not isinstance(x, np.ndarray)
            or not x.flags.c_contiguous or x.dtype.hasobject):
        return engine.put(x)
    key, checksum = id(x), _checksum(x)
    hit = memo.get(key)
    if hit is not None and hit[0]() is x and hit[1] == checksum:
        memo.move_to_end(key)
        return hit[2]
    handle = engine.put(x)
    memo[key] = (weakref.ref(x, functools.partial(_forget, memo, key)), checksum, handle)
    memo.move_to_end(key)
    while len(memo) > SHARED_KEEP:
        memo.popitem(last=False)
    return handle


@dataclass(frozen=True)
class ClassMoments:
    """Per-class row counts, means and centred scatter matrices (sum of outer products
    of the deviations from the class mean; None when not asked for).

    Examples
    --------
    >>> m = class_moments(np.array([[1.0], [3.0]]), np.array([0, 0]), 1)
    >>> m.counts.tolist(), m.means.tolist(), m.scatter.tolist()
    ([2], [[2.0]], [[[2.0]]])
    """

    counts: np.ndarray  # (C,) int64
    means: np.ndarray  # (C, D) float64; 0 for a class without rows
    scatter: np.ndarray | None  # (C, D, D) float64

    def covariance(self, c: int, *, ddof: int = 1) -> np.ndarray:
        """Class ``c``'s covariance matrix (``numpy.cov(rows, rowvar=False, ddof=ddof)``)."""
        if self.scatter is None:
            raise UsageError("class_moments(..., scatter=True) computes the scatter matrices")
        return np.asarray(self.scatter[c] / max(int(self.counts[c]) - ddof, 1))

    def merge(self, other: ClassMoments) -> ClassMoments:
        """The moments of both parts' rows (Chan et al.'s pairwise update, per class)."""
        n = self.counts + other.counts
        share = np.divide(other.counts, n, out=np.zeros(len(n)), where=n > 0)[:, None]
        delta = other.means - self.means
        means = self.means + delta * share
        scatter = None
        if self.scatter is not None and other.scatter is not None:
            weight = (self.counts * share[:, 0])[:, None, None]  # n_a n_b / n
            scatter = (self.scatter + other.scatter
                       + weight * delta[:, :, None] * delta[:, None, :])
        return ClassMoments(n, means, scatter)


@dataclass(frozen=True)
class _Rows:
    """What every shard task of one reduction reads (shared once per node)."""

    values: Handle[np.ndarray]
    labels: Handle[np.ndarray]
    n_classes: int
    scatter: bool


def _shard_moments(bounds: tuple[int, int], *, rows: _Rows) -> ClassMoments:
    """One shard's class moments (runs on a worker)."""
    x = np.asarray(rows.values.get()[bounds[0]:bounds[1]], dtype=np.float64)
    y = rows.labels.get()[bounds[0]:bounds[1]]
    c, d = rows.n_classes, x.shape[1]
    counts = np.bincount(y, minlength=c).astype(np.int64)
    means = np.zeros((c, d))
    scatter = np.zeros((c, d, d)) if rows.scatter else None
    for k in np.flatnonzero(counts):
        part = x[y == k]
        means[k] = part.mean(axis=0)
        if scatter is not None:
            centred = part - means[k]
            scatter[k] = centred.T @ centred
    return ClassMoments(counts, means, scatter)


def _shards(n: int, shard_rows: int) -> list[tuple[int, int]]:
    if shard_rows < 1:
        raise UsageError("shard_rows must be at least 1")
    return [(start, min(start + shard_rows, n)) for start in range(0, n, shard_rows)]


def _checked(values: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    x = np.asarray(values)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (len(x),):
        raise UsageError("values must be N x D and labels N long")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0
                                                               or y.max() >= n_classes)):
        raise UsageError(f"labels must be integer codes 0..{n_classes - 1}")
    return x, y.astype(np.int64, copy=False)


def class_moments(values: np.ndarray, labels: np.ndarray, n_classes: int, *,
                  scatter: bool = True, shard_rows: int = SHARD_ROWS,
                  engine: Engine | None = None) -> ClassMoments:
    """Per-class counts, means and (``scatter=True``) centred scatter matrices of the
    rows of ``values`` (N x D), as a reduction over shards (module docstring).

    ``moments.covariance(c)`` equals ``numpy.cov(values[labels == c], rowvar=False)``
    to rounding; the top eigenvector of ``moments.scatter[c]`` is the top right singular
    vector of the class's centred rows (spectral signatures).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(300, 3)), rng.integers(0, 2, 300)
    >>> m = class_moments(x, y, 2, shard_rows=70)
    >>> bool(np.allclose(m.covariance(1), np.cov(x[y == 1], rowvar=False), atol=1e-12))
    True
    """
    x, y = _checked(values, labels, n_classes)
    engine = engine or current_engine()
    rows = _Rows(share(x, engine), share(y, engine), n_classes, scatter)
    total = ClassMoments(np.zeros(n_classes, dtype=np.int64), np.zeros((n_classes, x.shape[1])),
                         np.zeros((n_classes, x.shape[1], x.shape[1])) if scatter else None)
    for part in engine.map(functools.partial(_shard_moments, rows=rows),
                           _shards(len(x), shard_rows), stage="class statistics"):
        total = total.merge(part)
    return total


def confident_thresholds(labels: np.ndarray, proba: np.ndarray, *,
                         shard_rows: int = SHARD_ROWS,
                         engine: Engine | None = None) -> np.ndarray:
    """Confident learning's per-class thresholds: the mean predicted probability of
    class k over the rows labelled k (cleanlab's ``get_confident_thresholds``: 2 for a
    class without rows, floored at 2e-6), from merged per-shard class means.

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]])
    >>> confident_thresholds(np.array([0, 0, 1]), proba).round(6).tolist()
    [0.8, 0.8]
    """
    proba = np.asarray(proba, dtype=np.float64)
    moments = class_moments(proba, labels, proba.shape[1], scatter=False,
                            shard_rows=shard_rows, engine=engine)
    own = np.diagonal(moments.means).copy()
    own[moments.counts == 0] = _NO_ROWS_THRESHOLD
    return np.asarray(np.clip(own, _THRESHOLD_FLOOR, None))


def _shard_joint(bounds: tuple[int, int], *, rows: _Rows,
                 thresholds: np.ndarray) -> np.ndarray:
    """One shard's confident counts [given label, confidently guessed class]."""
    proba = rows.values.get()[bounds[0]:bounds[1]]
    y = rows.labels.get()[bounds[0]:bounds[1]]
    confident = proba >= thresholds - 1e-6  # cleanlab's rule, to the tolerance
    bins = confident.sum(axis=1)
    guess = np.where(bins > 1, proba.argmax(axis=1), confident.argmax(axis=1))
    keep = bins > 0
    joint = np.zeros((rows.n_classes, rows.n_classes), dtype=np.int64)
    np.add.at(joint, (y[keep], guess[keep]), 1)
    return joint


def confident_joint(labels: np.ndarray, proba: np.ndarray, *, calibrate: bool = True,
                    thresholds: np.ndarray | None = None, shard_rows: int = SHARD_ROWS,
                    engine: Engine | None = None) -> np.ndarray:
    """Confident learning's confident joint (given label x true class counts) as a sum of
    per-shard count matrices: cleanlab's ``compute_confident_joint`` (the same rows
    counted, the diagonal at least 1, calibrated to the label counts when
    ``calibrate``), usable as ``find_label_issues(..., confident_joint=...)``.

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.9, 0.1]])  # row 3: a flip?
    >>> confident_joint(np.array([0, 0, 1, 1]), proba, calibrate=False).tolist()
    [[1, 0], [1, 1]]
    """
    from cleanlab.count import calibrate_confident_joint

    proba = np.asarray(proba, dtype=np.float64)
    c = proba.shape[1]
    x, y = _checked(proba, labels, c)
    engine = engine or current_engine()
    if thresholds is None:
        thresholds = confident_thresholds(y, x, shard_rows=shard_rows, engine=engine)
    rows = _Rows(share(x, engine), share(y, engine), c, False)
    joint = np.zeros((c, c), dtype=np.int64)
    for part in engine.map(functools.partial(_shard_joint, rows=rows,
                                             thresholds=np.asarray(thresholds)),
                           _shards(len(x), shard_rows), stage="confident joint"):
        joint += part
    np.fill_diagonal(joint, joint.diagonal().clip(min=1))
    if not calibrate:
        return joint
    return np.asarray(calibrate_confident_joint(joint, y))
