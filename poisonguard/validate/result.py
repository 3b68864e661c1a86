"""What ``check`` returns: typed findings and the gate verdict, JSON-ready."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from poisonguard.data import atomic_write_text

__all__ = ["SEVERITIES", "CheckReport", "Finding", "save_report"]

SEVERITIES = ("fail", "warn", "info", "pass")


@dataclass(frozen=True)
class Finding:
    """One test or rule outcome.

    ``p_value`` is raw, ``p_adjusted`` corrected for multiple testing (None for rules
    such as a missing column). ``rows`` are indices of the new batch to blame (at
    most ``max_rows`` of them; ``n_rows`` is the full count).

    Examples
    --------
    >>> f = Finding("schema", "column", feature="age", severity="fail",
    ...             message="column 'age' is missing")
    >>> f.to_dict()["message"]
    "column 'age' is missing"
    """

    check: str
    test: str
    feature: str | None = None
    cls: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    threshold: float | None = None
    severity: str = "pass"
    message: str = ""
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "test": self.test, "feature": self.feature, "class": self.cls,
            "statistic": self.statistic, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
            "threshold": self.threshold, "severity": self.severity, "message": self.message,
            "n_rows": self.n_rows, "rows": list(self.rows), "detail": self.detail,
        }


@dataclass(frozen=True)
class CheckReport:
    """The gate's verdict on a batch: ``passed`` is False when any finding fails.

    Examples
    --------
    >>> from poisonguard.validate import check, profile_data
    >>> report = check(profile_data("builtin:wine"), "builtin:wine")
    >>> report.passed, report.failures
    (True, [])
    """

    findings: tuple[Finding, ...]
    summary: dict[str, Any]

    @property
    def passed(self) -> bool:
        return not any(f.severity == "fail" for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fail"]

    def by_severity(self, *levels: str) -> list[Finding]:
        return [f for f in self.findings if f.severity in levels]

    def blamed_rows(self) -> list[int]:
        """Every row index that a failing finding blames, sorted."""
        return sorted({r for f in self.failures for r in f.rows})

    def to_dict(self) -> dict[str, Any]:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        findings = sorted(self.findings, key=lambda f: (order.get(f.severity, 9),
                                                        f.p_adjusted if f.p_adjusted is not
                                                        None else -1.0))
        return {"tool": "poisonguard", "kind": "check", "passed": self.passed,
                "summary": self.summary, "findings": [f.to_dict() for f in findings]}


def save_report(report: CheckReport, path: str | Path) -> None:
    """Write the report as JSON (``to_dict()``), atomically.

    Examples
    --------
    >>> import json, tempfile
    >>> from poisonguard.validate import check, profile_data
    >>> report = check(profile_data("builtin:wine"), "builtin:wine")
    >>> path = tempfile.mkdtemp() + "/report.json"
    >>> save_report(report, path)
    >>> json.load(open(path))["passed"]
    True
    """
    atomic_write_text(path, json.dumps(report.to_dict(), indent=1) + "\n")
