"""Who may call what: every route declares its least role with ``Depends(Need(...))``.

Callers prove who they are with ``Authorization: Bearer <token>`` or, in the
dashboard, a session cookie. A session-authenticated request that changes anything
must carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
A dataset- or job-scoped route also needs a grant on that dataset: without one the
dataset does not exist for the caller (404); with too small a role, 403.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Literal

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from poisonguard.service.roles import Role
from poisonguard.service.users import Principal, authenticate_session, authenticate_token

if TYPE_CHECKING:
    from poisonguard.service.core import Service

__all__ = ["SESSION_COOKIE", "UNSAFE_METHODS", "Need", "check_csrf", "identify", "service_of"]

SESSION_COOKIE = "pg_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Scope = Literal["global", "dataset", "job"]


def service_of(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def identify(svc: Service, request: Request) -> Principal | None:
    """The caller from the bearer token, else from the session cookie; None if neither."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            request.state.refusal = "malformed authorization header"
            return None
        who = authenticate_token(svc.store, token.strip())
        if who is None:
            request.state.refusal = "invalid, expired or revoked token"
        return who
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        who = authenticate_session(svc.store, cookie)
        if who is None:
            request.state.refusal = "expired or unknown session"
        return who
    request.state.refusal = "no credentials"
    return None


def check_csrf(request: Request, who: Principal, presented: str | None) -> None:
    """Refuse (403) unless ``presented`` equals the session's CSRF token."""
    if who.csrf is None:
        return
    if not presented or not hmac.compare_digest(presented.encode(), who.csrf.encode()):
        request.state.refusal = "missing or forged CSRF token"
        raise HTTPException(403, "missing or forged CSRF token")


class Need:
    """A FastAPI dependency: the caller must hold ``role`` (on the dataset, if scoped).

    ``csrf="body"`` leaves the CSRF check of a multipart upload to its handler, which
    reads the form field while streaming the upload (nothing is kept when it fails).

    Examples
    --------
    >>> Need(Role.curator, scope="dataset").role.name
    'curator'
    """

    def __init__(self, role: Role, *, scope: Scope = "global",
                 csrf: Literal["check", "body"] = "check") -> None:
        self.role, self.scope, self.csrf = role, scope, csrf

    def __repr__(self) -> str:
        return f"Need({self.role.name}, scope={self.scope})"

    async def __call__(self, request: Request) -> Principal:
        svc = service_of(request)
        who = await run_in_threadpool(identify, svc, request)
        if who is None:
            raise HTTPException(401, "authentication required: send a bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = who
        if request.method in UNSAFE_METHODS and who.csrf is not None and self.csrf == "check":
            presented = request.headers.get("x-csrf-token")
            ctype = request.headers.get("content-type", "")
            if presented is None and ctype.startswith("application/x-www-form-urlencoded"):
                form = await request.form(max_files=0, max_fields=32)
                value = form.get("csrf")
                presented = value if isinstance(value, str) else None
            check_csrf(request, who, presented)
        role = who.role
        if self.scope != "global":
            role_on = await run_in_threadpool(self._scoped_role, svc, request, who)
            if role_on is None:
                request.state.refusal = f"no access to this {self.scope}"
                raise HTTPException(404, f"no such {self.scope}")
            role = role_on
        if role < self.role:
            request.state.refusal = f"needs the {self.role.name} role"
            raise HTTPException(403, f"this needs the {self.role.name} role "
                                     f"(you have {role.name})")
        return who

    def _scoped_role(self, svc: Service, request: Request, who: Principal) -> Role | None:
        if self.scope == "dataset":
            dataset_id = str(request.path_params.get("dataset_id", ""))
        else:
            job = svc.job(str(request.path_params.get("job_id", "")))
            if job is None:
                return None
            dataset_id = job["dataset_id"]
        request.state.dataset_id = dataset_id
        return svc.role_on(who, dataset_id)
