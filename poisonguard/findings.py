"""Findings: what ``scan`` writes and every other tool reads (see docs/design.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from poisonguard.data import atomic_path, atomic_write_text
from poisonguard.errors import DataError

__all__ = ["Findings", "Reason", "RowFinding", "load_findings", "save_findings"]

ACTIONS = ("keep", "drop", "relabel", "review")


@dataclass(frozen=True)
class Reason:
    detector: str
    score: float
    detail: str


@dataclass(frozen=True)
class RowFinding:
    index: int
    id: str
    score: float
    flagged: bool
    action: str = "keep"
    suggested_label: int | None = None
    reasons: tuple[Reason, ...] = ()
    detector_scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = [asdict(r) for r in self.reasons]
        return d


@dataclass(frozen=True)
class Findings:
    dataset: dict[str, Any]
    detectors: tuple[str, ...]
    rows: tuple[RowFinding, ...]
    summary: dict[str, Any]
    detector_results: dict[str, Any] = field(default_factory=dict)
    tool: str = "poisonguard"
    version: str = "0.1.0"

    @property
    def flagged(self) -> list[RowFinding]:
        return [r for r in self.rows if r.flagged]

    def flagged_indices(self) -> list[int]:
        return [r.index for r in self.rows if r.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "version": self.version,
            "dataset": self.dataset,
            "detectors": list(self.detectors),
            "rows": [r.to_dict() for r in self.rows],
            "summary": self.summary,
            "detector_results": self.detector_results,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str = "") -> Findings:
        try:
            rows = tuple(
                RowFinding(
                    index=int(r["index"]), id=str(r["id"]), score=float(r["score"]),
                    flagged=bool(r["flagged"]), action=str(r.get("action", "keep")),
                    suggested_label=None if r.get("suggested_label") is None
                    else int(r["suggested_label"]),
                    reasons=tuple(Reason(str(x["detector"]), float(x["score"]), str(x["detail"]))
                                  for x in r.get("reasons", [])),
                    detector_scores={str(k): float(v)
                                     for k, v in (r.get("detector_scores") or {}).items()},
                )
                for r in d["rows"]
            )
            return cls(
                dataset=dict(d["dataset"]), detectors=tuple(d.get("detectors", ())),
                rows=rows, summary=dict(d.get("summary", {})),
                detector_results=dict(d.get("detector_results", {})),
                tool=str(d.get("tool", "poisonguard")), version=str(d.get("version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a poisonguard findings file ({exc!r})", path=path) from None


def save_findings(findings: Findings, path: str | Path) -> None:
    """Write findings as JSON, or as Parquet (one row per data row) by suffix."""
    p = Path(path)
    if p.suffix.lower() in {".parquet", ".pq"}:
        import pandas as pd

        table = pd.DataFrame({
            "index": [r.index for r in findings.rows],
            "id": [r.id for r in findings.rows],
            "score": [r.score for r in findings.rows],
            "flagged": [r.flagged for r in findings.rows],
            "action": [r.action for r in findings.rows],
            "suggested_label": [r.suggested_label for r in findings.rows],
            "reasons": [json.dumps([asdict(x) for x in r.reasons]) for r in findings.rows],
            "detector_scores": [json.dumps(r.detector_scores) for r in findings.rows],
        })
        header = {k: v for k, v in findings.to_dict().items() if k != "rows"}
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        arrow = arrow.replace_schema_metadata(
            {**(arrow.schema.metadata or {}), b"poisonguard": json.dumps(header).encode()}
        )
        with atomic_path(p, suffix=".parquet") as tmp:
            pq.write_table(arrow, tmp)
        return
    atomic_write_text(p, json.dumps(findings.to_dict(), indent=1) + "\n")


def load_findings(path: str | Path) -> Findings:
    """Read findings written by :func:`save_findings` (JSON or Parquet)."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such findings file", path=str(p))
    if p.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            arrow = pq.read_table(p)
            header = json.loads((arrow.schema.metadata or {})[b"poisonguard"])
        except (KeyError, OSError, ValueError) as exc:
            raise DataError(f"not a poisonguard findings file ({exc})", path=str(p)) from None
        cols = arrow.to_pydict()
        rows: Sequence[dict[str, Any]] = [
            {**{k: cols[k][i] for k in cols if k not in ("reasons", "detector_scores")},
             "reasons": json.loads(cols["reasons"][i]),
             "detector_scores": json.loads(cols["detector_scores"][i])}
            for i in range(arrow.num_rows)
        ]
        return Findings.from_dict({**header, "rows": rows}, path=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=str(p)) from None
    if not isinstance(data, dict):
        raise DataError("not a poisonguard findings file", path=str(p))
    return Findings.from_dict(data, path=str(p))
