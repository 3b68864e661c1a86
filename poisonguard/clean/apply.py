"""Turn findings into a cleaning plan and write the clean and quarantined data.

Inputs are never overwritten. Tables (CSV, Parquet) keep every original column;
arrays (NPZ) and image folders are written as NPZ. Every output is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from poisonguard.data import (
    Dataset,
    ensure_not_same,
    label_values,
    load_table,
    save_dataset,
    save_table,
)
from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings, as_table, rows_within

__all__ = ["CleanPlan", "CleanResult", "apply_findings", "plan_cleaning"]

Action = Literal["suggested", "drop", "relabel", "review"]


@dataclass(frozen=True)
class CleanPlan:
    """Row indices to keep, to drop (quarantine) and to relabel (index -> label code)."""

    keep: np.ndarray
    drop: np.ndarray
    relabel: dict[int, int]

    @property
    def n_changed(self) -> int:
        return len(self.drop) + len(self.relabel)


@dataclass(frozen=True)
class CleanResult:
    plan: CleanPlan
    out: Path
    quarantine: Path | None


def plan_cleaning(findings: Findings, n_rows: int, *, action: Action = "suggested") -> CleanPlan:
    """Decide each flagged row's fate.

    ``suggested`` follows each row's action in the findings; ``drop`` drops every
    flagged row; ``relabel`` relabels flagged rows that have a suggested label and
    drops the rest; ``review`` changes nothing in the clean set but quarantines every
    flagged row for a person to look at (so the clean set is the unflagged rows).
    """
    if len(findings.rows) != n_rows:
        raise DataError(f"findings cover {len(findings.rows)} rows but the data has {n_rows}")
    t = as_table(findings)
    has_label = t.suggested >= 0
    if action in ("review", "drop"):
        relabelled = np.zeros(len(t), dtype=bool)
    elif action == "relabel":
        relabelled = t.flagged & has_label
    else:
        relabelled = t.flagged & has_label & (t.action == "relabel")
    relabel = dict(zip(t.row_index[relabelled].tolist(), t.suggested[relabelled].tolist(),
                       strict=True))
    dropped = np.sort(t.row_index[t.flagged & ~relabelled])
    keep = np.setdiff1d(np.arange(n_rows), dropped)
    return CleanPlan(keep=keep, drop=dropped, relabel=relabel)


def _check_matches(findings: Findings, dataset: Dataset) -> None:
    assert dataset.ids is not None
    if len(findings.rows) != len(dataset):
        raise DataError(
            f"findings cover {len(findings.rows)} rows but the data has {len(dataset)}",
            path=dataset.source,
        )
    index = rows_within(findings, len(dataset), path=dataset.source)
    ids = np.asarray(dataset.ids, dtype=object)[index]
    differ = np.flatnonzero(ids != np.asarray(as_table(findings).ids, dtype=object))
    if differ.size:
        raise DataError("data does not match the findings (row id differs)",
                        path=dataset.source, row=int(index[differ[0]]))


def apply_findings(
    dataset: Dataset,
    findings: Findings,
    out: str | Path,
    *,
    quarantine: str | Path | None = None,
    action: Action = "suggested",
) -> CleanResult:
    """Write the cleaned data to ``out`` and the removed rows to ``quarantine``."""
    _check_matches(findings, dataset)
    out_path = Path(out)
    q_path = Path(quarantine) if quarantine is not None else None
    if dataset.source:
        ensure_not_same(dataset.source, out_path)
        if q_path is not None:
            ensure_not_same(dataset.source, q_path)
    if q_path is not None and q_path.resolve() == out_path.resolve():
        raise UsageError("--out and --quarantine must be different files")
    plan = plan_cleaning(findings, len(dataset), action=action)
    fmt = dataset.meta.get("format", "")
    if fmt in {"csv", "parquet", "pq"} and out_path.suffix.lower() in {".csv", ".parquet", ".pq"}:
        _write_table(dataset, plan, out_path, q_path)
    else:
        labels = dataset.labels.copy()
        for i, code in plan.relabel.items():
            labels[i] = code
        relabelled = dataset.replace(labels=labels)
        save_dataset(relabelled.subset(plan.keep), out_path)
        if q_path is not None:
            save_dataset(dataset.subset(plan.drop), q_path)
    return CleanResult(plan=plan, out=out_path, quarantine=q_path)


def _write_table(dataset: Dataset, plan: CleanPlan, out: Path, quarantine: Path | None) -> None:
    """Clean a CSV/Parquet input row-wise, keeping every original column."""
    table = load_table(dataset.source)
    if len(table) != len(dataset):
        raise DataError("the file changed since it was loaded", path=dataset.source)
    if plan.relabel:
        idx = np.fromiter(plan.relabel, dtype=np.int64)
        new_codes = np.fromiter(plan.relabel.values(), dtype=np.int64)
        column = table[dataset.label_column].to_numpy(dtype=object).copy()
        column[idx] = label_values(dataset, new_codes)
        table[dataset.label_column] = pd.Series(column, index=table.index).infer_objects()
    save_table(table.iloc[plan.keep].reset_index(drop=True), out)
    if quarantine is not None:
        save_table(load_table(dataset.source).iloc[plan.drop].reset_index(drop=True), quarantine)
