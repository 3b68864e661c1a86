"""``poisonguard users`` and ``poisonguard serve``: accounts from the command line, and
the service for real on a loopback port in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.service import ServiceSettings
from poisonguard.service.store import Store
from tests.service.server import free_port

TOKEN = re.compile(r"pgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POISONGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("POISONGUARD_DATABASE_URL", raising=False)
    return tmp_path / "home"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_users_commands(home: Path) -> None:
    code, out = run("users", "add", "alice", "--role", "admin")
    assert code == 0 and TOKEN.search(out)
    code, out = run("users", "add", "alice", "--role", "viewer")
    assert code == 2 and "already exists" in out and "Traceback" not in out
    assert run("users", "add", "Bob; DROP", "--role", "viewer")[0] == 2
    assert run("users", "add", "bob", "--role", "emperor")[0] == 2
    code, out = run("users", "token", "alice", "--days", "1")
    token_id = re.search(r"token id ([0-9a-f]{16})", out)
    assert code == 0 and token_id is not None
    assert "2 live token" in run("users", "list")[1]
    assert run("users", "revoke", token_id.group(1))[1].strip() == "revoked 1 token(s)"
    assert "1 live token" in run("users", "list")[1]
    assert run("users", "revoke", "--user", "alice")[0] == 0
    assert run("users", "revoke", "ffffffffffffffff")[0] == 2
    store = Store(ServiceSettings().database())
    audits = [e.details["action"] for e in store.ledger.entries() if e.kind == "audit"]
    store.close()
    assert audits == ["add user", "issue token", "revoke token", "revoke token"]


def test_serve_on_loopback(home: Path) -> None:
    code, out = run("users", "add", "alice", "--role", "admin")
    match = TOKEN.search(out)
    assert code == 0 and match is not None
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "poisonguard", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.2)
        h = {"Authorization": f"Bearer {match.group(0)}"}
        assert httpx.get(f"{base}/api/me", headers=h).json()["role"] == "admin"
        assert httpx.get(f"{base}/api/me").status_code == 401
        assert "/api/datasets" in httpx.get(f"{base}/openapi.json").json()["paths"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out
