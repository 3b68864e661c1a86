"""Fusion: max of calibrated scores, OR of flags, actions from the flagging detectors."""

from __future__ import annotations

import numpy as np

from poisonguard.detect.base import DetectorResult
from poisonguard.detect.fusion import false_shares, fuse


def test_fuse_scores_flags_actions() -> None:
    label = DetectorResult("label", np.array([0.9, 0.1, 0.2, 0.6]),
                           np.array([True, False, False, True]),
                           reasons={0: "wrong label", 3: "wrong label"},
                           suggested_labels={0: 2, 3: 1})
    spectral = DetectorResult("spectral", np.array([0.1, 0.8, 0.4, 0.7]),
                              np.array([False, True, False, True]), reasons={1: "odd", 3: "odd"})
    fused = fuse([label, spectral], 4)
    assert fused.flags.tolist() == [True, True, False, True]
    assert fused.scores[0] == 0.5 + 0.24 * 0.8 and fused.scores[2] < 0.5  # evidence band
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


def test_rows_a_kept_hypothesis_names_rank_above_saturated_evidence() -> None:
    from poisonguard.detect.fusion import CLAIM_BAND, EVIDENCE_BAND
    from poisonguard.detect.hypotheses import Claim

    label = DetectorResult("label", np.array([1.0, 1.0, 0.2, 0.1, 0.1]),
                           np.array([True, True, False, False, False]))
    trigger = DetectorResult("trigger", np.array([0.0, 0.0, 0.6, 0.45, 0.0]),
                             np.array([False, False, True, False, False]),
                             reasons={2: "shares the trigger"})
    claim = Claim("trigger", "backdoor -> class 1: 2 rows share fixed values in 2 columns",
                  np.array([False, False, True, True, False]))
    fused = fuse([label, trigger], 5, claims=[claim])
    assert np.argsort(-fused.scores, kind="stable")[:2].tolist() == [2, 3]
    assert fused.flags.tolist() == [True, True, True, True, False]
    assert CLAIM_BAND[0] <= fused.scores[3] < fused.scores[2] <= CLAIM_BAND[1]
    assert EVIDENCE_BAND[0] <= fused.scores[0] <= EVIDENCE_BAND[1] < CLAIM_BAND[0]
    assert fused.scores[4] == 0.1
    assert fused.evidence.tolist() == [1.0, 1.0, 0.6, 0.45, 0.1]  # unbanded, beside the band
    assert fused.reasons[3] == [("trigger", fused.scores[3],
                                 "holds the trigger of: " + claim.hypothesis)]
    assert fused.actions[3] == "drop"


def test_flags_clean_data_would_give_rank_below_exact_ones() -> None:
    # A weak model: the label detector's null expects 3 of its 4 flags on clean data
    # (false share 0.75), so its saturated scores (1.0) rank below an outlier flag at
    # 0.8; the flags, actions and evidence stay as they were.
    from poisonguard.detect.fusion import EVIDENCE_BAND

    scores = np.array([1.0, 1.0, 0.95, 0.9, 0.1, 0.1, 0.1])
    flags = scores >= 0.5
    outlier = DetectorResult("outlier", np.array([0.1, 0.1, 0.1, 0.1, 0.8, 0.55, 0.2]),
                             np.array([False] * 4 + [True, True, False]))
    knn = DetectorResult("knn", np.array([1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
                         np.array([True] + [False] * 6))
    weak = DetectorResult("label", scores, flags, meta={"expected_clean_flags": 3.0})
    fused = fuse([weak, knn, outlier], 7)
    assert fused.false_share == {"label": 0.75, "knn": 0.75, "outlier": 0.0}
    stacked = np.vstack([weak.flags, knn.flags, outlier.flags])
    assert false_shares([weak, knn, outlier], stacked) == fused.false_share
    stacked[:2, :2] = False  # 2 label-based flags left for 3 expected
    assert false_shares([weak, knn, outlier], stacked) == {"label": 1.0, "knn": 1.0,
                                                           "outlier": 0.0}
    assert np.argsort(-fused.scores, kind="stable").tolist() == [4, 0, 1, 2, 3, 5, 6]
    assert fused.scores[0] == fused.scores[1]  # knn's 1.0 weighed like label's
    assert fused.scores[2] > fused.scores[3] > fused.scores[5]  # each detector's own order
    assert (EVIDENCE_BAND[0] <= fused.scores[:6]).all() and fused.scores[6] == 0.2
    assert fused.evidence.tolist() == [1.0, 1.0, 0.95, 0.9, 0.8, 0.55, 0.2]
    sure = DetectorResult("label", scores, flags, meta={"expected_clean_flags": 0.0})
    plain = fuse([sure, knn, outlier], 7)
    assert np.argsort(-plain.scores, kind="stable").tolist()[:2] == [0, 1]  # strong evidence
    assert (plain.flags == fused.flags).all() and (plain.actions == fused.actions).all()
    # more expected clean flags than flags: every label-based flag sits at the threshold
    none = fuse([DetectorResult("label", scores, flags, meta={"expected_clean_flags": 9.0}),
                 outlier], 7)
    assert none.false_share["label"] == 1.0 and (none.scores[:4] == EVIDENCE_BAND[0]).all()
