"""Partition ensembles with certified radii: DPA and Finite Aggregation.

Each training row goes to a bucket chosen by a hash of its feature values
(:mod:`poisonguard.train.hashing`); each base model trains on its buckets' rows in an
order fixed by their content; predictions are plurality votes (ties to the smaller
class index). A base model whose rows are empty or of one class predicts that class
(the smallest class when empty): still a function of its rows alone, which is all
the certificate needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from poisonguard.train.certify import dpa_radius, fa_radius, plurality, vote_counts
from poisonguard.train.hashing import content_hashes, members_of_buckets, order_by_content

__all__ = ["DPAClassifier", "FAClassifier", "default_estimator"]


def default_estimator() -> Any:
    """Standardise, then multinomial logistic regression: cheap, deterministic, stores in skops.

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> x, y = load_wine(return_X_y=True)
    >>> default_estimator().fit(x, y).predict(x[:3]).tolist()
    [0, 0, 0]
    """
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))


class _PartitionEnsemble(ClassifierMixin, BaseEstimator):
    """Shared machinery; ``spread = 1`` is DPA."""

    estimator: Any
    n_partitions: int

    def _spread(self) -> int:
        return 1

    def _check(self) -> None:
        if int(self.n_partitions) < 1:
            raise ValueError("n_partitions must be at least 1")
        if self._spread() < 1:
            raise ValueError("spread must be at least 1")

    def fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        """Hash rows to buckets, train one base model per partition; returns ``self``."""
        self._check()
        x = np.asarray(X)
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError("X must be 2-D with one row per label")
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.n_features_in_ = x.shape[1]
        k, d = int(self.n_partitions), self._spread()
        n_models = k * d
        hashes = content_hashes(x)
        buckets = (hashes % np.uint64(n_models)).astype(np.int64)
        feeds = members_of_buckets(k, d)  # bucket -> models
        base = self.estimator if self.estimator is not None else default_estimator()
        self.members_: list[Any] = []
        self.constant_ = np.full(n_models, -1, dtype=np.int64)
        self.partition_sizes_ = np.zeros(n_models, dtype=np.int64)
        with threadpool_limits(limits=1, user_api="blas"):  # many small fits
            self._fit_members(x, codes, hashes, buckets, feeds, base)
        return self

    def _fit_members(self, x: np.ndarray, codes: np.ndarray, hashes: np.ndarray,
                     buckets: np.ndarray, feeds: np.ndarray, base: Any) -> None:
        for m in range(len(self.constant_)):
            mine = np.isin(buckets, np.flatnonzero((feeds == m).any(axis=1)))
            rows = order_by_content(np.flatnonzero(mine), hashes, codes)
            self.partition_sizes_[m] = len(rows)
            present = np.unique(codes[rows])
            if len(present) <= 1:
                self.constant_[m] = int(present[0]) if len(present) else 0
                self.members_.append(None)
                continue
            self.members_.append(clone(base).fit(x[rows], codes[rows]))

    def member_votes(self, X: np.ndarray) -> np.ndarray:
        """(N x models) class indices (into ``classes_``) voted by each base model."""
        check_is_fitted(self, "members_")
        x = np.asarray(X)
        votes = np.empty((len(x), len(self.members_)), dtype=np.int64)
        for m, model in enumerate(self.members_):
            votes[:, m] = self.constant_[m] if model is None else model.predict(x)
        return votes

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Vote shares per class (N x len(classes_))."""
        counts = vote_counts(self.member_votes(X), len(self.classes_))
        return np.asarray(counts / max(len(self.members_), 1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Plurality vote; ties go to the smaller class index."""
        counts = vote_counts(self.member_votes(X), len(self.classes_))
        return np.asarray(self.classes_[plurality(counts)])

    def certify(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, certified radius) per row: the radius counts training rows
        inserted, deleted or relabelled (see :mod:`poisonguard.train.certify`)."""
        votes = self.member_votes(X)
        counts = vote_counts(votes, len(self.classes_))
        pred = plurality(counts)
        if self._spread() == 1:
            radius = dpa_radius(counts, pred)
        else:
            radius = fa_radius(votes, members_of_buckets(int(self.n_partitions), self._spread()),
                               len(self.classes_), pred)
        return np.asarray(self.classes_[pred]), radius


class DPAClassifier(_PartitionEnsemble):
    """Deep Partition Aggregation (Levine & Feizi 2021) around any classifier.

    Parameters
    ----------
    estimator : scikit-learn classifier or None
        The base model, cloned once per partition (default: standardise + logistic
        regression). :class:`~poisonguard.train.TorchClassifier` gives the scan's CNN/MLP.
    n_partitions : int
        k: more partitions certify larger radii, each model sees fewer rows.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> x, y = load_breast_cancer(return_X_y=True)
    >>> model = DPAClassifier(n_partitions=5).fit(x, y)
    >>> prediction, radius = model.certify(x[:2])
    >>> bool((radius <= 2).all())
    True
    """

    def __init__(self, estimator: Any = None, *, n_partitions: int = 10) -> None:
        self.estimator = estimator
        self.n_partitions = n_partitions


class FAClassifier(_PartitionEnsemble):
    """Finite Aggregation (Wang, Levine & Feizi 2022): ``n_partitions * spread`` base
    models, each row's bucket feeding ``spread`` of them; each model still sees about
    1 / ``n_partitions`` of the rows, and radii are at least DPA's at the same k.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> x, y = load_breast_cancer(return_X_y=True)
    >>> model = FAClassifier(n_partitions=3, spread=2).fit(x, y)
    >>> model.predict(x[:2]).shape
    (2,)
    """

    def __init__(self, estimator: Any = None, *, n_partitions: int = 10, spread: int = 4) -> None:
        self.estimator = estimator
        self.n_partitions = n_partitions
        self.spread = spread

    def _spread(self) -> int:
        return int(self.spread)
