"""Findings: what ``scan`` writes and every other tool reads (see docs/design.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from poisonguard._version import __version__
from poisonguard.data import atomic_path, atomic_write_text
from poisonguard.errors import DataError, UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Findings", "Reason", "RowFinding", "RowTable", "as_table", "load_findings", "rows_within",
    "save_findings",
]

ACTIONS = ("keep", "drop", "relabel", "review")


@dataclass(frozen=True)
class Reason:
    """Why one detector flagged a row: its score and a sentence for a person.

    Examples
    --------
    >>> Reason(detector="label", score=0.9, detail="label disagrees with 9 of 10 neighbours")
    Reason(detector='label', score=0.9, detail='label disagrees with 9 of 10 neighbours')
    """
    detector: str
    score: float
    detail: str


@dataclass(frozen=True)
class RowFinding:
    """One data row's outcome; ``suggested_label`` is a class name (None: no suggestion).

    ``score`` is the fused score (in bands: a row a tested attack hypothesis names ranks
    above rows only detector evidence flags, :mod:`poisonguard.detect.fusion`);
    ``evidence`` is the highest calibrated detector score behind it, on the detectors'
    own scale (0.5 at their thresholds). ``None`` when not recorded (findings written
    before it; readers then take the highest of ``detector_scores``, see
    :func:`as_table`).

    Examples
    --------
    >>> import poisonguard
    >>> row = poisonguard.scan("builtin:wine", detectors="outlier").rows[0]
    >>> row.index, row.flagged, 0.0 <= row.score <= 1.0, row.evidence == row.score
    (0, False, True, True)
    """

    index: int
    id: str
    score: float
    flagged: bool
    action: str = "keep"
    suggested_label: str | None = None
    reasons: tuple[Reason, ...] = ()
    detector_scores: dict[str, float] = field(default_factory=dict)
    evidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = [asdict(r) for r in self.reasons]
        return d


class RowTable(Sequence[RowFinding]):
    """The rows of a scan held as columns; each :class:`RowFinding` is built on access.

    A million rows as Python objects would cost gigabytes; as columns they cost a few
    bytes per row and per detector. ``evidence`` (the highest calibrated detector score
    behind each fused score) defaults to the highest of ``detector_scores`` (the fused
    score where a row has none). ``suggested`` holds label codes into
    ``classes`` (-1 for "no suggestion"); rows show them as class names. ``reasons``
    is keyed by row position (flagged rows only).

    Examples
    --------
    >>> import poisonguard
    >>> table = as_table(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> len(table), table.score.shape
    (178, (178,))
    """

    def __init__(self, *, row_index: np.ndarray, ids: Sequence[str] | np.ndarray,
                 score: np.ndarray,
                 flagged: np.ndarray, action: np.ndarray, suggested: np.ndarray,
                 reasons: Mapping[int, tuple[Reason, ...]], detector_names: Sequence[str],
                 detector_scores: np.ndarray, classes: Sequence[str] = (),
                 evidence: np.ndarray | None = None) -> None:
        n = len(row_index)
        if not (len(ids) == len(score) == len(flagged) == len(action) == len(suggested) == n):
            raise ValueError("RowTable columns must have one entry per row")
        if detector_scores.shape != (n, len(detector_names)):
            raise ValueError("detector_scores must be rows x detectors")
        self.row_index = np.asarray(row_index, dtype=np.int64)
        self.ids = ids
        self.score = np.asarray(score, dtype=np.float64)
        self.flagged = np.asarray(flagged, dtype=bool)
        self.action = np.asarray(action, dtype=object)
        self.suggested = np.asarray(suggested, dtype=np.int64)
        self.reasons = dict(reasons)
        self.detector_names = tuple(detector_names)
        self.detector_scores = np.asarray(detector_scores, dtype=np.float64)
        self.classes = tuple(str(c) for c in classes)
        self.evidence = _evidence(self.score, self.detector_scores) if evidence is None \
            else np.asarray(evidence, dtype=np.float64)
        if self.evidence.shape != (n,):
            raise ValueError("evidence must have one entry per row")
        if len(self.suggested) and self.suggested.max(initial=-1) >= max(len(self.classes), 0) \
                and self.classes:
            raise ValueError("suggested labels must be codes into classes")

    def class_name(self, code: int) -> str | None:
        """The class name of label code ``code`` (None for -1: no suggestion)."""
        if code < 0:
            return None
        return self.classes[code] if self.classes else str(code)

    def __len__(self) -> int:
        return len(self.row_index)

    def _row(self, i: int) -> RowFinding:
        return RowFinding(
            index=int(self.row_index[i]), id=str(self.ids[i]), score=float(self.score[i]),
            flagged=bool(self.flagged[i]), action=str(self.action[i]),
            suggested_label=self.class_name(int(self.suggested[i])),
            reasons=self.reasons.get(i, ()),
            detector_scores={name: value for name, value in zip(
                self.detector_names, self.detector_scores[i].tolist(), strict=True)
                if value == value},  # NaN: no score from that detector
            evidence=float(self.evidence[i]),
        )

    @overload
    def __getitem__(self, i: int) -> RowFinding: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[RowFinding]: ...
    def __getitem__(self, i: int | slice) -> RowFinding | Sequence[RowFinding]:
        if isinstance(i, slice):
            return [self._row(k) for k in range(*i.indices(len(self)))]
        k = int(i) + len(self) if int(i) < 0 else int(i)
        if not 0 <= k < len(self):
            raise IndexError(i)
        return self._row(k)

    def __iter__(self) -> Iterator[RowFinding]:
        return (self._row(k) for k in range(len(self)))


@dataclass(frozen=True)
class Findings:
    """What a scan found: the dataset's description, every row, and a summary.

    ``rows`` holds every row of the data (flagged or not) with its fused score,
    flag, action, suggested label, reasons and per-detector scores; ``summary`` the
    counts per class and detector, suspected attacks and clean classes;
    ``detector_results`` each detector's dataset-level output. See docs/design.md
    for the file format.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> findings = poisonguard.scan(builtin_dataset("wine"), detectors=["outlier"])
    >>> findings.dataset["rows"], findings.flagged_indices()
    (178, [])
    """

    dataset: dict[str, Any]
    detectors: tuple[str, ...]
    rows: Sequence[RowFinding]
    summary: dict[str, Any]
    detector_results: dict[str, Any] = field(default_factory=dict)
    tool: str = "poisonguard"
    version: str = __version__

    @property
    def flagged(self) -> list[RowFinding]:
        table = as_table(self)
        return [table[int(k)] for k in np.flatnonzero(table.flagged)]

    def to_frame(self) -> pd.DataFrame:
        """One row per data row as a pandas DataFrame.

        Columns: ``index``, ``id``, ``score``, ``flagged``, ``action``,
        ``suggested_label`` (a class name or None), ``reasons`` (text, one
        "detector: detail" per flagging detector, joined by " | "), ``evidence`` (the
        highest detector score behind the fused score, :class:`RowFinding`) and one
        ``score:DETECTOR`` column per detector.

        Examples
        --------
        >>> import poisonguard
        >>> frame = poisonguard.scan("builtin:wine", detectors="outlier").to_frame()
        >>> list(frame.columns)[:4]
        ['index', 'id', 'score', 'flagged']
        >>> list(frame.columns)[4:]
        ['action', 'suggested_label', 'reasons', 'evidence', 'score:outlier']
        """
        import pandas as pd

        t = as_table(self)
        reasons = [""] * len(t)
        for k, rs in t.reasons.items():
            reasons[k] = " | ".join(f"{r.detector}: {r.detail}" for r in rs)
        frame = pd.DataFrame({
            "index": t.row_index, "id": [str(i) for i in t.ids], "score": t.score,
            "flagged": t.flagged, "action": t.action.astype(str),
            "suggested_label": [t.class_name(int(c)) for c in t.suggested],
            "reasons": reasons, "evidence": t.evidence,
        })
        for d, name in enumerate(t.detector_names):
            frame[f"score:{name}"] = t.detector_scores[:, d]
        return frame

    def flagged_indices(self) -> list[int]:
        table = as_table(self)
        return table.row_index[table.flagged].tolist()

    def fails_gate(self, fail_on: float) -> bool:
        """Whether a row is flagged with a score at or above ``fail_on``: the CI gate of
        ``poisonguard scan --fail-on`` (exit 1 when true).

        Parameters
        ----------
        fail_on
            A score in [0, 1]; 0.5 (the flag level of every detector) fails on any flag.

        Raises
        ------
        UsageError
            ``fail_on`` outside [0, 1].

        Examples
        --------
        >>> import poisonguard
        >>> from poisonguard.datasets import builtin_dataset
        >>> findings = poisonguard.scan(builtin_dataset("wine"), detectors=["outlier"])
        >>> findings.fails_gate(0.5)
        False
        """
        if not 0.0 <= fail_on <= 1.0:
            raise UsageError(f"fail_on must be between 0 and 1, got {fail_on}")
        table = as_table(self)
        return bool((table.flagged & (table.score >= fail_on)).any())

    def to_dict(self, *, with_rows: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tool": self.tool,
            "version": self.version,
            "dataset": self.dataset,
            "detectors": list(self.detectors),
            "summary": self.summary,
            "detector_results": self.detector_results,
        }
        if with_rows:
            out["rows"] = [r.to_dict() for r in self.rows]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str = "",
                  rows: Sequence[RowFinding] | None = None) -> Findings:
        """Findings from their JSON shape; ``rows`` (already parsed) replaces ``d["rows"]``."""
        try:
            classes = [str(c) for c in (d["dataset"].get("classes") or
                                        d.get("summary", {}).get("classes") or ())]
            rows = rows if rows is not None else tuple(
                RowFinding(
                    index=int(r["index"]), id=str(r["id"]), score=float(r["score"]),
                    flagged=bool(r["flagged"]), action=str(r.get("action", "keep")),
                    suggested_label=_class_of(r.get("suggested_label"), classes),
                    reasons=tuple(Reason(str(x["detector"]), float(x["score"]), str(x["detail"]))
                                  for x in r.get("reasons", [])),
                    detector_scores={str(k): float(v)
                                     for k, v in (r.get("detector_scores") or {}).items()},
                    evidence=None if r.get("evidence") is None else float(r["evidence"]),
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


_SCORE_PREFIX = "detector_score:"


def _evidence(score: np.ndarray, detector_scores: np.ndarray) -> np.ndarray:
    """Evidence not recorded: the highest detector score (the fused score where none).

    Findings written before the ``evidence`` field carry every detector's score; their
    highest is what fusion records as the evidence.
    """
    out = np.asarray(score, dtype=np.float64).copy()
    if detector_scores.size:
        known = ~np.isnan(detector_scores).all(axis=1)
        out[known] = np.nanmax(detector_scores[known], axis=1)
    return out


def _class_of(value: Any, classes: Sequence[str]) -> str | None:
    """A suggestion as a class name: names as they are; integer codes (findings written
    before class names) mapped through ``classes``."""
    if value is None:
        return None
    if isinstance(value, str):
        if classes and value not in classes:
            raise ValueError(f"suggested label {value!r} is not a class")
        return value
    code = int(value)
    if classes:
        if not 0 <= code < len(classes):
            raise ValueError(f"suggested label code {code} is not a class")
        return classes[code]
    return str(code)


def _classes(findings: Findings) -> tuple[str, ...]:
    return tuple(str(c) for c in (findings.dataset.get("classes") or
                                  findings.summary.get("classes") or ()))


def as_table(findings: Findings) -> RowTable:
    """The findings' rows as a :class:`RowTable` (itself when it already is one).

    Examples
    --------
    >>> import poisonguard
    >>> findings = poisonguard.scan("builtin:wine", detectors="outlier")
    >>> int(as_table(findings).flagged.sum()) == findings.summary["flagged"]
    True
    """
    rows = findings.rows
    if isinstance(rows, RowTable):
        return rows
    names = tuple(findings.detectors) or tuple(
        sorted({k for r in rows for k in r.detector_scores}))
    classes = _classes(findings)
    index = {c: k for k, c in enumerate(classes)}
    if not classes:  # no class list: names are the codes as text
        index = {str(r.suggested_label): int(str(r.suggested_label)) for r in rows
                 if r.suggested_label is not None}
    return RowTable(
        row_index=np.fromiter((r.index for r in rows), dtype=np.int64, count=len(rows)),
        ids=[r.id for r in rows], score=np.array([r.score for r in rows], dtype=np.float64),
        flagged=np.array([r.flagged for r in rows], dtype=bool),
        action=np.array([r.action for r in rows], dtype=object),
        suggested=np.array([-1 if r.suggested_label is None else index[str(r.suggested_label)]
                            for r in rows], dtype=np.int64),
        reasons={k: r.reasons for k, r in enumerate(rows) if r.reasons},
        detector_names=names, classes=classes,
        detector_scores=np.array([[r.detector_scores.get(d, np.nan) for d in names]
                                  for r in rows], dtype=np.float64).reshape(len(rows), len(names)),
        evidence=_recorded_evidence(rows),
    )


def _recorded_evidence(rows: Sequence[RowFinding]) -> np.ndarray | None:
    """The rows' evidence, or None when any row lacks it (the table derives it then)."""
    values = [r.evidence for r in rows]
    if any(v is None for v in values):
        return None
    return np.array(values, dtype=np.float64)


def rows_within(findings: Findings, n_rows: int, *, path: str | None = None) -> np.ndarray:
    """The findings' row indices, after checking that each names one of ``n_rows`` rows.

    Examples
    --------
    >>> import poisonguard
    >>> findings = poisonguard.scan("builtin:wine", detectors="outlier")
    >>> rows_within(findings, 178).shape
    (178,)
    >>> rows_within(findings, 100)
    Traceback (most recent call last):
    ...
    poisonguard.errors.DataError: ...
    """
    index = as_table(findings).row_index
    if index.size and (index.min() < 0 or index.max() >= n_rows):
        raise DataError("the findings refer to rows outside the data", path=path)
    return index


def save_findings(findings: Findings, path: str | Path) -> None:
    """Write findings as JSON, or as Parquet (one row per data row) by suffix.

    Parquet is columnar: one float column per detector (``detector_score:NAME``) and
    the reasons as a JSON list per row; the rest of the findings sit in the file's
    metadata. It is the format for large data. The file appears whole or not at all.

    Parameters
    ----------
    findings
        What :func:`poisonguard.scan` returned.
    path
        ``*.json``, or ``*.parquet`` / ``*.pq``.

    Examples
    --------
    >>> import tempfile, poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> findings = poisonguard.scan(builtin_dataset("wine"), detectors=["outlier"])
    >>> path = tempfile.mkdtemp() + "/findings.parquet"
    >>> save_findings(findings, path)
    >>> load_findings(path).summary["rows"]
    178
    """
    p = Path(path)
    if p.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow as pa
        import pyarrow.parquet as pq

        t = as_table(findings)
        suggested = pa.array([t.class_name(int(c)) for c in t.suggested], type=pa.string())
        no_reason = "[]"
        reasons = [no_reason] * len(t)
        for k, rs in t.reasons.items():
            reasons[k] = json.dumps([asdict(x) for x in rs])
        columns: dict[str, Any] = {
            "index": t.row_index, "id": pa.array([str(i) for i in t.ids], type=pa.string()),
            "score": t.score, "evidence": t.evidence, "flagged": t.flagged,
            "action": pa.array(t.action.tolist(), type=pa.string()),
            "suggested_label": suggested, "reasons": pa.array(reasons, type=pa.string()),
        }
        for d, name in enumerate(t.detector_names):
            columns[_SCORE_PREFIX + name] = t.detector_scores[:, d]
        header = findings.to_dict(with_rows=False)
        arrow = pa.table(columns).replace_schema_metadata(
            {b"poisonguard": json.dumps(header).encode()})
        with atomic_path(p, suffix=".parquet") as tmp:
            pq.write_table(arrow, tmp)
        return
    atomic_write_text(p, json.dumps(findings.to_dict(), indent=1) + "\n")


def _suggested_codes(column: Any, classes: Sequence[str]) -> np.ndarray:
    """The suggested_label column (class names; int codes in older files) as codes."""
    values = column.to_pylist()
    return np.array([-1 if v is None else classes.index(_class_of(v, classes) or "")
                     if classes else int(v) for v in values], dtype=np.int64)


def _table_from_arrow(arrow: Any, header: dict[str, Any], path: str) -> RowTable:
    names = [c[len(_SCORE_PREFIX):] for c in arrow.column_names if c.startswith(_SCORE_PREFIX)]
    n = arrow.num_rows
    col = {c: arrow.column(c) for c in arrow.column_names}
    classes = [str(c) for c in (header.get("dataset", {}).get("classes") or
                                header.get("summary", {}).get("classes") or ())]
    try:
        reasons: dict[int, tuple[Reason, ...]] = {}
        for k, text in enumerate(col["reasons"].to_pylist()):
            if text != "[]":
                reasons[k] = tuple(Reason(str(x["detector"]), float(x["score"]),
                                          str(x["detail"])) for x in json.loads(text))
        if names:
            scores = np.column_stack([col[_SCORE_PREFIX + d].to_numpy() for d in names])
        else:  # files written before the columnar layout: one JSON object per row
            dicts = [json.loads(x) for x in col["detector_scores"].to_pylist()]
            names = list(header.get("detectors") or sorted({k for d in dicts for k in d}))
            scores = np.array([[d.get(k, np.nan) for k in names] for d in dicts])
        return RowTable(
            row_index=col["index"].to_numpy(), ids=col["id"].to_pylist(),
            score=col["score"].to_numpy(), flagged=col["flagged"].to_numpy(zero_copy_only=False),
            action=np.asarray(col["action"].to_pylist(), dtype=object),
            suggested=_suggested_codes(col["suggested_label"], classes),
            reasons=reasons, detector_names=names, classes=classes,
            detector_scores=np.asarray(scores, dtype=np.float64).reshape(n, len(names)),
            evidence=col["evidence"].to_numpy() if "evidence" in col else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"not a poisonguard findings file ({exc!r})", path=path) from None


def load_findings(path: str | Path) -> Findings:
    """Read findings written by :func:`save_findings` (JSON or Parquet).

    Parameters
    ----------
    path
        A findings file.

    Raises
    ------
    DataError
        The file is missing or is not a poisonguard findings file (names the file).

    Examples
    --------
    >>> import tempfile, poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> path = tempfile.mkdtemp() + "/findings.json"
    >>> save_findings(poisonguard.scan(builtin_dataset("wine"), detectors=["outlier"]), path)
    >>> load_findings(path).detectors
    ('outlier',)
    """
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
        rows = _table_from_arrow(arrow, header, str(p))
        return Findings.from_dict({**header, "rows": []}, path=str(p), rows=rows)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=str(p)) from None
    if not isinstance(data, dict):
        raise DataError("not a poisonguard findings file", path=str(p))
    return Findings.from_dict(data, path=str(p))
