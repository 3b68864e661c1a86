"""Detector ``trigger``: dirty-label backdoors in input space.

Clean data comes with its real representation (the session's ``clean`` fixture);
poisoned data gets only the part these detectors read, ``features`` (the same
``scale_features`` the real representations use), so that no network is trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from poisonguard.attack import AttackResult, badnets, blend, clean_label, tabular_trigger
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, synthetic
from poisonguard.detect import DEFAULT_DETECTORS, available_detectors
from poisonguard.detect.trigger import TriggerDetector
from poisonguard.detect.trigger_search import mine_triggers, rows_matching
from poisonguard.errors import UsageError
from poisonguard.represent import Representation, scale_features


def features_only(dataset: Dataset) -> Representation:
    f = scale_features(dataset.matrix())
    proba = np.full((len(dataset), dataset.n_classes), 1.0 / dataset.n_classes)
    return Representation(features=f, embedding=f, proba=proba, model="input-features")


def f1(flags: np.ndarray, poisoned: np.ndarray) -> float:
    truth = np.zeros(len(flags), dtype=bool)
    truth[poisoned] = True
    return 2 * int((flags & truth).sum()) / (int(flags.sum()) + int(truth.sum()))


def attacked(fn: Any, name: str, **params: Any) -> tuple[AttackResult, Representation]:
    res = fn(builtin_dataset(name), target=0, seed=0, **params)
    return res, features_only(res.dataset)


def test_registered_and_default() -> None:
    assert available_detectors()["trigger"] is TriggerDetector
    assert "trigger" in DEFAULT_DETECTORS


@pytest.mark.parametrize("name", ["digits", "digits-tabular", "breast_cancer", "wine"])
def test_clean_builtin_data_is_left_alone(clean, name: str) -> None:  # type: ignore[no-untyped-def]
    ds, rep = clean(name)
    result = TriggerDetector().score(ds, rep)
    assert result.n_flagged <= 0.01 * len(ds)  # measured: 0
    assert result.clean_classes == tuple(range(ds.n_classes))
    assert result.hypotheses == ()
    assert result.scores.max() < 0.5


def test_clean_synthetic_data_is_left_alone() -> None:
    ds = synthetic(3000, 20, 4, seed=3)
    result = TriggerDetector().score(ds, features_only(ds))
    assert result.n_flagged == 0
    assert result.clean_classes == (0, 1, 2, 3)


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_badnets_patch_on_digits(rate: float) -> None:
    res, rep = attacked(badnets, "digits", rate=rate)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0
    assert 0 not in result.clean_classes and len(result.clean_classes) == 9
    n = len(res.truth.poisoned)
    assert result.hypotheses == (f"backdoor -> class 0: {n} rows share a 2x2 patch at row 6, "
                                 "column 6",)
    trig = result.meta["triggers"][0]
    assert trig["class"] == 0 and trig["features"] == [54, 55, 62, 63]
    assert trig["values"] == [16.0] * 4 and trig["pixels"][0] == [6, 6, 0]
    i = int(res.truth.poisoned[0])
    assert "share (6,6),(6,7),(7,6),(7,7)=16" in result.reasons[i]
    # The masked model names the class each row came from.
    originals = res.truth.original_labels
    right = [result.suggested_labels[j] == originals[j] for j in result.reasons if j in originals]
    assert np.mean(right) >= 0.8


def test_larger_patch_at_another_corner() -> None:
    res, rep = attacked(badnets, "digits", rate=0.01, size=3, position="top-left")
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9
    assert "3x3 patch at row 0, column 0" in result.hypotheses[0]


def test_blend_on_blank_background_is_found() -> None:
    # The blended pattern survives exactly where digits are blank (value 0).
    res, rep = attacked(blend, "digits", rate=0.05)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0


@pytest.mark.parametrize(("name", "rate"), [("breast_cancer", 0.05), ("digits-tabular", 0.01)])
def test_tabular_trigger(name: str, rate: float) -> None:
    res, rep = attacked(tabular_trigger, name, rate=rate)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0
    spec = res.truth.params["trigger"]
    assert set(spec["features"]) <= set(result.meta["triggers"][0]["features"])
    assert "fixed values in" in result.hypotheses[0]


def test_clean_label_rows_still_look_like_their_class() -> None:
    # No masking test can fire: the rows belong to the target class. cleanlabel's job.
    res, rep = attacked(clean_label, "digits", rate=0.05)
    result = TriggerDetector().score(res.dataset, rep)
    assert result.n_flagged <= 0.01 * len(res.dataset)


def test_mining_finds_a_planted_item_set() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    y = rng.integers(0, 2, size=500)
    x[:20, [1, 4]] = [7.0, -3.0]
    y[:20] = 1
    cands = mine_triggers(x, y, 2)
    assert len(cands) == 1
    assert cands[0].core == (1, 4) and cands[0].label == 1 and cands[0].purity == 1.0
    np.testing.assert_array_equal(rows_matching(x, (1, 4), (7.0, -3.0)), np.arange(20))


def test_bad_parameters_are_usage_errors() -> None:
    ds = synthetic(300, 5, 2)
    for params in ({"alpha": 0.0}, {"min_other": 0.0}, {"min_purity": 1.5}, {"min_rows": 1},
                   {"max_rows": 10}):
        with pytest.raises(UsageError):
            TriggerDetector(**params).score(ds, features_only(ds))
