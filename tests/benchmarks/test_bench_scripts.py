"""Smoke tests of the scan benchmarks: each script's main runs on a tiny grid and
writes pages holding the scan's own numbers, with the references optional."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks import _references, bench_scan_quality, bench_scan_speed
from benchmarks._speed_child import StageTimer


def test_quality_quick_writes_scan_numbers_per_seed_and_skips_a_missing_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = _references.importlib.util.find_spec
    monkeypatch.setattr(_references.importlib.util, "find_spec",
                        lambda name, *a: None if name == "art" else real_find_spec(name, *a))
    status = bench_scan_quality.main([
        "--quick", "--datasets", "wine", "--attacks", "tabular-trigger", "--rates", "0.1",
        "--references", "art_spectral,isolation_forest", "--seeds", "0,1",
        "--out-dir", str(tmp_path)])
    assert status == 0
    assert "reference art_spectral skipped" in capsys.readouterr().out
    payload = json.loads((tmp_path / "scan-quality.json").read_text())
    assert payload["meta"]["seeds"] == [0, 1] and payload["meta"]["finished"]
    assert [c["seed"] for c in payload["cases"]] == [0, 1]
    assert [c["seed"] for c in payload["clean"]] == [0, 1]
    case = payload["cases"][0]
    scan = case["methods"]["scan"]
    assert case["dataset"] == "wine" and case["poisoned"] == 18
    assert set(case["methods"]) == {"scan", "isolation_forest"}
    assert 0.0 <= scan["f1"] <= 1.0 and scan["tp"] + scan["fn"] == 18
    clean = payload["clean"][0]
    assert clean["methods"]["scan"]["fpr"] is not None and clean["oof_accuracy"] > 0.5
    assert isinstance(clean["hypotheses"], list)
    page = (tmp_path / "scan-quality.md").read_text()
    assert f"| wine | tabular-trigger | 0.1 | 0 | 18 | {scan['precision']:.3f} |" in page
    assert "| target | seed 0 | seed 1 |" in page
    assert "adversarial-robustness-toolbox not installed" in page


def test_quality_no_clean_leaves_out_the_untouched_sets() -> None:
    payload = bench_scan_quality.run(datasets=["wine"], attacks=[], rates=[0.1], references=[],
                                     synthetic_rows=100, seeds=[0], clean=False)
    assert payload["clean"] == [] and payload["cases"] == [] and not payload["errors"]



def test_speed_quick_measures_a_scan_in_a_subprocess(tmp_path: Path) -> None:
    # One core: BLAS threads spinning on a busy machine would slow this test tenfold.
    status = bench_scan_speed.main(["--sizes", "1000", "--cores", "1", "--no-datalab",
                                    "--out-dir", str(tmp_path)])
    assert status == 0
    (size,) = json.loads((tmp_path / "scan-speed.json").read_text())["sizes"]
    scan = size["scan"]
    assert scan["status"] == "ok" and scan["seconds"] > 0 and scan["cpu_seconds"] > 0
    # 5% of the labels flipped by default, scored against the flipped rows' numbers
    # (0.58 here; about 0.05 when they were mistaken for a mask, as before session 6)
    assert 0.3 <= scan["f1"] <= 1
    assert scan["peak_mib"] >= scan["baseline_mib"] > 0
    assert "representation" in scan["cpu_stages"]
    assert "representation" in scan["stages"]
    assert any(k.startswith("detector ") for k in scan["stages"])
    assert size["datalab"]["status"] == "skipped"
    page = (tmp_path / "scan-speed.md").read_text()
    assert f"| 1000 | {scan['data_mib']:.3f} |" in page and "representation" in page
    assert "bench_scan_speed.py --sizes 1000 --cores 1" in page


def test_stage_timer_splits_representation_detectors_and_fusion() -> None:
    timer = StageTimer()
    timer.marks = [(1.0, "training fold 1/5"), (4.0, "detector label"), (5.0, "detector knn"),
                   (7.5, "fusing")]
    assert timer.breakdown(0.0, 8.0) == {"representation": 4.0, "detector label": 1.0,
                                         "detector knn": 2.5, "fusion + findings": 0.5}


_SCRIPTS = sorted(p for p in (Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py")
                  if "ArgumentParser" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("script", _SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_script_imports_and_answers_help(
        script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A broken import (bench_redteam imported open_dataset from a module that no longer
    # has it) or a help string argparse cannot format (bench_real_tables' "5%") fails here.
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(script), run_name="__main__")
    assert stop.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


def test_sweep_label_is_the_last_string_column_of_two_to_eight_classes() -> None:
    from benchmarks.sweep_untouched import label_column

    table = pd.DataFrame({"name": [f"r{i}" for i in range(40)], "x": range(40),
                          "kind": ["a", "b"] * 20})
    assert label_column(table) == "kind"
    table["kind"] = ["a"] * 35 + ["b"] * 5  # a class of fewer than 10 rows
    assert label_column(table) is None
    assert label_column(table[["x"]]) is None


def test_sweep_verdict_applies_issue_12s_bound() -> None:
    from benchmarks.sweep_untouched import verdict

    def findings(flagged: int, accuracy: float, attacks: list[str]) -> dict[str, Any]:
        return {"summary": {"rows": 1000, "flagged": flagged, "suspected_attacks": attacks},
                "detector_results": {"label": {"meta": {"out_of_fold_accuracy": accuracy}}}}

    assert not verdict(findings(10, 0.95, []))["beyond"]  # 1% at 95% accuracy
    assert verdict(findings(11, 0.95, []))["beyond"]
    assert not verdict(findings(20, 0.7, []))["beyond"]  # 2% at 70% accuracy
    assert verdict(findings(0, 0.7, ["backdoor -> class a"]))["beyond"]
