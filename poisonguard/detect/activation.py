"""Detector "activation": activation clustering with a test that can say "clean".

Per class (after Chen et al. 2018):

1. reduce the class's embedding (the model trained on all rows) to ``dims`` PCA
   components, whiten them with a robust (minimum covariance determinant) estimate
   and compress heavy tails (``sign(w) * log1p(|w|)``), then split it in two with
   k-means;
2. project the rows on the line through the two cluster centres and fit one and
   two 1-D Gaussians there (:func:`~poisonguard.detect.subpopulation.split_test`): the
   class is poisoned only when two components clearly win, the small one is at
   least ``min_rows`` rows and less than ``max_share`` of the class, and their
   separation (Ashman's D) reaches the threshold calibrated on the classes
   themselves (:func:`~poisonguard.detect.subpopulation.separation_threshold`);
3. in a poisoned class the small component is flagged; each flagged row is
   reclassified without the flagged rows (nearest class in *input space*), which
   gives the suggested label (the likely source class of a backdoor row) and the
   share of the cluster that looks like another class, reported in the reason.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.subpopulation import find_subpopulations, fit_sample, robust_whiten
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["ActivationDetector", "reclassify", "two_means"]


def two_means(embedding: np.ndarray, *, dims: int = 10, seed: int = 0,
              max_fit_rows: int = 5_000) -> np.ndarray:
    """1-D projection of a class on the axis between its two k-means clusters.

    The embedding is reduced to ``dims`` PCA components and robustly whitened, heavy
    tails are compressed, then k-means (k=2) splits it; the signed projection on the
    line through the two centres is returned (the smaller cluster on the positive side).
    Large classes are clustered on a sample of ``max_fit_rows`` rows, then every row
    is assigned to its nearest centre.
    """
    w = robust_whiten(embedding, dims=dims, seed=seed)
    w = np.sign(w) * np.log1p(np.abs(w))
    if len(w) < 4 or not np.any(w):
        return np.zeros(len(w))
    fit = fit_sample(len(w), max_fit_rows, seed)
    ids = KMeans(2, n_init=10, random_state=seed).fit(w[fit]).predict(w)
    counts = np.bincount(ids, minlength=2)
    if counts.min() == 0:
        return np.zeros(len(w))
    small = int(np.argmin(counts))
    axis = w[ids == small].mean(axis=0) - w[ids != small].mean(axis=0)
    return np.asarray(w @ (axis / max(float(np.linalg.norm(axis)), 1e-12)))


def reclassify(features: np.ndarray, labels: np.ndarray, members: np.ndarray, *,
               n_classes: int, k: int = 3) -> np.ndarray:
    """Reclassify the member rows without them: nearest class in input space.

    Each member row goes to the class whose ``k``-th nearest non-member row is
    closest (a per-class nearest-neighbour rule, so that removing part of a class
    does not by itself tip the votes to a bigger class).
    """
    x = np.asarray(features)  # float32 is plenty for distances; no N x D float64 copy
    rows = np.flatnonzero(members)
    out = labels[rows].copy()
    if len(rows) == 0:
        return out
    best = np.full(len(rows), np.inf)
    for c in range(n_classes):
        ref = np.flatnonzero((labels == c) & ~members)
        if len(ref) == 0:
            continue
        kk = min(k, len(ref))
        dist, _ = NearestNeighbors(n_neighbors=kk).fit(x[ref]).kneighbors(x[rows])
        d = dist[:, kk - 1]
        better = d < best
        best[better] = d[better]
        out[better] = c
    return out


@register_detector
class ActivationDetector(Detector):
    """Activation clustering per class; flags a cluster only when it stands apart."""

    name = "activation"
    needs: ClassVar[frozenset[str]] = frozenset({"embedding", "features"})
    parameter_constraints = {
        "dims": Interval(int, 1, None),
        "k": Interval(int, 1, None),
        "min_separation": Interval(float, 0, None, closed="neither"),
        "min_rows": Interval(int, 1, None),
        "max_share": Interval(float, 0, 1, closed="right"),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, dims: int = 10, k: int = 3, min_separation: float = 4.0,
                 min_rows: int = 5, max_share: float = 0.45, seed: int = 0) -> None:
        self.dims = dims
        self.k = k
        self.min_separation = min_separation
        self.min_rows = min_rows
        self.max_share = max_share
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        labels = dataset.labels
        found = find_subpopulations(
            dataset, representation, lambda e: two_means(e, dims=self.dims, seed=self.seed),
            min_rows=self.min_rows, max_share=self.max_share,
            min_separation=self.min_separation, seed=self.seed,
            what="a separate activation cluster")
        reasons = dict(found.reasons)
        suggested: dict[int, int] = {}
        hit = np.flatnonzero(found.flags)
        if len(hit):
            # Exclusionary reclassification of the flagged rows, for the reasons and labels.
            new = reclassify(representation.features, labels, found.flags,
                             n_classes=dataset.n_classes, k=self.k)
            away = new != labels[hit]
            for c in np.unique(labels[hit]):
                in_c = labels[hit] == c
                share = float(away[in_c].mean())
                for i, new_label, moved in zip(hit[in_c], new[in_c], away[in_c], strict=True):
                    reasons[int(i)] += (f"; {share:.0%} of them look like another class in "
                                        "input space")
                    if moved:
                        suggested[int(i)] = int(new_label)
        return DetectorResult(
            detector=self.name, scores=found.scores, flags=found.flags, reasons=reasons,
            suggested_labels=suggested, hypotheses=found.hypotheses, meta=found.meta,
            dataset=dataset, examined=found.examined, review=found.review)
