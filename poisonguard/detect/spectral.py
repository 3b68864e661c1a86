"""Detectors: spectral signatures ("spectral") and a robust, whitened variant ("spectre").

Both read the embedding of the model trained on *all* rows: a model that learned a
backdoor maps the triggered rows of the target class to a direction of their own.
Per class:

1. project the class's embedding on one direction: the top singular vector of the
   *centred* embedding (spectral signatures, Tran et al. 2018), or the top
   eigenvector of the covariance after whitening with a robust (minimum covariance
   determinant) estimate on a PCA-reduced space, scored with QUantum Entropy
   weights (SPECTRE, Hayase et al. 2021);
2. decide whether the class holds a separate subpopulation at all: a two-component
   Gaussian mixture on the 1-D projection must beat one component and its parts
   must be far apart (Ashman's D at least ``min_separation``) with the small part
   holding at least ``min_rows`` rows and less than ``max_share`` of the class.
   A clean class (one blob, however stretched) fails this and is reported clean;
3. only then flag the rows the mixture assigns to the small component.

Scores: flagged rows get 0.5 + half the posterior excess; every other row gets a
score below 0.5 that ranks it by its robust z along the direction.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.subpopulation import find_subpopulations, robust_whiten
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["SpectralDetector", "SpectreDetector", "que_scores", "spectral_projection"]


def spectral_projection(embedding: np.ndarray) -> np.ndarray:
    """Signed projection of the centred rows on their top right singular vector."""
    e = np.asarray(embedding, dtype=np.float64)
    e = e - e.mean(axis=0)
    if not np.any(e):
        return np.zeros(len(e))
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    p = e @ vt[0]
    # Orient so that the heavier tail is positive (sign of an SVD is arbitrary).
    return p if np.sum(p**3) >= 0 else -p


def que_scores(white: np.ndarray, *, alpha: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """QUantum Entropy outlier scores of whitened rows and the top whitened direction.

    ``tau_i = w_i' Q w_i`` with ``Q = exp(alpha (S - I) / (||S|| - 1)) / tr(...)`` and
    ``S`` the covariance of the whitened rows (SPECTRE's scoring).
    """
    w = np.asarray(white, dtype=np.float64)
    cov = w.T @ w / max(len(w), 1)
    vals, vecs = np.linalg.eigh(cov)
    top = float(vals[-1])
    scale = alpha / max(top - 1.0, 1e-6)
    weights = np.exp(np.clip(scale * (vals - 1.0), -700, 700) - scale * (top - 1.0))
    weights /= weights.sum()
    tau = ((w @ vecs) ** 2) @ weights
    return tau, vecs[:, -1]


class _SpectralBase(Detector):
    needs: ClassVar[frozenset[str]] = frozenset({"embedding"})
    method: ClassVar[str] = ""
    parameter_constraints = {
        "min_separation": Interval(float, 0, None, closed="neither"),
        "min_rows": Interval(int, 1, None),
        "max_share": Interval(float, 0, 1, closed="right"),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, min_separation: float = 4.0, min_rows: int = 5,
                 max_share: float = 0.45, seed: int = 0) -> None:
        self.min_separation = min_separation
        self.min_rows = min_rows
        self.max_share = max_share
        self.seed = seed

    def _direction(self, emb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        found = find_subpopulations(
            dataset, representation, self._direction, min_rows=self.min_rows,
            max_share=self.max_share, min_separation=self.min_separation, seed=self.seed,
            what=f"a separate {self.method} direction")
        return DetectorResult(
            detector=self.name, scores=found.scores, flags=found.flags, reasons=found.reasons,
            hypotheses=found.hypotheses, meta=found.meta, dataset=dataset,
            examined=found.examined)


@register_detector
class SpectralDetector(_SpectralBase):
    """Spectral signatures on the centred penultimate-layer embedding, per class."""

    name = "spectral"
    method = "spectral-signature"

    def _direction(self, emb: np.ndarray) -> np.ndarray:
        return spectral_projection(emb)


@register_detector
class SpectreDetector(_SpectralBase):
    """SPECTRE-like: robust whitening (MCD on PCA dims) and QUE scoring, per class."""

    name = "spectre"
    method = "robust-whitened"
    parameter_constraints = {"dims": Interval(int, 1, None),
                             "alpha": Interval(float, 0, None, closed="neither")}

    def __init__(self, *, dims: int = 16, alpha: float = 4.0, min_separation: float = 4.0,
                 min_rows: int = 5, max_share: float = 0.45, seed: int = 0) -> None:
        super().__init__(min_separation=min_separation, min_rows=min_rows, max_share=max_share,
                         seed=seed)
        self.dims = dims
        self.alpha = alpha

    def _direction(self, emb: np.ndarray) -> np.ndarray:
        white = robust_whiten(emb, dims=self.dims, seed=self.seed)
        tau, top = que_scores(white, alpha=self.alpha)
        proj = white @ top
        return proj if np.sum(proj**3) >= 0 else -proj
