"""Fixtures: keys, data files, and a PostgreSQL server started on loopback."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from poisonguard.data import save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.provenance.keys import generate_keypair


@pytest.fixture(autouse=True)
def _isolated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POISONGUARD_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.delenv("POISONGUARD_SNAPSHOT_KEY", raising=False)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "wine.csv"
    save_dataset(builtin_dataset("wine"), path)
    return path


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if not found:
        pytest.fail(f"PostgreSQL '{name}' not found: run .ci/install-postgres.sh", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields its base URL (no database)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    base = Path(tempfile.mkdtemp(prefix="poisonguard-pg-"))
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as 'postgres'
        shutil.chown(base, user="postgres")
        os.chmod(base, 0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = dict(capture_output=True, text=True, timeout=120)
    res = subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-sync"], **run)  # type: ignore[call-overload]
    if res.returncode != 0:
        pytest.fail(f"initdb failed: {res.stderr.strip()}", pytrace=False)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    res = subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l",
                          str(base / "log"), "-w", "-t", "60", "start"], **run)  # type: ignore[call-overload]
    if res.returncode != 0:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {res.stderr.strip()} {log[-2000:]}",
                    pytrace=False)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **run)  # type: ignore[call-overload]
        shutil.rmtree(base, ignore_errors=True)


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger location in each backend (PostgreSQL: a new schema)."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger-test.sqlite")
    import psycopg

    base = request.getfixturevalue("pg_server")
    name = f"ledger_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{base}/postgres?options=-csearch_path%3D{name}"
