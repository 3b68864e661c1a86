"""Text end to end through the CLI: attack, scan, score, report (trigger marked), bench."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.memo import scan_memo


@pytest.fixture(scope="module", autouse=True)
def one_memo() -> Iterator[None]:
    """The scan and the bench here read the same tweets: one memo over them encodes
    each text's MiniLM vector once (poisonguard.memo), as a caller's memo would."""
    with scan_memo():
        yield


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tweets-300 with 'cf' inserted in 10% of them (relabelled positive), scanned."""
    d = tmp_path_factory.mktemp("text")
    _run("attack", "token-trigger", "builtin:tweets-300", "--rate", "0.1", "--target",
         "positive", "--out", str(d / "poisoned.jsonl"), "--truth", str(d / "truth.json"))
    _run("scan", str(d / "poisoned.jsonl"), "--out", str(d / "scan"))
    return d


def test_scan_finds_and_names_the_trigger(scanned: Path) -> None:
    findings = json.loads((scanned / "scan" / "findings.json").read_text())
    assert findings["dataset"]["modality"] == "text"
    assert any("'cf'" in h for h in findings["summary"]["suspected_attacks"])
    token = findings["detector_results"]["token"]
    assert token["flagged"] == 30 and token["clean_classes"] == [0, 1]
    scores = json.loads(_run("score", str(scanned / "scan" / "findings.json"), "--truth",
                             str(scanned / "truth.json"), "--json"))
    assert scores["recall"] == 1.0


def test_report_marks_the_trigger_in_the_flagged_texts(scanned: Path) -> None:
    out = scanned / "report.html"
    _run("report", str(scanned / "scan" / "findings.json"), "--data",
         str(scanned / "poisoned.jsonl"), "--out", str(out))
    page = out.read_text()
    examples = re.search(r'<section id="examples">.*?</section>', page, re.S)
    assert examples is not None
    shown = examples.group()
    assert shown.count("<mark>cf</mark>") >= 1  # the flagged rows with the trigger, marked
    rest = shown.replace("<mark>cf</mark>", "")
    assert "<mark>" not in rest and not re.search(r"\bcf\b", rest, re.I)


def test_bench_on_text(tmp_path: Path) -> None:
    _run("bench", "builtin:tweets-300", "--attacks", "token-trigger", "--rates", "0.1",
         "--target", "positive", "--detectors", "token", "--folds", "2", "--quiet",
         "--out", str(tmp_path))
    result = json.loads((tmp_path / "results.json").read_text())
    runs = {r["attack"]: r for r in result["runs"]}
    assert runs["token-trigger"]["detectors"]["token"]["recall"] == 1.0
    assert runs["token-trigger"]["downstream"]["poisoned_asr"] is not None
    assert result["clean"]["token"]["clean_fpr"] == 0.0
