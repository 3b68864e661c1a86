"""Fixtures of the security regression suite: keys, an isolated ledger, a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.provenance.keys import generate_keypair

_runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POISONGUARD_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.delenv("POISONGUARD_SNAPSHOT_KEY", raising=False)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


def run_cli(*args: str | Path) -> tuple[int, str]:
    """Exit code and combined output of one ``poisonguard`` command."""
    res = _runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output
