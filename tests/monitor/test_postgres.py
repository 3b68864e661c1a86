"""The monitor on PostgreSQL (a server started on loopback by the test)."""

from __future__ import annotations

from poisonguard.monitor import (
    alias_history,
    aliases,
    list_alerts,
    move_alias,
    raise_alert,
    register_model,
    rollback,
)
from poisonguard.provenance import Ledger
from tests.monitor.conftest import Digits


def test_registry_rollback_and_alerts_on_postgresql(digits: Digits, pg_ledger: str) -> None:
    for _ in range(2):
        register_model(digits.clean_path, name="digits", ledger=pg_ledger)
    move_alias("digits", "champion", 1, reason="first", ledger=pg_ledger)
    move_alias("digits", "champion", 2, reason="second", action="promote", ledger=pg_ledger)
    assert rollback("digits", reason="bad", ledger=pg_ledger).to_version == 1
    assert aliases("digits", ledger=pg_ledger) == {"champion": 1}
    assert len(alias_history("digits", ledger=pg_ledger)) == 3
    for _ in range(2):
        raise_alert("drift", "batch", "drifted", model="digits v1", ledger=pg_ledger)
    (alert,) = list_alerts(ledger=pg_ledger)
    assert alert.count == 2
    led = Ledger(pg_ledger)
    try:
        assert led.verify() == [] and len(led.entries()) == 5
    finally:
        led.close()
