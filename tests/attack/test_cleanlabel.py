from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import clean_label, feature_collision
from poisonguard.attack.flip import reference_model
from poisonguard.data import Dataset
from poisonguard.errors import UsageError


@pytest.mark.parametrize("perturb", [False, True])
def test_clean_label_keeps_labels_and_uses_target_rows(digits: Dataset, perturb: bool) -> None:
    res = clean_label(digits, rate=0.05, target=4, seed=0, perturb=perturb)
    rows = res.truth.poisoned
    assert np.array_equal(res.dataset.labels, digits.labels)
    assert (digits.labels[rows] == 4).all()
    assert (res.dataset.images[rows, -2:, -2:, :] == digits.images.max()).all()
    assert res.truth.original_labels == {}
    changed = np.flatnonzero((res.dataset.images != digits.images).any(axis=(1, 2, 3)))
    assert set(changed) <= set(rows.tolist())


def test_perturbation_makes_rows_harder_for_the_reference_model(digits: Dataset) -> None:
    plain = clean_label(digits, rate=0.05, target=4, seed=0, perturb=False)
    hard = clean_label(digits, rate=0.05, target=4, seed=0, perturb=True)
    scaler, model = reference_model(digits.matrix(), digits.labels)
    rows = hard.truth.poisoned

    def conf(ds: Dataset) -> float:
        return float(model.predict_proba(scaler.transform(ds.matrix()[rows]))[:, 4].mean())

    assert conf(hard.dataset) < conf(plain.dataset) - 0.2


def test_clean_label_tabular_and_bad_trigger(wine: Dataset) -> None:
    res = clean_label(wine, rate=0.05, target=1, seed=0)
    assert res.truth.trigger is not None and res.truth.trigger["type"] == "tabular"
    assert np.array_equal(res.dataset.labels, wine.labels)
    with pytest.raises(UsageError, match="does not apply"):
        clean_label(wine, rate=0.05, target=1, trigger="badnets")
    with pytest.raises(UsageError, match="only"):
        clean_label(wine, rate=0.5, target=2)  # class 2 has 48 rows, 89 needed


def test_feature_collision_pulls_poison_onto_the_victim(digits: Dataset) -> None:
    res = feature_collision(digits, rate=0.05, target=0, seed=0)
    p = res.truth.params
    victim = np.asarray(p["victim"], dtype=np.float32)[None]
    assert len(res.dataset) == len(digits) - 1
    assert p["victim_label"] != 0
    assert not (res.dataset.matrix() == victim).all(axis=1).any()  # held out
    rows = res.truth.poisoned
    assert np.array_equal(res.dataset.labels, np.delete(digits.labels, p["victim_index"]))
    assert (res.dataset.labels[rows] == 0).all()
    scaler, model = reference_model(res.dataset.matrix(), res.dataset.labels)

    def logit_gap(x: np.ndarray) -> float:
        f = model.decision_function(scaler.transform(x))
        return float(np.linalg.norm(f - model.decision_function(scaler.transform(victim)),
                                    axis=1).mean())

    others = np.delete(digits.matrix(), p["victim_index"], axis=0)[rows]
    assert logit_gap(res.dataset.matrix()[rows]) < 0.5 * logit_gap(others)
    assert model.predict(scaler.transform(victim))[0] == 0  # the attack succeeds
    clean_scaler, clean = reference_model(digits.matrix(), digits.labels)
    assert clean.predict(clean_scaler.transform(victim))[0] == p["victim_label"]
