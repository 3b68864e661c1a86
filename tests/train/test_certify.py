"""The certified radius, proved by brute force at the level of base-model votes.

A poisoned training row touches one bucket; a bucket feeds ``spread`` base models
(one for DPA). Here every set of up to ``r`` buckets is tried, with every possible
new vote of every model they feed: no such change may move a prediction certified
at radius ``r``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from poisonguard.train import (
    certified_accuracy,
    dpa_radius,
    fa_radius,
    members_of_buckets,
    plurality,
    vote_counts,
)


def _worst_flip(votes: np.ndarray, feeds: np.ndarray, n_classes: int, n_buckets: int) -> bool:
    """Whether some set of ``n_buckets`` buckets, re-voting its models in any way,
    changes the plurality of ``votes`` (one row of M base-model votes)."""
    start = plurality(vote_counts(votes[None, :], n_classes))[0]
    for buckets in itertools.combinations(range(len(feeds)), n_buckets):
        models = sorted(set(feeds[list(buckets)].ravel().tolist()))
        for new in itertools.product(range(n_classes), repeat=len(models)):
            changed = votes.copy()
            changed[models] = new
            if plurality(vote_counts(changed[None, :], n_classes))[0] != start:
                return True
    return False


@pytest.mark.parametrize(("n_partitions", "spread", "n_classes"),
                         [(5, 1, 3), (7, 1, 2), (3, 2, 3), (4, 2, 2)])
def test_no_change_within_the_radius_flips_a_prediction(n_partitions: int, spread: int,
                                                        n_classes: int) -> None:
    rng = np.random.default_rng(n_partitions * 10 + spread)
    feeds = members_of_buckets(n_partitions, spread)
    n_models = n_partitions * spread
    seen_radii = set()
    for _ in range(25):
        # votes biased towards class 0 so that large radii occur
        votes = np.where(rng.random(n_models) < 0.6, 0, rng.integers(0, n_classes, n_models))
        r = int(fa_radius(votes[None, :], feeds, n_classes)[0])
        seen_radii.add(r)
        for size in range(1, min(r, 3) + 1):
            assert not _worst_flip(votes, feeds, n_classes, size), (votes.tolist(), r, size)
        if spread == 1 and r + 1 <= len(feeds):
            # DPA's radius is tight: one more poisoned row can flip the vote
            assert _worst_flip(votes, feeds, n_classes, r + 1), (votes.tolist(), r)
    assert max(seen_radii) >= 1


def test_fa_with_spread_one_is_dpa() -> None:
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 4, size=(200, 9))
    counts = vote_counts(votes, 4)
    assert np.array_equal(fa_radius(votes, members_of_buckets(9, 1), 4), dpa_radius(counts))


def test_dpa_radius_formula_and_ties_go_to_the_smaller_class() -> None:
    counts = np.array([[5, 5, 0], [3, 6, 1], [0, 4, 4], [10, 0, 0]])
    assert plurality(counts).tolist() == [0, 1, 1, 0]
    # [5,5]: class 0 wins the tie, no room; [3,6]: (6-3-1)//2 = 1; [10,0]: (10-0-0)//2 = 5
    assert dpa_radius(counts).tolist() == [0, 1, 0, 5]


def test_certified_accuracy_counts_only_correct_rows_with_enough_radius() -> None:
    acc = certified_accuracy(np.array([0, 1, 1]), np.array([4, 9, 9]), np.array([0, 1, 0]),
                             (0, 5))
    assert acc == {0: 2 / 3, 5: 1 / 3}
