"""Mean-based rules: FedAvg (the undefended baseline) and norm clipping with optional noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.federated.base import (
    Aggregator,
    all_selected,
    distance_scores,
    outlier_scores,
    register,
    row_norms,
)

__all__ = ["FedAvg", "NormClipping"]


@register
class FedAvg(Aggregator):
    """The weighted mean of the updates (McMahan et al., 2017): no defence at all.

    One arbitrary update moves the mean arbitrarily far. Scores are the outlier
    scores of each update's distance to the mean.

    Examples
    --------
    >>> import numpy as np
    >>> FedAvg().aggregate([[np.zeros(2)], [np.ones(2)]]).update[0].tolist()
    [0.5, 0.5]
    """

    name = "fedavg"

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        mean = weights @ matrix
        return mean, distance_scores(matrix, mean), all_selected(len(matrix)), {}


@register
class NormClipping(Aggregator):
    """Clip every update to an L2 norm bound, average, optionally add Gaussian noise.

    The bound is ``max_norm`` when given, else the median norm of the round's
    updates (taken from the data, so a few huge updates cannot raise it). The noise
    has standard deviation ``noise_multiplier * bound / n`` per coordinate (the
    DP-FedAvg form; this class does no privacy accounting).

    Parameters
    ----------
    max_norm : float, optional
        Fixed clipping bound; ``None`` uses the round's median update norm.
    noise_multiplier : float
        Noise scale relative to the bound; 0 adds none.
    seed : int
        Seed of the noise generator.

    Examples
    --------
    >>> import numpy as np
    >>> agg = NormClipping(max_norm=1.0)
    >>> float(np.linalg.norm(agg.aggregate([[np.array([30.0, 40.0])]]).update[0]))
    1.0
    """

    name = "clip"

    def __init__(self, *, max_norm: float | None = None, noise_multiplier: float = 0.0,
                 seed: int = 0) -> None:
        if max_norm is not None and not max_norm > 0:
            raise UsageError(f"max_norm must be positive, got {max_norm}")
        if not noise_multiplier >= 0:
            raise UsageError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        self.max_norm = max_norm
        self.noise_multiplier = noise_multiplier
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        norms = row_norms(matrix)
        bound = float(np.median(norms)) if self.max_norm is None else float(self.max_norm)
        factors = np.minimum(1.0, bound / np.maximum(norms, 1e-300))
        out = (weights * factors) @ matrix
        if self.noise_multiplier > 0:
            std = self.noise_multiplier * bound / len(matrix)
            out = out + self._rng.normal(0.0, std, size=out.shape)
        details = {"clip_bound": bound, "clipped": int((factors < 1.0).sum())}
        return out, outlier_scores(norms), all_selected(len(matrix)), details
