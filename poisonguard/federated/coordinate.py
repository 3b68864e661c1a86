"""Coordinate-wise rules: median and trimmed mean (Yin et al., 2018).

Both work column by column in blocks, so 100 clients x 1M parameters never needs
more than one block's sorted copy at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.federated.base import Aggregator, all_selected, distance_scores, register

__all__ = ["CoordinateMedian", "TrimmedMean", "by_column_blocks"]

_BLOCK = 1 << 16


def by_column_blocks(matrix: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` (an ``n x b`` block -> ``b`` values) to column blocks of ``matrix``."""
    out = np.empty(matrix.shape[1], dtype=np.float64)
    for start in range(0, matrix.shape[1], _BLOCK):
        out[start:start + _BLOCK] = fn(matrix[:, start:start + _BLOCK])
    return out


@register
class CoordinateMedian(Aggregator):
    """The median of each coordinate over the clients.

    With fewer than half the clients arbitrary, every coordinate of the result lies
    between the smallest and the largest honest value of that coordinate.

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([1.0])], [np.array([2.0])], [np.array([1e9])]]
    >>> CoordinateMedian().aggregate(ups).update[0].tolist()
    [2.0]
    """

    name = "median"

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        med = by_column_blocks(matrix, lambda b: np.median(b, axis=0))
        return med, distance_scores(matrix, med), all_selected(len(matrix)), {}


@register
class TrimmedMean(Aggregator):
    """Per coordinate, drop the ``k`` largest and ``k`` smallest values and average the rest.

    ``k = floor(trim * n)``. With at most ``k`` arbitrary clients, every coordinate
    of the result lies between the smallest and the largest honest value.

    Parameters
    ----------
    trim : float
        Fraction of clients trimmed from each end, in [0, 0.5).

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([v])] for v in (1.0, 2.0, 3.0, 1e9)]
    >>> TrimmedMean(trim=0.25).aggregate(ups).update[0].tolist()
    [2.5]
    """

    name = "trimmed-mean"

    def __init__(self, *, trim: float = 0.2) -> None:
        if not 0 <= trim < 0.5:
            raise UsageError(f"trim must be in [0, 0.5), got {trim}")
        self.trim = trim

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = len(matrix)
        k = int(np.floor(self.trim * n + 1e-9))
        if n - 2 * k < 1:
            raise UsageError(f"trimmed mean with trim={self.trim} leaves nothing of {n} updates")

        def trimmed(block: np.ndarray) -> np.ndarray:
            # after partitioning on positions k and n-k-1, rows k..n-k-1 are the middle values
            part = np.partition(block, (k, n - k - 1), axis=0) if k else block
            return np.asarray(part[k:n - k].mean(axis=0))

        out = by_column_blocks(matrix, trimmed)
        return out, distance_scores(matrix, out), all_selected(n), {"trimmed_each_side": k}
