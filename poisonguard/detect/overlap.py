"""Natural class overlap: what label disagreement clean data of this difficulty shows.

Shared by the label-based detectors (``label``, ``knn``, ``duplicate``) and the scan's
reliability section. A label-based flag is a claim that a row's label is too
surprising to be natural confusion between classes. The null model of natural
confusion comes from the data itself:

- where the out-of-fold model is unsure (its top probability below ``certain``), a
  clean label is drawn from the model's own probabilities: classes that overlap
  there trade labels as often as the model says they do;
- where the model is sure, a clean label is the model's class. Natural confusion
  lives on class boundaries; a label that contradicts a sure region is not explained
  by overlap. (A model trained on poisoned labels hedges a little everywhere near
  the poison, so a null drawn from its probabilities alone would explain the poison
  away: measured on penguins with 5% targeted flips, recall 0.2 instead of 0.9.)

Labels drawn from that null go through the detector's own statistic; the threshold
is the ``1 - max_fpr`` quantile of the null statistic over every row and draw
(:func:`poisonguard.detect.thresholds.tail_threshold`), so that on clean data of this
difficulty about ``max_fpr`` of the rows would be flagged, and the scan reports the
expected number (:func:`null_threshold`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from poisonguard.detect.thresholds import tail_threshold

__all__ = ["DEFAULT_CERTAIN", "DEFAULT_MAX_FPR", "NullThreshold", "natural_label_proba",
           "null_labels", "null_threshold"]

#: The clean false-positive rate a label-based flag is held to unless told otherwise.
DEFAULT_MAX_FPR = 0.005
#: Out-of-fold confidence at which the model is taken as sure (no natural confusion).
DEFAULT_CERTAIN = 0.8
#: Label draws from the null; N x draws statistics set the threshold.
NULL_DRAWS = 20


def natural_label_proba(proba: np.ndarray, *, certain: float = DEFAULT_CERTAIN) -> np.ndarray:
    """Per-row distribution of a clean label under natural class overlap.

    The model's probabilities where its top class is below ``certain``; the top class
    alone where it is at least ``certain``.

    Examples
    --------
    >>> import numpy as np
    >>> natural_label_proba(np.array([[0.9, 0.1], [0.6, 0.4]])).tolist()
    [[1.0, 0.0], [0.6, 0.4]]
    """
    p = np.asarray(proba, dtype=np.float64)
    top = p.max(axis=1, keepdims=True)
    sure = np.zeros_like(p)
    sure[np.arange(len(p)), p.argmax(axis=1)] = 1.0
    out = np.where(top >= certain, sure, p)
    return np.asarray(out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12))


def null_labels(proba: np.ndarray, *, draws: int = NULL_DRAWS, seed: int = 0,
                certain: float = DEFAULT_CERTAIN) -> np.ndarray:
    """``draws`` x N clean labels drawn from :func:`natural_label_proba`."""
    p = natural_label_proba(proba, certain=certain)
    cumulative = np.cumsum(p, axis=1)
    cumulative[:, -1] = 1.0
    u = np.random.default_rng(seed).random((draws, len(p), 1))
    return np.asarray((u >= cumulative[None]).sum(axis=2), dtype=np.int64)


@dataclass(frozen=True)
class NullThreshold:
    """A statistic's flag threshold under natural overlap, and what it costs on clean data.

    ``expected_flags`` is the mean number of rows the rule (statistic at or above
    ``threshold`` and positive) flags on one null draw: the rows it would flag on
    clean data of this difficulty.
    """

    threshold: float
    expected_flags: float
    max_fpr: float


def null_threshold(statistic: Callable[[np.ndarray], np.ndarray], proba: np.ndarray, *,
                   max_fpr: float = DEFAULT_MAX_FPR, seed: int = 0,
                   certain: float = DEFAULT_CERTAIN, draws: int = NULL_DRAWS) -> NullThreshold:
    """The ``1 - max_fpr`` null quantile of ``statistic(labels)`` (positive = suspicious).

    ``statistic`` maps a label vector to one value per row; it is evaluated on
    ``draws`` label vectors from :func:`null_labels`. The threshold is never below
    the smallest positive value, so only rows whose statistic is positive can pass.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.tile([[0.95, 0.05]], (200, 1))
    >>> t = null_threshold(lambda y: proba[np.arange(200), 1 - y] - proba[np.arange(200), y],
    ...                    proba)
    >>> t.expected_flags
    0.0
    """
    stats = np.stack([np.asarray(statistic(y), dtype=np.float64)
                      for y in null_labels(proba, draws=draws, seed=seed, certain=certain)])
    threshold = max(tail_threshold(stats.ravel(), max_fpr), float(np.nextafter(0.0, 1.0)))
    expected = float((stats >= threshold).sum()) / len(stats)
    return NullThreshold(threshold=threshold, expected_flags=expected, max_fpr=max_fpr)
