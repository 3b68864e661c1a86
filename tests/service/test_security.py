"""Hostile input is refused, nothing is stored, and the refusal is in the audit log:
path traversal, oversized and malformed uploads, SQL-injection strings, forged CSRF,
expired and revoked tokens."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poisonguard.service.schema import datasets, tokens, users
from tests.service.conftest import World, auth


def stored_files(w: World) -> list[Path]:
    root = w.service.files.root
    return sorted(p for p in root.rglob("*") if p.is_file() and "keys" not in p.parts)


def n_datasets(w: World) -> int:
    with w.service.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar() or 0)


def assert_refused(w: World, response: Any, status: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    last = w.audits()[-1]
    assert last.details["outcome"] == "refused" and last.details["status"] == status
    if reason is not None:
        assert reason in last.details.get("reason", ""), last.details


TRAVERSAL = ["../../etc/passwd.csv", "..\\..\\boot.csv", "/etc/x.csv", "a/../../b.csv",
             ".hidden.csv", "..csv", "x\x00.csv", "train.csv/..", "%2e%2e%2fx.csv", "x.py"]


@pytest.mark.parametrize("name", TRAVERSAL)
def test_path_traversal_names_are_refused(sqlite_world: World, poisoned_csv: Path,
                                          name: str) -> None:
    w = sqlite_world
    r = w.client.post("/api/datasets", params={"name": name}, content=poisoned_csv.read_bytes(),
                      headers=w.h("contributor"))
    assert_refused(w, r, 415 if name == "x.py" else 422)
    assert stored_files(w) == [] and n_datasets(w) == 0


def test_oversized_uploads_are_refused(sqlite_world: World) -> None:
    w = sqlite_world
    big = b"a,label\n" + b"1,0\n" * 300_000  # 1.2 MB > the 1 MiB limit

    def chunks():  # no Content-Length: the limit must hold while streaming
        for k in range(0, len(big), 65536):
            yield big[k:k + 65536]

    for body in (big, chunks()):
        r = w.client.post("/api/datasets", params={"name": "big.csv"}, content=body,
                          headers=w.h("contributor"))
        assert_refused(w, r, 413, "larger than the limit")
    r = w.client.post("/upload", files={"file": ("big.csv", big)}, headers=w.h("contributor"))
    assert r.status_code == 413
    assert stored_files(w) == [] and n_datasets(w) == 0


MALFORMED = {
    "ragged.csv": b"a,b,label\n1,2,0\n3,4,5,6\n",
    "nolabel.csv": b"a,b\n1,2\n3,4\n",
    "empty.csv": b"",
    "garbage.parquet": b"PAR1 this is not parquet",
    "garbage.npz": b"PK\x03\x04 not a zip",
    "bad.jsonl": b'{"text": "a", "label": 0}\n{not json\n',
    "binary.csv": bytes(range(256)) * 10,
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_uploads_are_refused(sqlite_world: World, name: str) -> None:
    w = sqlite_world
    r = w.client.post("/api/datasets", params={"name": name}, content=MALFORMED[name],
                      headers=w.h("contributor"))
    assert_refused(w, r, 422)
    assert "Traceback" not in r.text and str(w.service.files.root) not in r.text
    assert stored_files(w) == [] and n_datasets(w) == 0


def test_malformed_multipart_is_refused(sqlite_world: World) -> None:
    w = sqlite_world
    h = {**w.h("contributor"), "content-type": "multipart/form-data; boundary=zzz"}
    for body in (b"--zzz\r\ngarbage", b"", b"--zzz--\r\n"):
        r = w.client.post("/upload", content=body, headers=h)
        assert_refused(w, r, 422)
    assert stored_files(w) == []


INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE pg_users; --", "\" OR 1=1 --", "1; SELECT 1"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_sql_injection_strings_do_nothing(sqlite_world: World, poisoned_csv: Path,
                                          evil: str) -> None:
    w = sqlite_world
    h = w.h("admin")
    assert w.client.post("/api/users", json={"name": evil, "role": "admin"},
                         headers=h).status_code == 422
    assert w.client.get(f"/api/datasets/{evil}", headers=h).status_code in (404, 422)
    assert w.client.get(f"/api/jobs/{evil}", headers=h).status_code in (404, 422)
    r = w.upload(poisoned_csv, "admin", label=evil)
    assert r.status_code == 422
    r = w.client.get("/api/me", headers=auth(f"pgt_{evil}"))
    assert r.status_code == 401
    with w.service.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 4
    assert n_datasets(w) == 0 and w.service.store.ledger.verify() == []


def _session(w: World, role: str) -> str:
    page = w.client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    r = w.client.post("/login", data={"token": w.tokens[role], "csrf": csrf.group(1)},
                      follow_redirects=False)
    assert r.status_code == 303, r.text
    home = w.client.get("/").text
    found = re.search(r'name="csrf" value="([^"]+)"', home)
    assert found is not None
    return found.group(1)


def test_forged_csrf_is_refused(sqlite_world: World, poisoned_csv: Path) -> None:
    w = sqlite_world
    ds = w.upload(poisoned_csv).json()["id"]
    w.share(ds, "curator")
    csrf = _session(w, "curator")
    url = f"/datasets/{ds}/rows/3/quarantine"
    for forged in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1] + "x"}):
        r = w.client.post(url, data=forged, follow_redirects=False)
        assert_refused(w, r, 403, "CSRF")
    r = w.client.post("/upload", data={"csrf": "forged"}, follow_redirects=False,
                      files={"file": (poisoned_csv.name, poisoned_csv.read_bytes())})
    assert_refused(w, r, 403, "CSRF")
    assert w.client.get(f"/api/datasets/{ds}/rows", headers=w.h("curator")).json() == []
    assert n_datasets(w) == 1
    r = w.client.post(url, data={"csrf": csrf}, follow_redirects=False)  # the real one works
    assert r.status_code == 303
    # login itself is protected too (double-submit cookie)
    r = w.client.post("/login", data={"token": w.tokens["admin"], "csrf": "forged"})
    assert_refused(w, r, 403, "CSRF")


def test_session_cookie_flags(sqlite_world: World) -> None:
    w = sqlite_world
    page = w.client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = w.client.post("/login", data={"token": w.tokens["viewer"], "csrf": csrf.group(1)},
                      follow_redirects=False)
    cookie = next(v for k, v in r.headers.multi_items()
                  if k == "set-cookie" and v.startswith("pg_session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_expired_and_revoked_tokens_are_refused(sqlite_world: World,
                                                poisoned_csv: Path) -> None:
    w = sqlite_world
    h = w.h("contributor")
    assert w.client.get("/api/me", headers=h).status_code == 200
    with w.service.store.write() as conn:  # the contributor's token expires
        conn.execute(tokens.update().values(expires_at=time.time() - 1)
                     .where(tokens.c.user_id == 2))
    r = w.upload(poisoned_csv)
    assert_refused(w, r, 401, "invalid, expired or revoked token")
    assert w.audits()[-1].actor == "anonymous"

    revoked = w.client.post("/api/users/curator/tokens", json={}, headers=w.h("admin")).json()
    assert w.client.get("/api/me", headers=auth(revoked["token"])).status_code == 200
    r = w.client.delete(f"/api/tokens/{revoked['token_id']}", headers=w.h("admin"))
    assert r.status_code == 200 and r.json()["revoked"] == 1
    r = w.client.post("/api/datasets", params={"name": "x.csv"},
                      content=poisoned_csv.read_bytes(), headers=auth(revoked["token"]))
    assert_refused(w, r, 401)
    assert stored_files(w) == [] and n_datasets(w) == 0


def test_tokens_are_stored_only_as_salted_hashes(sqlite_world: World) -> None:
    w = sqlite_world
    with w.service.store.read() as conn:
        rows = conn.execute(sa.select(tokens)).mappings().all()
    secrets_ = [t.split("_", 2)[2] for t in w.tokens.values()]
    dump = repr([dict(r) for r in rows])
    assert all(s not in dump for s in secrets_)
    assert len({r["salt"] for r in rows}) == len(rows)
    db = Path(str(w.service.settings.database()).removeprefix("sqlite:///"))
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("*.sqlite-wal"))
    assert all(s.encode() not in raw for s in secrets_)


def test_home_and_keys_are_private(sqlite_world: World) -> None:
    home = sqlite_world.service.settings.home
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "keys" / "poisonguard.key").stat().st_mode & 0o777 == 0o600
    for folder in ("files", "files/tmp", "files/datasets", "files/results"):
        assert (home / folder).stat().st_mode & 0o777 == 0o700
