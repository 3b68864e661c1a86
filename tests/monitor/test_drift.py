"""Prediction drift against the golden baseline."""

from __future__ import annotations

import numpy as np

from poisonguard.attack.trigger import stamp
from poisonguard.monitor import prediction_drift
from tests.monitor.conftest import Digits


def test_same_distribution_no_drift_triggered_batch_drifts(digits: Digits) -> None:
    g, m = digits.golden, digits.badnets_model
    half = len(g) // 2
    base = m.predict_proba(g.images[:half])
    same = prediction_drift(base, m.predict_proba(g.images[half:]), m.classes)
    assert not same.drifted and same.class_p > 0.05
    batch = g.images[half:].copy()
    batch[:60] = stamp(batch[:60], digits.attack.truth.params["trigger"])  # 60 of 359 triggered
    drift = prediction_drift(base, m.predict_proba(batch), m.classes)
    assert drift.drifted and drift.class_p < 1e-4
    assert drift.recent_share["3"] > drift.baseline_share["3"] + 0.1
    assert np.isclose(sum(drift.recent_share.values()), 1.0)
