"""Fuse per-detector results into one score, flag, action and reasons per row.

Ranking rule (one rule, for every scan): a row named by a kept attack hypothesis
(a claim that passed its statistical tests: a confirmed trigger, a clean-label
pattern, a vetted subpopulation; :class:`~poisonguard.detect.hypotheses.Claim`)
ranks above every row that only detector evidence flags. Fused scores sit in three
bands: below 0.5 unflagged (the highest calibrated detector score), [0.5, 0.74]
flagged by detector evidence only, [0.75, 1] named by a tested claim (the highest
calibrated detector score mapped linearly from [0.5, 1], shifted up). Beside the
banded score every row keeps its detector evidence (``FusedRows.evidence``: the
highest calibrated detector score, on the detectors' own scale, 0.5 at their
thresholds), which rules about how sure the detectors were (``clean --action
relabel``) read. A label disagreement the out-of-fold model is sure of saturates its
detector's score at 1.0 on natural label noise too, so the score alone cannot put a
tested backdoor first; the band does, whatever the poison rate.

Inside the evidence band, flags are weighed by how many of them clean data would
give. Each detector's flag is its score's height above the threshold, ``score -
0.5``, times one minus the detector's *false share*: the rows its flags would
number on clean data of this difficulty over the rows it flagged, at most 1
(``FusedRows.false_share``). The label-based detectors (:data:`LABEL_BASED`: they
read the given label against the out-of-fold model and the neighbours) share the
scan's one estimate of their clean flags, the ``expected_clean_flags`` of the label
detector's null of natural class overlap (:mod:`poisonguard.detect.overlap`, the
reliability section's number), over the rows any of them flagged; a detector without
such an estimate keeps its score. A row's banded score is the highest weighed flag,
mapped linearly from [0.5, 1]. On a table whose out-of-fold model is 56% accurate,
about 33 of the label detectors' 69-96 flags are expected on clean data, so their
saturated scores no longer sit above exact outlier flags (statsmodels' fair, 3%
injected outliers: P@k 0.59-0.68 -> 0.82-0.98); where the label evidence is strong
(penguins: 1.8 expected of 18) the weight is near 1. Flags, actions and ``evidence``
do not depend on the weights; only the order of the flagged rows does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from poisonguard.detect.base import DetectorResult
from poisonguard.detect.hypotheses import Claim
from poisonguard.detect.thresholds import FLAG_SCORE

__all__ = ["CLAIM_BAND", "EVIDENCE_BAND", "LABEL_BASED", "NO_LABEL", "FusedRows", "false_shares",
           "fuse"]

#: ``FusedRows.suggested`` value of a row without a suggested label.
NO_LABEL = -1
#: Fused score range of rows flagged by detector evidence only.
EVIDENCE_BAND = (0.5, 0.74)
#: Fused score range of rows a kept, tested attack hypothesis names.
CLAIM_BAND = (0.75, 1.0)
#: Detectors whose flags read the given label against the out-of-fold model and the
#: neighbours: one clean-flag estimate covers them together (module docstring).
LABEL_BASED = frozenset({"label", "knn", "duplicate"})


def _banded(top: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Detector scores (>= 0.5 on flagged rows) mapped linearly from [0.5, 1] to ``band``."""
    lo, hi = band
    return lo + (hi - lo) * np.clip((top - 0.5) / 0.5, 0.0, 1.0)


def false_shares(results: Sequence[DetectorResult],
                 flags: np.ndarray | None = None) -> dict[str, float]:
    """Per detector, the share of its flags that clean data of this difficulty would give.

    The label-based detectors (:data:`LABEL_BASED`, and any result that reports
    ``expected_clean_flags`` in its meta) share one: the sum of their
    ``expected_clean_flags`` over the rows any of them flagged, at most 1. The other
    detectors report no such estimate: 0. ``flags``: the results' flags stacked (D x N,
    in the order of ``results``), as :func:`fuse` already holds them; stacked here
    when not given.

    Examples
    --------
    >>> import numpy as np
    >>> label = DetectorResult("label", np.array([0.9, 0.8, 0.1, 0.1]),
    ...                        np.array([True, True, False, False]),
    ...                        meta={"expected_clean_flags": 1.5})
    >>> knn = DetectorResult("knn", np.array([0.9, 0.1, 0.7, 0.1]),
    ...                      np.array([True, False, True, False]))
    >>> outlier = DetectorResult("outlier", np.array([0.1, 0.1, 0.1, 0.9]),
    ...                          np.array([False, False, False, True]))
    >>> false_shares([label, knn, outlier])
    {'label': 0.5, 'knn': 0.5, 'outlier': 0.0}
    """
    members = [r.detector in LABEL_BASED or "expected_clean_flags" in r.meta for r in results]
    if not any(members):
        return {r.detector: 0.0 for r in results}
    expected = sum(float(r.meta.get("expected_clean_flags", 0.0))
                   for r, m in zip(results, members, strict=True) if m)
    matrix = np.vstack([r.flags for r in results]) if flags is None else flags
    flagged = int(np.asarray(matrix)[np.array(members)].any(axis=0).sum())
    share = min(1.0, expected / flagged) if flagged else 0.0
    return {r.detector: share if m else 0.0 for r, m in zip(results, members, strict=True)}


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
    #: per detector, the share of its flags clean data would give (:func:`false_shares`)
    false_share: dict[str, float] = field(default_factory=dict)


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
    its score is in its band (module docstring): the highest calibrated detector score,
    on a flagged row only evidence names the highest weighed by its detector's false
    share (:func:`false_shares`).

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
    shares = false_shares(results, flag_matrix)
    weight = 1.0 - np.array([shares[r.detector] for r in results])[:, None]
    weighed = np.where(flag_matrix, FLAG_SCORE + (stacked - FLAG_SCORE) * weight, 0.0).max(axis=0)
    scores = np.where(claimed, _banded(top, CLAIM_BAND),
                      np.where(flags, _banded(weighed, EVIDENCE_BAND), top))
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
    return FusedRows(scores, top, flags, actions, suggested, reasons, shares)
