"""An audit entry in the ledger for every request that could change something.

Pure ASGI middleware: for ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` it appends a
ledger entry of kind ``audit`` just before the response starts, allowed or refused
(who, what, when, from where, and the outcome), so the entry exists by the time the
caller sees the answer. Handlers add detail through ``request.state.audit``.
Secrets never enter it: no headers but the user agent, no bodies, no query values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from poisonguard.service.auth import UNSAFE_METHODS

if TYPE_CHECKING:
    from poisonguard.provenance.ledger import Ledger

__all__ = ["AuditMiddleware", "audit_details"]


def _clip(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n] + "…"


def audit_details(scope: Scope, status: int) -> tuple[str, dict[str, Any]]:
    """``(actor, details)`` of the audit entry for a request that got ``status``."""
    state = scope.get("state") or {}
    who = state.get("principal")
    client = scope.get("client") or ("", 0)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1", "replace")
               for k, v in scope.get("headers", [])}
    details: dict[str, Any] = {
        "method": scope.get("method", ""), "path": _clip(scope.get("path", "")),
        "status": status, "outcome": "allowed" if status < 400 else "refused",
        "from": f"{client[0]}:{client[1]}", "agent": _clip(headers.get("user-agent", ""), 120),
        "auth": ("token" if "authorization" in headers else
                 "session" if who is not None else "none"),
    }
    if who is not None:
        details["token_id"] = who.token_id
    if state.get("refusal") and status >= 400:
        details["reason"] = state["refusal"]
    if state.get("dataset_id"):
        details["dataset"] = state["dataset_id"]
    details.update(state.get("audit") or {})
    return (who.name if who is not None else "anonymous"), details


class AuditMiddleware:
    """Wraps the app; ``ledger()`` returns the ledger to append to."""

    def __init__(self, app: ASGIApp, ledger: Any) -> None:
        self.app = app
        self.ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            actor, details = audit_details(scope, status)
            led: Ledger = self.ledger()
            await run_in_threadpool(led.append, "audit", actor=actor, details=details)

        async def send_audited(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                await record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            if not recorded:
                await record(500)
            raise
