"""The shared IVF construction: one quantizer, any cut into shards and blocks, the same
neighbours as one index over all rows: the exact float64 k best (ties by row number) of
the rows in each query's probed lists."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from poisonguard.detect import ivf
from poisonguard.detect.ivf import (
    IvfLayout,
    ivf_layout,
    ivf_lists,
    ivf_neighbours,
    ivf_parameters,
    ivf_probes,
    search_ivf_lists,
)
from poisonguard.detect.neighbours import nearest_neighbours

pytest.importorskip("faiss", reason="faiss-cpu is in the dev extra")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    x = np.random.default_rng(3).normal(size=(4000, 6)).astype(np.float32)
    x[[10, 2500, 3999]] = x[7]  # exact copies: equal distances, ordered by row number
    return x


def test_the_cut_into_shards_and_blocks_changes_nothing(rows: np.ndarray) -> None:
    whole = ivf_neighbours(rows, 9, shard_rows=len(rows), block_rows=len(rows))
    for shard_rows, block_rows in ((997, 333), (1500, 4096), (4000, 61)):
        cut = ivf_neighbours(rows, 9, shard_rows=shard_rows, block_rows=block_rows)
        np.testing.assert_array_equal(cut[1], whole[1])
        np.testing.assert_array_equal(cut[0], whole[0])  # bit for bit
    assert whole[1][7, :4].tolist() == [7, 10, 2500, 3999]
    assert whole[1][10, :4].tolist() == [7, 10, 2500, 3999]


def _brute(x: np.ndarray, lists: np.ndarray, probes: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: each query's k best rows of its probed lists by (float64 distance
    from the float32 values, row number); float32 distances, -1 / inf beyond."""
    sq = np.full((len(probes), k), np.inf)
    idx = np.full((len(probes), k), -1, dtype=np.int64)
    x64 = x.astype(np.float32).astype(np.float64)
    for q in range(len(probes)):
        members = np.flatnonzero(np.isin(lists, probes[q]))
        d2 = ((x64[members] - x64[q]) ** 2).sum(axis=1)
        best = np.lexsort((members, d2))[:k]
        sq[q, :len(best)], idx[q, :len(best)] = d2[best], members[best]
    return np.sqrt(sq).astype(np.float32), idx


def test_the_neighbours_are_the_exact_best_of_the_probed_lists(rows: np.ndarray) -> None:
    layout = ivf_layout(rows, seed=0)
    assert 1 < layout.nprobe < layout.nlist  # approximate: not every list is probed
    probes = ivf_probes(layout, rows, 0, len(rows))
    dist, idx = ivf_neighbours(rows, 5)
    want = _brute(rows, probes[:, 0], probes, 5)
    np.testing.assert_array_equal(idx, want[1])
    np.testing.assert_allclose(dist, want[0], rtol=1e-6)  # numpy's sums vs these
    exact = nearest_neighbours(rows, 4, cache=False)[1]
    assert (idx[:, 1:] != exact).any()  # it is approximate here
    recall = np.mean([len(set(a) & set(b[1:])) / 4 for a, b in zip(exact, idx, strict=True)])
    assert recall > 0.7


def test_scores_float32_cannot_order_are_ordered_exactly() -> None:
    # Rows far from the origin, apart by less than float32 can see in |x|^2 - 2 q.x:
    # the float32 scores tie or misorder, the heaps keep an arbitrary few, and only the
    # rounding bound sends these queries to the exact search over all candidates.
    rng = np.random.default_rng(5)
    x = (1000.0 + rng.integers(-40, 40, size=(300, 4)) / 256).astype(np.float32)
    x[200:260] = x[199]  # 61 exact copies: more than k + MARGIN tie at distance 0
    layout = IvfLayout(ivf_layout(x, seed=0, nlist=3).centroids, 2)
    probes = ivf_probes(layout, x, 0, len(x))
    lists = ivf_lists(layout, x, 0, len(x))
    queries = np.arange(0, len(x), 3)
    sq, idx = search_ivf_lists(lists, x, queries, probes[queries], 12)
    want_d, want_i = _brute(x, probes[:, 0], probes, 12)
    np.testing.assert_array_equal(idx, want_i[queries])
    np.testing.assert_array_equal(np.sqrt(sq).astype(np.float32), want_d[queries])
    assert idx[np.searchsorted(queries, 201)].tolist() == list(range(199, 211))


def test_a_query_with_fewer_candidates_than_k_gets_missing_entries() -> None:
    x = np.array([[0.0], [0.5], [1.0], [10.0], [10.5]], dtype=np.float32)
    layout = IvfLayout(np.array([[0.5], [10.2]], dtype=np.float32), 1)
    lists = ivf_lists(layout, x, 0, len(x))
    sq, idx = search_ivf_lists(lists, x, np.arange(5), ivf_probes(layout, x, 0, 5), 4)
    assert idx.tolist() == [[0, 1, 2, -1], [1, 0, 2, -1], [2, 1, 0, -1],
                            [3, 4, -1, -1], [4, 3, -1, -1]]
    assert sq[3].tolist() == [0.0, 0.25, np.inf, np.inf]


def test_without_margin_or_bound_the_search_would_be_wrong(
        rows: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check is what makes it exact: with no extra candidates and a bound that
    # proves nothing, every query goes to the exact search, with the same result.
    layout = ivf_layout(rows, seed=0)
    probes = ivf_probes(layout, rows, 0, len(rows))
    lists = ivf_lists(layout, rows, 0, len(rows), assignment=probes[:, 0])
    queries = np.arange(0, len(rows), 5)
    normal = search_ivf_lists(lists, rows, queries, probes[queries], 7)
    monkeypatch.setattr(ivf, "MARGIN", 0)
    monkeypatch.setattr(ivf, "EPS_UNITS", 1e12)
    careful = search_ivf_lists(lists, rows, queries, probes[queries], 7)
    np.testing.assert_array_equal(careful[1], normal[1])
    np.testing.assert_array_equal(careful[0], normal[0])


def test_the_layout_is_seeded_and_the_parameters_grow_with_n(rows: np.ndarray) -> None:
    np.testing.assert_array_equal(ivf_layout(rows, seed=4).centroids,
                                  ivf_layout(rows, seed=4).centroids)
    assert not np.array_equal(ivf_layout(rows, seed=4).centroids,
                              ivf_layout(rows, seed=5).centroids)
    assert ivf_parameters(4000) == (100, 8)
    assert ivf_parameters(10) == (1, 1)


def test_nearest_neighbours_beyond_the_exact_size_is_this_search(rows: np.ndarray) -> None:
    dist, idx = nearest_neighbours(rows, 5, exact_max_rows=1000, seed=2, cache=False)
    own_d, own_i = ivf_neighbours(rows, 6, seed=2)
    assert not (idx == np.arange(len(rows))[:, None]).any()  # never itself
    plain = own_i[:, 0] == np.arange(len(rows))
    np.testing.assert_array_equal(idx[plain], own_i[plain, 1:])
    np.testing.assert_array_equal(dist[plain], own_d[plain, 1:])


def test_the_lists_hold_each_row_once_in_its_first_probes_list(rows: np.ndarray) -> None:
    layout = ivf_layout(rows, seed=0)
    probes = ivf_probes(layout, rows, 100, 3100)
    lists = ivf_lists(layout, rows, 100, 3100)
    assert sorted(lists.ids.tolist()) == list(range(100, 3100))
    for list_no in range(lists.nlist):
        members = lists.ids[lists.offsets[list_no]:lists.offsets[list_no + 1]]
        assert members.tolist() == (np.flatnonzero(probes[:, 0] == list_no) + 100).tolist()
    np.testing.assert_array_equal(lists.rows[:, :-1], -2 * rows[lists.ids])  # exact
    given = ivf_lists(layout, rows, 100, 3100, assignment=probes[:, 0])
    np.testing.assert_array_equal(given.rows, lists.rows)


def test_the_search_is_the_same_on_one_thread_or_two(rows: np.ndarray) -> None:
    with threadpool_limits(limits=1):
        one = ivf_neighbours(rows, 9, block_rows=1024)
    with threadpool_limits(limits=2):  # BLAS and faiss's heaps split the work
        two = ivf_neighbours(rows, 9, block_rows=1024)
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(one[0], two[0])


def test_many_exact_copies_are_searched_exactly_together_not_one_by_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 distinct rows, 100 copies of each: every query ties with 99 rows at distance 0,
    # more than k + MARGIN can hold, so no bound proves its k best and every query goes
    # to the exact search: a block's queries together, never one call per query.
    rng = np.random.default_rng(7)
    distinct = rng.normal(size=(40, 5)).astype(np.float32)
    x = distinct[rng.permutation(np.repeat(np.arange(40), 100))]
    searched: list[int] = []
    real = ivf._search_exactly

    def counting(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        searched.append(len(args[1]))  # type: ignore[arg-type]  # the queries' [q, 1]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ivf, "_search_exactly", counting)
    block = 1000
    dist, idx = ivf_neighbours(x, 10, block_rows=block)
    probes = ivf_probes(ivf_layout(x, seed=0), x, 0, len(x))
    want = _brute(x, probes[:, 0], probes, 10)
    np.testing.assert_array_equal(idx, want[1])
    np.testing.assert_array_equal(dist, want[0])  # all 0: ten copies each
    assert sum(searched) == len(x)  # every query needed the exact search
    assert len(searched) <= -(-len(x) // block)  # at most one call per block of queries
    with monkeypatch.context() as m:  # recomputed a few pairs at a time: the same
        m.setattr(ivf, "EXACT_ROWS", 1)
        np.testing.assert_array_equal(ivf_neighbours(x, 10, block_rows=block)[1], idx)
