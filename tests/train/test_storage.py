"""Model folders: every kind round-trips with identical predictions; no pickle is
ever written or loaded; untrusted or tampered content is refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from poisonguard.datasets import builtin_dataset
from poisonguard.errors import PoisonguardError, UsageError
from poisonguard.provenance import scan_model
from poisonguard.train import (
    DPAClassifier,
    FAClassifier,
    TorchClassifier,
    TrimmedLossClassifier,
    load_model,
    save_model,
)

CASES = {
    "dpa-logistic": lambda: DPAClassifier(n_partitions=3),
    "fa-mlp": lambda: FAClassifier(TorchClassifier(epochs=2), n_partitions=2, spread=2),
    "itlm-logistic": lambda: TrimmedLossClassifier(n_rounds=1),
    "torch-mlp": lambda: TorchClassifier(epochs=2),
}


def _no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_without_pickle(case: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = builtin_dataset("breast_cancer")
    x, y = data.matrix(), data.labels
    model = CASES[case]().fit(x, y)
    save_model(model, tmp_path, method=case, class_names=list(data.classes), image_shape=None)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:  # read by format, not by name: a pickle here would be found and refused
            verdict = scan_model(path)
            assert verdict.safe and verdict.format in ("skops", "safetensors"), path
    _no_pickle(monkeypatch)
    loaded, doc = load_model(tmp_path)
    assert doc["method"] == case
    assert np.array_equal(loaded.predict(x), model.predict(x))
    if hasattr(model, "certify"):
        assert np.array_equal(loaded.certify(x)[1], model.certify(x)[1])


def test_models_skops_does_not_trust_are_refused_when_saving(tmp_path: Path) -> None:
    data = builtin_dataset("breast_cancer")
    model = DPAClassifier(RandomForestClassifier(n_estimators=2, random_state=0),
                          n_partitions=2).fit(data.matrix(), data.labels)
    with pytest.raises(UsageError, match="does not trust"):
        save_model(model, tmp_path, method="dpa", class_names=["0", "1"], image_shape=None)


def test_tampered_or_foreign_folders_are_refused(tmp_path: Path) -> None:
    data = builtin_dataset("breast_cancer")
    model = DPAClassifier(n_partitions=2).fit(data.matrix(), data.labels)
    save_model(model, tmp_path, method="dpa", class_names=["0", "1"], image_shape=None)
    doc = json.loads((tmp_path / "model.json").read_text())
    doc["model"]["members"][0] = {"file": "../../etc/passwd.skops"}
    (tmp_path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(PoisonguardError, match="bad member path"):
        load_model(tmp_path)
    (tmp_path / "members" / "m0001.skops").write_bytes(pickle.dumps({"a": 1}))
    doc["model"]["members"][0] = {"file": "members/m0001.skops"}
    (tmp_path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(PoisonguardError):
        load_model(tmp_path)
    with pytest.raises(PoisonguardError, match="not a model folder"):
        load_model(tmp_path / "members")
