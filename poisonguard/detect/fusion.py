"""Fuse per-detector results into one score, flag, action and reasons per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poisonguard.detect.base import DetectorResult
from poisonguard.detect.thresholds import FLAG_SCORE

__all__ = ["FusedRows", "fuse"]


@dataclass(frozen=True, eq=False)
class FusedRows:
    scores: np.ndarray
    flags: np.ndarray
    actions: list[str]
    suggested: list[int | None]
    reasons: list[list[tuple[str, float, str]]]


def fuse(results: Sequence[DetectorResult], n_rows: int) -> FusedRows:
    """Max of the calibrated scores; a row is flagged when any detector flags it.

    Every detector puts its own threshold at score 0.5, so the max is >= 0.5 exactly
    when some detector's score crossed its threshold. The action is ``relabel`` when
    only label detectors flagged the row and one of them suggests a label, ``drop``
    otherwise.
    """
    if not results:
        zeros = np.zeros(n_rows)
        return FusedRows(zeros, zeros.astype(bool), ["keep"] * n_rows, [None] * n_rows,
                         [[] for _ in range(n_rows)])
    stacked = np.vstack([r.scores for r in results])
    flag_matrix = np.vstack([r.flags for r in results])
    flags = np.asarray(flag_matrix.any(axis=0), dtype=bool)
    scores = stacked.max(axis=0)
    # A flagged row's score is at least the flag level; an unflagged row stays below it.
    scores = np.where(flags, np.maximum(scores, FLAG_SCORE),
                      np.minimum(scores, np.nextafter(FLAG_SCORE, 0)))
    actions: list[str] = []
    suggested: list[int | None] = []
    reasons: list[list[tuple[str, float, str]]] = []
    for i in range(n_rows):
        row_reasons = [
            (r.detector, float(r.scores[i]), r.reasons.get(i, "score above threshold"))
            for r in results if r.flags[i]
        ]
        row_reasons.sort(key=lambda t: -t[1])
        reasons.append(row_reasons)
        flagging = [r for r in results if r.flags[i]]
        suggestion = next((r.suggested_labels[i] for r in flagging if i in r.suggested_labels),
                          None)
        suggested.append(suggestion)
        if not flags[i]:
            actions.append("keep")
        elif all(i in r.suggested_labels for r in flagging):
            actions.append("relabel")
        else:
            actions.append("drop")
    return FusedRows(scores, flags, actions, suggested, reasons)
