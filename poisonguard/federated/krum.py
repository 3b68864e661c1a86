"""Distance-based selection: Krum, Multi-Krum (Blanchard et al., 2017) and Bulyan
(El Mhamdi et al., 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.federated.base import Aggregator, distance_scores, outlier_scores, register
from poisonguard.federated.coordinate import by_column_blocks

__all__ = ["Bulyan", "Krum", "MultiKrum", "krum_scores", "pairwise_sq_distances"]


def pairwise_sq_distances(matrix: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between all rows (via the Gram matrix, in float64)."""
    gram = matrix @ matrix.T
    sq = np.diag(gram)
    return np.asarray(np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0))


def krum_scores(sq_dist: np.ndarray, f: int) -> np.ndarray:
    """Krum score of each row: the sum of squared distances to its n - f - 2 nearest others."""
    n = len(sq_dist)
    k = min(n - f - 2, n - 1)
    others = np.where(np.eye(n, dtype=bool), np.inf, sq_dist)
    nearest = np.partition(others, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((n, 0))
    return np.asarray(nearest.sum(axis=1))


def _check_f(f: int) -> None:
    if not (isinstance(f, int | np.integer) and f >= 0):
        raise UsageError(f"the number of Byzantine clients must be an integer >= 0, got {f!r}")


def _select_by_krum(sq_dist: np.ndarray, f: int, m: int) -> np.ndarray:
    """Indices of the ``m`` updates Multi-Krum keeps (lowest scores, computed once)."""
    scores = krum_scores(sq_dist, f)
    return np.sort(np.argsort(scores, kind="stable")[:m])


def _mask(n: int, keep: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[keep] = True
    return mask


@register
class Krum(Aggregator):
    """Keep the one update whose n - f - 2 nearest neighbours are closest (needs n > 2f + 2).

    Parameters
    ----------
    f : int
        How many Byzantine (arbitrary) clients the rule must tolerate.

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([v])] for v in (1.0, 1.1, 0.9, 1.0, 50.0)]
    >>> Krum(f=1).aggregate(ups).update[0].tolist()
    [1.0]
    """

    name = "krum"

    def __init__(self, *, f: int = 1) -> None:
        _check_f(f)
        self.f = int(f)

    def min_clients(self) -> int:
        return 2 * self.f + 3

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        sq = pairwise_sq_distances(matrix)
        scores = krum_scores(sq, self.f)
        best = int(np.argmin(scores))
        return (matrix[best].copy(), outlier_scores(np.sqrt(scores)), _mask(len(matrix),
                np.array([best])), {"chosen": best})


@register
class MultiKrum(Aggregator):
    """Average the ``m`` updates with the lowest Krum scores (default m = n - f).

    Parameters
    ----------
    f : int
        How many Byzantine clients the rule must tolerate (needs n > 2f + 2).
    m : int, optional
        How many updates to average; ``None`` means n - f.

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([v])] for v in (1.0, 2.0, 3.0, 2.0, 1e6)]
    >>> MultiKrum(f=1).aggregate(ups).update[0].tolist()
    [2.0]
    """

    name = "multi-krum"

    def __init__(self, *, f: int = 1, m: int | None = None) -> None:
        _check_f(f)
        if m is not None and not (isinstance(m, int | np.integer) and m >= 1):
            raise UsageError(f"m must be an integer >= 1, got {m!r}")
        self.f = int(f)
        self.m = None if m is None else int(m)

    def min_clients(self) -> int:
        return max(2 * self.f + 3, self.m or 1)

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = len(matrix)
        m = n - self.f if self.m is None else self.m
        sq = pairwise_sq_distances(matrix)
        keep = _select_by_krum(sq, self.f, m)
        w = weights[keep] / weights[keep].sum()
        scores = outlier_scores(np.sqrt(krum_scores(sq, self.f)))
        return w @ matrix[keep], scores, _mask(n, keep), {"kept": keep.tolist()}


@register
class Bulyan(Aggregator):
    """Krum picks n - 2f updates one at a time; per coordinate, average the n - 4f values
    closest to the median of those (needs n >= 4f + 3).

    Guarantee: with at most ``f`` arbitrary updates, every coordinate of the result
    lies between the smallest and largest honest value of that coordinate, and the
    result is close to the honest mean in L2 (El Mhamdi et al., 2018).

    Parameters
    ----------
    f : int
        How many Byzantine clients the rule must tolerate.

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([1.0 + 0.01 * i])] for i in range(6)] + [[np.array([1e6])]]
    >>> bool(Bulyan(f=1).aggregate(ups).update[0][0] < 1.1)
    True
    """

    name = "bulyan"

    def __init__(self, *, f: int = 1) -> None:
        _check_f(f)
        self.f = int(f)

    def min_clients(self) -> int:
        return 4 * self.f + 3

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n, f = len(matrix), self.f
        sq_all = pairwise_sq_distances(matrix)
        remaining = list(range(n))
        chosen: list[int] = []
        for _ in range(n - 2 * f):
            sub = sq_all[np.ix_(remaining, remaining)]
            local = krum_scores(sub, f)  # Krum on what is left, with the same f (the paper)
            pick = remaining[int(np.argmin(local))]
            chosen.append(pick)
            remaining.remove(pick)
        selected = matrix[np.sort(chosen)]
        beta = len(selected) - 2 * f

        def closest_to_median(block: np.ndarray) -> np.ndarray:
            med = np.median(block, axis=0)
            idx = np.argsort(np.abs(block - med), axis=0, kind="stable")[:beta]
            return np.asarray(np.take_along_axis(block, idx, axis=0).mean(axis=0))

        out = by_column_blocks(selected, closest_to_median)
        return (out, distance_scores(matrix, out), _mask(n, np.array(chosen)),
                {"kept": sorted(chosen)})
