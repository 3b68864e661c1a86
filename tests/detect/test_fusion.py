"""Fusion: max of calibrated scores, OR of flags, actions from the flagging detectors."""

from __future__ import annotations

import numpy as np

from poisonguard.detect.base import DetectorResult
from poisonguard.detect.fusion import fuse


def test_fuse_scores_flags_actions() -> None:
    label = DetectorResult("label", np.array([0.9, 0.1, 0.2, 0.6]),
                           np.array([True, False, False, True]),
                           reasons={0: "wrong label", 3: "wrong label"},
                           suggested_labels={0: 2, 3: 1})
    spectral = DetectorResult("spectral", np.array([0.1, 0.8, 0.4, 0.7]),
                              np.array([False, True, False, True]), reasons={1: "odd", 3: "odd"})
    fused = fuse([label, spectral], 4)
    assert fused.flags.tolist() == [True, True, False, True]
    assert fused.scores[0] == 0.9 and fused.scores[2] < 0.5
    assert fused.actions.tolist() == ["relabel", "drop", "keep", "drop"]
    assert fused.suggested[0] == 2
    assert [d for d, _, _ in fused.reasons[3]] == ["spectral", "label"]  # highest score first


def test_flagged_rows_score_at_least_half_and_unflagged_below() -> None:
    strict = DetectorResult("x", np.array([0.7, 0.3]), np.array([False, True]))
    fused = fuse([strict], 2)
    assert fused.scores[0] < 0.5 <= fused.scores[1]


def test_no_detectors_flags_nothing() -> None:
    fused = fuse([], 3)
    assert not fused.flags.any() and fused.actions.tolist() == ["keep"] * 3
