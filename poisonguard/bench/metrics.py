"""Scoring detector flags against an attack's truth.

Precision, recall, F1, AUROC, average precision and false-positive rate over the
poisoned dataset; the filter bias (how the false positives spread over classes);
and the false-positive rate on clean data. Undefined values (AUROC with one class,
precision with no flags) are ``None``, never a made-up number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from poisonguard.attack import Truth
from poisonguard.errors import DataError
from poisonguard.findings import Findings, load_findings

__all__ = ["clean_flag_rate", "detection_metrics", "filter_bias", "load_flags", "score_flags"]


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else float(num) / float(den)


def detection_metrics(flags: np.ndarray, truth_mask: np.ndarray,
                      scores: np.ndarray | None = None) -> dict[str, Any]:
    """Confusion counts and rates of ``flags`` against ``truth_mask`` (both N booleans).

    Examples
    --------
    >>> m = detection_metrics(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    >>> m["tp"], m["fp"], m["precision"], m["recall"]
    (1, 1, 0.5, 0.5)
    """
    flags = np.asarray(flags, dtype=bool)
    truth_mask = np.asarray(truth_mask, dtype=bool)
    if flags.shape != truth_mask.shape:
        raise ValueError(f"{len(flags)} flags for {len(truth_mask)} rows")
    tp = int((flags & truth_mask).sum())
    fp = int((flags & ~truth_mask).sum())
    fn = int((~flags & truth_mask).sum())
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    out: dict[str, Any] = {
        "flagged": int(flags.sum()), "poisoned": int(truth_mask.sum()), "tp": tp, "fp": fp,
        "fn": fn, "precision": precision, "recall": recall, "f1": f1,
        "fpr": _ratio(fp, int((~truth_mask).sum())), "auroc": None, "ap": None,
    }
    if scores is not None and 0 < truth_mask.sum() < len(truth_mask):
        s = np.asarray(scores, dtype=np.float64)
        out["auroc"] = float(roc_auc_score(truth_mask, s))
        out["ap"] = float(average_precision_score(truth_mask, s))
    return out


def filter_bias(flags: np.ndarray, labels: np.ndarray, n_classes: int,
                clean_mask: np.ndarray | None = None) -> dict[str, Any]:
    """How false positives spread over classes.

    ``fpr_by_class[c]`` is the share of clean rows of class ``c`` that were flagged;
    ``bias`` is the total-variation distance between the class mix of the false
    positives and the class mix of the clean rows: 0 when false positives fall on
    classes in proportion to their size, near 1 when they pile onto one small class.

    Examples
    --------
    >>> filter_bias(np.array([1, 0, 0, 0], bool), np.array([0, 0, 1, 1]), 2)
    {'fpr_by_class': {'0': 0.5, '1': 0.0}, 'bias': 0.5, 'max_class_fpr': 0.5}
    """
    flags = np.asarray(flags, dtype=bool)
    clean = np.ones(len(flags), bool) if clean_mask is None else np.asarray(clean_mask, bool)
    y = np.asarray(labels)
    clean_counts = np.bincount(y[clean], minlength=n_classes)
    fp_counts = np.bincount(y[clean & flags], minlength=n_classes)
    by_class = {str(c): _ratio(fp_counts[c], clean_counts[c]) for c in range(n_classes)}
    bias = None
    if fp_counts.sum() > 0:
        p = fp_counts / fp_counts.sum()
        q = clean_counts / max(clean_counts.sum(), 1)
        bias = float(0.5 * np.abs(p - q).sum())
    rates = [r for r in by_class.values() if r is not None]
    return {"fpr_by_class": by_class, "bias": bias,
            "max_class_fpr": max(rates) if rates else None}


def clean_flag_rate(flags: np.ndarray) -> float:
    """Share of rows flagged on unpoisoned data (every flag is a false positive).

    Examples
    --------
    >>> clean_flag_rate(np.array([False, False, True, False]))
    0.25
    """
    flags = np.asarray(flags, dtype=bool)
    return float(flags.mean()) if len(flags) else 0.0


def score_flags(flags: np.ndarray, truth: Truth, *, scores: np.ndarray | None = None,
                labels: np.ndarray | None = None, n_classes: int | None = None) -> dict[str, Any]:
    """Detection metrics of ``flags`` against ``truth``, plus filter bias when the
    poisoned dataset's labels are given.

    Examples
    --------
    >>> from poisonguard.attack import Truth
    >>> truth = Truth(kind="flip", seed=0, params={}, poisoned=np.array([1, 3]), n_rows=5)
    >>> m = score_flags(np.array([0, 1, 0, 1, 1], bool), truth)
    >>> m["tp"], m["fp"], m["recall"]
    (2, 1, 1.0)
    """
    if len(flags) != truth.n_rows:
        raise DataError(f"{len(flags)} rows scored but the truth covers {truth.n_rows}")
    out = detection_metrics(flags, truth.mask, scores)
    if labels is not None:
        k = n_classes if n_classes is not None else int(np.max(labels)) + 1
        out["filter_bias"] = filter_bias(flags, labels, k, clean_mask=~truth.mask)
    return out


def load_flags(path: str | Path, n_rows: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Flags (and scores when known) from a findings file.

    Accepts poisonguard findings (JSON or Parquet), a JSON list of flagged indices,
    or ``{"flagged": [...]}``. Returns (flags, scores or None, source tool name).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "flags.json"
    >>> _ = path.write_text("[3, 5]")
    >>> flags, scores, source = load_flags(path, n_rows=6)
    >>> flags.nonzero()[0].tolist(), scores, source
    ([3, 5], None, 'external')
    """
    p = Path(path)
    if p.suffix.lower() in {".parquet", ".pq"}:
        return _from_findings(load_findings(p), n_rows, str(p))
    if not p.is_file():
        raise DataError("no such findings file", path=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=str(p)) from None
    if isinstance(data, dict) and "rows" in data:
        return _from_findings(load_findings(p), n_rows, str(p))
    if isinstance(data, dict) and "flagged" in data and isinstance(data["flagged"], list):
        data = data["flagged"]
    if not isinstance(data, list):
        raise DataError("expected poisonguard findings, a list of flagged row indices or "
                        "{\"flagged\": [...]}", path=str(p))
    flags = np.zeros(n_rows, dtype=bool)
    for k, item in enumerate(data):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < n_rows:
            raise DataError(f"flagged entry {k} is {item!r}, not a row index below {n_rows}",
                            path=str(p))
        flags[item] = True
    return flags, None, "external"


def _from_findings(findings: Findings, n_rows: int,
                   path: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    if len(findings.rows) != n_rows or findings.dataset.get("rows", n_rows) != n_rows:
        raise DataError(f"the findings cover {len(findings.rows)} rows but the truth covers "
                        f"{n_rows}: not the same dataset", path=path)
    flags = np.zeros(n_rows, dtype=bool)
    scores = np.zeros(n_rows, dtype=np.float64)
    for row in findings.rows:
        if not 0 <= row.index < n_rows:
            raise DataError(f"row index {row.index} out of range", path=path)
        flags[row.index] = row.flagged
        scores[row.index] = row.score
    return flags, scores, findings.tool
