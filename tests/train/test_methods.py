"""Trimmed loss, ABL and DP-SGD: what each promises, on real data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from poisonguard.attack import apply_trigger, run_attack
from poisonguard.datasets import builtin_dataset
from poisonguard.errors import UsageError
from poisonguard.train import (
    ABLClassifier,
    DPAClassifier,
    DPSGDClassifier,
    FAClassifier,
    TorchClassifier,
    TrimmedLossClassifier,
)


@pytest.mark.parametrize("estimator", [
    DPAClassifier(n_partitions=3), FAClassifier(n_partitions=2, spread=2),
    TrimmedLossClassifier(trim_fraction=0.2), TorchClassifier(width=4),
    ABLClassifier(isolation_fraction=0.1), DPSGDClassifier(epsilon=2.0),
])
def test_estimators_are_scikit_learn_compatible(estimator: object) -> None:
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()  # type: ignore[attr-defined]
    assert type(copy) is type(estimator)


def test_trimmed_loss_leaves_out_flipped_labels() -> None:
    attack = run_attack("flip", builtin_dataset("breast_cancer"), rate=0.1, seed=0)
    x, y = attack.dataset.matrix(), attack.dataset.labels
    model = TrimmedLossClassifier(trim_fraction=0.1, n_rounds=3).fit(x, y)
    caught = attack.truth.mask[model.trimmed_].mean()
    assert len(model.trimmed_) == round(0.1 * len(y))
    assert caught > 0.6  # measured on attack seeds 0-2: 0.86-0.89; chance is 0.1


def test_abl_lowers_badnets_success_on_digits() -> None:
    # measured with split and attack seeds 0-2 (RESULTS.md has seed 0): plain ASR
    # 1.00, ABL 0.22-0.46; clean accuracy 0.8-2.6 points lower. At 5% poison ABL
    # isolates too few poisoned rows on digits and does not help (docs/train.md).
    digits = builtin_dataset("digits")
    train_rows, test_rows = train_test_split(np.arange(len(digits)), test_size=0.3,
                                             random_state=0, stratify=digits.labels)
    test = digits.subset(test_rows)
    attack = run_attack("badnets", digits.subset(train_rows), rate=0.1, target=0, seed=0)
    x, y = attack.dataset.matrix(), attack.dataset.labels
    triggered = apply_trigger(test, attack.truth).matrix()[test.labels != 0]
    results = {}
    for name, model in [("plain", TorchClassifier(image_shape=(8, 8, 1))),
                        ("abl", ABLClassifier(image_shape=(8, 8, 1)))]:
        model.fit(x, y)
        results[name] = (float((model.predict(test.matrix()) == test.labels).mean()),
                         float((model.predict(triggered) == 0).mean()))
    assert results["plain"][1] > 0.9
    assert results["abl"][1] < results["plain"][1] - 0.3
    assert results["abl"][0] >= results["plain"][0] - 0.05


def test_dp_sgd_spends_at_most_the_budget_and_still_learns() -> None:
    data = builtin_dataset("breast_cancer")
    model = DPSGDClassifier(epsilon=2.0, epochs=5).fit(data.matrix(), data.labels)
    assert 0 < model.epsilon_ <= 2.0
    assert model.delta_ == pytest.approx(1 / (10 * len(data)))
    assert (model.predict(data.matrix()) == data.labels).mean() > 0.8


def test_dp_sgd_refuses_batchnorm_unless_replaced() -> None:
    digits = builtin_dataset("digits")
    x, y = digits.matrix()[:200], digits.labels[:200]
    with pytest.raises(UsageError, match="BatchNorm"):
        DPSGDClassifier(image_shape=(8, 8, 1), replace_batchnorm=False, epochs=1).fit(x, y)
    model = DPSGDClassifier(image_shape=(8, 8, 1), epochs=1).fit(x, y)
    kinds = {type(m).__name__ for m in model.net_.modules()}
    assert "GroupNorm" in kinds and not any("BatchNorm" in k for k in kinds)
