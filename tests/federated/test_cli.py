"""``poisonguard fl-sim`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from poisonguard.cli import app


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_fl_sim_prints_rounds_and_writes_history_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _run("fl-sim", "--clients", "10", "--malicious", "2", "--attack", "scaling",
               "--aggregator", "krum", "--rounds", "6", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "round 6/6  accuracy" in res.output and "backdoor ASR" in res.output
    assert "newly flagged" in res.output  # the two attackers, after min_rounds rounds
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["aggregator"] == "krum" and len(history["rounds"]) == 6
    assert sorted(history["rounds"][-1]["flagged"]) == history["malicious_clients"]
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fl_sim_quiet_prints_only_the_summary(tmp_path: Path) -> None:
    res = _run("fl-sim", "--clients", "5", "--malicious", "1", "--attack", "noise",
               "--aggregator", "median", "--rounds", "2", "--quiet", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "round" not in res.output and "accuracy" in res.output


def test_fl_sim_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args, message in [
        (["--aggregator", "nope"], "unknown aggregator 'nope'"),
        (["--attack", "nope"], "unknown attack 'nope'"),
        (["--clients", "10", "--aggregator", "bulyan", "--byzantine", "5"], "tolerates at most"),
    ]:
        res = _run("fl-sim", *args, "--out", str(tmp_path / "x"))
        assert res.exit_code == 2 and message in res.output, res.output
        assert "Traceback" not in res.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _run("fl-sim", "--rounds", "1", "--out", str(blocker))
    assert res.exit_code == 2 and "is not a folder" in res.output
    assert not (tmp_path / "x").exists()
