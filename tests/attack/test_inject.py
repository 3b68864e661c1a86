from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import inject_mislabeled, inject_near_duplicates, inject_outliers
from poisonguard.data import Dataset


@pytest.mark.parametrize("attack", [inject_outliers, inject_mislabeled, inject_near_duplicates])
def test_injected_rows_are_appended_and_originals_untouched(attack, digits: Dataset) -> None:
    res = attack(digits, rate=0.05, seed=2)
    n = len(digits)
    m = res.truth.n_added
    assert len(res.dataset) == n + m
    assert m / (n + m) == pytest.approx(0.05, abs=1e-3)
    assert res.truth.poisoned.tolist() == list(range(n, n + m))
    assert np.array_equal(res.dataset.images[:n], digits.images)
    assert np.array_equal(res.dataset.labels[:n], digits.labels)
    again = attack(digits, rate=0.05, seed=2)
    assert np.array_equal(again.dataset.images, res.dataset.images)
    assert again.truth.to_dict() == res.truth.to_dict()


def test_tabular_outliers_lie_far_out(wine: Dataset) -> None:
    res = inject_outliers(wine, rate=0.1, seed=0)
    x = wine.features
    z = np.abs((res.dataset.features[len(wine):] - x.mean(0)) / x.std(0))
    assert (z >= 2.9).all()  # every feature at least ~3 sd out
    assert np.abs((x - x.mean(0)) / x.std(0)).mean() < 1.0


def test_mislabeled_rows_look_like_another_class(digits: Dataset) -> None:
    from sklearn.linear_model import LogisticRegression

    res = inject_mislabeled(digits, rate=0.05, seed=0)
    n = len(digits)
    model = LogisticRegression(max_iter=500).fit(digits.matrix() / 16, digits.labels)
    pred = model.predict(res.dataset.matrix()[n:] / 16)
    given = res.dataset.labels[n:]
    assert (pred != given).mean() > 0.8  # in distribution of one class, labelled another


def test_near_duplicates_copy_a_real_row_with_another_label(wine: Dataset) -> None:
    res = inject_near_duplicates(wine, rate=0.1, seed=1)
    n = len(wine)
    src = np.asarray(res.truth.params["sources"])
    new = res.dataset.features[n:]
    rel = np.abs(new - wine.features[src]) / wine.features.std(0)
    assert rel.max() < 0.1
    assert (res.dataset.labels[n:] != wine.labels[src]).all()
