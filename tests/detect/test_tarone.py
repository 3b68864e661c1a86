"""Tarone's family (detect/overlap.py ``tarone_family``): one implementation, shared by the
token detector (``tarone_tests``), the trigger detector's label family and the pair tests."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.detect import token
from poisonguard.detect.overlap import tarone_family


def _by_definition(p_floor: np.ndarray, alpha: float) -> int:
    """The smallest m >= 1 with at most m floors <= alpha / m, by trying every m."""
    floors = np.asarray(p_floor, dtype=np.float64).ravel()
    for m in range(1, len(floors) + 1):
        if int(np.sum(floors <= alpha / m)) <= m:
            return m
    return 1


@pytest.mark.parametrize("seed", range(20))
def test_the_family_is_the_smallest_m_of_its_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    floors = 10.0 ** rng.uniform(-12, 0, n)
    floors[rng.random(n) < 0.2] = 0.0  # members counted whatever alpha (margins not at hand)
    alpha = float(10.0 ** rng.uniform(-6, -1))
    ties = rng.integers(1, 50, n // 4)  # floors exactly at alpha / m: counted (<=)
    floors[: len(ties)] = alpha / ties
    grid = floors.reshape(-1, 2) if n % 2 == 0 else floors  # any shape: every entry a test
    assert tarone_family(grid, alpha) == _by_definition(floors, alpha)


def test_the_token_detector_uses_the_shared_family() -> None:
    assert token.tarone_tests is tarone_family
    assert "tarone_family" in token.__dict__  # called by name in TokenTriggerDetector
