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

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.covariance import MinCovDet
from sklearn.mixture import GaussianMixture

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.thresholds import FLAG_SCORE, robust_z, scores_from_z
from poisonguard.errors import UsageError
from poisonguard.represent.base import Representation

__all__ = [
    "SpectralDetector",
    "SpectreDetector",
    "SplitTest",
    "decide",
    "fit_sample",
    "per_class_tests",
    "que_scores",
    "robust_whiten",
    "separation_threshold",
    "spectral_projection",
    "split_test",
]

#: Rows a per-class robust estimate (MCD, k-means) is fitted on; the rest are projected.
MAX_FIT_ROWS = 500


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


def fit_sample(n_rows: int, max_rows: int, seed: int) -> np.ndarray:
    """Indices of the rows a per-class estimate is fitted on: all, or a seeded sample.

    Robust estimates (MCD, k-means, mixtures) cost far more than applying them, so
    large classes are fitted on ``max_rows`` rows and every row is then projected.
    """
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def robust_whiten(embedding: np.ndarray, *, dims: int = 16, seed: int = 0,
                  max_fit_rows: int = MAX_FIT_ROWS) -> np.ndarray:
    """PCA to ``dims`` components, then whiten with a minimum covariance determinant estimate.

    The MCD support is half the rows plus, so a subpopulation of up to half the class
    cannot pull the mean or the covariance towards itself. The PCA basis and the MCD
    are fitted on at most ``max_fit_rows`` rows (:func:`fit_sample`).
    """
    e = np.asarray(embedding, dtype=np.float64)
    fit = fit_sample(len(e), max_fit_rows, seed)
    e = e - np.median(e[fit], axis=0)
    k = int(max(1, min(dims, e.shape[1], len(fit) // 5)))
    _, s, vt = np.linalg.svd(e[fit], full_matrices=False)
    keep = s[:k] > 1e-9 * max(float(s[0]) if len(s) else 0.0, 1e-300)
    z = e @ vt[:k][keep].T
    if z.shape[1] == 0:
        return np.zeros((len(e), 1))
    mcd = MinCovDet(random_state=seed).fit(z[fit])
    vals, vecs = np.linalg.eigh(mcd.covariance_)
    vals = np.maximum(vals, 1e-12 * max(float(vals.max()), 1e-300))
    return np.asarray(((z - mcd.location_) @ vecs) / np.sqrt(vals))


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


@dataclass(frozen=True)
class SplitTest:
    """Outcome of the per-class "is there a separate subpopulation?" test."""

    poisoned: bool
    members: np.ndarray  # boolean, rows in the small component (empty when clean)
    posterior: np.ndarray  # posterior of the small component per row
    separation: float  # Ashman's D between the two components
    share: float  # weight of the small component
    bic_gain: float  # BIC(1 component) - BIC(2 components)


def split_test(values: np.ndarray, *, min_rows: int, max_share: float,
               seed: int = 0, max_fit_rows: int = 20_000) -> SplitTest:
    """Fit one and two 1-D Gaussians to ``values``.

    ``poisoned`` here means "a candidate": two components clearly beat one (BIC gain
    over 10), the small one holds ``min_rows`` rows or more and less than
    ``max_share`` of the rows. Whether the parts are far enough apart
    (``separation``) is decided against the other classes by :func:`decide`.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    n = len(x)
    empty = np.zeros(n, dtype=bool)
    if n < max(2 * min_rows, 4) or float(np.ptp(x)) <= 1e-12:
        return SplitTest(False, empty, np.zeros(n), 0.0, 0.0, 0.0)
    # Large classes: fit on a sample; the BIC gain is scaled back to the whole class.
    fit = x[fit_sample(n, max_fit_rows, seed)]
    two = GaussianMixture(2, n_init=3, random_state=seed,
                          reg_covar=1e-6 * float(fit.var())).fit(fit)
    one = GaussianMixture(1, random_state=seed).fit(fit)
    small = int(np.argmin(two.weights_))
    m, v = two.means_.ravel(), two.covariances_.ravel()
    separation = float(abs(m[0] - m[1]) / np.sqrt((v[0] + v[1]) / 2))
    share = float(two.weights_[small])
    gain = float(one.bic(fit) - two.bic(fit)) * n / len(fit)
    posterior = two.predict_proba(x)[:, small]
    members = posterior > 0.5
    candidate = gain > 10.0 and share < max_share and int(members.sum()) >= min_rows
    return SplitTest(candidate, members if candidate else empty, posterior, separation, share,
                     gain)


def separation_threshold(separations: np.ndarray, *, min_separation: float,
                         z: float = 6.0, min_classes: int = 5) -> float:
    """The separation a class must reach to count as holding a subpopulation.

    At least ``min_separation``; with ``min_classes`` classes or more, also at least
    ``median + z * MAD`` of the classes' own separations (most classes are clean, so
    they calibrate what an ordinary class looks like in this representation).
    """
    d = np.asarray(separations, dtype=np.float64)
    if len(d) < min_classes:
        return float(min_separation)
    med = float(np.median(d))
    mad = 1.4826 * float(np.median(np.abs(d - med)))
    return float(max(min_separation, med + z * max(mad, 0.1)))


def per_class_tests(
    dataset: Dataset, representation: Representation,
    direction: Callable[[np.ndarray], np.ndarray], *, min_rows: int, max_share: float,
    seed: int = 0,
) -> tuple[dict[int, tuple[np.ndarray, SplitTest]], np.ndarray]:
    """Project each class's embedding with ``direction`` and split-test it.

    Returns the tests by class code (with the class's row indices) and provisional
    scores: below the flag level for every row, ranked by |robust z| of the projection.
    Classes with fewer than ``2 * min_rows + 2`` rows are not examined.
    """
    emb = representation.embedding  # converted to float64 class by class (memory)
    labels = dataset.labels
    scores = np.zeros(len(labels))
    tests: dict[int, tuple[np.ndarray, SplitTest]] = {}
    for c in range(dataset.n_classes):
        rows = np.flatnonzero(labels == c)
        if len(rows) < 2 * min_rows + 2:
            continue
        proj = direction(emb[rows])
        tests[c] = (rows, split_test(proj, min_rows=min_rows, max_share=max_share, seed=seed))
        z = np.abs(robust_z(proj))
        scores[rows] = np.nextafter(FLAG_SCORE, 0) * scores_from_z(z, 6.0, width=2.0)
    return tests, scores


def decide(detector: Detector, dataset: Dataset, representation: Representation,
           tests: dict[int, tuple[np.ndarray, SplitTest]], scores: np.ndarray, *,
           what: str) -> DetectorResult:
    """Turn per-class split tests into a result: flag the small part of classes whose
    separation reaches :func:`separation_threshold`; every other class is clean."""
    params = detector.get_params()
    seps = np.array([t.separation for _, t in tests.values()])
    cut = separation_threshold(seps, min_separation=params["min_separation"])
    flags = np.zeros(len(dataset), dtype=bool)
    reasons: dict[int, str] = {}
    hypotheses: list[str] = []
    clean: list[int] = []
    per_class: dict[str, dict[str, float]] = {}
    layer = representation.layer or "embedding"
    for c, (rows, test) in tests.items():
        name = dataset.classes[c]
        per_class[name] = {"separation": round(test.separation, 2), "share": round(test.share, 4)}
        if not (test.poisoned and test.separation >= cut):
            clean.append(c)
            continue
        hit = rows[test.members]
        flags[hit] = True
        scores[hit] = FLAG_SCORE + 0.5 * (2 * test.posterior[test.members] - 1)
        sentence = (f"class {name}: {len(hit)} rows form {what} in the model's {layer} layer "
                    f"(separation D={test.separation:.1f}, threshold {cut:.1f})")
        for i in hit:
            reasons[int(i)] = sentence
        hypotheses.append(f"backdoor -> class {name}: {sentence.split(': ', 1)[1]}")
    return DetectorResult(
        detector=detector.name, scores=np.clip(scores, 0.0, 1.0), flags=flags, reasons=reasons,
        hypotheses=tuple(hypotheses), clean_classes=tuple(sorted(clean)), threshold=FLAG_SCORE,
        meta={"separation_threshold": round(cut, 3), "classes": per_class},
    )


class _SpectralBase(Detector):
    needs: ClassVar[frozenset[str]] = frozenset({"embedding"})
    method: ClassVar[str] = ""

    def __init__(self, *, min_separation: float = 4.0, min_rows: int = 5,
                 max_share: float = 0.45, seed: int = 0) -> None:
        self.min_separation = min_separation
        self.min_rows = min_rows
        self.max_share = max_share
        self.seed = seed

    def _direction(self, emb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        if self.min_separation <= 0 or self.min_rows < 1 or not 0 < self.max_share <= 1:
            raise UsageError(f"{self.name}: min_separation > 0, min_rows >= 1 and "
                             "0 < max_share <= 1 are required")
        tests, scores = per_class_tests(dataset, representation, self._direction,
                                        min_rows=self.min_rows, max_share=self.max_share,
                                        seed=self.seed)
        return decide(self, dataset, representation, tests, scores,
                      what=f"a separate {self.method} direction")


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
