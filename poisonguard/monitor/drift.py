"""Prediction drift: recent predictions against the model's own golden-set baseline.

Two tests from the validation gate (:mod:`poisonguard.validate.tests`): chi-square
homogeneity of the predicted-class counts, and Kolmogorov-Smirnov on the top-class
confidence; Holm-adjusted, drift when either adjusted p-value is below ``alpha``.
A backdoor being exercised in production shows up as one class's share growing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.validate.tests import adjust, chi2_test, ks_test

__all__ = ["DriftResult", "prediction_drift"]


@dataclass(frozen=True)
class DriftResult:
    """The two tests' statistics and Holm-adjusted p-values, and the verdict.

    Examples
    --------
    >>> base = np.array([[0.9, 0.1]] * 50 + [[0.2, 0.8]] * 50)
    >>> recent = np.array([[0.9, 0.1]] * 95 + [[0.2, 0.8]] * 5)
    >>> drift = prediction_drift(base, recent, ["cat", "dog"])
    >>> drift.drifted, drift.recent_share
    (True, {'cat': 0.95, 'dog': 0.05})
    """

    drifted: bool
    alpha: float
    class_chi2: float
    class_p: float
    confidence_ks: float
    confidence_p: float
    baseline_share: dict[str, float]
    recent_share: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prediction_drift(baseline_proba: np.ndarray, recent_proba: np.ndarray,
                     classes: Sequence[str], *, alpha: float = 0.01) -> DriftResult:
    """Compare predicted-class shares and confidences of recent inputs with the baseline.

    Examples
    --------
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:600], digits.labels[:600], digits.classes,
    ...                          arch="mlp", epochs=10)
    >>> base = model.predict_proba(digits.images[1000:1300])  # the golden set
    >>> prediction_drift(base, model.predict_proba(digits.images[1300:1400]), model.classes).drifted
    False
    >>> zeros = digits.images[digits.labels == 0][:50]  # a batch of nothing but zeros
    >>> drift = prediction_drift(base, model.predict_proba(zeros), model.classes)
    >>> drift.drifted, drift.recent_share["0"] > 0.9
    (True, True)
    """
    b = np.asarray(baseline_proba, dtype=np.float64)
    r = np.asarray(recent_proba, dtype=np.float64)
    k = len(classes)
    if b.ndim != 2 or r.ndim != 2 or b.shape[1] != k or r.shape[1] != k or not len(b) \
            or not len(r):
        raise UsageError(f"drift needs two non-empty N x {k} probability arrays")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    cb = np.bincount(b.argmax(1), minlength=k).astype(float)
    cr = np.bincount(r.argmax(1), minlength=k).astype(float)
    chi, p_class = chi2_test(cb, cr, float(len(b)), float(len(r)))
    ks, p_conf = ks_test(b.max(1), np.ones(len(b)), r.max(1), np.ones(len(r)))
    p_adj = adjust(np.array([p_class, p_conf]))
    return DriftResult(drifted=bool((p_adj < alpha).any()), alpha=alpha, class_chi2=chi,
                       class_p=float(p_adj[0]), confidence_ks=ks, confidence_p=float(p_adj[1]),
                       baseline_share={c: float(cb[i] / len(b)) for i, c in enumerate(classes)},
                       recent_share={c: float(cr[i] / len(r)) for i, c in enumerate(classes)})
