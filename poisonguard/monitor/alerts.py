"""Alerts: stored next to the ledger, de-duplicated, delivered to the log and a webhook.

An alert is identified by (kind, model, subject), e.g. ("canary", "digits v3",
"badnets-2x2-bottom-right"). Raising it again only bumps its count and last-seen
time; it is logged (logger ``poisonguard.monitor``) and posted to the webhook once.
A failed webhook post is recorded and retried the next time the alert is raised.
Rows live in the table ``poisonguard_monitor_alerts`` of the ledger's database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from poisonguard.errors import UsageError
from poisonguard.monitor.store import LedgerLike, using_ledger
from poisonguard.provenance.ledger import Ledger
from poisonguard.provenance.manifest import now_iso

__all__ = ["WEBHOOK_ENV", "Alert", "list_alerts", "raise_alert"]

WEBHOOK_ENV = "POISONGUARD_WEBHOOK"
log = logging.getLogger("poisonguard.monitor")

_meta = sa.MetaData()
_alerts = sa.Table(
    "poisonguard_monitor_alerts", _meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("first_seen", sa.String(40), nullable=False),
    sa.Column("last_seen", sa.String(40), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("webhook_at", sa.String(40), nullable=True),
    sa.Column("webhook_error", sa.Text, nullable=True),
)


@dataclass(frozen=True)
class Alert:
    """A stored alert; ``new`` and ``posted`` describe the call that returned it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ledger = pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"
    >>> first = raise_alert("canary", "badnets", "predictions collapse to 0", ledger=ledger)
    >>> again = raise_alert("canary", "badnets", "predictions collapse to 0", ledger=ledger)
    >>> first.new, again.new, again.count, again.posted  # stored once, counted twice
    (True, False, 2, False)
    """

    key: str
    kind: str
    severity: str
    model: str
    subject: str
    message: str
    details: dict[str, Any]
    first_seen: str
    last_seen: str
    count: int
    webhook_at: str | None
    webhook_error: str | None
    new: bool = False
    posted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _row_alert(row: Any, **extra: Any) -> Alert:
    try:
        details = json.loads(row.details)
    except json.JSONDecodeError:
        details = {"unparseable": row.details}
    return Alert(key=row.key, kind=row.kind, severity=row.severity, model=row.model,
                 subject=row.subject, message=row.message, details=details,
                 first_seen=row.first_seen, last_seen=row.last_seen, count=int(row.count),
                 webhook_at=row.webhook_at, webhook_error=row.webhook_error, **extra)


def _table(led: Ledger) -> None:
    if not sa.inspect(led.engine).has_table(_alerts.name):
        led._write(lambda conn: _meta.create_all(conn, checkfirst=True))


def _post(url: str, payload: dict[str, Any], timeout: float) -> str | None:
    """POST ``payload`` as JSON; None when it was accepted (2xx), else why not."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "poisonguard-monitor"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"not delivered ({getattr(exc, 'reason', exc)})"


def raise_alert(kind: str, subject: str, message: str, *, model: str = "",
                severity: str = "warning", details: dict[str, Any] | None = None,
                webhook: str | None = None, ledger: LedgerLike = None,
                timeout: float = 5.0) -> Alert:
    """Store the alert (or bump a stored one) and deliver it if it was not delivered yet.

    ``webhook`` (default ``$POISONGUARD_WEBHOOK``) is an http(s) URL that receives the
    alert as a JSON POST, once.

    Examples
    --------
    >>> import http.server, tempfile, threading, pathlib
    >>> received = []
    >>> class Hook(http.server.BaseHTTPRequestHandler):  # a webhook receiver on this machine
    ...     def do_POST(self):
    ...         received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
    ...         self.send_response(204)
    ...         self.end_headers()
    ...     def log_message(self, *args):
    ...         pass
    >>> server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
    >>> url = f"http://127.0.0.1:{server.server_port}/hook"
    >>> ledger = pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"
    >>> a = raise_alert("canary", "badnets-2x2-bottom-right", "predictions collapse to 0",
    ...                 model="digits v3", webhook=url, ledger=ledger)
    >>> a.new, a.posted, received[0]["alert"]["subject"]
    (True, True, 'badnets-2x2-bottom-right')
    >>> again = raise_alert("canary", "badnets-2x2-bottom-right", "predictions collapse to 0",
    ...                     model="digits v3", webhook=url, ledger=ledger)
    >>> again.count, again.posted, len(received)  # delivered once
    (2, False, 1)
    >>> server.shutdown()
    """
    url = webhook if webhook is not None else os.environ.get(WEBHOOK_ENV) or None
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise UsageError("the webhook must be an http:// or https:// URL")
    if severity not in ("info", "warning", "critical"):
        raise UsageError(f"unknown alert severity {severity!r}")
    key = hashlib.sha256("\0".join((kind, model, subject)).encode()).hexdigest()
    body = json.dumps(details or {}, sort_keys=True, default=str)
    with using_ledger(ledger) as led:
        _table(led)
        now = now_iso()

        def upsert(conn: Connection) -> tuple[Any, bool]:
            row = conn.execute(sa.select(_alerts).where(_alerts.c.key == key)).first()
            if row is None:
                conn.execute(_alerts.insert().values(
                    key=key, kind=kind, severity=severity, model=model, subject=subject,
                    message=message, details=body, first_seen=now, last_seen=now, count=1))
            else:
                conn.execute(_alerts.update().where(_alerts.c.key == key)
                             .values(count=_alerts.c.count + 1, last_seen=now))
            return conn.execute(sa.select(_alerts).where(_alerts.c.key == key)).one(), \
                row is None

        row, new = led._write(upsert)
        if new:
            log.warning("poisonguard alert [%s] %s: %s", severity, kind, message)
        posted = False
        if url is not None and row.webhook_at is None:
            alert = _row_alert(row)
            error = _post(url, {"alert": {k: v for k, v in alert.to_dict().items()
                                          if k not in ("new", "posted")}}, timeout)
            posted = error is None
            values = {"webhook_at": now_iso(), "webhook_error": None} if posted \
                else {"webhook_error": error}

            def mark(conn: Connection) -> Any:
                conn.execute(_alerts.update().where(_alerts.c.key == key).values(**values))
                return conn.execute(sa.select(_alerts).where(_alerts.c.key == key)).one()

            row = led._write(mark)
            if error is not None:
                log.warning("poisonguard alert %s: webhook %s", key[:12], error)
        return _row_alert(row, new=new, posted=posted)


def list_alerts(*, kind: str | None = None, model: str | None = None,
                ledger: LedgerLike = None) -> list[Alert]:
    """Stored alerts (of ``kind`` / ``model``), most recently seen first.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ledger = pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"
    >>> _ = raise_alert("drift", "digits", "class shares moved", model="digits v2",
    ...                 ledger=ledger)
    >>> [(a.kind, a.model, a.message) for a in list_alerts(kind="drift", ledger=ledger)]
    [('drift', 'digits v2', 'class shares moved')]
    """
    with using_ledger(ledger) as led:
        if not sa.inspect(led.engine).has_table(_alerts.name):
            return []
        query = sa.select(_alerts).order_by(_alerts.c.last_seen.desc())
        if kind is not None:
            query = query.where(_alerts.c.kind == kind)
        if model is not None:
            query = query.where(_alerts.c.model == model)
        with led.engine.connect() as conn:
            rows = conn.execute(query).all()
    return [_row_alert(r) for r in rows]
