"""``poisonguard train`` with every method and ``poisonguard certify``, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.provenance import Ledger

runner = CliRunner()


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X=d.images[:400], y=d.target[:400])
    return path


@pytest.mark.parametrize(("method", "extra"), [
    ("dpa", ["--partitions", "5"]), ("fa", ["--partitions", "3", "--spread", "2"]),
    ("itlm", []), ("dp", ["--epsilon", "2", "--epochs", "3"]), ("abl", ["--epochs", "3"]),
])
def test_train_every_method_writes_model_card_and_ledger(method: str, extra: list[str],
                                                         tmp_path: Path) -> None:
    data = "builtin:breast_cancer"
    ledger = tmp_path / "ledger.sqlite"
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", data, "--method", method, "--out", str(out),
                                 "--ledger", str(ledger), *extra])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["method"] == method
    assert card["data"]["root"] and card["data"]["rows"] == 569
    assert 0.8 < card["held_out_accuracy"] <= 1.0
    assert card["files"]["model.json"]
    if method == "dp":
        assert 0 < card["epsilon"] <= 2.0 and card["delta"] > 0
    if method in ("itlm", "abl"):
        findings = json.loads((out / "findings.json").read_text())
        assert sum(r["flagged"] for r in findings["rows"]) == card["flagged_rows"] > 0
    entries = Ledger(ledger).entries()
    assert entries[-1].kind == "train" and entries[-1].details["method"] == method


def test_certify_images_writes_radius_per_row(digits_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "dpa"
    result = runner.invoke(app, ["train", str(digits_npz), "--method", "dpa", "--base",
                                 "logistic", "--partitions", "5", "--out", str(out),
                                 "--no-ledger"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert len(card["data"]["sha256"]) == 64
    certs = tmp_path / "certs.parquet"
    result = runner.invoke(app, ["certify", str(out), str(digits_npz), "--out", str(certs)])
    assert result.exit_code == 0, result.output
    assert "certified accuracy at radius  1" in result.output
    table = pd.read_parquet(certs)
    assert list(table.columns) == ["index", "id", "label", "prediction", "radius", "correct"]
    assert len(table) == 400 and table.radius.between(0, 2).all()


def test_certify_refuses_models_without_certificates_and_wrong_data(tmp_path: Path) -> None:
    out = tmp_path / "itlm"
    assert runner.invoke(app, ["train", "builtin:wine", "--method", "itlm", "--out", str(out),
                               "--no-ledger"]).exit_code == 0
    result = runner.invoke(app, ["certify", str(out), "builtin:wine", "--out",
                                 str(tmp_path / "c.parquet")])
    assert result.exit_code == 2 and "no certificate" in result.output
    dpa = tmp_path / "dpa"
    assert runner.invoke(app, ["train", "builtin:wine", "--method", "dpa", "--partitions", "3",
                               "--out", str(dpa), "--no-ledger"]).exit_code == 0
    result = runner.invoke(app, ["certify", str(dpa), "builtin:breast_cancer", "--out",
                                 str(tmp_path / "c.parquet")])
    assert result.exit_code == 2 and "expects" in result.output
    assert not (tmp_path / "c.parquet").exists()
    again = runner.invoke(app, ["train", "builtin:wine", "--out", str(dpa), "--no-ledger"])
    assert again.exit_code == 2 and "not empty" in again.output
