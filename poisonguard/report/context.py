"""What every view reads: Findings turned into columns once, plus the optional dataset.

Building the columns walks the rows once, so at a million rows the views stay fast;
the dashboard builds one :class:`ReportContext` and calls the views it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poisonguard.data import Dataset, dataset_digest
from poisonguard.detect.thresholds import FLAG_SCORE
from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings, as_table, rows_within

__all__ = ["ReportContext", "build_context", "check_match"]


@dataclass(frozen=True, eq=False)
class ReportContext:
    """Columns of a :class:`Findings`, aligned with ``findings.rows``.

    ``labels`` (class codes) is set only when a dataset was given; ``suggested`` is
    -1 where no label was suggested; ``detector_scores`` holds NaN where a row has no
    score from that detector.

    Examples
    --------
    >>> import poisonguard
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> ctx.classes, len(ctx.index), int(ctx.flagged.sum()), list(ctx.detector_scores)
    (('0', '1', '2'), 178, 0, ['outlier'])
    """

    findings: Findings
    index: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    suggested: np.ndarray
    detector_scores: dict[str, np.ndarray]
    classes: tuple[str, ...]
    dataset: Dataset | None = None
    embedding: np.ndarray | None = None
    labels: np.ndarray | None = None
    threshold: float = FLAG_SCORE
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.index)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    @property
    def modality(self) -> str:
        if self.dataset is not None:
            return self.dataset.modality
        return str(self.findings.dataset.get("modality", ""))

    def class_name(self, code: int) -> str:
        return self.classes[code] if 0 <= code < len(self.classes) else str(code)

    def top_flagged(self, limit: int) -> np.ndarray:
        """Positions (into ``findings.rows``) of the ``limit`` highest-scoring flagged rows."""
        pos = np.flatnonzero(self.flagged)
        order = np.argsort(-self.score[pos], kind="stable")
        return pos[order[:limit]]


def check_match(findings: Findings, dataset: Dataset) -> None:
    """Raise :class:`DataError` unless ``dataset`` is the data ``findings`` describe.

    Compares the row count, then the dataset SHA-256 recorded by the scan (when the
    findings carry one) with :func:`poisonguard.data.dataset_digest` of ``dataset``.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> findings = poisonguard.scan(wine, detectors="outlier")
    >>> check_match(findings, wine)  # the scanned data: silent
    >>> check_match(findings, wine.subset(range(100)))
    Traceback (most recent call last):
    ...
    poisonguard.errors.DataError: builtin:wine: the findings describe 178 rows but the data has ...
    """
    rows = findings.dataset.get("rows", len(findings.rows))
    if len(dataset) != rows or len(findings.rows) != len(dataset):
        raise DataError(f"the findings describe {rows:,} rows but the data has "
                        f"{len(dataset):,}: not the scanned data", path=dataset.source)
    rows_within(findings, len(dataset), path=dataset.source)
    expected = findings.dataset.get("sha256")
    if expected and dataset_digest(dataset) != expected:
        raise DataError("the data's sha256 differs from the one in the findings: "
                        "not the scanned data", path=dataset.source)


def build_context(findings: Findings, *, dataset: Dataset | None = None,
                  embedding: np.ndarray | None = None) -> ReportContext:
    """Columns of ``findings`` (and labels from ``dataset``) for the views.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> ctx = build_context(poisonguard.scan(wine, detectors="outlier"), dataset=wine)
    >>> ctx.labels[:3].tolist(), ctx.threshold  # labels only when the dataset is given
    ([0, 0, 0], 0.5)
    """
    rows = findings.rows
    n = len(rows)
    if dataset is not None:
        check_match(findings, dataset)
    if embedding is not None:
        embedding = np.asarray(embedding)
        if embedding.ndim != 2 or len(embedding) != n:
            raise UsageError(f"the embedding must be an N x K array with N = {n:,} rows, "
                             f"not shape {embedding.shape}")
    table = as_table(findings)
    index = table.row_index
    if embedding is not None and index.size and (index.min() < 0 or index.max() >= n):
        raise UsageError("the findings refer to rows outside the embedding")
    score, flagged, suggested = table.score, table.flagged, table.suggested
    det_scores = {d: table.detector_scores[:, k] for k, d in enumerate(table.detector_names)}
    classes = tuple(str(c) for c in (dataset.classes if dataset is not None else
                    findings.dataset.get("classes") or findings.summary.get("classes") or ()))
    labels = None if dataset is None else np.asarray(dataset.labels)[index]
    return ReportContext(findings=findings, index=index, score=score, flagged=flagged,
                         suggested=suggested, detector_scores=det_scores, classes=classes,
                         dataset=dataset, embedding=embedding, labels=labels)
