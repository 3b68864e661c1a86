"""scan and clean from the command line: outputs, exit codes, ledger entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.attack import tabular_trigger
from poisonguard.cli import app
from poisonguard.data import save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.findings import load_findings
from poisonguard.provenance import Ledger
from tests.helpers import FlagRowsDetector, registered

runner = CliRunner()


@pytest.fixture(autouse=True)
def _ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("POISONGUARD_LEDGER", str(path))
    return path


@pytest.fixture()
def wine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "wine.csv"
    save_dataset(builtin_dataset("wine"), path)
    return path


def test_scan_then_clean_with_stub_detector(wine_csv: Path, tmp_path: Path, _ledger: Path) -> None:
    class Flag3(FlagRowsDetector):
        name = "test-flag3"

        def __init__(self) -> None:
            super().__init__(rows=(3, 40, 41))

    with registered(Flag3):
        result = runner.invoke(app, ["scan", str(wine_csv), "--detectors", "test-flag3",
                                     "--out", str(tmp_path / "scan"), "--fail-on", "0.5"])
    assert result.exit_code == 1, result.output  # the gate fails: rows flagged above 0.5
    assert "3 flagged" in result.output
    # the stub tests no labels: classes without a flag are not called free of flips
    assert "not tested: label flips" in result.output
    assert "found clean" not in result.output
    findings = load_findings(tmp_path / "scan" / "findings.json")
    assert findings.flagged_indices() == [3, 40, 41]
    assert len(findings.rows) == 178

    result = runner.invoke(app, ["clean", str(wine_csv), "--findings",
                                 str(tmp_path / "scan" / "findings.json"),
                                 "--out", str(tmp_path / "clean.csv"),
                                 "--quarantine", str(tmp_path / "q.csv")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "clean.csv")) == 175
    assert len(pd.read_csv(tmp_path / "q.csv")) == 3

    entries = Ledger(str(_ledger)).entries()
    assert [e.kind for e in entries] == ["scan", "clean"]
    assert entries[1].outputs[0]["root"] and entries[1].inputs[0]["root"]


def test_real_scan_finds_tabular_trigger(tmp_path: Path) -> None:
    poisoned = tabular_trigger(builtin_dataset("breast_cancer"), rate=0.05, target=0, seed=3)
    data = tmp_path / "bc.parquet"
    save_dataset(poisoned.dataset, data)
    result = runner.invoke(app, ["scan", str(data), "--out", str(tmp_path / "s"), "--json",
                                 "--report", str(tmp_path / "s" / "report.html")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    flagged = set(load_findings(tmp_path / "s" / "findings.json").flagged_indices())
    truth = set(poisoned.truth.poisoned.tolist())
    recall = len(flagged & truth) / len(truth)
    precision = len(flagged & truth) / max(len(flagged), 1)
    assert summary["flagged"] == len(flagged)
    assert recall >= 0.8 and precision >= 0.6, (recall, precision)
    assert (tmp_path / "s" / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "{tmp}/missing.csv"], "no such file"),
        (["scan", "{tmp}/bad.csv"], "line 3: expected 2 fields, saw 3"),
        (["scan", "{tmp}/one.csv"], "has a single row"),
        (["scan", "{tmp}/ok.csv", "--detectors", "nope"], "unknown detector 'nope'"),
        (["scan", "{tmp}/ok.csv", "--fail-on", "3"], "--fail-on must be between 0 and 1"),
        (["scan", "{tmp}/ok.csv", "--max-fpr", "0"], "--max-fpr must be between 0 and 1"),
        (["scan", "{tmp}/ok.csv", "--max-fpr", "-1"], "--max-fpr must be between 0 and 1"),
        # what click itself refuses is one line too, not a boxed usage screen
        (["scan", "{tmp}/ok.csv", "--max-fpr", "abc"],
         "Invalid value for '--max-fpr': 'abc' is not a valid float"),
        (["scan", "{tmp}/ok.csv", "--no-such-option"], "No such option '--no-such-option'"),
        # a mistyped command: the suggestion once (click and typer each used to add it)
        (["scna", "{tmp}/ok.csv"], "No such command 'scna'. Did you mean 'scan'? (see"),
        (["ledger", "verfy"], "No such command 'verfy'. Did you mean 'verify'? (see"),
        (["clean", "{tmp}/ok.csv", "--findings", "{tmp}/ok.csv", "--out", "{tmp}/o.csv"],
         "invalid JSON"),
        # --out FILE: scan writes a folder; refused before any work, the file untouched
        (["scan", "{tmp}/ok.csv", "--out", "{tmp}/ok.csv"],
         "ok.csv: --out must be a folder (it is a file)"),
        (["scan", "{tmp}/ok.csv", "--out", "{tmp}/ok.csv/scan"],
         "cannot write there: " + "{tmp}/ok.csv is a file, not a folder"),
        (["scan", "{tmp}/ok.csv", "--report", "{tmp}"], "--report must be a file path"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "bad.csv").write_text("a,label\n1,0\n2,1,3\n")
    (tmp_path / "one.csv").write_text("a,label\n1,0\n2,0\n3,1\n")
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=10), "label": [0, 1] * 5}).to_csv(tmp_path / "ok.csv",
                                                                         index=False)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    needle = needle.replace("{tmp}", str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "poisonguard", *argv], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "scan").exists()
    assert not (tmp_path / "ledger.sqlite").exists()  # nothing recorded either
    assert len(pd.read_csv(tmp_path / "ok.csv")) == 10


def test_a_stray_string_in_a_number_column_is_named_on_stderr(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40).round(3).astype(str),
                          "b": rng.normal(size=40), "label": [0, 1] * 20})
    frame.loc[5, "a"] = "n/a\x1b[2J"
    frame.to_csv(tmp_path / "stray.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "poisonguard", "scan", str(tmp_path / "stray.csv"),
                           "--detectors", "outlier", "--out", str(tmp_path / "scan"),
                           "--no-ledger"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert ("note: column 'a' holds numbers but 1 cell is not (row 5: 'n/a\\x1b[2J'), so it is "
            "not used as a feature") in proc.stderr
    assert "\x1b" not in proc.stderr  # the escape is shown, never sent to the terminal

