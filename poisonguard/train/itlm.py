"""Iterative trimmed loss minimisation (ITLM, Shen & Sanghavi 2019).

Fit on every row; keep the ``1 - trim_fraction`` rows of lowest loss under that
model; refit on them; repeat ``n_rounds`` times. The rows left out at the end are
the suspects (``trimmed_``), reported as findings by ``poisonguard train``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from poisonguard.train.ensemble import default_estimator

__all__ = ["TrimmedLossClassifier", "row_losses"]


def row_losses(model: Any, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row's label under ``model`` (classes it never saw: p = 1e-12)."""
    proba = model.predict_proba(x)
    seen = {c: j for j, c in enumerate(model.classes_.tolist())}
    col = np.array([seen.get(c, -1) for c in np.asarray(labels).tolist()], dtype=np.int64)
    p = np.where(col >= 0, proba[np.arange(len(x)), np.maximum(col, 0)], 0.0)
    return np.asarray(-np.log(np.clip(p, 1e-12, 1.0)))


class TrimmedLossClassifier(ClassifierMixin, BaseEstimator):
    """Any classifier with ``predict_proba``, trained with iterative trimmed loss.

    Parameters
    ----------
    estimator : scikit-learn classifier or None
        Base model (default: standardise + logistic regression); a
        :class:`~poisonguard.train.TorchClassifier` trains the scan's CNN/MLP.
    trim_fraction : float
        Share of rows (0 to 0.5, rounded to whole rows) left out of each refit: set
        it above the poison rate you want to survive.
    n_rounds : int
        Number of trim-and-refit rounds after the first fit.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> x, y = load_breast_cancer(return_X_y=True)
    >>> model = TrimmedLossClassifier(trim_fraction=0.05, n_rounds=1).fit(x, y)
    >>> len(model.trimmed_), round(0.05 * len(y))  # 5% of 569 rows, rounded
    (28, 28)
    """

    def __init__(self, estimator: Any = None, *, trim_fraction: float = 0.1,
                 n_rounds: int = 3) -> None:
        self.estimator = estimator
        self.trim_fraction = trim_fraction
        self.n_rounds = n_rounds

    def fit(self, X: np.ndarray, y: np.ndarray) -> TrimmedLossClassifier:
        """Fit, trim the highest-loss rows, refit; ``trimmed_`` holds the rows left out."""
        if not 0.0 <= float(self.trim_fraction) < 0.5:
            raise ValueError("trim_fraction must be in [0, 0.5)")
        if int(self.n_rounds) < 0:
            raise ValueError("n_rounds must be at least 0")
        x, labels = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(labels)
        self.n_features_in_ = x.shape[1]
        base = self.estimator if self.estimator is not None else default_estimator()
        n_keep = len(x) - int(round(float(self.trim_fraction) * len(x)))
        kept = np.arange(len(x))
        model = clone(base).fit(x, labels)
        for _ in range(int(self.n_rounds)):
            losses = row_losses(model, x, labels)
            kept = np.sort(np.argsort(losses, kind="stable")[:n_keep])
            model = clone(base).fit(x[kept], labels[kept])
        self.estimator_ = model
        self.losses_ = row_losses(model, x, labels)
        self.trimmed_ = np.setdiff1d(np.arange(len(x)), kept)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities over ``classes_`` (classes the final model never saw get 0)."""
        check_is_fitted(self, "estimator_")
        proba = self.estimator_.predict_proba(np.asarray(X))
        out = np.zeros((len(proba), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, self.estimator_.classes_)] = proba
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class per row."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])
