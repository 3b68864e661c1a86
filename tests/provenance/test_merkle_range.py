"""Merkle subtrees of row ranges merge into the root of the whole tree, for any cuts."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.errors import UsageError
from poisonguard.provenance.merkle import root_and_path
from poisonguard.provenance.merkle_range import CompactRange


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 31, 64, 100, 257])
def test_ranges_cut_anywhere_merge_to_the_rfc6962_root(n: int) -> None:
    rng = np.random.default_rng(n)
    rows = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    want = root_and_path(rows)[0]
    for _ in range(25):
        cuts = sorted(set(rng.integers(1, n, rng.integers(0, 5)).tolist())) if n > 1 else []
        bounds = [0, *cuts, n]
        tree = CompactRange(0, 0)
        for a, b in zip(bounds, bounds[1:], strict=False):
            tree.extend(CompactRange.of_rows(rows[a:b], begin=a))
        assert tree.root() == want
        assert len(tree.nodes) == bin(n).count("1")  # one perfect subtree per bit of n


def test_empty_tree_and_misuse() -> None:
    assert CompactRange(0, 0).root() == root_and_path(np.empty((0, 32), np.uint8))[0]
    rows = np.zeros((4, 32), np.uint8)
    with pytest.raises(UsageError, match="does not follow"):
        CompactRange.of_rows(rows[:2], begin=0).extend(CompactRange.of_rows(rows[3:], begin=3))
    with pytest.raises(UsageError, match="start at leaf 0"):
        CompactRange.of_rows(rows[2:], begin=2).root()
