"""The FastAPI application: routes, audit, security headers and error pages.

``create_app()`` with no arguments reads :class:`ServiceSettings` from the
environment (prefix ``POISONGUARD_``); the OpenAPI spec is at ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import poisonguard
from poisonguard.errors import DataError, IntegrityError, PoisonguardError, UsageError
from poisonguard.provenance.ledger import LedgerLockedError
from poisonguard.service import api, api_admin, dashboard, dashboard_forms
from poisonguard.service.audit import AuditMiddleware
from poisonguard.service.core import Service
from poisonguard.service.settings import ServiceSettings

__all__ = ["create_app"]

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_HEADERS = [(b"content-security-policy", _CSP.encode()), (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store")]


class SecurityHeaders:
    """Adds CSP, nosniff, no framing, no referrer and no caching to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path == "/openapi.json"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _is_api(request):
        return await http_exception_handler(request, exc)
    if exc.status_code == 401 and request.method == "GET":
        return RedirectResponse("/login", status_code=303)
    return dashboard.render(request, "error.html", status=exc.status_code,
                            message=str(exc.detail))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _is_api(request):
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)
    fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors())
    return dashboard.render(request, "error.html", status=422,
                            message=f"invalid form or URL ({fields})")


_STATUS = [(LedgerLockedError, 503), (IntegrityError, 409), (DataError, 422), (UsageError, 422)]


async def _library_error(request: Request, exc: Exception) -> Response:
    status = next((s for kind, s in _STATUS if isinstance(exc, kind)), 500)
    request.state.refusal = str(exc)[:300]
    if _is_api(request):
        return JSONResponse({"detail": str(exc)}, status_code=status)
    return dashboard.render(request, "error.html", status=status, message=str(exc))


def create_app(settings: ServiceSettings | None = None, *,
               service: Service | None = None) -> FastAPI:
    """The service as an ASGI app.

    Examples
    --------
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from poisonguard.service.users import add_user, issue_token
    >>> app = create_app(ServiceSettings(home=tempfile.mkdtemp()))
    >>> _ = add_user(app.state.service.store, "ana", "curator")
    >>> _, token = issue_token(app.state.service.store, "ana")
    >>> bearer = {"Authorization": f"Bearer {token}"}
    >>> with TestClient(app) as client:  # or: uvicorn.run(app, host="127.0.0.1", port=8000)
    ...     print(client.get("/api/health").json())
    ...     print(client.get("/api/me").status_code)
    ...     print(client.get("/api/me", headers=bearer).json()["role"])
    {'status': 'ok'}
    401
    curator
    """
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if service is None:
            svc.close()

    app = FastAPI(title="poisonguard", version=poisonguard.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Training-data poisoning defense: datasets, scans, checks, "
                              "snapshots, row decisions and the audit ledger.")
    app.state.service = svc
    for module in (api, api_admin, dashboard, dashboard_forms):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")),
              name="static")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoisonguardError, _library_error)
    app.add_middleware(AuditMiddleware, ledger=lambda: svc.store.ledger)
    app.add_middleware(SecurityHeaders)
    return app
