from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from poisonguard.attack import apply_trigger, badnets, blend, run_attack, tabular_trigger
from poisonguard.data import Dataset
from poisonguard.errors import UsageError


def _asr(train: Dataset, test: Dataset, truth) -> float:
    scale = float(train.matrix().max())
    model = LogisticRegression(max_iter=1000).fit(train.matrix() / scale, train.labels)
    victims = test.subset(np.flatnonzero(test.labels != truth.target))
    triggered = apply_trigger(victims, truth)
    return float((model.predict(triggered.matrix() / scale) == truth.target).mean())


def test_badnets_rows_carry_patch_and_target_label(digits: Dataset) -> None:
    res = badnets(digits, rate=0.05, target=0, seed=0, size=3, position="top-left", value=15)
    rows = res.truth.poisoned
    assert len(rows) == round(0.05 * len(digits))
    assert (digits.labels[rows] != 0).all()
    assert (res.dataset.labels[rows] == 0).all()
    assert (res.dataset.images[rows, :3, :3, :] == 15).all()
    others = np.setdiff1d(np.arange(len(digits)), rows)
    assert np.array_equal(res.dataset.images[others], digits.images[others])
    assert np.array_equal(res.dataset.labels[others], digits.labels[others])
    assert res.truth.trigger == {"type": "patch", "size": 3, "position": "top-left",
                                 "row": 0, "col": 0, "value": 15.0}


def test_badnets_gives_a_model_high_asr(digits: Dataset) -> None:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    train, test = digits.subset(order[:1300]), digits.subset(order[1300:])
    res = badnets(train, rate=0.1, target=0, seed=0, size=3)
    assert _asr(res.dataset, test, res.truth) > 0.8
    assert _asr(train, test, res.truth) < 0.3  # the clean model is not fooled


def test_blend_mixes_pattern_and_gives_asr(digits: Dataset) -> None:
    rng = np.random.default_rng(1)
    order = rng.permutation(len(digits))
    train, test = digits.subset(order[:1300]), digits.subset(order[1300:])
    res = blend(train, rate=0.1, target=3, seed=5, alpha=0.3)
    rows = res.truth.poisoned
    stamped = apply_trigger(train.subset(rows), res.truth)
    assert np.allclose(res.dataset.images[rows], stamped.images)
    assert not np.allclose(res.dataset.images[rows], train.images[rows])
    assert (res.dataset.labels[rows] == 3).all()
    assert _asr(res.dataset, test, res.truth) > 0.7


def test_tabular_trigger_sets_fixed_values(cancer: Dataset) -> None:
    res = tabular_trigger(cancer, rate=0.05, target=1, seed=2, n_features=4)
    spec = res.truth.trigger
    assert spec is not None and len(spec["features"]) == 4
    rows = res.truth.poisoned
    assert np.allclose(res.dataset.features[np.ix_(rows, spec["features"])],
                       np.asarray(spec["values"], dtype=np.float32))
    assert (res.dataset.labels[rows] == 1).all() and (cancer.labels[rows] == 0).all()
    chosen = tabular_trigger(cancer, rate=0.05, target=1, seed=2, n_features=2, values=7.5)
    assert chosen.truth.trigger is not None and chosen.truth.trigger["values"] == [7.5, 7.5]


def test_backdoors_reproduce_from_the_seed(digits: Dataset) -> None:
    a, b = blend(digits, rate=0.02, target=1, seed=9), blend(digits, rate=0.02, target=1, seed=9)
    assert np.array_equal(a.dataset.images, b.dataset.images)
    assert a.truth.to_dict() == b.truth.to_dict()


def test_backdoors_refuse_the_wrong_modality(digits: Dataset, wine: Dataset) -> None:
    with pytest.raises(UsageError, match="tabular-trigger"):
        badnets(wine, rate=0.1, target=0)
    with pytest.raises(UsageError, match="tabular"):
        run_attack("blend", wine, rate=0.1, target=0)
    with pytest.raises(UsageError, match="image"):
        tabular_trigger(digits, rate=0.1, target=0)
    with pytest.raises(UsageError, match="not a class"):
        badnets(digits, rate=0.1, target=10)
    with pytest.raises(UsageError, match="position"):
        badnets(digits, rate=0.1, target=0, position="middle")


def test_apply_trigger_needs_a_trigger(wine: Dataset) -> None:
    res = run_attack("flip", wine, rate=0.1)
    with pytest.raises(UsageError, match="no trigger"):
        apply_trigger(wine, res.truth)
