"""Trigger-like constant patterns: exact values that crowd into one class of a batch.

A backdoor stamps fixed values (a pixel patch, k tabular columns set to constants)
on a subset of rows labelled with one class. For every class ``c`` and column ``j``
of the new batch, each value shared by at least ``min_rows`` rows of ``c`` is a
candidate. It is tested twice, one-sided Fisher, and keeps the larger p-value (an
intersection-union test, valid because each part is): against the same class of
the baseline (the value must be new to the class) and against the whole baseline
sample (a trigger value is rare everywhere, so values merely typical of another
class, as after label flips, do not count). A candidate must also be at least twice
as common in its class as in the batch's other classes (a value that hits every
class is drift, not a trigger). Significant candidates of one class whose rows
overlap are grouped into one pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poisonguard.validate.profile import Profile
from poisonguard.validate.tests import fisher_greater

__all__ = ["Candidate", "Pattern", "group_patterns", "trigger_candidates"]


@dataclass(frozen=True)
class Candidate:
    cls: int  # baseline class code
    column: int  # numeric column position in the baseline
    value: float
    count: int  # rows of the class in the new sample with this value
    n: int  # rows of the class in the new sample
    base_rate: float  # the rate of this value in the baseline sample (all classes)
    p_value: float


@dataclass(frozen=True)
class Pattern:
    cls: int
    items: tuple[Candidate, ...]
    rows: np.ndarray  # positions in the new class sample matching at least half the items


def _counts_in(sorted_col: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """How often each target occurs in an ascending column (NaN sorted last)."""
    return (np.searchsorted(sorted_col, targets, side="right")
            - np.searchsorted(sorted_col, targets, side="left"))


def trigger_candidates(base: Profile, new: Profile, remap: np.ndarray, columns: list[int],
                       new_columns: list[int], *, min_rows: int) -> list[Candidate]:
    """Candidates with raw p-values; ``remap`` maps new class codes to baseline codes."""
    new_all = [s.numeric[:, new_columns].astype(np.float64) for s in new.samples]
    base_all = [np.sort(s.numeric[:, columns].astype(np.float64), axis=0) for s in base.samples]
    pooled = np.sort(np.concatenate(base_all), axis=0) if base_all else \
        np.empty((0, len(columns)))
    rows: list[tuple[int, int, float]] = []
    counts: list[np.ndarray] = []  # per candidate: a, n, b, m, o, n_other, b_own, m_own
    for c_new, x in enumerate(new_all):
        c = int(remap[c_new])
        if c < 0 or len(x) < min_rows:
            continue
        others = [o for i, o in enumerate(new_all) if i != c_new]
        rest = np.sort(np.concatenate(others), axis=0) if others else \
            np.empty((0, x.shape[1]))
        own = base_all[c]
        for j in range(x.shape[1]):
            col = x[:, j]
            vals, cnt = np.unique(col[~np.isnan(col)], return_counts=True)
            keep = cnt >= min_rows
            if not keep.any():
                continue
            vals, cnt = vals[keep], cnt[keep]
            k = len(vals)
            counts.append(np.column_stack([
                cnt, np.full(k, len(x)), _counts_in(pooled[:, j], vals), np.full(k, len(pooled)),
                _counts_in(rest[:, j], vals), np.full(k, len(rest)),
                _counts_in(own[:, j], vals), np.full(k, len(own))]))
            rows += [(c, j, float(v)) for v in vals]
    if not rows:
        return []
    t = np.concatenate(counts).astype(np.int64)
    p_base = fisher_greater(t[:, 0], t[:, 1], t[:, 2], t[:, 3])
    p_own = np.where(t[:, 7] > 0, fisher_greater(t[:, 0], t[:, 1], t[:, 6],
                                                  np.maximum(t[:, 7], 1)), 1.0)
    # concentrated in this class: at least twice as common as in the batch's other classes
    concentrated = t[:, 0] * np.maximum(t[:, 5], 1) >= 2 * t[:, 4] * t[:, 1]
    p = np.where(concentrated, np.maximum(p_base, p_own), 1.0)
    return [Candidate(c, j, v, int(ti[0]), int(ti[1]), float(ti[2]) / max(int(ti[3]), 1),
                      float(pv)) for (c, j, v), ti, pv in zip(rows, t, p, strict=True)]


def group_patterns(hits: list[Candidate], new: Profile, new_code: dict[int, int],
                   new_columns: list[int]) -> list[Pattern]:
    """Group significant candidates of each class by the rows they share."""
    patterns: list[Pattern] = []
    for c in sorted({h.cls for h in hits}):
        x = new.samples[new_code[c]].numeric[:, new_columns]
        todo = sorted((h for h in hits if h.cls == c), key=lambda h: h.p_value)
        while todo:
            anchor = todo[0]
            a_rows = x[:, anchor.column] == np.float32(anchor.value)
            group = []
            for h in todo:
                rows = x[:, h.column] == np.float32(h.value)
                inter = int(np.count_nonzero(rows & a_rows))
                if inter / max(int(np.count_nonzero(rows | a_rows)), 1) >= 0.5:
                    group.append(h)
            todo = [h for h in todo if h not in group]
            match = sum((x[:, h.column] == np.float32(h.value)).astype(int) for h in group)
            need = (len(group) + 1) // 2
            patterns.append(Pattern(c, tuple(group), np.flatnonzero(match >= need)))
    return patterns
