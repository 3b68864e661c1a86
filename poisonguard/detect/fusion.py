"""Fuse per-detector results into one score, flag, action and reasons per row.

Ranking rule (one rule, for every scan): a row named by a kept attack hypothesis
(a claim that passed its statistical tests: a confirmed trigger, a clean-label
pattern, a vetted subpopulation; :class:`~poisonguard.detect.hypotheses.Claim`)
ranks above every row that only detector evidence flags. Fused scores sit in three
bands: below 0.5 unflagged, [0.5, 0.74] flagged by detector evidence only (the
highest calibrated detector score mapped linearly from [0.5, 1]), [0.75, 1] named by
a tested claim (the same map, shifted up). Beside the banded score every row keeps
its detector evidence (``FusedRows.evidence``: the highest calibrated detector score,
on the detectors' own scale, 0.5 at their thresholds), which rules about how sure the
detectors were (``clean --action relabel``) read. A label disagreement the out-of-fold
model is sure of saturates its detector's score at 1.0 on natural label noise too,
so the score alone cannot put a tested backdoor first; the band does, whatever the
poison rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poisonguard.detect.base import DetectorResult
from poisonguard.detect.hypotheses import Claim

__all__ = ["CLAIM_BAND", "EVIDENCE_BAND", "NO_LABEL", "FusedRows", "fuse"]

#: ``FusedRows.suggested`` value of a row without a suggested label.
NO_LABEL = -1
#: Fused score range of rows flagged by detector evidence only.
EVIDENCE_BAND = (0.5, 0.74)
#: Fused score range of rows a kept, tested attack hypothesis names.
CLAIM_BAND = (0.75, 1.0)


def _banded(top: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Detector scores (>= 0.5 on flagged rows) mapped linearly from [0.5, 1] to ``band``."""
    lo, hi = band
    return lo + (hi - lo) * np.clip((top - 0.5) / 0.5, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class FusedRows:
    """Per-row fused outcome; ``reasons`` holds the flagged and the review rows.

    ``scores`` are banded (module docstring); ``evidence`` is each row's highest
    calibrated detector score, unbanded (>= 0.5 exactly when a detector flagged it).

    ``reasons[i]`` lists (detector, score, detail) for every detector that flagged
    row ``i``, highest score first; for an unflagged row every detector that put it
    up for review.
    """

    scores: np.ndarray
    evidence: np.ndarray
    flags: np.ndarray
    actions: np.ndarray  # "keep" | "drop" | "relabel" | "review" per row
    suggested: np.ndarray  # suggested label per row, NO_LABEL when none
    reasons: dict[int, list[tuple[str, float, str]]]


def _suggestion_matrix(results: Sequence[DetectorResult], n_rows: int) -> np.ndarray:
    """D x N suggested labels (NO_LABEL where a detector suggests none)."""
    out = np.full((len(results), n_rows), NO_LABEL, dtype=np.int64)
    for d, r in enumerate(results):
        if r.suggested_labels:
            rows = np.fromiter(r.suggested_labels.keys(), dtype=np.int64)
            out[d, rows] = np.fromiter(r.suggested_labels.values(), dtype=np.int64)
    return out


def fuse(results: Sequence[DetectorResult], n_rows: int, *,
         claims: Sequence[Claim] = ()) -> FusedRows:
    """A row is flagged when any detector flags it or a kept hypothesis names it;
    its score is the highest calibrated detector score, in its band (module docstring).

    Every detector puts its own threshold at score 0.5, so the max is >= 0.5 exactly
    when some detector's score crossed its threshold. A row only a claim names (a
    holder of a confirmed trigger that its detector did not flag) is flagged with the
    claim as its reason. The action is ``relabel`` when
    every detector that flagged the row suggests a label, ``drop`` otherwise; the
    suggestion is that of the first flagging detector that has one. An unflagged
    row that some detector puts up for review (a label natural class overlap
    explains) gets ``review``. Vectorised: only flagged and review rows get Python
    objects (their reasons).
    """
    if not results:
        return FusedRows(np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows, dtype=bool),
                         np.full(n_rows, "keep", dtype=object),
                         np.full(n_rows, NO_LABEL, dtype=np.int64), {})
    stacked = np.vstack([r.scores for r in results])
    flag_matrix = np.vstack([r.flags for r in results]).astype(bool)
    claimed = np.zeros(n_rows, dtype=bool)
    for c in claims:
        claimed |= np.asarray(c.rows, dtype=bool)
    flags = np.asarray(flag_matrix.any(axis=0), dtype=bool) | claimed
    # Every result keeps flagged rows at FLAG_SCORE or above and the others below it
    # (DetectorResult enforces it), so the max is >= FLAG_SCORE exactly on flagged rows.
    top = stacked.max(axis=0)
    scores = np.where(claimed, _banded(top, CLAIM_BAND),
                      np.where(flags, _banded(top, EVIDENCE_BAND), top))
    offered = _suggestion_matrix(results, n_rows)
    usable = flag_matrix & (offered != NO_LABEL)
    first = usable.argmax(axis=0)
    suggested = np.where(usable.any(axis=0), offered[first, np.arange(n_rows)], NO_LABEL)
    relabel = flags & usable.any(axis=0) & ~(flag_matrix & (offered == NO_LABEL)).any(axis=0)
    actions = np.where(relabel, "relabel", np.where(flags, "drop", "keep")).astype(object)
    reasons: dict[int, list[tuple[str, float, str]]] = {}
    for r in results:
        for i, detail in r.review.items():
            if not flags[i]:
                actions[i] = "review"
                reasons.setdefault(i, []).append((r.detector, float(scores[i]),
                                                  f"review: {detail}"))
    for i in np.flatnonzero(flags).tolist():
        row = [(r.detector, float(stacked[d, i]), r.reasons.get(i, "score above threshold"))
               for d, r in enumerate(results) if flag_matrix[d, i]]
        row.sort(key=lambda t: -t[1])
        if not row:  # named only by a claim: a holder its detector did not flag
            row = [(c.detector, float(scores[i]), f"holds the trigger of: {c.hypothesis}")
                   for c in claims if c.rows[i]]
        reasons[i] = row
    return FusedRows(scores, top, flags, actions, suggested, reasons)
