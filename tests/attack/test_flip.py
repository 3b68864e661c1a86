from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import label_flip
from poisonguard.attack.flip import reference_model
from poisonguard.data import Dataset
from poisonguard.errors import UsageError


@pytest.mark.parametrize("mode", ["random", "targeted", "adversarial"])
def test_flips_change_exactly_the_reported_rows(wine: Dataset, mode: str) -> None:
    res = label_flip(wine, rate=0.1, seed=3, mode=mode, target=1 if mode == "targeted" else None)
    changed = np.flatnonzero(res.dataset.labels != wine.labels)
    assert changed.tolist() == res.truth.poisoned.tolist()
    assert len(changed) == round(0.1 * len(wine))
    assert res.truth.original_labels == {int(i): int(wine.labels[i]) for i in changed}
    assert np.array_equal(res.dataset.features, wine.features)
    assert res.truth.n_added == 0 and len(res.dataset) == len(wine)
    # unchanged rows keep their ids, changed rows get new content ids
    assert res.dataset.ids is not None and wine.ids is not None
    same = np.setdiff1d(np.arange(len(wine)), changed)
    assert (res.dataset.ids[same] == wine.ids[same]).all()
    assert (res.dataset.ids[changed] != wine.ids[changed]).all()


def test_seed_reproduces_and_differs(digits: Dataset) -> None:
    a = label_flip(digits, rate=0.05, seed=7)
    b = label_flip(digits, rate=0.05, seed=7)
    c = label_flip(digits, rate=0.05, seed=8)
    assert np.array_equal(a.dataset.labels, b.dataset.labels)
    assert a.truth.to_dict() == b.truth.to_dict()
    assert not np.array_equal(a.truth.poisoned, c.truth.poisoned)


def test_targeted_moves_source_to_target(wine: Dataset) -> None:
    res = label_flip(wine, rate=0.1, seed=0, mode="targeted", source=0, target=2)
    rows = res.truth.poisoned
    assert (wine.labels[rows] == 0).all()
    assert (res.dataset.labels[rows] == 2).all()
    assert res.truth.target == 2 and res.truth.params["source"] == 0


def test_adversarial_picks_rows_near_the_boundary(digits: Dataset) -> None:
    res = label_flip(digits, rate=0.02, seed=0, mode="adversarial")
    scaler, model = reference_model(digits.matrix(), digits.labels, seed=0)
    proba = model.predict_proba(scaler.transform(digits.matrix()))
    own = proba[np.arange(len(digits)), digits.labels]
    others = np.where(np.eye(10, dtype=bool)[digits.labels], -1.0, proba)
    margin = own - others.max(axis=1)
    k = len(res.truth.poisoned)
    # the flipped rows are exactly those with the smallest margin; they go to the runner-up
    assert margin[res.truth.poisoned].max() <= np.sort(margin)[k - 1] + 1e-9
    assert (res.dataset.labels[res.truth.poisoned] == others.argmax(axis=1)[
        res.truth.poisoned]).all()


def test_at_least_one_row_and_rate_bounds(wine: Dataset) -> None:
    assert len(label_flip(wine, rate=0.0001, seed=0).truth.poisoned) == 1
    for rate in (0.0, -0.1, 0.51, 2.0):
        with pytest.raises(UsageError, match="rate"):
            label_flip(wine, rate=rate)


def test_bad_modes_and_targets(wine: Dataset) -> None:
    with pytest.raises(UsageError, match="mode"):
        label_flip(wine, rate=0.1, mode="nasty")
    with pytest.raises(UsageError, match="target"):
        label_flip(wine, rate=0.1, mode="targeted")
    with pytest.raises(UsageError, match="not a class"):
        label_flip(wine, rate=0.1, mode="targeted", target=9)
    with pytest.raises(UsageError, match="only"):
        label_flip(wine, rate=0.5, mode="targeted", source=2, target=0)
