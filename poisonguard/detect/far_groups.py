"""Far groups: rows that are only each other's neighbours, judged alone against the rest.

Used by the ``outlier`` detector's global view (:mod:`poisonguard.detect.outlier`),
after its passes and its re-judging of each flagged row.

Near-copies of one crafted point far out in every column (an attacker's injected rows)
are each other's ``k`` nearest neighbours, so their neighbour distance is the bulk's,
and they share the isolation trees' splits (isolation z 6.1-8.4 for 10-40 rows at SD
0.3-1.0, 6 SD out in all 8 columns of 1,000 N(0, 1) rows): at most 2 rows of such a
clump were flagged. So the neighbour graph of the global view (each row to its ``k``
neighbours) is cut where an edge alone would be a far row's neighbour distance (its
robust z against the rows never flagged at ``z_flag`` or more), and each connected group
of two or more rows other than the largest (and at most :data:`MAX_GROUP_SHARE` of the
data, each and all of them together) is judged alone against the rest
(:func:`far_groups`): every row's neighbours searched only outside the group, and its
isolation scored as if it alone had joined a forest fitted without the far groups
(:func:`inserted_isolation`). The group is flagged only if every row of it is at
``z_flag`` on both statistics and its isolation z is ``EDGE_MARGIN`` past the largest of
the rest (beyond the data's own edge, as a flagged row must be to stay flagged). Those
clumps are then flagged at every seed (judged alone: distance z 18-93, isolation z
9.1-12.1), from 4 SD out, and at 200,000 rows, where a clump of 400 is 4 rows of the
2,000-row neighbour sample. Natural groups cut off this way are far in distance but not
in isolation, which has to pick one of few columns to cut them off (the lowest isolation
z of a group): anes96's coded answers (groups of 7-18 rows, distance z 13-91, isolation
z 2.6-4.6), fair's (1.3-4.0), seattle-weather's pairs (2.9-4.4), a rare mode 6 SD out in
2 of 8 columns (4.4-4.9), a rare category (3.8-4.4); no group of the five real tables (4
cases, 3 seeds) is flagged. Cost: one pass over the graph's edges, and for each group a
search of its rows against the neighbour sample and, where every row is far, one forest
for all of them; judged a block of rows at a time, most-inside rows first, and stopped
at the first row inside the data.

:func:`inserted_isolation` and ``EDGE_MARGIN`` also serve the detector's re-judging of
each flagged row alone (``OutlierDetector._global_view``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.ensemble import IsolationForest

from poisonguard.detect.neighbours import nearest_among

__all__ = ["EDGE_MARGIN", "MAX_GROUP_SHARE", "GroupStatistics", "InsertedIsolation", "far_groups",
           "inserted_isolation"]

#: Robust z past the largest isolation z of the rows never flagged at which a flagged
#: row, judged alone, is beyond the data's own edge and keeps its flag even below
#: ``z_flag`` (``OutlierDetector._global_view``). Measured gaps: breast cancer's
#: natural edge rows -1.0 to 1.3, injected rows 2.8 or more (fair, whose isolation z
#: cannot pass 8.1 even for a row split off at every root).
EDGE_MARGIN = 2.0
#: Largest share of the rows a far group may hold. An outlier is rare: a group as large
#: as a quarter of the data is one of its modes, and which of two modes is "far" from the
#: other is no evidence (untouched MASS crabs, 200 rows: the 98 female crabs, cut off by
#: the sex column, were judged alone and flagged on seed 2 at isolation z 11.8 against an
#: edge of 10.8, not on seeds 0 and 1, whose edge was 10.3 / 13.7; RESULTS.md, session
#: 23). Injected clumps are a few percent (3-10% in every benchmark here). The far groups
#: together may hold no more either: untouched HistData PearsonLee (746 rows) falls apart
#: into its four parent-child pairings, cut off by their category; each of the three
#: judged against the largest was far (176-184 rows, 23.6-24.7%), and 540 rows were
#: flagged on every seed (RESULTS.md, session 25).
MAX_GROUP_SHARE = 0.25
#: Rows of a group judged at a time (:func:`far_groups`): the judging stops at the
#: first block holding a row inside the data.
_GROUP_BLOCK = 256


def _average_path(n: np.ndarray) -> np.ndarray:
    """Mean depth of an unsuccessful search in a binary search tree of ``n`` rows (the
    isolation forest's normaliser, ``c(n)``): 0 for one row, 1 for two."""
    n = np.asarray(n, dtype=np.float64)
    big = np.maximum(n, 3.0)
    return np.where(n > 2, 2.0 * (np.log(big - 1.0) + np.euler_gamma) - 2.0 * (big - 1.0) / big,
                    np.where(n == 2, 1.0, 0.0))


def _node_ranges(t: Any, leaf: np.ndarray, depth: np.ndarray, leaf_of: np.ndarray,
                 own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every node's (min, max) of every column over the tree's own sample rows: the
    leaves' from their rows, each parent's from its two children, deepest level first
    (cost nodes x columns, not rows x depth x columns)."""
    lo = np.empty((t.node_count, own.shape[1]), dtype=np.float32)
    hi = np.empty_like(lo)
    order = np.argsort(leaf_of, kind="stable")
    ids, starts = np.unique(leaf_of[order], return_index=True)
    lo[ids] = np.minimum.reduceat(own[order], starts, axis=0)
    hi[ids] = np.maximum.reduceat(own[order], starts, axis=0)
    for d in range(int(depth.max()) - 1, -1, -1):
        up = np.flatnonzero((depth == d) & ~leaf)
        left, right = t.children_left[up], t.children_right[up]
        lo[up] = np.minimum(lo[left], lo[right])
        hi[up] = np.maximum(hi[left], hi[right])
    return lo, hi


def _path_cumsum(v: np.ndarray, indptr: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Running sum of ``v`` along each row's path (``v`` in decision-path order)."""
    run = np.cumsum(v)
    return run - np.repeat(run[indptr[:-1]] - v[indptr[:-1]], length)


def _new_flat_differences(flat: np.ndarray, lo: np.ndarray, left: np.ndarray,
                          right: np.ndarray, mine: np.ndarray, row: np.ndarray,
                          node: np.ndarray) -> np.ndarray:
    """For each (row, node) of the rows' paths: the columns that became constant at that
    node (constant there, not in its parent) where the row differs from the node's
    value (0 at leaves). A column constant in a node stays so below it with the same
    value, so the running sum of this along a path counts the node's constant columns
    where the row differs, at the cost of at most one look at each column per row."""
    parent = np.zeros(len(flat), dtype=np.int64)
    inner = np.flatnonzero(left >= 0)
    parent[left[inner]], parent[right[inner]] = inner, inner
    fresh = flat.copy()
    fresh[1:] &= ~flat[parent[1:]]
    fresh[left < 0] = False  # a leaf draws nothing
    count = fresh.sum(axis=1)
    pair_count = count[node]
    nodes_rep = np.repeat(node, pair_count)
    rows_rep = np.repeat(row, pair_count)
    # the k-th fresh column of each pair's node
    fresh_cols = np.nonzero(fresh)  # node-major: (node, column) sorted by node
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    k = np.arange(len(nodes_rep)) - np.repeat(np.cumsum(pair_count) - pair_count, pair_count)
    cols = fresh_cols[1][first[nodes_rep] + k]
    differs = mine[rows_rep, cols] != lo[nodes_rep, cols]
    return np.bincount(np.repeat(np.arange(len(node)), pair_count), weights=differs,
                       minlength=len(node))


def inserted_isolation(forest: IsolationForest, fitted: np.ndarray,
                       x: np.ndarray) -> np.ndarray:
    """Isolation anomaly score of each row of ``x`` as if it had been in every tree's sample.

    scikit-learn scores a row that was not in a tree's sample by the leaf it falls in,
    so a row far beyond the data's edge is no more isolated than the edge rows
    themselves (the tree never drew a split between them). Had the row been in the
    sample, each node on its path would have drawn its threshold uniformly over the
    node's range widened to the row; on the node's feature, with the gap ``g`` between
    the row and the node's rows and their range ``w``, the split separates the row alone
    with probability ``g / (w + g)``, and otherwise falls inside the old range, where the
    fitted tree's threshold is a draw of that same law. The expected path length is
    that sum over the row's path (the row isolated at a node of depth ``d`` has path
    length ``d``). A row inside every node's range (every row of a tree's own sample)
    gets scikit-learn's score exactly; any other row gets at least it.

    ``fitted``: the rows the forest was fitted on (its trees' samples index them).
    To score several sets of rows against one forest, :class:`InsertedIsolation` reads
    the trees once.
    """
    return InsertedIsolation(forest, fitted)(x)


class InsertedIsolation:
    """:func:`inserted_isolation` against one forest, its trees read once: every node's
    depth and ranges over the tree's own sample rows (what does not depend on the rows
    scored). Calling it scores rows (the same numbers as :func:`inserted_isolation`).

    Examples
    --------
    >>> from sklearn.ensemble import IsolationForest
    >>> x = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    >>> forest = IsolationForest(n_estimators=10, random_state=0).fit(x)
    >>> score = InsertedIsolation(forest, x)
    >>> bool(score(np.full((1, 3), 9.0))[0] > score(x).max())
    True
    """

    def __init__(self, forest: IsolationForest, fitted: np.ndarray) -> None:
        self.trees: list[tuple[Any, ...]] = []
        for tree, features, samples in zip(forest.estimators_, forest.estimators_features_,
                                           forest.estimators_samples_, strict=True):
            t = tree.tree_
            leaf = t.children_left < 0
            depth = t.compute_node_depths().astype(np.int64) - 1  # edges from the root
            own = np.asarray(fitted[samples][:, features], dtype=np.float32)
            lo, hi = _node_ranges(t, leaf, depth, tree.apply(own, check_input=False), own)
            flat = lo == hi
            self.trees.append((tree, features, leaf, np.where(leaf, 0, t.feature), depth, lo,
                               hi, flat, own.shape[1] - flat.sum(axis=1),
                               depth + _average_path(t.n_node_samples)))
        self.norm = len(forest.estimators_) * float(
            _average_path(np.array([forest.max_samples_]))[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        n = len(x)
        total = np.zeros(n)
        for tree, features, leaf, feature, depth, lo, hi, flat, columns, ends in self.trees:
            t = tree.tree_
            mine = x[:, features]
            # each row's nodes, root first (mine is float32, as the tree reads it)
            path = tree.decision_path(mine, check_input=False).tocsr()
            length = np.diff(path.indptr)
            row, node = np.repeat(np.arange(n), length), path.indices
            value = mine[row, feature[node]].astype(np.float64)
            low, high = lo[node, feature[node]].astype(np.float64), hi[node, feature[node]]
            gap = np.where(leaf[node], 0.0,
                           np.maximum(np.maximum(low - value, value - high), 0.0))
            span = high - low + gap
            alone = np.divide(gap, span, out=np.zeros_like(gap), where=span > 0)
            # A column constant in the node is never drawn (the splitter skips it) unless
            # the row differs there: then it is one more column to draw, and it isolates.
            extra = _path_cumsum(_new_flat_differences(flat, lo, t.children_left,
                                                       t.children_right, mine, row, node),
                                 path.indptr, length)
            drawn = columns[node]
            share = np.where(leaf[node], 0.0, extra / np.maximum(drawn + extra, 1))
            alone = np.minimum(share + (1.0 - share) * alone, 1.0 - 1e-12)
            stay = np.log1p(-alone)
            kept = np.cumsum(stay)
            kept = np.exp(kept - stay - np.repeat(kept[path.indptr[:-1]]
                                                  - stay[path.indptr[:-1]],
                                                  length))  # P(not isolated above the node)
            total += np.bincount(row, weights=kept * np.where(leaf[node], ends[node],
                                                              alone * (depth[node] + 1.0)),
                                 minlength=n)
        return np.asarray(2.0 ** (-total / self.norm))


class GroupStatistics(Protocol):
    """What :func:`far_groups` reads of the global view's neighbour statistics (the
    ``outlier`` detector's): the rows ``x``, each row's ``k`` nearest rows of the
    neighbour sample (``neighbours``, row numbers) at distances ``lengths``."""

    x: np.ndarray
    k: int
    neighbours: np.ndarray
    lengths: np.ndarray

    def sample(self) -> np.ndarray:
        """The rows searched for neighbours."""

    def reach_z(self, reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Robust z of mean neighbour distances against the ``reference`` rows' own."""

    def alone(self, reference: np.ndarray, *, n_estimators: int, max_samples: int,
              max_reference: int) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        """Isolation z of rows, each as if it alone had joined the ``reference`` rows,
        and the largest z of the reference rows."""


def far_groups(stats: GroupStatistics, dist: np.ndarray, iso: np.ndarray, *, z_flag: float,
               n_estimators: int, max_samples: int, max_reference: int) -> np.ndarray:
    """Judge each group of rows that are only each other's neighbours alone against the
    rest (module docstring). In place: the rows of a group found far get their z
    (``dist``, ``iso``: each row's distance and isolation z in the global view) judged
    alone. Returns, for each row so flagged, the size of its group; else 0."""
    n = len(dist)
    grouped = np.zeros(n, dtype=np.int64)
    flagged = np.minimum(dist, iso) >= z_flag
    reference = ~flagged
    reach_z = stats.reach_z(reference)
    near = reach_z(stats.lengths) < z_flag  # edges within the data
    graph = csr_matrix((np.ones(int(near.sum()), dtype=np.int8),
                        (np.repeat(np.arange(n), near.shape[1])[near.ravel()],
                         stats.neighbours[near])), shape=(n, n))
    count, comp = connected_components(graph, directed=True, connection="weak")
    sizes = np.bincount(comp, minlength=count)
    order = np.argsort(iso, kind="stable")  # each group's rows most inside the data first
    order = order[~flagged[order]]
    order = order[np.argsort(comp[order], kind="stable")]  # by group, then as before
    bounds = np.searchsorted(comp[order], np.arange(count + 1))
    pool = stats.sample()
    pool = pool[reference[pool]]
    bulk = int(np.argmax(sizes))
    far: list[tuple[int, np.ndarray, np.ndarray]] = []  # (component, rows, distance z)
    small = sizes <= MAX_GROUP_SHARE * n
    for c in np.flatnonzero(small & (sizes > 1) & (np.arange(count) != bulk)):
        rows = order[bounds[c]:bounds[c + 1]]
        outside = pool[comp[pool] != c]
        z = _every_row_out(rows, lambda part: reach_z(  # noqa: B023
            _outside_reach(stats, part, outside)), z_flag)  # noqa: B023
        if z is not None:
            far.append((int(c), rows, z))
    if not far or sum(int(sizes[c]) for c, _, _ in far) > MAX_GROUP_SHARE * n:
        return grouped  # far groups that together hold a quarter of the rows are modes
    rest = reference.copy()  # each group judged without every far group
    for _, rows, _ in far:
        rest[rows] = False
    alone, edge = stats.alone(rest, n_estimators=n_estimators, max_samples=max_samples,
                              max_reference=max_reference)
    for part_of, rows, z in far:
        z_iso = _every_row_out(rows, alone, max(z_flag, edge + EDGE_MARGIN))
        if z_iso is not None:
            dist[rows], iso[rows], grouped[rows] = z, z_iso, sizes[part_of]
    return grouped


def _outside_reach(stats: GroupStatistics, rows: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Mean distance of each of ``rows`` to its ``k`` nearest rows of ``pool``
    (infinite where ``pool`` is empty)."""
    k = min(stats.k, len(pool))
    if k < 1:
        return np.full(len(rows), np.inf)
    return nearest_among(stats.x[pool], stats.x[rows], k)[0].mean(axis=1)


def _every_row_out(rows: np.ndarray, judge: Callable[[np.ndarray], np.ndarray],
                   level: float) -> np.ndarray | None:
    """``judge(rows)`` (robust z) if every row reaches ``level``, else None; judged
    ``_GROUP_BLOCK`` rows at a time, stopping at the first block with a row below."""
    z = np.empty(len(rows))
    if len(rows) < 2:
        return None
    for start in range(0, len(rows), _GROUP_BLOCK):
        part = slice(start, start + _GROUP_BLOCK)
        z[part] = judge(rows[part])
        if z[part].min() < level:
            return None
    return z
