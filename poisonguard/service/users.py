"""Users, API tokens, dashboard sessions and dataset grants.

A token reads ``pgt_<id>_<secret>``: the id finds the row, and only a salted
SHA-256 of the 256-bit random secret is stored, so the database alone does not let
anyone sign in. Sessions are random too and stored hashed; a session ends with
its token (revoked or expired), on logout, or after ``session_minutes``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from poisonguard.errors import UsageError
from poisonguard.service.roles import Role
from poisonguard.service.schema import datasets, grants, sessions, tokens, users
from poisonguard.service.store import Store

__all__ = [
    "Principal",
    "add_user",
    "authenticate_session",
    "authenticate_token",
    "end_session",
    "grant",
    "issue_token",
    "list_users",
    "revoke_tokens",
    "start_session",
]

_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_TOKEN = re.compile(r"^pgt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_SESSION = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their global role, and how they proved it."""

    user_id: int
    name: str
    role: Role
    token_id: str
    csrf: str | None = None  # set for dashboard sessions


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def _user_id(store: Store, name: str) -> int:
    with store.read() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
    if uid is None:
        raise UsageError(f"no user named {name!r}")
    return int(uid)


def add_user(store: Store, name: str, role: str | Role) -> int:
    """Create a user (lower-case name) with a global role; return its id."""
    if not _NAME.match(name):
        raise UsageError(f"bad user name {name!r} (lower-case letters, digits, . _ -; "
                         "starting with a letter)")
    r = role if isinstance(role, Role) else Role.parse(role)
    with store.write() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
            raise UsageError(f"user {name!r} already exists")
        res = conn.execute(users.insert().values(name=name, role=r.name, created_at=time.time()))
        key = res.inserted_primary_key
        assert key is not None
        return int(key[0])


def list_users(store: Store) -> list[dict[str, object]]:
    """Every user with its role and its number of live tokens."""
    now = time.time()
    live = (sa.select(tokens.c.user_id, sa.func.count().label("n"))
            .where(tokens.c.revoked_at.is_(None), tokens.c.expires_at > now)
            .group_by(tokens.c.user_id).subquery())
    q = (sa.select(users.c.name, users.c.role, sa.func.coalesce(live.c.n, 0))
         .outerjoin(live, live.c.user_id == users.c.id).order_by(users.c.name))
    with store.read() as conn:
        return [{"name": n, "role": r, "tokens": int(k)} for n, r, k in conn.execute(q)]


def issue_token(store: Store, name: str, *, days: float = 90.0) -> tuple[str, str]:
    """A new token for user ``name``: ``(token_id, token)``. The token is shown once."""
    if days <= 0:
        raise UsageError("a token must live for a positive number of days")
    uid = _user_id(store, name)
    token_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    now = time.time()
    with store.write() as conn:
        conn.execute(tokens.insert().values(id=token_id, user_id=uid, salt=salt,
                                            digest=_digest(salt, secret), created_at=now,
                                            expires_at=now + days * 86400.0))
    return token_id, f"pgt_{token_id}_{secret}"


def revoke_tokens(store: Store, *, token_id: str | None = None, user: str | None = None) -> int:
    """Revoke one token (by id) or every token of a user; return how many were live."""
    if (token_id is None) == (user is None):
        raise UsageError("name a token id or a user, not both")
    cond = (tokens.c.id == token_id) if token_id is not None else (
        tokens.c.user_id == _user_id(store, str(user)))
    with store.write() as conn:
        ids = [r[0] for r in conn.execute(sa.select(tokens.c.id).where(cond))]
        if not ids:
            raise UsageError(f"no token with id {token_id!r}")
        n = conn.execute(tokens.update().where(cond, tokens.c.revoked_at.is_(None))
                         .values(revoked_at=time.time())).rowcount
        conn.execute(sessions.delete().where(sessions.c.token_id.in_(ids)))
    return int(n)


def _principal(store: Store, token_id: str) -> Principal | None:
    """The live token's user, or None (unknown, revoked or expired)."""
    q = (sa.select(users.c.id, users.c.name, users.c.role)
         .join(tokens, tokens.c.user_id == users.c.id)
         .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None),
                tokens.c.expires_at > time.time()))
    with store.read() as conn:
        row = conn.execute(q).first()
    return None if row is None else Principal(int(row[0]), row[1], Role[row[2]], token_id)


def authenticate_token(store: Store, token: str) -> Principal | None:
    """The principal for a presented API token, or None when it is not valid now."""
    m = _TOKEN.match(token)
    if not m:
        return None
    token_id, secret = m.groups()
    with store.read() as conn:
        row = conn.execute(sa.select(tokens.c.salt, tokens.c.digest)
                           .where(tokens.c.id == token_id)).first()
    if row is None or not hmac.compare_digest(_digest(row[0], secret), row[1]):
        return None
    return _principal(store, token_id)


def start_session(store: Store, token_id: str, *, minutes: int) -> tuple[str, str]:
    """Open a dashboard session for a checked token: ``(cookie value, csrf token)``."""
    value, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with store.write() as conn:
        conn.execute(sessions.insert().values(
            digest=hashlib.sha256(value.encode()).hexdigest(), token_id=token_id, csrf=csrf,
            expires_at=time.time() + minutes * 60.0))
    return value, csrf


def authenticate_session(store: Store, value: str) -> Principal | None:
    """The principal of a live session cookie (its token still live), or None."""
    if not _SESSION.match(value):
        return None
    digest = hashlib.sha256(value.encode()).hexdigest()
    with store.read() as conn:
        row = conn.execute(sa.select(sessions.c.token_id, sessions.c.csrf)
                           .where(sessions.c.digest == digest,
                                  sessions.c.expires_at > time.time())).first()
    if row is None:
        return None
    who = _principal(store, row[0])
    return None if who is None else Principal(who.user_id, who.name, who.role, who.token_id,
                                              csrf=row[1])


def end_session(store: Store, value: str) -> None:
    digest = hashlib.sha256(value.encode()).hexdigest()
    with store.write() as conn:
        conn.execute(sessions.delete().where(sessions.c.digest == digest))


def grant(store: Store, name: str, dataset_id: str, role: str | Role) -> None:
    """Give user ``name`` a role on one dataset (capped by the user's global role)."""
    r = role if isinstance(role, Role) else Role.parse(role)
    uid = _user_id(store, name)
    with store.write() as conn:
        if not conn.execute(sa.select(datasets.c.id).where(datasets.c.id == dataset_id)).first():
            raise UsageError(f"no dataset {dataset_id!r}")
        conn.execute(grants.delete().where(grants.c.user_id == uid,
                                           grants.c.dataset_id == dataset_id))
        conn.execute(grants.insert().values(user_id=uid, dataset_id=dataset_id, role=r.name))
