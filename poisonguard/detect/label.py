"""Detector ``label``: confident learning on an ensemble of two held-out classifiers.

The probabilities are the average of two classifiers that never scored a row they
saw: the out-of-fold model of the representation and the row's ``k`` nearest other
rows in the scaled features (their label shares, a leave-one-out k-NN). The two err
on different rows: a clean row the model gets wrong usually keeps its neighbours,
and the other way round, while a flipped row loses both. On the built-in sets the
ensemble ranks flips better than either alone (AUROC 0.989 against 0.976 and 0.967
on breast cancer at 10% flips; docs/detectors-classic.md).

A row is a label issue when cleanlab's confident learning
(:func:`cleanlab.filter.find_label_issues`, per-class thresholds from the data) says
so *and* the ensemble prefers another class by a clear margin. The confidence floor
is data-driven: the ensemble must be as sure of the other class as it is of a low
quantile (5%) of the rows whose label it agrees with, so hard but clean rows near a
class boundary are ranked high but not flagged.
"""

from __future__ import annotations

import warnings

import numpy as np
from cleanlab.filter import find_label_issues

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.neighbours import nearest_neighbours, neighbour_votes
from poisonguard.detect.thresholds import FLAG_SCORE
from poisonguard.errors import UsageError
from poisonguard.params import Interval, OneOf
from poisonguard.represent.base import Representation

__all__ = ["FILTER_BY", "LabelDetector", "label_margins"]

#: The ``filter_by`` rules of :func:`cleanlab.filter.find_label_issues`.
FILTER_BY = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
             "predicted_neq_given", "low_normalized_margin", "low_self_confidence")


def label_margins(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Best other-class probability minus the given label's probability, per row.

    In [-1, 1]; positive when the model prefers another class.
    """
    n = len(labels)
    rows = np.arange(n)
    given = proba[rows, labels]
    other = np.array(proba, dtype=np.float64)
    other[rows, labels] = -np.inf
    return np.asarray(other.max(axis=1) - given)


def _scores(margin: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Flagged rows in [0.5, 1], the rest in [0, 0.5], both increasing with the margin."""
    unit = (np.clip(margin, -1.0, 1.0) + 1.0) / 2.0
    return np.where(flags, FLAG_SCORE + FLAG_SCORE * unit, FLAG_SCORE * unit)


@register_detector
class LabelDetector(Detector):
    """Confident learning (cleanlab) on the out-of-fold model averaged with a k-NN.

    Parameters
    ----------
    filter_by:
        cleanlab's ``filter_by`` rule (``both``, ``prune_by_noise_rate``,
        ``confident_learning``, ...).
    confidence_quantile:
        a flagged row's ensemble confidence in its suggested class must reach this
        quantile of the confidence on rows whose label the ensemble agrees with.
    min_margin:
        a flagged row's suggested class must beat its given label by this much.
    k:
        neighbours in the scaled features that vote with their labels.
    neighbour_weight:
        weight of the neighbour votes in the ensemble (0: the model alone).
    """

    name = "label"
    needs = frozenset({"proba", "features"})
    parameter_constraints = {
        "filter_by": OneOf(*FILTER_BY),
        "confidence_quantile": Interval(float, 0, 1, closed="left"),
        "min_margin": Interval(float, 0, 1),
        "k": Interval(int, 1, None),
        "neighbour_weight": Interval(float, 0, 1),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, filter_by: str = "both", confidence_quantile: float = 0.05,
                 min_margin: float = 0.2, k: int = 20, neighbour_weight: float = 0.5,
                 seed: int = 0) -> None:
        self.filter_by = filter_by
        self.confidence_quantile = confidence_quantile
        self.min_margin = min_margin
        self.k = k
        self.neighbour_weight = neighbour_weight
        self.seed = seed

    def requires(self) -> frozenset[str]:
        return self.needs if self.neighbour_weight > 0 else frozenset({"proba"})

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        labels = np.asarray(dataset.labels)
        model = np.asarray(representation.proba, dtype=np.float64)
        if model.shape != (len(labels), dataset.n_classes):
            raise UsageError(f"label: proba must be {len(labels)} x {dataset.n_classes}, "
                             f"got {model.shape}")
        votes = np.zeros_like(model)
        if self.neighbour_weight > 0:
            _, idx = nearest_neighbours(representation.features, self.k, seed=self.seed)
            votes = neighbour_votes(labels, idx, dataset.n_classes)
        proba = (1 - self.neighbour_weight) * model + self.neighbour_weight * votes
        pred = proba.argmax(axis=1)
        confidence = proba.max(axis=1)
        margin = label_margins(labels, proba)
        agree = pred == labels
        floor = (float(np.quantile(confidence[agree], self.confidence_quantile))
                 if agree.any() else 1.0)
        issues = self._issues(labels, proba)
        flags = issues & ~agree & (confidence >= floor) & (margin >= self.min_margin)
        names = dataset.classes
        reasons = {int(i): _reason(names, labels[i], pred[i], model[i], votes[i],
                                   self.neighbour_weight > 0)
                   for i in np.flatnonzero(flags)}
        suggested = {int(i): int(pred[i]) for i in np.flatnonzero(flags)}
        return DetectorResult(
            detector=self.name, scores=_scores(margin, flags), flags=flags, reasons=reasons,
            suggested_labels=suggested, dataset=dataset,
            meta={"confidence_floor": round(floor, 4), "cleanlab_issues": int(issues.sum()),
                  "ensemble_accuracy": round(float(agree.mean()), 4),
                  "out_of_fold_accuracy": round(float((model.argmax(axis=1) == labels).mean()),
                                                4)},
        )

    def _issues(self, labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
        counts = np.bincount(labels, minlength=proba.shape[1])
        if (counts[counts > 0] < 2).any() or (counts > 0).sum() < 2:
            return np.zeros(len(labels), dtype=bool)  # cleanlab needs two rows per class
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = find_label_issues(labels, proba, filter_by=self.filter_by, n_jobs=1)
        return np.asarray(mask, dtype=bool)


def _reason(names: tuple[str, ...], label: int, pred: int, model: np.ndarray,
            votes: np.ndarray, with_neighbours: bool) -> str:
    said = (f"label {names[label]} but the out-of-fold model says {names[pred]} "
            f"(p={model[pred]:.2f}, p(label)={model[label]:.2f})")
    if not with_neighbours:
        return said
    return said + f" and {votes[pred]:.0%} of its nearest rows are {names[pred]}"
