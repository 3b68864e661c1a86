from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from poisonguard.attack import Truth, badnets, label_flip, load_truth, save_truth
from poisonguard.data import Dataset
from poisonguard.errors import DataError


def test_truth_round_trips_through_json(tmp_path: Path, digits: Dataset) -> None:
    truth = badnets(digits, rate=0.02, target=3, seed=4).truth
    path = tmp_path / "truth.json"
    save_truth(truth, path)
    back = load_truth(path)
    assert back.to_dict() == truth.to_dict()
    assert back.trigger == truth.trigger
    assert back.original_labels == truth.original_labels
    assert np.array_equal(back.poisoned, truth.poisoned)
    assert back.mask.sum() == len(truth.poisoned)


def test_truth_file_has_no_temp_leftovers(tmp_path: Path, wine: Dataset) -> None:
    save_truth(label_flip(wine, rate=0.1, seed=0).truth, tmp_path / "t.json")
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


@pytest.mark.parametrize("content", [
    "not json", "[1, 2, 3]", json.dumps({"format": "other"}),
    json.dumps({"format": "poisonguard-truth", "kind": "flip"}),
    json.dumps({"format": "poisonguard-truth", "kind": "flip", "seed": 0, "params": {},
                "poisoned": [5], "n_rows": 3, "original_labels": {}}),
])
def test_load_truth_rejects_garbage_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match="bad.json"):
        load_truth(path)


def test_load_truth_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.json"):
        load_truth(tmp_path / "nope.json")


def test_truth_sorts_and_dedupes_indices() -> None:
    t = Truth(kind="x", seed=0, params={}, poisoned=np.array([4, 1, 4]), n_rows=6, n_added=2)
    assert t.poisoned.tolist() == [1, 4]
    assert t.added.tolist() == [4, 5]
