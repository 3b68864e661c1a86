"""The label stage's memory-lean paths give the values of the one-shot computations
they replaced (detect/overlap.py null draws, detect/neighbours.py neighbour votes,
detect/label.py ensemble): the same labels, thresholds and shares, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import poisonguard.detect.neighbours as neighbours_module
from poisonguard.detect.label import ensemble_proba, label_margins
from poisonguard.detect.neighbours import neighbour_votes
from poisonguard.detect.overlap import natural_label_proba, null_labels, null_threshold
from poisonguard.detect.thresholds import tail_threshold


def _proba(n: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(c, 0.3), size=n)


def _null_labels_one_block(proba: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """The former null_labels: all draws x N x C at once."""
    cumulative = np.cumsum(natural_label_proba(proba), axis=1)
    cumulative[:, -1] = 1.0
    u = np.random.default_rng(seed).random((draws, len(proba), 1))
    return np.asarray((u >= cumulative[None]).sum(axis=2), dtype=np.int64)


@pytest.mark.parametrize(("n", "c", "seed"), [(3000, 2, 0), (2000, 5, 3), (500, 10, 7)])
def test_null_draws_one_at_a_time_are_the_one_block_draws(n: int, c: int, seed: int) -> None:
    proba = _proba(n, c, seed)
    drawn = null_labels(proba, draws=20, seed=seed)
    assert drawn.dtype == np.int64
    np.testing.assert_array_equal(drawn, _null_labels_one_block(proba, 20, seed))


@pytest.mark.parametrize("max_fpr", [0.001, 0.005, 0.3])
def test_null_threshold_is_the_quantile_of_all_stacked_draws(max_fpr: float) -> None:
    n, c = 4000, 4
    proba = _proba(n, c, 1)
    rows = np.arange(n)

    def statistic(y: np.ndarray) -> np.ndarray:
        return np.asarray(proba[rows, (y + 1) % c] - proba[rows, y])

    stats = np.stack([statistic(y) for y in _null_labels_one_block(proba, 20, 2)])
    expected = max(float(np.quantile(stats.ravel(), 1 - max_fpr)), float(np.nextafter(0, 1)))
    got = null_threshold(statistic, proba, max_fpr=max_fpr, seed=2)
    assert got.threshold == expected
    assert got.expected_flags == float((stats >= expected).sum()) / len(stats)


def test_tail_threshold_in_place_is_the_same_quantile() -> None:
    scores = np.random.default_rng(0).normal(size=10_001)
    copy = scores.copy()
    assert tail_threshold(copy, 0.01, overwrite=True) == tail_threshold(scores, 0.01)
    np.testing.assert_array_equal(np.sort(copy), np.sort(scores))  # reordered, not changed


def test_neighbour_votes_in_blocks_are_the_one_shot_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 1000)
    idx = rng.integers(0, 1000, (1000, 13)).astype(np.int32)
    one_shot = np.stack([(labels[idx] == c).sum(axis=1) for c in range(6)], axis=1) / 13
    monkeypatch.setattr(neighbours_module, "VOTE_BLOCK_ROWS", 7)
    np.testing.assert_array_equal(neighbour_votes(labels, idx, 6), one_shot)


def test_ensemble_mixed_in_place_is_the_weighted_sum() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 800)
    idx = rng.integers(0, 800, (800, 9))
    model = _proba(800, 3, 4)
    for weight in (0.5, 0.3):
        votes = neighbour_votes(labels, idx, 3)
        mixed = ensemble_proba(labels, model, idx, 3, weight)
        np.testing.assert_array_equal(mixed, (1 - weight) * model + weight * votes)
        np.testing.assert_array_equal(label_margins(labels, mixed),
                                      label_margins(labels, (1 - weight) * model
                                                    + weight * votes))
