"""The public API is exactly ``__all__``, and every name in it resolves."""

from __future__ import annotations

import poisonguard


def test_public_api_is_all() -> None:
    assert dir(poisonguard) == sorted(poisonguard.__all__)
    for name in poisonguard.__all__:
        assert getattr(poisonguard, name) is not None
    assert "scan" in poisonguard.__all__ and callable(poisonguard.scan)


def test_scan_via_public_api_on_clean_wine() -> None:
    findings = poisonguard.scan(_wine())
    assert len(findings.rows) == 178
    assert findings.summary["flagged"] <= 3  # clean data: at most ~1% of rows flagged


def _wine() -> poisonguard.Dataset:
    from poisonguard.datasets import builtin_dataset

    return builtin_dataset("wine")


def test_lazy_exports_match_all() -> None:
    assert sorted(poisonguard._EXPORTS) == sorted(n for n in poisonguard.__all__
                                                  if n != "__version__")
