"""The shared nearest-neighbour helper: exact, self-free, cached, faiss beyond a size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from poisonguard.attack import inject_near_duplicates
from poisonguard.datasets import builtin_dataset
from poisonguard.detect.neighbours import (
    faiss_available,
    nearest_among,
    nearest_in_sample,
    nearest_neighbours,
    neighbour_votes,
    reference_sample,
)
from poisonguard.errors import UsageError
from poisonguard.memo import scan_memo
from poisonguard.represent import scale_features


def _brute(x: np.ndarray, k: int) -> np.ndarray:
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, :k]


def test_matches_brute_force_and_never_returns_self() -> None:
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    dist, idx = nearest_neighbours(x, 7, cache=False)
    assert dist.shape == idx.shape == (300, 7)
    np.testing.assert_allclose(dist, _brute(x, 7), rtol=1e-4, atol=1e-4)
    assert not (idx == np.arange(300)[:, None]).any()
    assert (np.diff(dist, axis=1) >= -1e-6).all()


def test_exact_copies_find_each_other_not_themselves() -> None:
    x = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    x[10] = x[20] = x[30]
    dist, idx = nearest_neighbours(x, 2, cache=False)
    for i, others in ((10, {20, 30}), (20, {10, 30}), (30, {10, 20})):
        assert set(idx[i].tolist()) == others and dist[i].max() == 0


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed")
def test_faiss_exact_and_inverted_file() -> None:
    rng = np.random.default_rng(2)
    centers = rng.normal(0, 4, size=(20, 8))
    x = (centers[rng.integers(0, 20, 4000)] + rng.normal(size=(4000, 8))).astype(np.float32)
    exact_d, exact_i = nearest_neighbours(x, 10, backend="sklearn", cache=False)
    flat_d, _ = nearest_neighbours(x, 10, backend="faiss", cache=False)
    np.testing.assert_allclose(flat_d, exact_d, rtol=1e-3, atol=1e-3)
    _, ivf_i = nearest_neighbours(x, 10, exact_max_rows=1000, cache=False)  # approximate
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ivf_i, exact_i, strict=True)])
    assert recall > 0.9
    assert not (ivf_i == np.arange(4000)[:, None]).any()


def test_a_scan_memo_shares_one_search_per_array() -> None:
    x = np.random.default_rng(3).normal(size=(100, 4)).astype(np.float32)
    with scan_memo() as memo:
        d10, i10 = nearest_neighbours(x, 10)
        d3, i3 = nearest_neighbours(x, 3)
        assert np.shares_memory(i3, i10) and np.array_equal(i3, i10[:, :3])
        assert not i10.flags.writeable
        other = x.copy()
        _, j = nearest_neighbours(other, 3)
        assert not np.shares_memory(j, i10)
        assert len(memo) == 2
    assert len(memo) == 0
    # outside a scan every call searches
    assert not np.shares_memory(nearest_neighbours(x, 3)[1], nearest_neighbours(x, 3)[1])


def test_k_is_capped_and_bad_input_is_a_usage_error() -> None:
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    assert nearest_neighbours(x, 10, cache=False)[1].shape == (4, 3)
    with pytest.raises(UsageError):
        nearest_neighbours(x, 0)
    with pytest.raises(UsageError):
        nearest_neighbours(x[0], 1)
    with pytest.raises(UsageError):
        nearest_neighbours(x, 1, backend="annoy")  # type: ignore[arg-type]


def test_clean_rows_have_distinct_neighbours_and_injected_copies_find_their_source() -> None:
    wine = builtin_dataset("wine")
    dist, _ = nearest_neighbours(scale_features(wine.matrix()), 1, cache=False)
    assert (dist > 0).all()  # no duplicates in clean wine
    res = inject_near_duplicates(wine, rate=0.05, seed=0)
    x = scale_features(res.dataset.matrix())
    _, idx = nearest_neighbours(x, 1, cache=False)
    sources = np.asarray(res.truth.params["sources"])
    assert np.array_equal(idx[res.truth.poisoned, 0], sources)


def test_search_in_a_sample_is_self_free_and_bounded_below_by_the_exact_search() -> None:
    x = np.random.default_rng(4).normal(size=(1500, 5)).astype(np.float32)
    exact, _ = nearest_neighbours(x, 3, cache=False)
    dist, idx = nearest_in_sample(x, 3, max_reference=300, seed=0)
    assert dist.shape == (1500, 3)
    assert not (idx == np.arange(1500)[:, None]).any()
    assert len(np.unique(idx)) <= 300
    assert (dist >= exact - 1e-5).all()
    same, _ = nearest_in_sample(x, 3, max_reference=5000)
    np.testing.assert_allclose(same, exact)


def test_search_among_other_rows_is_exact_and_the_sample_search_reads_it() -> None:
    # One search of query rows among reference rows: exact (brute force), indices of the
    # reference, float64 distances; nearest_in_sample's rows are its result, self removed.
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(400, 6)).astype(np.float32)
    queries = rng.normal(size=(50, 6)).astype(np.float32)
    dist, idx = nearest_among(reference, queries, 4)
    full = cdist(queries, reference)
    assert dist.dtype == np.float64
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :4], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), dist, rtol=1e-4, atol=1e-4)
    x = np.vstack([reference, queries])
    sample = reference_sample(len(x), 400, seed=0)
    sample_d, sample_i = nearest_in_sample(x, 3, max_reference=400, seed=0)
    rows = np.setdiff1d(np.arange(len(x)), sample)  # not in the sample: nothing to remove
    among_d, among_i = nearest_among(x[sample], x[rows], 3)
    np.testing.assert_array_equal(sample_i[rows], sample[among_i])
    np.testing.assert_allclose(sample_d[rows], among_d, rtol=1e-6)


def test_neighbour_votes_share_of_each_label() -> None:
    votes = neighbour_votes(np.array([0, 1, 1]), np.array([[1, 2], [0, 2], [0, 1]]), 3)
    np.testing.assert_allclose(votes, [[0, 1, 0], [0.5, 0.5, 0], [0.5, 0.5, 0]])
    assert neighbour_votes(np.array([0, 1]), np.zeros((2, 0), dtype=np.int64), 2).sum() == 0


def test_torch_search_finds_the_same_neighbours_as_scikit_learn() -> None:
    pytest.importorskip("torch")
    x = np.random.default_rng(3).normal(size=(700, 12)).astype(np.float32)
    ds, i_s = nearest_neighbours(x, 9, backend="sklearn", cache=False)
    dt, i_t = nearest_neighbours(x, 9, backend="torch", cache=False)
    np.testing.assert_array_equal(i_t, i_s)
    np.testing.assert_allclose(dt, ds, rtol=1e-5, atol=1e-5)
