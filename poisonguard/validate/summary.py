"""The human-readable part of a profile: schema, quantiles, histograms, frequencies.

Everything here is derived from the mergeable state (moments, category counts, the
weighted row sample), so it is recomputed, never merged. Quantiles and histogram
counts come from the stratified row sample weighted by ``N_c / n_c``; they are exact
while every class fits in the sample, and within a rank error of about
``1 / sqrt(sample size)`` otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from poisonguard.validate.profile import Profile

__all__ = ["QUANTILES", "summarize", "weighted_quantiles"]

QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
HIST_BINS = 10
TOP_CATEGORIES = 20


def weighted_quantiles(values: np.ndarray, weights: np.ndarray,
                       qs: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Quantiles of a weighted sample (the inverse of its weighted step CDF)."""
    ok = ~np.isnan(values)
    v, w = values[ok], weights[ok]
    if len(v) == 0:
        return np.full(len(qs), np.nan)
    order = np.argsort(v, kind="stable")
    v, cw = v[order], np.cumsum(w[order])
    pos = np.searchsorted(cw, np.asarray(qs) * cw[-1], side="left")
    return v[np.clip(pos, 0, len(v) - 1)]


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def summarize(p: Profile) -> dict[str, Any]:
    """Schema and sketches of every column, the label distribution, per-class stats."""
    g = p.global_moments()
    x, codes, w = p.sample_matrix()
    n = max(p.rows, 1)
    columns: list[dict[str, Any]] = []
    for j, name in enumerate(p.numeric):
        col = x[:, j]
        qs = weighted_quantiles(col, w, QUANTILES)
        lo, hi = g.min[j], g.max[j]
        hist: dict[str, Any] = {}
        if np.isfinite(lo) and np.isfinite(hi):
            edges = np.linspace(lo, hi, HIST_BINS + 1) if hi > lo else np.array([lo, hi])
            ok = ~np.isnan(col)
            counts, _ = np.histogram(col[ok], bins=edges, weights=w[ok])
            hist = {"edges": [float(e) for e in edges], "counts": [round(float(c), 1)
                                                                    for c in counts]}
        columns.append({
            "name": name, "kind": "numeric", "type": "integer" if g.integer[j] else "float",
            "count": int(g.count[j]), "missing_rate": float(g.missing[j]) / n,
            "min": _num(lo), "max": _num(hi), "mean": _num(g.mean[j]), "std": _num(g.std[j]),
            "quantiles": {str(q): _num(v) for q, v in zip(QUANTILES, qs, strict=True)},
            "histogram": hist,
            "by_class": {c: {"mean": _num(m.mean[j]), "std": _num(m.std[j])}
                         for c, m in zip(p.classes, p.moments, strict=True)},
        })
    for j, name in enumerate(p.categorical):
        totals = p.category_totals(j)
        top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CATEGORIES]
        missing = int(p.cat_missing[:, j].sum())
        columns.append({
            "name": name, "kind": "categorical", "type": "categorical",
            "categories": len(totals), "missing_rate": missing / n,
            "frequencies": {k: v / n for k, v in top},
        })
    return {
        "rows": p.rows,
        "columns": columns,
        "labels": {c: int(v) for c, v in zip(p.classes, p.label_counts, strict=True)},
        "label_distribution": {c: float(v) / n for c, v in
                               zip(p.classes, p.label_counts, strict=True)},
        "sampled_rows": int(len(codes)),
        "fingerprints": {"distinct": int(len(p.fingerprints.hashes)),
                         "coverage": p.fingerprints.coverage,
                         "label_conflicts": p.fingerprints.conflicts()},
    }
