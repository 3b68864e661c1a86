"""Fixtures: a service in a temporary home (SQLite, or PostgreSQL on loopback), one user
per role with a token, and a small poisoned CSV (wine with 5% flipped labels).

The PostgreSQL server is the provenance tests' fixture (started by the tests).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poisonguard.attack import run_attack
from poisonguard.data import save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.service import Role, Service, ServiceSettings, create_app
from poisonguard.service.users import add_user, issue_token
from tests.provenance.conftest import pg_server  # noqa: F401  (fixture, shared)

QUICK_DETECTORS = ["label", "knn"]
_schemas = itertools.count()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def poisoned_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "wine-flipped.csv"
    save_dataset(run_attack("flip", builtin_dataset("wine"), rate=0.05, seed=0).dataset, path)
    return path


def _database(kind: str, request: pytest.FixtureRequest) -> str | None:
    if kind == "sqlite":
        return None
    import psycopg

    base = request.getfixturevalue("pg_server")
    name = f"service_{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{base}/postgres?options=-csearch_path%3D{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(home=tmp_path / "home", database_url=_database(request.param, request),
                           max_upload_mb=1.0, secure_cookies=True)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(home=tmp_path / "home", max_upload_mb=1.0)


class World:
    """A running app with one user (and token) per role."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.service = Service(settings)
        self.app = create_app(service=self.service)
        self.client = TestClient(self.app, base_url="https://testserver")
        self.tokens: dict[str, str] = {}
        for role in Role:
            add_user(self.service.store, role.name, role)
            self.tokens[role.name] = issue_token(self.service.store, role.name)[1]

    def h(self, role: str) -> dict[str, str]:
        return auth(self.tokens[role])

    def upload(self, path: Path, role: str = "contributor", **params: Any) -> Any:
        return self.client.post("/api/datasets", params={"name": path.name, **params},
                                content=path.read_bytes(), headers=self.h(role))

    def share(self, dataset_id: str, *roles: str) -> None:
        """Grant each named user their own role on the dataset (as admin)."""
        for role in roles:
            r = self.client.put(f"/api/datasets/{dataset_id}/grants/{role}",
                                json={"role": role}, headers=self.h("admin"))
            assert r.status_code == 200, r.text

    def wait(self, job_id: str, role: str = "viewer", timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/api/jobs/{job_id}", headers=self.h(role)).json()
            if job["status"] in ("done", "failed"):
                return dict(job)
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish")

    def audits(self) -> list[Any]:
        return [e for e in self.service.store.ledger.entries() if e.kind == "audit"]

    def close(self) -> None:
        self.client.close()
        self.service.close()


@pytest.fixture
def world(settings: ServiceSettings) -> Iterator[World]:
    w = World(settings)
    yield w
    w.close()


@pytest.fixture
def sqlite_world(sqlite_settings: ServiceSettings) -> Iterator[World]:
    w = World(sqlite_settings)
    yield w
    w.close()
