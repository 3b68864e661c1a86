"""``poisonguard attack`` and ``poisonguard score`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonguard.attack import load_truth
from poisonguard.cli import app
from poisonguard.data import load_dataset
from poisonguard.findings import Findings, RowFinding, save_findings


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_attack_badnets_on_builtin_digits(tmp_path: Path) -> None:
    out, truth = tmp_path / "poisoned.npz", tmp_path / "truth.json"
    res = _run("attack", "badnets", "builtin:digits", "--rate", "0.05", "--target", "0",
               "--out", str(out), "--truth", str(truth))
    assert res.exit_code == 0, res.output
    data, record = load_dataset(out), load_truth(truth)
    assert record.kind == "badnets" and record.target == 0 and len(record.poisoned) == 90
    assert (data.labels[record.poisoned] == 0).all()
    assert (data.images[record.poisoned, -2:, -2:, 0] == 16).all()


def test_attack_flip_parquet_reproduces(tmp_path: Path) -> None:
    src = tmp_path / "data.parquet"
    assert _run("attack", "flip", "builtin:wine", "--rate", "0.01", "--out", str(src),
                "--truth", str(tmp_path / "ignored.json"), "--quiet").exit_code == 0
    outs = []
    for k in range(2):
        out, truth = tmp_path / f"p{k}.parquet", tmp_path / f"t{k}.json"
        res = _run("attack", "flip", str(src), "--label", "label", "--rate", "0.1",
                   "--seed", "5", "--out", str(out), "--truth", str(truth))
        assert res.exit_code == 0, res.output
        outs.append((load_dataset(out), truth.read_text()))
    assert np.array_equal(outs[0][0].labels, outs[1][0].labels)
    assert outs[0][1] == outs[1][1]
    record = load_truth(tmp_path / "t0.json")
    changed = np.flatnonzero(outs[0][0].labels != load_dataset(src).labels)
    assert changed.tolist() == record.poisoned.tolist()


@pytest.mark.parametrize("args, message", [
    (["zap", "builtin:wine", "--rate", "0.1"], "unknown attack 'zap'"),
    (["flip", "builtin:wine", "--rate", "0.6"], "rate must be in (0, 0.5]"),
    (["flip", "builtin:wine", "--rate", "0"], "rate must be in (0, 0.5]"),
    (["tabular-trigger", "builtin:wine", "--rate", "0.1", "--target", "7"],
     "target '7' is not a class"),
    (["badnets", "builtin:wine", "--rate", "0.1", "--target", "0"],
     "badnets does not apply to tabular data"),
    (["badnets", "builtin:digits", "--rate", "0.1"], "needs a target"),
    (["flip", "builtin:nope", "--rate", "0.1"], "unknown built-in dataset"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, args: list[str],
                                                      message: str) -> None:
    out = tmp_path / ("p.npz" if "digits" in args[1] else "p.csv")
    res = _run("attack", *args, "--out", str(out), "--truth", str(tmp_path / "t.json"))
    assert res.exit_code == 2
    assert message in res.output
    assert res.output.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def flip_truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("score")
    res = _run("attack", "flip", "builtin:wine", "--rate", "0.1", "--seed", "1",
               "--out", str(d / "p.csv"), "--truth", str(d / "t.json"))
    assert res.exit_code == 0, res.output
    return d / "t.json"


def test_score_external_lists(flip_truth: Path, tmp_path: Path) -> None:
    poisoned = load_truth(flip_truth).poisoned.tolist()
    for content in (poisoned[:9] + [0, 1], {"flagged": poisoned[:9] + [0, 1]}):
        f = tmp_path / "flags.json"
        f.write_text(json.dumps(content))
        res = _run("score", str(f), "--truth", str(flip_truth), "--json")
        assert res.exit_code == 0, res.output
        m = json.loads(res.output)
        expected_fp = len({0, 1} - set(poisoned))
        assert m["tp"] == 9 and m["fp"] == expected_fp and m["fn"] == len(poisoned) - 9
        assert m["auroc"] is None


def test_score_poisonguard_findings(flip_truth: Path, tmp_path: Path) -> None:
    record = load_truth(flip_truth)
    rows = tuple(RowFinding(index=i, id=str(i), score=0.9 if i in record.poisoned else 0.1,
                            flagged=bool(i in record.poisoned)) for i in range(record.n_rows))
    findings = Findings(dataset={"rows": record.n_rows}, detectors=("x",), rows=rows, summary={})
    path = tmp_path / "findings.json"
    save_findings(findings, path)
    res = _run("score", str(path), "--truth", str(flip_truth), "--json")
    m = json.loads(res.output)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["auroc"] == 1.0
    table = _run("score", str(path), "--truth", str(flip_truth))
    assert table.exit_code == 0 and "1.000" in table.output


@pytest.mark.parametrize("content, message", [
    ("[1, 2, 999]", "not a row index"), ("{\"flags\": 3}", "expected poisonguard findings"),
    ("[true]", "not a row index"), ("oops", "invalid JSON"),
])
def test_score_rejects_bad_findings(flip_truth: Path, tmp_path: Path, content: str,
                                    message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    res = _run("score", str(f), "--truth", str(flip_truth))
    assert res.exit_code == 2 and message in res.output and "bad.json" in res.output


def test_score_rejects_a_bad_truth(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text("[1]")
    (tmp_path / "t.json").write_text("{}")
    res = _run("score", str(tmp_path / "f.json"), "--truth", str(tmp_path / "t.json"))
    assert res.exit_code == 2 and "t.json" in res.output
