"""The public API is exactly ``__all__``, and every name in it resolves."""

from __future__ import annotations

import types

import poisonguard
from poisonguard.datasets import builtin_dataset


def test_public_api_is_all() -> None:
    public = {n for n in dir(poisonguard) if not n.startswith("_")
              and not isinstance(getattr(poisonguard, n), types.ModuleType)}
    assert public == {n for n in poisonguard.__all__ if not n.startswith("_")}
    assert callable(poisonguard.scan)


def test_scan_via_public_api_on_clean_wine() -> None:
    findings = poisonguard.scan(builtin_dataset("wine"))
    assert len(findings.rows) == 178
    assert findings.summary["flagged"] <= 3  # clean data: at most ~1% of rows flagged
