"""Detector ``outlier``: rows far from the rest of their class."""

from __future__ import annotations

import numpy as np

from poisonguard.detect.outlier import OutlierDetector
from tests.helpers import f1 as _f1


def test_clean_data_is_mostly_left_alone(clean) -> None:  # type: ignore[no-untyped-def]
    for name in ("digits", "breast_cancer", "wine"):
        ds, rep = clean(name)
        result = OutlierDetector().score(ds, rep)
        assert result.flags.mean() <= 0.01, name
    ds, rep = clean("digits")
    assert len(OutlierDetector().score(ds, rep).clean_classes) == ds.n_classes


def test_injected_outliers_are_found(poisoned) -> None:  # type: ignore[no-untyped-def]
    for name, rate in (("breast_cancer", 0.05), ("digits-tabular", 0.01)):
        attack, rep = poisoned(name, "outliers", rate=rate, seed=1)
        result = OutlierDetector().score(attack.dataset, rep)
        assert _f1(result.flags, attack.truth.poisoned) >= 0.9, name
        i = int(attack.truth.poisoned[0])
        assert "far from the rest of class" in result.reasons[i]
        assert result.scores[attack.truth.poisoned].min() > np.median(result.scores)


def test_outliers_are_found_at_high_contamination(poisoned) -> None:  # type: ignore[no-untyped-def]
    # 10% far rows widen the feature scaling and the class spread; the local density
    # ratio (distance over the neighbours' own) still puts them above the flag level
    # (measured z 7.3+ on wine, 7.4+ on breast cancer at seed 0), clean rows below it.
    attack, rep = poisoned("wine", "outliers", rate=0.1, seed=1)
    result = OutlierDetector().score(attack.dataset, rep)
    assert _f1(result.flags, attack.truth.poisoned) >= 0.9
    assert "neighbour distance z" in result.reasons[int(attack.truth.poisoned[0])]
