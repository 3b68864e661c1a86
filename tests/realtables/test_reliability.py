"""An untouched real table: the scan says how reliable it is, flags little, and claims
no attack (issue 12). cars: out-of-fold accuracy about 76%, so at most 2% flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import poisonguard
from poisonguard.cli import app
from poisonguard.findings import Findings
from tests.realtables.conftest import TABLES


@pytest.fixture(scope="module")
def cars_scan() -> Findings:
    load, label = TABLES["cars"]
    return poisonguard.scan(load(), label=label)


def test_untouched_cars_flags_at_most_two_percent_and_no_attack(cars_scan: Findings) -> None:
    s = cars_scan.summary
    r = s["reliability"]
    assert r["evidence"] == "weak" and 0.6 < r["out_of_fold_accuracy"] < 0.9
    assert s["flagged"] <= 0.02 * s["rows"]  # measured 0 of 406 (session 14; 8 before)
    # the label detector's 4 margin doubts, about as many as the null expects on clean
    # data this hard (2.05), are left for review, and the scan says so
    assert r["margin_flags_reviewed"] == r["margin_flags"] > 0
    assert "label doubts, about as many as clean data this hard gives" in r["note"]
    assert s["suspected_attacks"] == []
    assert s["review"] > 0  # natural overlap is left for review, not flagged
    assert {"per_class", "confusion", "overlap", "expected_clean_flags", "max_fpr"} <= set(r)
    assert r["label_detectors"] == ["label"] and r["max_fpr"] == 0.005
    review = [row for row in cars_scan.rows if row.action == "review"]
    assert review and not any(row.flagged for row in review)
    assert all(reason.detail.startswith("review: ") for row in review for reason in row.reasons)
    doubts = [row for row in review for reason in row.reasons if "margin doubts" in reason.detail]
    assert len(doubts) == r["margin_flags_reviewed"]


def test_cli_prints_and_writes_the_reliability(real_files: dict[tuple[str, str], Path],
                                               tmp_path: Path) -> None:
    res = CliRunner().invoke(app, [
        "scan", str(real_files["cars", "csv"]), "--label", "Origin", "--id", "row_id",
        "--detectors", "label,knn,duplicate,outlier", "--max-fpr", "0.02", "--out",
        str(tmp_path / "scan"), "--report", str(tmp_path / "r.html"), "--no-ledger",
        "--progress", "none"])
    assert res.exit_code == 0, res.output
    assert "Reliability" in res.output and "out-of-fold accuracy" in res.output
    saved = json.loads((tmp_path / "scan" / "findings.json").read_text())["summary"]
    assert saved["reliability"]["max_fpr"] == 0.02
    assert 'id="reliability"' in (tmp_path / "r.html").read_text()
    bad = CliRunner().invoke(app, ["scan", str(real_files["cars", "csv"]), "--label", "Origin",
                                   "--max-fpr", "1.5", "--no-ledger"])
    assert bad.exit_code == 2 and "--max-fpr" in bad.output
