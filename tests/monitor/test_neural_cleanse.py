"""The model-level scan names the backdoored class and leaves the clean model alone."""

from __future__ import annotations

import numpy as np

from poisonguard.monitor import anomaly_index, neural_cleanse
from tests.monitor.conftest import TARGET, Digits


def test_badnets_model_is_flagged_at_its_target_clean_model_is_not(digits: Digits) -> None:
    g = digits.golden
    bad = neural_cleanse(digits.badnets_model, g.images, g.labels, steps=300, max_images=128)
    assert bad.flagged == (TARGET,)
    # Measured on 3 seeds: target index 3.7-6.0, other classes at most 1.6.
    assert bad.classes[TARGET].anomaly > 2.5  # 3.69 here
    assert bad.classes[TARGET].l1 < 8  # the trigger is 4 pixels
    clean = neural_cleanse(digits.clean_model, g.images, g.labels, steps=300, max_images=128)
    assert clean.flagged == ()
    assert max(c.anomaly for c in clean.classes) < 1.8  # 0.69 here
    assert all(c.reached for c in clean.classes)


def test_anomaly_index_counts_only_the_small_side() -> None:
    idx = anomaly_index(np.array([10.0, 11.0, 9.0, 10.5, 9.5, 2.0, 30.0]))
    assert idx.argmax() == 5 and idx[5] > 2 and idx[6] < 0
