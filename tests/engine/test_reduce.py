"""Global statistics as per-shard reductions equal the one-pass computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cleanlab.count import compute_confident_joint, get_confident_thresholds
from cleanlab.filter import find_label_issues

from poisonguard.engine import InProcessEngine
from poisonguard.engine.reduce import (
    class_moments,
    confident_joint,
    confident_thresholds,
    current_engine,
    share,
    using_engine,
)
from poisonguard.errors import UsageError


def noisy_proba(rows: int = 1_000, classes: int = 4, seed: int = 0) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Labels with 8% flipped and the out-of-fold-like probabilities of a decent model."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes)) + 2.5 * np.eye(classes)[truth]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(rows, rows * 8 // 100, replace=False)
    labels[flipped] = (labels[flipped] + 1) % classes
    return labels, proba


@pytest.mark.parametrize("shard_rows", [1, 97, 10_000])
def test_class_moments_equal_numpy_per_class(shard_rows: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(loc=50.0, size=(600, 5)) * [1, 10, 0.1, 3, 1]  # offset and scales
    y = rng.integers(0, 4, 600)
    y[y == 3] = 0  # class 3 has no rows
    m = class_moments(x, y, 4, shard_rows=shard_rows)
    assert m.counts.tolist() == np.bincount(y, minlength=4).tolist()
    for c in range(3):
        np.testing.assert_allclose(m.means[c], x[y == c].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(m.covariance(c), np.cov(x[y == c], rowvar=False),
                                   rtol=1e-9, atol=1e-12)
    assert not m.means[3].any() and m.scatter is not None and not m.scatter[3].any()


def test_the_same_bits_whatever_the_engine_and_order_of_work() -> None:
    """An engine computes shards anywhere, in any order; the driver merges in shard order."""

    class Reversed(InProcessEngine):
        def map(self, fn, items, *, stage="working", progress=None):  # type: ignore[no-untyped-def]
            done = [fn(item) for item in reversed(items)]
            yield from reversed(done)

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(500, 3)), rng.integers(0, 3, 500)
    here = class_moments(x, y, 3, shard_rows=64)
    with using_engine(Reversed()):
        assert isinstance(current_engine(), Reversed)
        there = class_moments(x, y, 3, shard_rows=64)
    assert isinstance(current_engine(), InProcessEngine)
    assert here.scatter is not None and there.scatter is not None
    assert np.array_equal(here.means, there.means)
    assert np.array_equal(here.scatter, there.scatter)


def test_the_scatter_gives_the_spectral_signature_direction() -> None:
    """The top eigenvector of a class's merged scatter is the top right singular vector
    of its centred rows (what the spectral detector projects on)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6)) * [4, 1, 1, 1, 1, 1]
    y = np.zeros(400, dtype=int)
    m = class_moments(x, y, 1, shard_rows=50)
    assert m.scatter is not None
    top = np.linalg.eigh(m.scatter[0])[1][:, -1]
    vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)[2][0]
    assert abs(abs(float(top @ vt)) - 1.0) <= 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_confident_thresholds_and_joint_equal_cleanlab(seed: int) -> None:
    labels, proba = noisy_proba(seed=seed)
    np.testing.assert_allclose(confident_thresholds(labels, proba, shard_rows=128),
                               get_confident_thresholds(labels, proba), rtol=0, atol=1e-12)
    for calibrate in (False, True):
        ours = confident_joint(labels, proba, calibrate=calibrate, shard_rows=128)
        assert ours.tolist() == compute_confident_joint(labels, proba,
                                                        calibrate=calibrate).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classic = find_label_issues(labels, proba, filter_by="both", n_jobs=1)
        seamed = find_label_issues(labels, proba, filter_by="both", n_jobs=1,
                                   confident_joint=confident_joint(labels, proba,
                                                                   shard_rows=128))
    assert classic.sum() > 20 and classic.tolist() == seamed.tolist()  # the same flags


def test_a_class_without_rows_gets_cleanlabs_threshold() -> None:
    labels, proba = noisy_proba(rows=200, classes=3)
    labels[labels == 2] = 0
    assert confident_thresholds(labels, proba, shard_rows=30)[2] == 2.0
    assert confident_joint(labels, proba, shard_rows=30).tolist() == \
        compute_confident_joint(labels, proba).tolist()


def test_bad_input_is_refused() -> None:
    with pytest.raises(UsageError, match="integer codes"):
        class_moments(np.zeros((3, 2)), np.array([0, 1, 5]), 2)
    with pytest.raises(UsageError, match="N x D"):
        class_moments(np.zeros(3), np.array([0, 1, 1]), 2)
    with pytest.raises(UsageError, match="shard_rows"):
        class_moments(np.zeros((3, 2)), np.array([0, 1, 1]), 2, shard_rows=0)
    with pytest.raises(UsageError, match="scatter=True"):
        class_moments(np.zeros((3, 2)), np.array([0, 1, 1]), 2, scatter=False).covariance(0)


class CountingPuts(InProcessEngine):
    """An in-process engine that counts what it was asked to share."""

    def __init__(self) -> None:
        self.puts = 0

    def put(self, value):  # noqa: ANN001, ANN201
        self.puts += 1
        return super().put(value.copy())  # a snapshot, as a cluster's object store holds


def test_an_array_is_shared_once_per_block_and_never_read_stale() -> None:
    engine = CountingPuts()
    x = np.arange(12.0).reshape(4, 3)
    with using_engine(engine):
        first = share(x)
        assert share(x) is first and engine.puts == 1  # the same array: one copy
        x[0, 0] = 99.0  # changed in place: shared anew, the copy holds the new bytes
        assert share(x).get()[0, 0] == 99.0 and engine.puts == 2
        y = x + 1
        share(y)
        assert engine.puts == 3
        del y  # a freed array's entry (and its shared copy) goes with it
        assert all(entry[0]() is not None for entry in _memo().values())
        share(x[1:])  # a view is another array
        share(np.ascontiguousarray(x.T))
        assert engine.puts == 5
        assert share(x, CountingPuts()) is not first  # another engine: its own put
    assert share(x, engine) is not first and engine.puts == 6  # outside the block: puts


def _memo() -> dict:
    from poisonguard.engine.reduce import _SHARED

    memo = _SHARED.get()
    assert memo is not None
    return memo
