"""The profile and check commands: exit codes 0 / 1 / 2, JSON, tables, merging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from poisonguard.attack import tabular_trigger
from poisonguard.cli import app
from poisonguard.data import save_dataset
from poisonguard.datasets import builtin_dataset
from tests.validate.conftest import split

runner = CliRunner()


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    base, new = split(builtin_dataset("breast_cancer"), seed=7)
    save_dataset(base, tmp_path / "base.parquet")
    save_dataset(new, tmp_path / "new.csv")
    bad = tabular_trigger(new, rate=0.1, target=1, seed=0).dataset
    save_dataset(bad, tmp_path / "bad.npz")
    return tmp_path / "base.parquet", tmp_path / "new.csv", tmp_path / "bad.npz"


def test_profile_then_check_pass_and_fail(tmp_path: Path) -> None:
    base, new, bad = _files(tmp_path)
    prof = tmp_path / "base.json"
    r = runner.invoke(app, ["profile", str(base), "--out", str(prof), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == 284 and prof.exists()
    r = runner.invoke(app, ["check", str(new), "--baseline", str(prof)])
    assert r.exit_code == 0, r.output
    assert "Gate PASSED" in r.stdout
    out = tmp_path / "report.json"
    r = runner.invoke(app, ["check", str(bad), "--baseline", str(prof), "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "Gate FAILED" in r.stdout and "fail" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["passed"] is False and doc["findings"][0]["severity"] == "fail"
    trig = [f for f in doc["findings"] if f["check"] == "trigger"][0]
    assert trig["class"] == "1" and trig["n_rows"] == 28 and len(trig["rows"]) == 28
    r = runner.invoke(app, ["check", str(bad), "--baseline", str(prof), "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["passed"] is False


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    base, new, _ = _files(tmp_path)
    prof = tmp_path / "base.json"
    runner.invoke(app, ["profile", str(base), "--out", str(prof)])
    cases = [
        ["check", str(tmp_path / "missing.csv"), "--baseline", str(prof)],
        ["check", str(new), "--baseline", str(new)],
        ["check", str(new), "--baseline", str(prof), "--label", "nope"],
        ["profile", str(base), "--label", "nope", "--out", str(tmp_path / "x.json")],
    ]
    (tmp_path / "outdir").mkdir()
    cases += [  # --out a folder: refused before any work
        ["check", str(new), "--baseline", str(prof), "--out", str(tmp_path / "outdir")],
        ["profile", str(base), "--out", str(tmp_path / "outdir")],
    ]
    cfg = tmp_path / "gate.toml"
    cfg.write_text("alpha = 0.01\nbogus = true\n")
    cases.append(["check", str(new), "--baseline", str(prof), "--config", str(cfg)])
    for args in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        err = r.stderr.strip()
        assert err.startswith("poisonguard: error:") and "\n" not in err
    assert "unknown key 'bogus'" in r.stderr and str(cfg) in r.stderr


def test_profile_merges_partitions(tmp_path: Path) -> None:
    d = builtin_dataset("wine")
    save_dataset(d.subset(np.arange(0, 100)), tmp_path / "a.csv")
    save_dataset(d.subset(np.arange(100, len(d))), tmp_path / "b.csv")
    save_dataset(d, tmp_path / "all.csv")
    for name, args in [("a", ["a.csv"]), ("b", ["b.csv"]), ("all", ["all.csv"])]:
        r = runner.invoke(app, ["profile", *(str(tmp_path / a) for a in args),
                                "--out", str(tmp_path / f"{name}.json"), "--quiet"])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["profile", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                            "--out", str(tmp_path / "merged.json"), "--quiet"])
    assert r.exit_code == 0, r.output
    merged = json.loads((tmp_path / "merged.json").read_text())
    whole = json.loads((tmp_path / "all.json").read_text())
    assert merged["per_class"][1]["sample"] == whole["per_class"][1]["sample"]
    assert merged["fingerprints"] == whole["fingerprints"]
    assert merged["summary"]["labels"] == whole["summary"]["labels"]
