"""The dashboard's pages (GET): server-rendered with Jinja2, charts from the report.

Pages: datasets, one dataset (its jobs, row decisions and ledger timeline), one job
(progress while it runs; for a scan the report's charts and the flagged rows with
quarantine and release buttons for curators), the whole ledger (admins), models
and alerts. The forms they show post to :mod:`poisonguard.service.dashboard_forms`.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from poisonguard.service import records
from poisonguard.service.auth import Need, service_of
from poisonguard.service.ledger_view import all_entries, dataset_entries, monitor_items
from poisonguard.service.models import ID_PATTERN
from poisonguard.service.roles import Role
from poisonguard.service.uploads import ALLOWED_SUFFIXES
from poisonguard.service.users import Principal

__all__ = ["LOGIN_COOKIE", "render", "router", "templates"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(FsPath(__file__).parent / "templates"))
LOGIN_COOKIE = "pg_login"
DatasetId = Annotated[str, Path(pattern=ID_PATTERN)]
JobId = Annotated[str, Path(pattern=ID_PATTERN)]
FLAGGED_SHOWN = 200


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    who: Principal | None = getattr(request.state, "principal", None)
    context.update(who=who, Role=Role, csrf=who.csrf if who is not None else None)
    return templates.TemplateResponse(request, name, context, status_code=status)


def _cookie_flags(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "path": "/",
            "secure": service_of(request).settings.secure_cookies}


@router.get("/login")
async def login_page(request: Request, error: str = "") -> Response:
    """The token form; its CSRF token is also set as a short-lived cookie."""
    value = secrets.token_urlsafe(32)
    response = render(request, "login.html", login_csrf=value, error=error[:200])
    response.set_cookie(LOGIN_COOKIE, value, max_age=1800, **_cookie_flags(request))
    return response


@router.get("/")
async def home(request: Request, who: Principal = Depends(Need(Role.viewer))) -> Response:
    found = await run_in_threadpool(service_of(request).visible_datasets, who)
    return render(request, "datasets.html", datasets=found, suffixes=ALLOWED_SUFFIXES)


@router.get("/datasets/{dataset_id}")
async def dataset_page(request: Request, dataset_id: DatasetId,
                       who: Principal = Depends(Need(Role.viewer, scope="dataset"))
                       ) -> Response:
    svc = service_of(request)
    record = await run_in_threadpool(svc.dataset, dataset_id)
    role = await run_in_threadpool(svc.role_on, who, dataset_id)
    jobs = await run_in_threadpool(svc.jobs_of, dataset_id)
    decided = await run_in_threadpool(records.row_decisions, svc, dataset_id)
    timeline = await run_in_threadpool(dataset_entries, svc, dataset_id)
    others = [d for d in await run_in_threadpool(svc.visible_datasets, who)
              if d["id"] != dataset_id]
    return render(request, "dataset.html", ds=record, role=role, jobs=jobs,
                  decisions=list(decided.values()), timeline=list(reversed(timeline)),
                  others=others)


def _flagged_rows(svc: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    findings = records.read_findings(svc, job["id"])
    decided = records.row_decisions(svc, job["dataset_id"])
    flagged = sorted((r for r in findings.rows if r.flagged), key=lambda r: -r.score)
    out = []
    for r in flagged[:FLAGGED_SHOWN]:
        state = decided.get(r.index, {}).get("state", "")
        label = r.suggested_label or ""  # a class name (findings carry names)
        out.append({"index": r.index, "id": r.id, "score": r.score, "action": r.action,
                    "suggested": label, "state": state,
                    "reasons": "; ".join(f"{x.detector}: {x.detail}" for x in r.reasons)})
    return out


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: JobId,
                   who: Principal = Depends(Need(Role.viewer, scope="job"))) -> Response:
    svc = service_of(request)
    job = await run_in_threadpool(svc.job, job_id)
    assert job is not None  # Need(scope="job") found it
    role = await run_in_threadpool(svc.role_on, who, job["dataset_id"])
    record = await run_in_threadpool(svc.dataset, job["dataset_id"])
    views, flagged, result = "", [], None
    if job["status"] == "done" and job["kind"] == "scan":
        views = (await run_in_threadpool(svc.files.get_result, job_id, "views.html")).decode()
        flagged = await run_in_threadpool(_flagged_rows, svc, job)
    elif job["status"] == "done" and job["kind"] == "check":
        result = json.loads(await run_in_threadpool(svc.files.get_result, job_id, "check.json"))
    return render(request, "job.html", job=job, ds=record, role=role, views=views,
                  flagged=flagged, result=result, shown=FLAGGED_SHOWN)


@router.get("/ledger")
async def ledger_page(request: Request, offset: int = 0,
                      _: Principal = Depends(Need(Role.admin))) -> Response:
    page = await run_in_threadpool(all_entries, service_of(request), offset=max(offset, 0))
    return render(request, "ledger.html", page=page, offset=max(offset, 0))


@router.get("/monitor")
async def monitor_page(request: Request, _: Principal = Depends(Need(Role.viewer))) -> Response:
    svc = service_of(request)
    models = await run_in_threadpool(monitor_items, svc, "models")
    alerts = await run_in_threadpool(monitor_items, svc, "alerts")
    return render(request, "monitor.html", models=models, alerts=alerts)
