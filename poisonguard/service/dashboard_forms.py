"""The dashboard's form posts: login, logout, upload, start jobs, row decisions.

Each answers with a redirect (post/redirect/get). Every post is CSRF-checked: login
by the double-submit cookie of the login page, the rest by the session's token
(:class:`~poisonguard.service.auth.Need`; the upload checks it in its handler).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from poisonguard.service import records
from poisonguard.service.api import declared_length
from poisonguard.service.auth import SESSION_COOKIE, Need, check_csrf, service_of
from poisonguard.service.dashboard import LOGIN_COOKIE, _cookie_flags, render
from poisonguard.service.jobs import new_job
from poisonguard.service.models import ID_PATTERN
from poisonguard.service.roles import Role
from poisonguard.service.uploads import UploadRefused, receive_form
from poisonguard.service.users import (
    Principal,
    authenticate_token,
    end_session,
    start_session,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
DatasetId = Annotated[str, Path(pattern=ID_PATTERN)]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form(max_length=200)] = "",
                csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Exchange an API token for a session cookie (HttpOnly, SameSite=Strict)."""
    svc = service_of(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        request.state.refusal = "missing or forged CSRF token"
        return render(request, "login.html", status=403, login_csrf=expected,
                      error="The form expired or was forged; reload the page and try again.")
    who = await run_in_threadpool(authenticate_token, svc.store, token.strip())
    if who is None:
        request.state.refusal = "invalid, expired or revoked token"
        return render(request, "login.html", status=401, login_csrf=expected,
                      error="That token is not valid (wrong, expired or revoked).")
    request.state.principal = who
    request.state.audit = {"action": "login"}
    value, _ = await run_in_threadpool(start_session, svc.store, who.token_id,
                                       minutes=svc.settings.session_minutes)
    response = _see_other("/")
    response.set_cookie(SESSION_COOKIE, value, max_age=svc.settings.session_minutes * 60,
                        **_cookie_flags(request))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, _: Principal = Depends(Need(Role.viewer))) -> Response:
    request.state.audit = {"action": "logout"}
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        await run_in_threadpool(end_session, service_of(request).store, value)
    response = _see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/upload")
async def upload(request: Request,
                 who: Principal = Depends(Need(Role.contributor, csrf="body"))) -> Response:
    """The upload form (multipart, streamed); the CSRF field is checked before keeping it."""
    svc = service_of(request)
    request.state.audit = {"action": "upload"}
    try:
        got = await receive_form(request.stream(), request.headers.get("content-type", ""),
                                 tmp_dir=svc.files.tmp, limit=svc.settings.max_upload_bytes,
                                 declared=declared_length(request))
    except UploadRefused as exc:
        request.state.refusal = exc.message
        raise HTTPException(exc.status, exc.message) from None
    try:
        check_csrf(request, who, got.fields.get("csrf"))
    except HTTPException:
        got.discard()
        raise
    request.state.audit["name"] = got.name
    try:
        record = await run_in_threadpool(records.ingest, svc, got, who,
                                         label=got.fields.get("label") or "label",
                                         id_column=got.fields.get("id_column") or None)
    except UploadRefused as exc:
        request.state.refusal = exc.message
        raise HTTPException(exc.status, exc.message) from None
    request.state.audit.update(dataset=record["id"], sha256=record["sha256"])
    return _see_other(f"/datasets/{record['id']}")


async def _start(request: Request, kind: str, dataset_id: str, params: dict[str, Any],
                 who: Principal) -> Response:
    job_id = await run_in_threadpool(new_job, service_of(request), kind, dataset_id, params,
                                     who.user_id)
    request.state.audit = {"action": f"start {kind}", "job": job_id}
    return _see_other(f"/jobs/{job_id}")


@router.post("/datasets/{dataset_id}/scan")
async def start_scan(request: Request, dataset_id: DatasetId,
                     detectors: Annotated[str, Form(max_length=500)] = "",
                     who: Principal = Depends(Need(Role.contributor, scope="dataset"))
                     ) -> Response:
    from poisonguard.detect import available_detectors

    names = [d.strip() for d in detectors.split(",") if d.strip()] or None
    if names and set(names) - set(available_detectors()):
        raise HTTPException(422, "unknown detector")
    return await _start(request, "scan", dataset_id, {"detectors": names, "seed": 0}, who)


@router.post("/datasets/{dataset_id}/snapshot")
async def start_snapshot(request: Request, dataset_id: DatasetId,
                         source: Annotated[str, Form(max_length=200)] = "",
                         who: Principal = Depends(Need(Role.contributor, scope="dataset"))
                         ) -> Response:
    return await _start(request, "snapshot", dataset_id, {"source": source}, who)


@router.post("/datasets/{dataset_id}/check")
async def start_check(request: Request, dataset_id: DatasetId,
                      baseline: Annotated[str, Form(pattern=ID_PATTERN)],
                      who: Principal = Depends(Need(Role.contributor, scope="dataset"))
                      ) -> Response:
    if await run_in_threadpool(service_of(request).role_on, who, baseline) is None:
        raise HTTPException(404, "no such baseline dataset")
    return await _start(request, "check", dataset_id, {"baseline": baseline}, who)


@router.post("/datasets/{dataset_id}/rows/{row}/{decision}")
async def decide(request: Request, dataset_id: DatasetId,
                 row: Annotated[int, Path(ge=0, le=2**31 - 1)],
                 decision: Annotated[str, Path(pattern="^(approve|quarantine|release)$")],
                 back: Annotated[str, Form(max_length=100, pattern=r"^(/(jobs|datasets)/"
                                           r"[0-9a-f]{16})?$")] = "",
                 who: Principal = Depends(Need(Role.curator, scope="dataset"))) -> Response:
    svc = service_of(request)
    record = await run_in_threadpool(svc.dataset, dataset_id)
    assert record is not None  # Need(scope="dataset") found it
    request.state.audit = {"action": decision, "row": row}
    await run_in_threadpool(records.decide, svc, record, row, decision, who)
    return _see_other(back or f"/datasets/{dataset_id}")
