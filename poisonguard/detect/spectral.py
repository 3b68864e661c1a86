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
from poisonguard.detect.thresholds import robust_z
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["SpectralDetector", "SpectreDetector", "que_direction", "que_scores",
           "spectral_projection"]

#: Floor of ``||S|| - 1`` in the QUE weights (:func:`que_scores`).
_MIN_EXCESS = 0.1


def spectral_projection(embedding: np.ndarray) -> np.ndarray:
    """Signed projection of the centred rows on their top right singular vector."""
    e = np.asarray(embedding, dtype=np.float64)
    e = e - e.mean(axis=0)
    if not np.any(e):
        return np.zeros(len(e))
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    return _heavier_tail_positive(e @ vt[0])


def que_scores(white: np.ndarray, *, alpha: float = 4.0) -> np.ndarray:
    """QUantum Entropy (QUE) outlier score of each whitened row (SPECTRE's scoring).

    ``tau_i = w_i' Q w_i`` with ``Q = exp(alpha (S - I) / (||S|| - 1)) / tr(exp(...))``
    and ``S`` the second moment of the whitened rows ``w`` (their robust centre is 0).
    ``alpha`` moves the score between the Mahalanobis norm (``alpha -> 0``: every
    direction weighs the same, ``tau = |w|^2 / k``) and the squared projection on the
    top direction of ``S`` (``alpha -> inf``: spectral signatures after whitening).
    On clean, well-whitened rows the mean score is about 1.

    ``||S|| - 1`` is floored at 0.1: when no direction carries excess variance the
    weights do not pile onto one arbitrary eigenvector of a nearly flat spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> white = np.random.default_rng(0).normal(size=(500, 4))
    >>> white[:10, 0] += 8  # ten outlying rows
    >>> tau = que_scores(white, alpha=4.0)
    >>> bool(tau[:10].min() > np.quantile(tau[10:], 0.99))
    True
    """
    w = np.asarray(white, dtype=np.float64)
    if len(w) == 0:
        return np.zeros(0)
    second = w.T @ w / len(w)
    vals, vecs = np.linalg.eigh(second)
    excess = max(float(vals[-1]) - 1.0, _MIN_EXCESS)
    logits = alpha * (vals - 1.0) / excess
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    return np.asarray(((w @ vecs) ** 2) @ weights)


def que_direction(white: np.ndarray, *, alpha: float = 4.0) -> np.ndarray:
    """Signed projection of whitened rows on their QUE-weighted mean direction.

    The rows QUE scores as outlying (:func:`que_scores`) pull the direction
    ``u = sum_i tau_i w_i`` towards themselves: a poisoned subpopulation sits on one
    side of the robust centre, so ``u`` points at it, while the scores of a clean
    class cancel out (symmetric about 0). Returns ``w @ u / |u|`` oriented so that
    the heavier tail is positive; clean rows project to about N(0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> white = np.random.default_rng(0).normal(size=(500, 4))
    >>> white[:10, 2] -= 8  # ten rows out on one side
    >>> proj = que_direction(white)
    >>> bool(proj[:10].min() > proj[10:].max())
    True
    """
    w = np.asarray(white, dtype=np.float64)
    tau = que_scores(w, alpha=alpha)
    u = tau @ w
    norm = float(np.linalg.norm(u))
    if norm <= 1e-12:
        return np.zeros(len(w))
    proj = w @ (u / norm)
    return _heavier_tail_positive(proj)


def _heavier_tail_positive(proj: np.ndarray) -> np.ndarray:
    """Fix the sign of a projection (arbitrary for an SVD): the heavier tail is positive.

    Computed in float64 on the robust-z scale, so that a sign flip of the basis
    gives exactly the same output.
    """
    skew = float(np.sum(robust_z(proj) ** 3))
    return proj if skew >= 0 else -proj


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
            examined=found.examined, review=found.review)


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
        return que_direction(white, alpha=self.alpha)
