"""Turn findings into a cleaning plan and write the clean and quarantined data.

Inputs are never overwritten. Tables (CSV, Parquet) keep every original column;
arrays (NPZ) and image folders are written as NPZ. Every output is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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

__all__ = [
    "ACTIONS", "CONFIDENT_SCORE", "CleanPlan", "CleanResult", "apply_findings", "plan_cleaning",
]

Action = Literal["quarantine", "drop", "relabel", "review"]
ACTIONS: tuple[str, ...] = ("quarantine", "drop", "relabel", "review")

#: A flagged row is relabelled (with ``action="relabel"``) only when every detector
#: that flagged it suggested a label and its detector evidence (``RowFinding.evidence``:
#: the highest calibrated detector score, whatever band the fused score sits in) is at
#: least this high.
CONFIDENT_SCORE = 0.8

#: Columns added to a quarantined table (the original columns come first).
REASON_COLUMNS = ("poisonguard_row", "poisonguard_score", "poisonguard_reasons")


@dataclass(frozen=True)
class CleanPlan:
    """Row indices to keep, to quarantine, and to relabel (index -> label code).

    Examples
    --------
    >>> import numpy as np
    >>> plan = CleanPlan(keep=np.array([0, 1, 3]), drop=np.array([2]), relabel={3: 0})
    >>> plan.n_changed
    2
    """

    keep: np.ndarray
    drop: np.ndarray
    relabel: dict[int, int]

    @property
    def n_changed(self) -> int:
        return len(self.drop) + len(self.relabel)


@dataclass(frozen=True)
class CleanResult:
    """What :func:`apply_findings` did: the plan and the files it wrote.

    Examples
    --------
    >>> import tempfile
    >>> import poisonguard
    >>> from poisonguard.clean import apply_findings
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> out = tempfile.mkdtemp() + "/clean.csv"
    >>> result = apply_findings(wine, poisonguard.scan(wine), out)
    >>> len(result.plan.keep) + len(result.plan.drop)
    178
    """

    plan: CleanPlan
    out: Path
    quarantine: Path | None

    def ledger_outputs(self, **open_options: Any) -> list[dict[str, Any]]:
        """Ledger references (path and Merkle root) of the files written.

        ``open_options`` open them as the input was opened (label, id column, ...).
        An empty quarantine has no Merkle root: it is recorded with ``rows=0``.

        Examples
        --------
        >>> import tempfile, pathlib, poisonguard
        >>> wine = poisonguard.open_dataset("builtin:wine")
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "clean.csv"
        >>> result = apply_findings(wine, poisonguard.scan(wine, detectors="outlier"), out)
        >>> [(pathlib.Path(r["path"]).name, sorted(r)) for r in result.ledger_outputs()]
        [('clean.csv', ['path', 'root']), ('clean.quarantine.csv', ['path', 'rows'])]
        """
        from poisonguard.datasets import open_dataset
        from poisonguard.provenance import data_ref

        outputs = [data_ref(self.out, open_dataset(self.out, **open_options))]
        if self.quarantine is not None and len(self.plan.drop):
            outputs.append(data_ref(self.quarantine,
                                    open_dataset(self.quarantine, **open_options)))
        elif self.quarantine is not None:
            outputs.append(data_ref(self.quarantine, rows=0))
        return outputs


def _conflict_groups(values: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Groups of rows with identical values and more than one label."""
    flat = np.ascontiguousarray(values.reshape(len(values), -1))
    keys = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    groups = []
    for g in np.flatnonzero(counts > 1):
        rows = np.flatnonzero(inverse == g)
        if len(np.unique(labels[rows])) > 1:
            groups.append(rows)
    return groups


def _one_consistent_copy(rows: np.ndarray, labels: np.ndarray, flagged: np.ndarray) -> int:
    """The row to keep of a conflicting group: the majority label's first unflagged copy."""
    values, counts = np.unique(labels[rows], return_counts=True)
    best = values[counts == counts.max()]
    candidates = [r for r in rows if labels[r] in best]
    unflagged = [r for r in candidates if not flagged[r]]
    return int((unflagged or candidates)[0])


def plan_cleaning(findings: Findings, n_rows: int, *, action: Action = "quarantine",
                  dataset: Dataset | None = None) -> CleanPlan:
    """Decide each flagged row's fate.

    - ``quarantine`` (default) and ``drop``: every flagged row leaves the clean set
      (``quarantine`` writes them, with their reasons, to the quarantine file);
    - ``relabel``: flagged rows with a confident suggestion (every flagging detector
      suggested a label, detector evidence >= :data:`CONFIDENT_SCORE`) get the suggested
      label; the other flagged rows are quarantined;
    - ``review``: every flagged row is quarantined for a person to look at.

    With ``dataset``, exact duplicates that disagree on the label and have a flagged
    row are resolved first: one consistent copy (the majority label) is kept, every
    other copy is quarantined, and none of them is relabelled.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.attack import inject_outliers
    >>> data = inject_outliers(poisonguard.open_dataset("builtin:wine"), rate=0.03).dataset
    >>> plan = plan_cleaning(poisonguard.scan(data, detectors="outlier"), len(data))
    >>> plan.drop.tolist(), len(plan.keep), plan.relabel  # the 6 added outliers go
    ([178, 179, 180, 181, 182, 183], 178, {})
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action '{action}' (known: {', '.join(ACTIONS)})")
    if len(findings.rows) != n_rows:
        raise DataError(f"findings cover {len(findings.rows)} rows but the data has {n_rows}")
    t = as_table(findings)
    flagged = np.zeros(n_rows, dtype=bool)
    flagged[t.row_index[t.flagged]] = True
    out_of_dups = np.zeros(n_rows, dtype=bool)
    if dataset is not None and dataset.modality != "text":
        for rows in _conflict_groups(dataset.matrix(), dataset.labels):
            if flagged[rows].any():
                kept = _one_consistent_copy(rows, dataset.labels, flagged)
                out_of_dups[rows[rows != kept]] = True
                flagged[kept] = False
    if action == "relabel":
        confident = t.flagged & (t.suggested >= 0) & (t.action == "relabel") \
            & (t.evidence >= CONFIDENT_SCORE) & ~out_of_dups[t.row_index]
    else:
        confident = np.zeros(len(t), dtype=bool)
    relabel = dict(zip(t.row_index[confident].tolist(), t.suggested[confident].tolist(),
                       strict=True))
    gone = (flagged | out_of_dups)
    gone[list(relabel)] = False
    dropped = np.flatnonzero(gone)
    keep = np.setdiff1d(np.arange(n_rows), dropped)
    return CleanPlan(keep=keep, drop=dropped, relabel=relabel)


def _check_matches(findings: Findings, dataset: Dataset) -> None:
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
    action: Action = "quarantine",
) -> CleanResult:
    """Write the cleaned data to ``out`` and the removed rows to ``quarantine``.

    The quarantine file defaults to ``OUT.quarantine.EXT`` beside ``out``; tables
    keep every original column there and gain ``poisonguard_row``,
    ``poisonguard_score`` and ``poisonguard_reasons``. See :func:`plan_cleaning` for
    the actions.

    Examples
    --------
    >>> import tempfile, pathlib, poisonguard
    >>> from poisonguard.attack import inject_outliers
    >>> data = inject_outliers(poisonguard.open_dataset("builtin:wine"), rate=0.03).dataset
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> result = apply_findings(data, poisonguard.scan(data, detectors="outlier"),
    ...                         folder / "clean.csv")
    >>> result.out.name, result.quarantine.name, len(result.plan.drop)
    ('clean.csv', 'clean.quarantine.csv', 6)
    """
    _check_matches(findings, dataset)
    out_path = Path(out)
    q_path = Path(quarantine) if quarantine is not None else \
        out_path.with_name(f"{out_path.stem}.quarantine{out_path.suffix}")
    if dataset.source:
        ensure_not_same(dataset.source, out_path)
        if q_path is not None:
            ensure_not_same(dataset.source, q_path)
    if q_path is not None and q_path.resolve() == out_path.resolve():
        raise UsageError("--out and --quarantine must be different files")
    plan = plan_cleaning(findings, len(dataset), action=action, dataset=dataset)
    fmt = dataset.meta.get("format", "")
    if fmt in {"csv", "parquet", "pq"} and out_path.suffix.lower() in {".csv", ".parquet", ".pq"}:
        _write_table(dataset, plan, out_path, q_path, findings)
    else:
        labels = dataset.labels.copy()
        for i, code in plan.relabel.items():
            labels[i] = code
        relabelled = dataset.replace(labels=labels, ids=dataset.ids)
        save_dataset(relabelled.subset(plan.keep), out_path)
        if q_path is not None:
            save_dataset(dataset.subset(plan.drop), q_path)
    return CleanResult(plan=plan, out=out_path, quarantine=q_path)


def _reasons(findings: Findings, rows: np.ndarray) -> pd.DataFrame:
    t = as_table(findings)
    position = np.empty(len(t), dtype=np.int64)
    position[t.row_index] = np.arange(len(t))
    text = []
    for r in rows:
        rs = t.reasons.get(int(position[r]), ())
        text.append(" | ".join(f"{x.detector}: {x.detail}" for x in rs)
                    or "exact duplicate with a different label")
    return pd.DataFrame({REASON_COLUMNS[0]: rows, REASON_COLUMNS[1]: t.score[position[rows]],
                         REASON_COLUMNS[2]: text})


def _write_table(dataset: Dataset, plan: CleanPlan, out: Path, quarantine: Path | None,
                 findings: Findings) -> None:
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
        held = load_table(dataset.source).iloc[plan.drop].reset_index(drop=True)
        save_table(pd.concat([held, _reasons(findings, plan.drop)], axis=1), quarantine)
