"""``poisonguard monitor``: the whole story through the command line, with --json."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonguard.attack.trigger import stamp
from poisonguard.cli import app
from tests.monitor.conftest import TARGET, Digits

runner = CliRunner()
COMMANDS = ("train", "register", "golden", "promote", "rollback", "history", "canary", "scan-model",
            "screen", "alerts")


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["monitor", *args])
    return res.exit_code, res.output


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help_and_json(cmd: str) -> None:
    code, out = _run(cmd, "--help")
    assert code == 0 and "--json" in out


def test_register_promote_canary_rollback_history(digits: Digits, tmp_path: Path) -> None:
    code, out = _run("golden", str(digits.golden_path), "--name", "golden", "--json")
    assert code == 0 and json.loads(out)["rows"] == len(digits.golden)
    code, out = _run("register", str(digits.clean_path), "--name", "digits", "--alias",
                     "candidate", "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, out = _run("promote", "--name", "digits", "--golden", "golden", "--json")
    assert code == 0 and json.loads(out)["move"]["to_version"] == 1
    _run("register", str(digits.badnets_path), "--name", "digits", "--alias", "candidate")
    code, out = _run("promote", "--name", "digits", "--golden", "golden")
    assert code == 0 and "PROMOTED: digits champion v1 -> v2" in out  # accuracy hides it
    code, out = _run("canary", "--name", "digits", "--golden", "golden", "--json")
    report = json.loads(out)
    assert code == 1 and report["alarm"] and report["model"]["version"] == 2
    assert {a["details"]["target"] for a in report["alerts"]} == {str(TARGET)}
    code, out = _run("rollback", "--name", "digits", "--reason", "canary fired")
    assert code == 0 and "ROLLED BACK: digits champion v2 -> v1" in out
    code, out = _run("canary", "--name", "digits", "--golden", "golden")
    assert code == 0 and "no canary fired" in out
    code, out = _run("history", "--name", "digits", "--json")
    moves = json.loads(out)["moves"]
    champion = [(m["action"], m["from_version"], m["to_version"], m["reason"])
                for m in moves if m["alias"] == "champion"]
    assert champion[-2:] == [("promote", 1, 2, "gate passed on golden v1"),
                             ("rollback", 2, 1, "canary fired")]
    code, out = _run("history", "--name", "digits")
    assert code == 0 and "rollback champion: v2 -> v1  (canary fired)" in out
    code, out = _run("alerts", "--json")
    assert code == 0 and all(a["kind"] == "canary" for a in json.loads(out))


def test_scan_model_and_screen(digits: Digits, tmp_path: Path) -> None:
    _run("golden", str(digits.golden_path), "--name", "golden")
    _run("register", str(digits.badnets_path), "--name", "digits", "--alias", "champion")
    code, out = _run("scan-model", "--name", "digits", "--golden", "golden", "--json")
    result = json.loads(out)
    assert code == 1 and result["result"]["flagged"] == [{"label": TARGET, "class": str(TARGET)}]
    g = digits.golden
    batch = g.subset(np.arange(200))
    triggered = batch.replace(images=stamp(batch.images, digits.attack.truth.params["trigger"]))
    np.savez(tmp_path / "batch.npz", X=triggered.images[..., 0])  # unlabelled, N x 8 x 8
    code, out = _run("screen", str(tmp_path / "batch.npz"), "--name", "digits", "--golden",
                     "golden")
    assert code == 1 and "DRIFT" in out and out.count("ALERT (new") == 2
    assert "STRIP rejected" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    code, out = _run("register", str(path), "--name", "digits")
    assert code == 2 and out.count("\n") == 1 and "refused" in out
    code, out = _run("promote", "--name", "nothing", "--golden", "g")
    assert code == 2 and "no model named 'nothing'" in out
