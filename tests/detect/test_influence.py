"""Detector influence: self-influence finds flips; targeted mode finds feature collision."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.detect import get_detector
from poisonguard.errors import UsageError
from poisonguard.represent import Representation


def _rep(dataset: Dataset) -> Representation:
    """The detector reads the data itself; a placeholder representation is enough."""
    x = dataset.matrix()
    return Representation(features=x, embedding=x,
                          proba=np.full((len(x), dataset.n_classes), 1 / dataset.n_classes))


def test_self_influence_finds_label_flips_and_leaves_clean_digits_alone() -> None:
    digits = builtin_dataset("digits")
    clean = get_detector("influence").score(digits, _rep(digits))
    assert clean.n_flagged == 0 and clean.clean_classes == tuple(range(10))
    flipped = run_attack("flip", digits, rate=0.05, seed=0)
    result = get_detector("influence").score(flipped.dataset, _rep(flipped.dataset))
    hits = result.flags[flipped.truth.poisoned].sum()
    assert hits / len(flipped.truth.poisoned) >= 0.6
    assert hits / result.n_flagged >= 0.9
    assert "without this row" in next(iter(result.reasons.values()))


def test_targeted_mode_lists_the_feature_collision_poison() -> None:
    attack = run_attack("feature-collision", builtin_dataset("digits"), rate=0.01, target=0,
                        seed=1)
    data, params = attack.dataset, attack.truth.params
    detector = get_detector("influence", target=np.array([params["victim"]]),
                            target_label=(params["victim_label"],))
    result = detector.score(data, _rep(data))
    poison = attack.truth.poisoned
    assert result.flags[poison].mean() >= 0.8
    assert result.n_flagged <= 20 and result.clean_classes == ()
    assert result.hypotheses and "away from class" in result.hypotheses[0]


def test_targets_must_fit_the_data() -> None:
    wine = builtin_dataset("wine")
    with pytest.raises(UsageError, match="target rows have 3 values"):
        get_detector("influence", target=[[1.0, 2.0, 3.0]], target_label=(0,)).score(
            wine, _rep(wine))
    with pytest.raises(UsageError, match="one class code"):
        get_detector("influence", target=wine.features[:2], target_label=(0,)).score(
            wine, _rep(wine))
