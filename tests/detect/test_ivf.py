"""The shared IVF construction: one quantizer, any cut into shards and blocks, the same
neighbours as one index over all rows (the candidates of each query's probed lists)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from poisonguard.detect.ivf import (
    ivf_index,
    ivf_layout,
    ivf_neighbours,
    ivf_parameters,
    ivf_probes,
    release_freed_memory,
    search_ivf_index,
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


def test_the_candidates_are_the_rows_of_the_probed_lists(rows: np.ndarray) -> None:
    layout = ivf_layout(rows, seed=0)
    assert 1 < layout.nprobe < layout.nlist  # approximate: not every list is probed
    index = ivf_index(layout, rows, 0)
    _, lists = index.quantizer.search(rows, 1)  # each row's list
    probes = ivf_probes(layout, rows, 0, len(rows))
    dist, idx = ivf_neighbours(rows, 5)
    for q in range(0, len(rows), 97):
        members = np.flatnonzero(np.isin(lists[:, 0], probes[q]))
        d2 = ((rows[members].astype(np.float64) - rows[q]) ** 2).sum(axis=1)
        best = members[np.lexsort((members, d2))[:5]]
        assert sorted(idx[q].tolist()) == sorted(best.tolist())
    exact = nearest_neighbours(rows, 4, cache=False)[1]
    assert (idx[:, 1:] != exact).any()  # it is approximate here
    recall = np.mean([len(set(a) & set(b[1:])) / 4 for a, b in zip(exact, idx, strict=True)])
    assert recall > 0.7


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


def _lists(index: object) -> list[tuple[list[int], bytes]]:
    import faiss

    lists = faiss.downcast_InvertedLists(index.invlists)  # type: ignore[attr-defined]
    out = []
    for list_no in range(lists.nlist):
        size = lists.list_size(list_no)
        ids = faiss.rev_swig_ptr(lists.get_ids(list_no), size).copy()
        codes = faiss.rev_swig_ptr(lists.get_codes(list_no), size * lists.code_size).copy()
        out.append((ids.tolist(), codes.tobytes()))
    return out


def test_reserved_lists_hold_the_same_rows_and_give_the_same_search(rows: np.ndarray) -> None:
    layout = ivf_layout(rows, seed=0)
    probes = ivf_probes(layout, rows, 0, len(rows))
    plain = ivf_index(layout, rows, 100)
    exact = np.bincount(probes[:, 0], minlength=layout.nlist)
    too_small, too_large = exact // 2, exact * 2 + 3  # a list may outgrow its reservation
    expected = _lists(plain)
    assert sum(len(ids) for ids, _ in expected) == len(rows)
    for sizes in (exact, too_small, too_large):
        index = ivf_index(layout, rows, 100, list_sizes=sizes)
        assert index.ntotal == len(rows)
        assert _lists(index) == expected  # same rows, same order, same bytes
        got = search_ivf_index(index, rows[::7], probes[::7], 6)
        want = search_ivf_index(plain, rows[::7], probes[::7], 6)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    release_freed_memory()  # harmless wherever it runs


def test_the_search_is_the_same_on_one_thread_or_two(rows: np.ndarray) -> None:
    with threadpool_limits(limits=1):
        one = ivf_neighbours(rows, 9, block_rows=1024)
    with threadpool_limits(limits=2):  # faiss splits each block's queries between them
        two = ivf_neighbours(rows, 9, block_rows=1024)
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(one[0], two[0])
