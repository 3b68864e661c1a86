"""poisonguard influence from the command line: outputs, report, findings, ledger, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.attack import run_attack
from poisonguard.cli import app
from poisonguard.data import Dataset, save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.findings import load_findings
from poisonguard.provenance import Ledger
from poisonguard.train.storage import save_model
from poisonguard.train.torch_estimator import TorchClassifier

runner = CliRunner()


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("POISONGUARD_LEDGER", str(path))
    return path


def test_rows_of_a_table_with_their_findings(tmp_path: Path, _ledger: Path) -> None:
    data = tmp_path / "wine.csv"
    save_dataset(builtin_dataset("wine"), data)
    scan = runner.invoke(app, ["scan", str(data), "--detectors", "label,knn",
                               "--out", str(tmp_path / "scan")])
    assert scan.exit_code == 0, scan.output
    out = tmp_path / "inf"
    result = runner.invoke(app, ["influence", str(data), "--query", "5,140", "--top", "7",
                                 "--findings", str(tmp_path / "scan" / "findings.json"),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "row 5: predicted 0 (label 0)" in result.output
    doc = json.loads((out / "influence.json").read_text())
    assert doc["method"] == "if" and [q["query"] for q in doc["queries"]] == ["row 5", "row 140"]
    first = doc["queries"][0]
    assert len(first["raising"]) == 7 and all(r["score"] > 0 for r in first["raising"])
    assert all(r["finding"].startswith(("flagged", "not flagged")) for r in first["raising"])
    table = pd.read_csv(out / "influencers.csv")
    assert set(table["direction"]) == {"raises", "lowers"}
    html = (out / "report.html").read_text()
    assert "Rows that most raise class 0" in html and "its findings" in html
    entries = Ledger(str(_ledger)).entries()
    assert [e.kind for e in entries] == ["scan", "influence"]
    assert entries[1].details["method"] == "if" and entries[1].inputs[0]["root"]


def test_image_queries_from_a_file_show_thumbnails(tmp_path: Path) -> None:
    digits = builtin_dataset("digits")
    train, query = tmp_path / "digits.npz", tmp_path / "query.npz"
    save_dataset(digits.subset(np.arange(1, 400)), train)
    save_dataset(digits.subset([0]), query)
    result = runner.invoke(app, ["influence", str(train), "--query", str(query), "--method",
                                 "knn-shapley", "--top", "5", "--out", str(tmp_path / "o"),
                                 "--no-ledger", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    assert doc["queries"][0]["predicted"] == "0"
    assert {r["label"] for r in doc["queries"][0]["raising"]} == {"0"}
    html = (tmp_path / "o" / "report.html").read_text()
    assert html.count("<img") == 1 + 5 + len(doc["queries"][0]["lowering"])
    assert 'alt="query"' in html


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--query", "999"], "query row 999 is not a row of the data"),
        (["--query", "{tmp}/other.csv"], "do not encode like the training data"),
        (["--query", "1", "--method", "if", "--model", "{tmp}"], "--model is used by"),
        (["--query", "{tmp}/missing.csv"], "no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=10), "label": [0, 1] * 5}).to_csv(tmp_path / "ok.csv",
                                                                         index=False)
    pd.DataFrame({"b": [1.0, 2.0], "label": [0, 1]}).to_csv(tmp_path / "other.csv", index=False)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["influence", str(tmp_path / "ok.csv"), *argv,
                                 "--out", str(tmp_path / "o"), "--no-ledger"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "o").exists()


def test_tracin_with_a_trained_torch_model_folder(tmp_path: Path) -> None:
    data = tmp_path / "wine.csv"
    save_dataset(builtin_dataset("wine"), data)
    wine = builtin_dataset("wine")
    model = tmp_path / "model"  # the folder 'poisonguard train --base mlp' writes
    net = TorchClassifier(epochs=3).fit(wine.features, wine.labels)
    save_model(net, model, method="itlm", class_names=list(wine.classes), image_shape=None)
    result = runner.invoke(app, ["influence", str(data), "--query", "7", "--method", "tracin",
                                 "--model", str(model), "--top", "3", "--out",
                                 str(tmp_path / "o"), "--no-ledger", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "o" / "influence.json").read_text())
    assert doc["method"] == "tracin" and doc["meta"]["checkpoints"] == 1
    assert len(doc["queries"][0]["raising"]) == 3
    # without --model, TracIn trains checkpoints into OUT/model (safetensors only)
    result = runner.invoke(app, ["influence", str(data), "--query", "7", "--method", "tracin",
                                 "--layers", "all", "--epochs", "4", "--top", "3", "--out",
                                 str(tmp_path / "p"), "--no-ledger", "--quiet"])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "p" / "model").iterdir())
    assert files[-1] == "checkpoints.json" and all(
        f.endswith(".safetensors") for f in files[:-1])


def test_scan_with_a_target_input_runs_the_targeted_detector(tmp_path: Path) -> None:
    wine = builtin_dataset("wine")
    attack = run_attack("feature-collision", wine, rate=0.05, target=0, seed=0)
    params = attack.truth.params
    data, target = tmp_path / "poisoned.csv", tmp_path / "target.csv"
    save_dataset(attack.dataset, data)
    victim = np.asarray(params["victim"], dtype=np.float32)[None]
    save_dataset(Dataset(labels=np.array([params["victim_label"]]), classes=wine.classes,
                         features=victim, feature_names=wine.feature_names), target)
    result = runner.invoke(app, ["scan", str(data), "--detectors", "duplicate",
                                 "--target-input", str(target), "--out", str(tmp_path / "s"),
                                 "--no-ledger", "--json"])
    assert result.exit_code == 0, result.output
    findings = load_findings(tmp_path / "s" / "findings.json")
    assert list(findings.detectors) == ["duplicate", "influence"]
    flagged = set(findings.flagged_indices())
    poison = set(attack.truth.poisoned.tolist())
    assert len(flagged & poison) >= 0.8 * len(poison)
    assert any("targeted poisoning" in h for h in findings.summary["suspected_attacks"])


def test_the_scan_seed_reaches_the_targeted_detectors(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``--target-input`` builds the detectors itself: ``--seed`` must reach them too."""
    import importlib

    scan_module = importlib.import_module("poisonguard.scan")
    real, seen = scan_module.scan_dataset, []

    def recording(dataset: Dataset, **kwargs: object) -> object:
        seen.extend((d.name, d.get_params()["seed"]) for d in kwargs["detectors"])  # type: ignore[attr-defined]
        return real(dataset, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "scan_dataset", recording)
    wine = builtin_dataset("wine")
    data, target = tmp_path / "wine.csv", tmp_path / "target.csv"
    save_dataset(wine, data)
    save_dataset(wine.subset([0]), target)
    result = runner.invoke(app, ["scan", str(data), "--detectors", "outlier", "--seed", "3",
                                 "--target-input", str(target), "--out", str(tmp_path / "s"),
                                 "--no-ledger", "--json"])
    assert result.exit_code == 0, result.output
    assert seen == [("outlier", 3), ("influence", 3)]
