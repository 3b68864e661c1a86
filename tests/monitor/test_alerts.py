"""Alerts: stored, de-duplicated, logged, and posted once to a webhook on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from poisonguard.errors import UsageError
from poisonguard.monitor import (
    canary_check,
    list_alerts,
    raise_alert,
    register_golden,
    register_model,
)
from tests.monitor.conftest import TARGET, Digits


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[type[_Hook]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_port}/hook"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_each_canary_alert_reaches_the_webhook_once(digits: Digits, webhook: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    register_golden(digits.golden_path, name="golden")
    register_model(digits.badnets_path, name="digits", alias="champion", reason="test")
    first = canary_check("digits", golden="golden", webhook=webhook.url)
    assert first.alarm and first.alerts and all(a.new and a.posted for a in first.alerts)
    assert all(a.details["target"] == str(TARGET) for a in first.alerts)
    again = canary_check("digits", golden="golden", webhook=webhook.url)
    assert again.alarm and not any(a.new or a.posted for a in again.alerts)
    posted = [m["alert"]["subject"] for m in webhook.received]
    assert sorted(posted) == sorted(a.subject for a in first.alerts)  # each exactly once
    assert {a.count for a in list_alerts(kind="canary")} == {2}
    logged = [r.getMessage() for r in caplog.records if r.name == "poisonguard.monitor"]
    assert len(logged) == len(first.alerts)


def test_clean_model_raises_no_alert(digits: Digits, webhook: Any) -> None:
    register_golden(digits.golden_path, name="golden")
    register_model(digits.clean_path, name="digits", alias="champion", reason="test")
    report = canary_check("digits", golden="golden", webhook=webhook.url)
    assert not report.alarm and report.alerts == ()
    assert webhook.received == [] and list_alerts() == []


def test_a_failed_post_is_retried_on_the_next_raise(webhook: Any) -> None:
    webhook.status = 500
    a = raise_alert("drift", "batch 1", "drifted", model="m v1", webhook=webhook.url)
    assert a.new and not a.posted and a.webhook_error == "HTTP 500"
    webhook.status = 200
    b = raise_alert("drift", "batch 1", "drifted", model="m v1", webhook=webhook.url)
    assert not b.new and b.posted and b.count == 2
    c = raise_alert("drift", "batch 1", "drifted", model="m v1", webhook=webhook.url)
    assert not c.posted
    assert len(webhook.received) == 2  # the failed attempt and the retry; none after


def test_only_http_webhooks() -> None:
    with pytest.raises(UsageError, match="http"):
        raise_alert("drift", "x", "y", webhook="file:///etc/passwd")
