"""Uniform-flip consistency of a pair licence (detect/flip_shape.py, overlap.pair_excess)."""

from __future__ import annotations

import numpy as np

from poisonguard.detect.flip_shape import SHAPE_ALPHA_SHARE, rising_share
from poisonguard.detect.overlap import DEFAULT_PAIR_ALPHA, pair_excess


def _two_classes(sure_ones: int, unsure_ones: int) -> tuple[np.ndarray, np.ndarray]:
    """600 sure (top 0.9) and 600 unsure (top 0.6) rows of class 0, 600 sure rows of
    class 1; ``sure_ones`` / ``unsure_ones`` of class 0's sure / unsure rows labelled 1."""
    proba = np.vstack([np.tile([[0.9, 0.1]], (600, 1)), np.tile([[0.6, 0.4]], (600, 1)),
                       np.tile([[0.05, 0.95]], (600, 1))])
    labels = np.r_[np.zeros(1200, dtype=int), np.ones(600, dtype=int)]
    labels[:sure_ones] = 1
    labels[600:600 + unsure_ones] = 1
    return labels, proba


def test_a_share_that_rises_with_confidence_is_refused_not_licensed() -> None:
    # 60 of 600 sure rows (10%) against 12 of 600 unsure ones (2%): far more sure
    # disagreement than the model's calibration allows, so the pair test passes; but a
    # flip draws class 0's rows uniformly and cannot be five times denser where the
    # model is sure
    labels, proba = _two_classes(60, 12)
    excess = pair_excess(labels, proba)
    assert excess.p_values[1, 0] < 1e-6  # the licence test alone would license it
    assert excess.refused is not None and excess.refused.tolist() == [[False, False],
                                                                      [True, False]]
    assert not excess.licensed.any() and not excess.strong.any()
    assert not excess.unexplained(labels, proba, targets=True).any()
    [why] = excess.refused_names(("a", "b"))
    assert why.startswith("b -> a refused:") and "rises with confidence" in why
    assert "0.100 at top >= 0.8 against 0.020 below" in why


def test_a_uniform_flip_over_the_class_stays_licensed() -> None:
    # 10% of class 0's rows flipped wherever the model stands (60 sure, 60 unsure) plus
    # 60 natural boundary errors among the unsure ones: the share falls with confidence
    labels, proba = _two_classes(60, 120)
    excess = pair_excess(labels, proba)
    assert excess.licensed.tolist() == [[False, False], [True, False]]
    assert excess.refused is not None and not excess.refused.any()
    assert excess.refused_names(("a", "b")) == []
    assert excess.shape is not None and excess.shape.p_values[1, 0] > 0.5


def test_a_flat_share_is_not_refused_and_the_level_is_the_pair_level_share() -> None:
    labels, proba = _two_classes(60, 60)  # the same 10% above and below
    shape = rising_share(labels, proba, certain=0.8, alpha=DEFAULT_PAIR_ALPHA)
    assert shape.above[1, 0] == 60 and shape.below[1, 0] == 60
    assert shape.rows_above.tolist() == [600, 600] and shape.rows_below.tolist() == [600, 0]
    assert 0.3 < shape.p_values[1, 0] < 0.7 and not shape.rising.any()
    assert shape.family == 1  # only pair 1 -> 0 has a disagreement
    # 42 of 600 above against 25 of 600 below: p 0.022, refused at the pair level but
    # not at its share (0.01), where the refusals of pair_excess run: the pair stays
    # licensed
    labels, proba = _two_classes(42, 25)
    shape = rising_share(labels, proba, certain=0.8, alpha=DEFAULT_PAIR_ALPHA)
    assert DEFAULT_PAIR_ALPHA * SHAPE_ALPHA_SHARE < shape.p_values[1, 0] < DEFAULT_PAIR_ALPHA
    assert shape.rising[1, 0]
    excess = pair_excess(labels, proba)
    assert excess.refused is not None and not excess.refused.any()
    assert excess.licensed[1, 0]
