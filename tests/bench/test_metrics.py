from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import Truth
from poisonguard.bench import clean_flag_rate, detection_metrics, filter_bias, score_flags
from poisonguard.errors import DataError


def test_detection_metrics_by_hand() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    flags = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.1, 0.2, 0.1, 0.1, 0.4, 0.0])
    m = detection_metrics(flags, truth, scores)
    assert (m["tp"], m["fp"], m["fn"], m["flagged"]) == (2, 1, 1, 3)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["fpr"] == pytest.approx(1 / 7)
    # ranks: poison scores 0.9, 0.8, 0.3 vs clean 0.7, 0.4, 0.2, 0.1, 0.1, 0.1, 0.0
    assert m["auroc"] == pytest.approx((7 + 7 + 5) / 21)
    assert 0 < m["ap"] <= 1


def test_undefined_values_are_none() -> None:
    m = detection_metrics(np.zeros(4, bool), np.zeros(4, bool), np.zeros(4))
    assert m["precision"] is None and m["recall"] is None and m["auroc"] is None
    assert m["fpr"] == 0.0


def test_filter_bias_spread_vs_piled() -> None:
    labels = np.repeat([0, 1], 50)
    even = np.zeros(100, bool)
    even[[0, 1, 50, 51]] = True
    piled = np.zeros(100, bool)
    piled[[0, 1, 2, 3]] = True
    assert filter_bias(even, labels, 2)["bias"] == pytest.approx(0.0)
    b = filter_bias(piled, labels, 2)
    assert b["bias"] == pytest.approx(0.5)
    assert b["fpr_by_class"] == {"0": 0.08, "1": 0.0} and b["max_class_fpr"] == 0.08
    assert filter_bias(np.zeros(100, bool), labels, 2)["bias"] is None


def test_score_flags_uses_truth_and_checks_length() -> None:
    truth = Truth(kind="flip", seed=0, params={}, poisoned=np.array([0, 3]), n_rows=6)
    flags = np.array([1, 0, 0, 1, 1, 0], bool)
    m = score_flags(flags, truth, labels=np.array([0, 0, 0, 1, 1, 1]), n_classes=2)
    assert m["tp"] == 2 and m["fp"] == 1
    assert m["filter_bias"]["fpr_by_class"] == {"0": 0.0, "1": 0.5}
    with pytest.raises(DataError, match="6"):
        score_flags(flags[:5], truth)
    assert clean_flag_rate(flags) == pytest.approx(0.5)
