"""explain(): the feature-collision poison is what drives the victim's prediction."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import AttackResult, run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.errors import DataError, UsageError
from poisonguard.influence import explain


def victim_query(result: AttackResult) -> Dataset:
    """The held-out victim row as a one-row dataset labelled with its true class."""
    params = result.truth.params
    values = np.asarray(params["victim"], dtype=np.float32).reshape(params["victim_shape"])
    data = result.dataset
    kind = {"images": values[None]} if data.images is not None else {"features": values[None]}
    return Dataset(labels=np.array([params["victim_label"]]), classes=data.classes,
                   feature_names=data.feature_names, source="victim", **kind)


@pytest.fixture(scope="module")
def collisions() -> list[AttackResult]:
    digits = builtin_dataset("digits")
    return [run_attack("feature-collision", digits, rate=0.01, target=0, seed=s)
            for s in range(3)]


@pytest.mark.parametrize("method", ["if", "knn-shapley"])
def test_feature_collision_poison_is_among_the_top_20(method: str,
                                                      collisions: list[AttackResult]) -> None:
    recalls = []
    for result in collisions:
        out = explain(result.dataset, victim_query(result), method=method, top=20)
        e = out.explanations[0]
        # The poison pushes the victim away from its true class, towards class 0.
        pushed = e.lowering if e.predicted == e.label else e.raising
        found = {r.row for r in pushed} & set(result.truth.poisoned.tolist())
        recalls.append(len(found) / len(result.truth.poisoned))
    assert min(recalls) >= 0.8, recalls


def test_results_name_rows_labels_and_findings() -> None:
    wine = builtin_dataset("wine")
    out = explain(wine, [0, 60], method="if", top=4)
    assert [e.query for e in out.explanations] == ["row 0", "row 60"]
    assert out.scores.shape == (2, len(wine))
    for e in out.explanations:
        assert len(e.raising) == 4 and all(r.score > 0 for r in e.raising)
        assert all(r.score < 0 for r in e.lowering)
        assert all(r.label == wine.classes[wine.labels[r.row]] for r in e.raising)
        assert all(r.finding is None for r in e.raising)
    assert out.to_dict()["queries"][0]["predicted"] == "0"


def test_bad_queries_are_refused() -> None:
    wine = builtin_dataset("wine")
    with pytest.raises(UsageError, match="not a row"):
        explain(wine, [len(wine)])
    with pytest.raises(UsageError, match="unknown method"):
        explain(wine, [0], method="shap")
    other = builtin_dataset("breast_cancer").subset([0, 1])
    with pytest.raises(DataError, match="encode"):
        explain(wine, other)
    with pytest.raises(UsageError, match="--model"):
        explain(wine, [0], method="if", model_dir="somewhere")
