"""The licence of a sure contradiction, shared by the ``knn`` and ``duplicate`` detectors.

A label that a sure out-of-fold model contradicts is a claim of poisoning only where
natural class overlap cannot explain the pair's sure disagreement
(:func:`poisonguard.detect.overlap.pair_excess`). ``knn`` and ``duplicate`` read the
same licence, built from one neighbour search: :func:`neighbour_licence`, computed once
per scan (:mod:`poisonguard.memo`).
"""

from __future__ import annotations

import numpy as np

from poisonguard.detect.neighbours import neighbour_votes
from poisonguard.detect.overlap import (
    BACKED_SHARE,
    DEFAULT_CERTAIN,
    DEFAULT_PAIR_ALPHA,
    SUPPORT_K,
    PairExcess,
    neighbour_support,
    pair_excess,
)
from poisonguard.memo import content_key, remember

__all__ = ["DEFAULT_K", "neighbour_licence"]

#: Neighbours per row of ``knn``'s vote and of the licence (``duplicate`` reads knn's).
DEFAULT_K = 10


def neighbour_licence(labels: np.ndarray, proba: np.ndarray, x: np.ndarray, dist: np.ndarray,
                      idx: np.ndarray, *, k: int = DEFAULT_K, certain: float = DEFAULT_CERTAIN,
                      alpha: float = DEFAULT_PAIR_ALPHA) -> PairExcess:
    """The licence of a sure contradiction, as ``knn`` and ``duplicate`` read it.

    :func:`~poisonguard.detect.overlap.pair_excess` on the out-of-fold ``proba``: the
    second population are the rows whose first ``k`` neighbours (``idx``, nearest
    first, searched in ``x``; ``dist`` their distances, at least :data:`SUPPORT_K`
    columns for the support) back the model's class, and the lone-label test reads
    the votes of the first :data:`SUPPORT_K`. A label a sure model contradicts is a
    claim of poisoning only where this licence says natural overlap cannot explain
    the pair's sure disagreement (:meth:`PairExcess.unexplained`).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.detect.neighbours import nearest_neighbours
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2)) + np.repeat([[0, 0], [6, 6]], 100, axis=0)
    >>> labels = np.repeat([0, 1], 100)
    >>> proba = np.where(labels[:, None] == np.arange(2), 0.95, 0.05)
    >>> dist, idx = nearest_neighbours(x, SUPPORT_K)
    >>> bool(neighbour_licence(labels, proba, x, dist, idx).licensed.any())
    False
    """
    def licence() -> tuple[tuple[np.ndarray, np.ndarray], PairExcess]:
        rows = np.arange(len(labels))
        n_classes = proba.shape[1]
        backing = neighbour_votes(labels, idx[:, :k], n_classes)[rows, proba.argmax(axis=1)]
        return (x, idx), pair_excess(
            labels, proba, certain=certain, alpha=alpha, backed=backing >= BACKED_SHARE,
            support=neighbour_support(x, dist),
            votes=neighbour_votes(labels, idx[:, :SUPPORT_K], n_classes))

    # knn and duplicate read the same licence: in a scan it is computed once. Labels and
    # probabilities are keyed by content (each detector may hold its own copy), the
    # features by identity (held, and compared with ``is``, as neighbour_support does),
    # the neighbour lists by value (the scan's search hands each caller its own view).
    key = (content_key((labels, proba), (k, certain, alpha)), id(x), idx.shape)
    held, excess = remember("neighbour_licence", key, licence, keep=1)
    if held[0] is not x or not np.array_equal(held[1], idx):
        return licence()[1]
    return excess
