"""Every route refuses a caller without credentials and a caller one role short.

The routes come from the application's route table, so a new route is tested the
moment it exists; a route without a ``Need`` must be listed in PUBLIC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from poisonguard.service.auth import Need
from poisonguard.service.roles import Role
from tests.service.conftest import World

PUBLIC = {("GET", "/api/health"), ("GET", "/login"), ("POST", "/login"),
          ("GET", "/openapi.json")}


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside routers that FastAPI keeps nested."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def need_of(route: APIRoute) -> Need | None:
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Need)]
    assert len(found) <= 1, route.path
    return found[0] if found else None


def fill(path: str, ids: dict[str, str]) -> str:
    values = {"dataset_id": ids["dataset"], "job_id": ids["job"], "row": "0",
              "decision": "quarantine", "name": "viewer", "token_id": ids["token"]}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.fixture
def table(sqlite_world: World, poisoned_csv: Any) -> tuple[World, dict[str, str],
                                                          list[tuple[str, APIRoute]]]:
    w = sqlite_world
    ds = w.upload(poisoned_csv, "admin").json()["id"]
    job = w.client.post(f"/api/datasets/{ds}/snapshots", json={}, headers=w.h("admin")).json()
    w.wait(job["id"], "admin")
    token = w.client.post("/api/users/viewer/tokens", json={}, headers=w.h("admin")).json()
    for role in Role:  # each user holds their own role on the dataset
        if role is not Role.admin:
            w.share(ds, role.name)
    ids = {"dataset": ds, "job": job["id"], "token": token["token_id"]}
    routes = [(m, r) for r in api_routes(w.app.routes) for m in sorted(r.methods - {"HEAD"})]
    return w, ids, routes


def test_route_table_is_complete(table: Any) -> None:
    w, _, routes = table
    assert len(routes) >= 30
    for method, route in routes:
        assert (need_of(route) is None) == ((method, route.path) in PUBLIC), (method, route.path)
    spec = w.client.get("/openapi.json").json()
    declared = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert declared <= {(m, r.path) for m, r in routes}


def test_every_route_refuses_without_credentials(table: Any) -> None:
    w, ids, routes = table
    before = len(w.audits())
    unsafe = 0
    for method, route in routes:
        if (method, route.path) in PUBLIC:
            continue
        r = w.client.request(method, fill(route.path, ids), follow_redirects=False)
        if route.path.startswith("/api") or method != "GET":
            assert r.status_code == 401, (method, route.path, r.status_code)
        else:  # a dashboard page sends the browser to the login form
            assert r.status_code == 303 and r.headers["location"] == "/login"
        unsafe += method != "GET"
    audits = w.audits()[before:]
    assert len(audits) == unsafe  # one audit entry per refused mutating request
    assert all(a.actor == "anonymous" and a.details["outcome"] == "refused" for a in audits)


def test_every_route_refuses_a_role_too_small(table: Any) -> None:
    w, ids, routes = table
    checked = 0
    for method, route in routes:
        need = need_of(route)
        if need is None or need.role.below() is None:
            continue
        below = need.role.below()
        r = w.client.request(method, fill(route.path, ids), headers=w.h(below.name),
                             follow_redirects=False)
        assert r.status_code == 403, (method, route.path, below.name, r.status_code, r.text)
        checked += 1
    assert checked >= 15


def test_no_grant_means_no_dataset(table: Any) -> None:
    w, ids, _ = table
    w.client.post("/api/users", json={"name": "stranger", "role": "curator"},
                  headers=w.h("admin"))
    token = w.client.post("/api/users/stranger/tokens", json={}, headers=w.h("admin")).json()
    h = {"Authorization": f"Bearer {token['token']}"}
    assert w.client.get(f"/api/datasets/{ids['dataset']}", headers=h).status_code == 404
    assert w.client.get(f"/api/jobs/{ids['job']}", headers=h).status_code == 404
    assert w.client.get("/api/datasets", headers=h).json() == []
