"""The geometric median by Weiszfeld's algorithm (RFA, Pillutla et al., 2022)."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.federated.base import (
    Aggregator,
    all_selected,
    distances_to,
    outlier_scores,
    register,
)

__all__ = ["GeometricMedian", "weiszfeld"]


def weiszfeld(matrix: np.ndarray, weights: np.ndarray, *, max_iter: int = 200,
              tol: float = 1e-6, eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray, int]:
    """The point minimising the weighted sum of distances to the rows.

    Smoothed Weiszfeld iterations (distances floored at ``eps``) from the weighted
    mean, stopped when a step moves less than ``tol`` times the median distance to the
    rows (a scale a few far rows cannot inflate). Returns (median, final per-row
    weights, iterations run).
    """
    z = weights @ matrix
    dist = distances_to(matrix, z)
    alpha = weights
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        alpha = weights / np.maximum(dist, eps)
        alpha = alpha / alpha.sum()
        new = alpha @ matrix
        step = float(np.linalg.norm(new - z))
        z = new
        dist = distances_to(matrix, z)
        if step <= tol * max(float(np.median(dist)), eps):
            break
    return z, alpha, iterations


@register
class GeometricMedian(Aggregator):
    """The (weighted) geometric median of the updates: breakdown point 1/2.

    Parameters
    ----------
    max_iter : int
        Weiszfeld iterations at most.
    tol : float
        Stop when a step is below ``tol`` times the median distance to the updates.

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([0.0, 0.0])], [np.array([1.0, 0.0])], [np.array([0.0, 1.0])],
    ...        [np.array([1e6, 1e6])]]
    >>> bool(np.abs(GeometricMedian().aggregate(ups).update[0]).max() < 1.0)
    True
    """

    name = "geomed"

    def __init__(self, *, max_iter: int = 200, tol: float = 1e-6) -> None:
        if not (isinstance(max_iter, int) and max_iter >= 1):
            raise UsageError(f"max_iter must be an integer >= 1, got {max_iter!r}")
        if not tol > 0:
            raise UsageError(f"tol must be positive, got {tol}")
        self.max_iter = max_iter
        self.tol = tol

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        z, _, iterations = weiszfeld(matrix, weights, max_iter=self.max_iter, tol=self.tol)
        scores = outlier_scores(distances_to(matrix, z))
        return z, scores, all_selected(len(matrix)), {"iterations": iterations}
