"""Detector ``outlier``: rows far from the rest of their own class, or of the whole data.

Two statistics in the scaled feature space, each turned into a
robust z-score against the class's own distribution (median and MAD, so a few
outliers cannot hide themselves by inflating the scale):

- distance: the larger of two robust z-scores, that of the log mean distance to the
  ``k`` nearest same-class rows, and that of the local density ratio (in the spirit
  of the local outlier factor: the same distance over the median of it at those
  neighbours). The ratio separates a lone far row (dense neighbours) from a row in the
  sparse tail of a skewed column (sparse neighbours too); the plain distance still
  sees far rows that clump together, where the ratio is near 1;
- an isolation-forest anomaly score (scikit-learn's ``IsolationForest`` fitted on
  the class, sub-sampled so that it stays cheap on large data).

The fused z is the smaller of the two: a row is flagged only when both statistics
put it at least ``z_flag`` robust standard deviations out. Either one alone has a
heavy clean tail on real data (rare pixels in digits, skewed columns in breast
cancer); their agreement does not. On the built-in sets the clean maximum of the
fused z is 6.4 (breast cancer) and injected outliers sit at 7.3 or more, even at 10%
contamination (docs/detectors-classic.md).

Both statistics are computed twice: within each class, and over the whole data
(the *global* view); a row's z is the larger of the two views. Injected rows carry
random labels, so a small class can be half made of them (statsmodels' fair: 41
rows of one occupation and about 33 injected ones): its own median and MAD then
describe the outliers, and nothing is out. Over the whole data the injected rows are
3%; but a few percent of far rows are each other's nearest neighbours, so their
density ratio is near 1 and the log of their distance grows slowly (robust z about
5 on fair, where one heavy-tailed column puts natural rows up to z 11). The global
distance statistic therefore also takes the robust z of the plain (not log) mean
neighbour distance, and the isolation score must still agree: measured clean maxima
of the global fused z are 4.0-6.5 on the real and built-in tables except penguins'
two rows with every measurement missing (8.0, 8.3: flagged, rightly far from every
other row); injected rows at 3% sit at 7.7 or more (fair) and 10+ elsewhere.

A flag needs the global view. A row far from its own class but inside the bulk of the
whole data is a rare form of its class or a label question (the label detectors'), not
a row from outside the data: real MNIST has three serif '1's at class z 8.2-10.6 whose
global z is -0.1 to 1.5 (the whole data's clean maximum there is 3.4), and
seattle-weather one rain day at class z 7.7, global 4.7; every row injected into the
five real tables (3%, 3 seeds) and the built-in sets is at global z 7.7 or more. Such
rows are put up for review (``DetectorResult.review``), and their class z still ranks
them first among the unflagged rows.

Far rows that are only each other's neighbours are judged as a group. Near-copies of
one crafted point far out in every column (an attacker's injected rows) are each
other's ``k`` nearest neighbours, so their neighbour distance is the bulk's, and they
share the isolation trees' splits (isolation z 6.1-8.4 for 10-40 rows at SD 0.3-1.0,
6 SD out in all 8 columns of 1,000 N(0, 1) rows): at most 2 rows of such a clump were
flagged. So the neighbour graph of the global view (each row to its ``k`` neighbours)
is cut where an edge alone would be a far row's neighbour distance (its robust z
against the rows never flagged at ``z_flag`` or more), and each connected group of two
or more rows other than the largest (and at most half the data) is judged alone
against the rest: every row's neighbours searched only outside the group, and its
isolation scored as if it alone had joined a forest fitted without the far groups
(:func:`inserted_isolation`). The group is flagged only if every row of it is at
``z_flag`` on both statistics and its isolation z is ``EDGE_MARGIN`` past the largest
of the rest (beyond the data's own edge, as a flagged row must be to stay flagged).
Those clumps are then flagged at every seed (judged alone: distance z 18-93,
isolation z 9.1-12.1), from 4 SD out, and at 200,000 rows, where a clump of 400 is 4
rows of the 2,000-row neighbour sample. Natural groups cut off this way are far in
distance but not in isolation, which has to pick one of few columns to cut them off
(the lowest isolation z of a group): anes96's coded answers (groups of 7-18 rows,
distance z 13-91, isolation z 2.6-4.6), fair's (1.3-4.0), seattle-weather's pairs
(2.9-4.4), a rare mode 6 SD out in 2 of 8 columns (4.4-4.9), a rare category
(3.8-4.4); no group of the five real tables (4 cases, 3 seeds) is flagged. Cost: one
pass over the graph's edges, and for each group a search of its rows against the
neighbour sample and, where every row is far, one forest for all of them; judged a
block of rows at a time, most-inside rows first, and stopped at the first row inside
the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.neighbours import nearest_in_sample, reference_sample
from poisonguard.detect.thresholds import robust_z, scores_from_z
from poisonguard.engine.rows import map_rows
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["OutlierDetector", "class_outlier_z", "evidence_scores"]

_MIN_CLASS_ROWS = 5
#: Passes of the global view at most (each refits its isolation forest without the
#: rows flagged so far; :meth:`OutlierDetector._global_view`).
MAX_PASSES = 5
#: Robust z past the largest isolation z of the rows never flagged at which a flagged
#: row, judged alone, is beyond the data's own edge and keeps its flag even below
#: ``z_flag`` (:meth:`OutlierDetector._global_view`). Measured gaps: breast cancer's
#: natural edge rows -1.0 to 1.3, injected rows 2.8 or more (fair, whose isolation z
#: cannot pass 8.1 even for a row split off at every root).
EDGE_MARGIN = 2.0
#: Rows of a group judged at a time (:meth:`OutlierDetector._far_groups`): the judging
#: stops at the first block holding a row inside the data.
_GROUP_BLOCK = 256


def evidence_scores(z: np.ndarray, z_flag: float) -> np.ndarray:
    """Robust z to score: 0.5 at ``z_flag`` and strictly increasing in ``z`` past it.

    Below ``z_flag`` the logistic of ``z - z_flag`` (:func:`scores_from_z`); from it on
    ``1 - (z_flag / z) ** (z_flag / 2) / 2``, whose slope at ``z_flag`` is the
    logistic's (the two join smoothly) but whose distance to 1 shrinks only as a power
    of z: flagged rows stay ordered by their evidence (z 10% apart stay apart at the
    findings' 6 decimals up to 30 z_flag, and in float64 up to 20,000 z_flag). The
    logistic alone came within 1e-6 of 1.0 at z_flag + 14 and reached it in float64 at
    z_flag + 37: flagged rows tied at the top of the fused ranking and were shown in
    the order of their row index.

    Examples
    --------
    >>> evidence_scores(np.array([0.0, 7.0, 8.0, 14.0, 70.0]), 7.0).round(4).tolist()
    [0.0009, 0.5, 0.6867, 0.9558, 0.9998]
    """
    z = np.asarray(z, dtype=np.float64)
    past = 1.0 - 0.5 * (z_flag / np.maximum(z, z_flag)) ** (z_flag / 2)
    return np.where(z >= z_flag, past, scores_from_z(z, z_flag))


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
    """
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    total = np.zeros(n)
    for tree, features, samples in zip(forest.estimators_, forest.estimators_features_,
                                       forest.estimators_samples_, strict=True):
        t = tree.tree_
        leaf = t.children_left < 0
        feature = np.where(leaf, 0, t.feature)
        depth = t.compute_node_depths().astype(np.int64) - 1  # edges from the root
        own = np.asarray(fitted[samples][:, features], dtype=np.float32)
        lo, hi = _node_ranges(t, leaf, depth, tree.apply(own), own)
        mine = x[:, features]
        path = tree.decision_path(mine).tocsr()  # each row's nodes, root first
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
        flat = lo == hi
        extra = _path_cumsum(_new_flat_differences(flat, lo, t.children_left,
                                                   t.children_right, mine, row, node),
                             path.indptr, length)
        drawn = own.shape[1] - flat.sum(axis=1)[node]
        share = np.where(leaf[node], 0.0, extra / np.maximum(drawn + extra, 1))
        alone = np.minimum(share + (1.0 - share) * alone, 1.0 - 1e-12)
        stay = np.log1p(-alone)
        kept = np.cumsum(stay)
        kept = np.exp(kept - stay - np.repeat(kept[path.indptr[:-1]] - stay[path.indptr[:-1]],
                                              length))  # P(not isolated above the node)
        ends = depth[node] + _average_path(t.n_node_samples[node])
        total += np.bincount(row, weights=kept * np.where(leaf[node], ends,
                                                          alone * (depth[node] + 1.0)),
                             minlength=n)
    norm = len(forest.estimators_) * float(_average_path(np.array([forest.max_samples_]))[0])
    return np.asarray(2.0 ** (-total / norm))


def class_outlier_z(
    x: np.ndarray, *, k: int = 5, n_estimators: int = 100, max_samples: int = 256,
    max_reference: int = 2000, seed: int = 0, linear: bool = False,
    reference: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust z of (neighbour distance, isolation score) for the rows of one class.

    The distance z is the larger of the z of the log mean neighbour distance and the
    z of the log local density ratio (and, with ``linear``, the z of the plain mean
    distance: the global view of the module docstring).

    Neighbours are searched among at most ``max_reference`` rows of the class (all
    of them in small classes), so the cost is linear in the class size. ``reference``
    (a boolean mask, default every row): the rows that describe the data; the
    isolation forest is fitted on them and every z takes their median and MAD.
    """
    return _Statistics(x, k=k, max_reference=max_reference, seed=seed, linear=linear).z(
        reference, n_estimators=n_estimators, max_samples=max_samples)


class _Statistics:
    """The neighbour statistics of ``x`` (searched once), turned into robust z against
    any set of reference rows."""

    def __init__(self, x: np.ndarray, *, k: int, max_reference: int, seed: int,
                 linear: bool) -> None:
        dist, idx = nearest_in_sample(x, k, max_reference=max_reference, seed=seed)
        reach = dist.mean(axis=1).astype(np.float64)
        # A floor keeps a row next to a clump of exact copies (zero distances) finite.
        floor = max(0.1 * float(np.median(reach)), 1e-9)
        local = (np.maximum(np.median(reach[idx], axis=1), floor) if idx.size
                 else reach + floor)
        self.x, self.seed, self.k, self.neighbours, self.lengths = x, seed, k, idx, dist
        self.reach, self.floor, self.linear = reach, floor, linear
        self.max_reference = max_reference
        self.distances = [np.log(reach + floor), np.log(np.maximum(reach, floor) / local)]
        if linear:
            self.distances.append(reach)

    def z(self, reference: np.ndarray | None, *, n_estimators: int,
          max_samples: int) -> tuple[np.ndarray, np.ndarray]:
        ref = (np.ones(len(self.x), dtype=bool) if reference is None
               else np.asarray(reference, dtype=bool))
        forest = self._forest(ref, n_estimators=n_estimators, max_samples=max_samples)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iso = -map_rows(forest.score_samples, self.x, stage="isolation scores")
        return self.distance_z(ref), robust_z(iso, iso[ref])

    def distance_z(self, reference: np.ndarray) -> np.ndarray:
        """The distance z of every row against the ``reference`` rows' median and MAD."""
        return np.max([robust_z(d, d[reference]) for d in self.distances], axis=0)

    def _forest(self, reference: np.ndarray, *, n_estimators: int,
                max_samples: int) -> IsolationForest:
        fitted = self.x[reference]
        forest = IsolationForest(n_estimators=n_estimators,
                                 max_samples=min(max_samples, len(fitted)),
                                 random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return forest.fit(fitted)

    def sample(self) -> np.ndarray:
        """The rows searched for neighbours (:func:`nearest_in_sample`'s seeded sample)."""
        return reference_sample(len(self.x), self.max_reference, self.seed)

    def outside_reach(self, rows: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """Mean distance of each of ``rows`` to its ``k`` nearest rows of ``pool``
        (infinite where ``pool`` is empty)."""
        k = min(self.k, len(pool))
        if k < 1:
            return np.full(len(rows), np.inf)
        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(self.x[pool])
        return np.asarray(nn.kneighbors(self.x[rows])[0].mean(axis=1), dtype=np.float64)

    def reach_z(self, reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Robust z of mean neighbour distances (any shape) against the ``reference``
        rows' own, as in :meth:`distance_z` without the density ratio (a row judged
        alone has no neighbours of its own to compare with): the larger of the log and
        (global view) plain distance's. The reference's median and MAD are taken once."""
        own = self.reach[reference]
        # robust z is affine in the value: its offset and slope from the values 0 and 1
        log_at = robust_z(np.array([0.0, 1.0]), np.log(own + self.floor))
        plain_at = robust_z(np.array([0.0, 1.0]), own)

        def z(reach: np.ndarray) -> np.ndarray:
            reach = np.asarray(reach, dtype=np.float64)
            by_log = log_at[0] + (log_at[1] - log_at[0]) * np.log(reach + self.floor)
            if not self.linear:
                return by_log
            return np.maximum(by_log, plain_at[0] + (plain_at[1] - plain_at[0]) * reach)
        return z

    def inserted_z(self, reference: np.ndarray, rows: np.ndarray, *, n_estimators: int,
                   max_samples: int, max_reference: int) -> tuple[np.ndarray, float]:
        """Isolation z of ``rows``, each as if it alone had joined the ``reference`` rows,
        and the largest z of the reference rows scored (the data's own edge).

        The forest is fitted on the reference rows; each row of ``rows`` is scored by
        :func:`inserted_isolation` (its depth had it been in every tree's sample), and so
        are at most ``max_reference`` reference rows (a seeded sample), whose median and
        MAD centre the z. Rows outside the reference share no split range with each other:
        a clump of far rows cannot mask one of its own, and a natural edge row is judged
        against the data without them.
        """
        forest, pool = self._judge(reference, n_estimators=n_estimators,
                                   max_samples=max_samples, max_reference=max_reference)
        iso = inserted_isolation(forest, self.x[reference], self.x[np.concatenate([rows, pool])])
        z = robust_z(iso, iso[len(rows):])
        return z[: len(rows)], float(z[len(rows):].max())

    def alone(self, reference: np.ndarray, *, n_estimators: int, max_samples: int,
              max_reference: int) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        """:meth:`inserted_z` in parts: a function of ``rows`` giving their isolation z,
        each as if it alone had joined the ``reference`` rows (one forest for every part),
        and the largest z of the reference rows scored."""
        forest, pool = self._judge(reference, n_estimators=n_estimators,
                                   max_samples=max_samples, max_reference=max_reference)
        fitted = self.x[reference]
        own = inserted_isolation(forest, fitted, self.x[pool])
        return (lambda rows: robust_z(inserted_isolation(forest, fitted, self.x[rows]), own),
                float(robust_z(own, own).max()))

    def _judge(self, reference: np.ndarray, *, n_estimators: int, max_samples: int,
               max_reference: int) -> tuple[IsolationForest, np.ndarray]:
        """The forest fitted on the ``reference`` rows, and at most ``max_reference`` of
        them (a seeded sample) to centre the z."""
        forest = self._forest(reference, n_estimators=n_estimators, max_samples=max_samples)
        pool = np.flatnonzero(reference)
        if len(pool) > max_reference:
            pool = np.sort(np.random.default_rng(self.seed).choice(
                pool, max_reference, replace=False))
        return forest, pool


@register_detector
class OutlierDetector(Detector):
    """Neighbour distance and isolation score, fused as robust z, within each class and
    over the whole data (the larger of the two views).

    Parameters
    ----------
    k:
        same-class neighbours for the density statistic.
    z_flag:
        robust z (the smaller of the two statistics) at which a row is flagged
        (score 0.5); the flag needs it over the whole data, a row out only of its
        class is put up for review.
    n_estimators, max_samples:
        isolation forest size (per class).
    max_reference:
        same-class rows searched for neighbours (a seeded sample in larger classes).
    """

    name = "outlier"
    needs = frozenset({"features"})
    parameter_constraints = {
        "k": Interval(int, 1, None),
        "z_flag": Interval(float, 0, None, closed="neither"),
        "n_estimators": Interval(int, 1, None),
        "max_samples": Interval(int, 1, None),
        "max_reference": Interval(int, 2, None),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, k: int = 5, z_flag: float = 7.0, n_estimators: int = 100,
                 max_samples: int = 256, max_reference: int = 2000, seed: int = 0) -> None:
        self.k = k
        self.z_flag = z_flag
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_reference = max_reference
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        labels = np.asarray(dataset.labels)
        x = np.asarray(representation.features, dtype=np.float32)
        z_dist = np.zeros(len(labels))
        z_iso = np.zeros(len(labels))
        examined: list[int] = []
        for c in range(dataset.n_classes):
            rows = np.flatnonzero(labels == c)
            if len(rows) < _MIN_CLASS_ROWS:
                continue
            examined.append(c)
            z_dist[rows], z_iso[rows] = class_outlier_z(
                x[rows], k=self.k, n_estimators=self.n_estimators,
                max_samples=self.max_samples, max_reference=self.max_reference,
                seed=self.seed + c)
        in_class = np.minimum(z_dist, z_iso)
        g_dist, g_iso, passes, grouped = self._global_view(x)
        overall = np.minimum(g_dist, g_iso)
        fused = np.maximum(in_class, overall)
        scores = evidence_scores(fused, self.z_flag)
        flags = overall >= self.z_flag  # the global view decides (module docstring)
        names = dataset.classes

        def said(i: int) -> str:
            return (f"far from the rest of class {names[labels[i]]}: robust z "
                    f"{in_class[i]:.1f} (neighbour distance z {z_dist[i]:.1f}, isolation z "
                    f"{z_iso[i]:.1f})")

        reasons = {
            int(i): (said(int(i)) + f"; from the rest of the data: robust z {overall[i]:.1f}"
                     if in_class[i] >= overall[i] else
                     f"far from the rest of the data (class {names[labels[i]]}): robust z "
                     f"{overall[i]:.1f} (neighbour distance z {g_dist[i]:.1f}, isolation z "
                     f"{g_iso[i]:.1f})")
            + (f"; one of {grouped[i]} rows close together, each judged against the data "
               "without them" if grouped[i] else "")
            for i in np.flatnonzero(flags)
        }
        review = {int(i): said(int(i)) + f", but inside the whole data (robust z "
                          f"{overall[i]:.1f}): a rare form of the class, or its label"
                  for i in np.flatnonzero(~flags & (in_class >= self.z_flag))}
        return DetectorResult(
            detector=self.name, scores=scores, flags=flags, reasons=reasons, review=review,
            dataset=dataset, examined=examined,
            meta={"z_flag": self.z_flag, "classes_examined": len(examined),
                  "global_passes": passes, "flagged_in_groups": int((grouped > 0).sum())},
        )

    def _global_view(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """Global (distance z, isolation z) against the rows not flagged so far.

        Many far rows mask each other: they take part of the isolation forest's splits
        and widen the median absolute deviation (uniform-noise images at 10% of digits
        sit at isolation z 4.7-5.6 against the data they are in, 9+ at 1%). So the
        rows flagged in a pass leave the reference of the next: the forest is refitted
        and every z re-centred on the rows never flagged, until a pass flags no new
        row (at most ``MAX_PASSES``). A flagged row stays flagged (a forest fitted
        without it cannot isolate it beyond the data's own edge, so its new isolation
        score is no evidence either way). On data where nothing is flagged this is the
        first pass alone.

        Far rows also stretch every tree's split ranges, so the bulk's isolation scores
        compress and the data's own edge rises: six rows 3-9 SD out in all columns of
        breast cancer lift its largest tumours from isolation z 6.1-7.5 to 7.1-8.9, and
        the first pass flags them with the six. So the passes end by judging each
        flagged row alone against the rows never flagged (:meth:`_Statistics.inserted_z`:
        the forest fitted on those, the row scored as if it had joined every tree's
        sample, which scikit-learn's out-of-sample score cannot do): a row that no
        longer reaches the flag level on both statistics, and whose isolation z is not
        ``EDGE_MARGIN`` past the largest of the rows never flagged (it is the data's own
        edge, not beyond it), is released with that z. Breast cancer: the natural rows
        fall to 7.5 or less, 1.3 or less past the never-flagged rows' largest, and are
        released where below 7; the injected ones sit at 10+. The margin keeps the far
        rows of data whose isolation z has little room: fair's injected rows, judged
        alone, sit at 6.7-8.0, 2.8-4.0 past the data's edge (3.9-4.0), where a row
        split off at every root would reach only 8.0-8.8.
        """
        n = len(x)
        if n < _MIN_CLASS_ROWS:
            return np.zeros(n), np.zeros(n), 0, np.zeros(n, dtype=np.int64)
        stats = _Statistics(x, k=self.k, max_reference=self.max_reference, seed=self.seed,
                            linear=True)
        excluded = np.zeros(n, dtype=bool)
        dist, iso = np.zeros(n), np.zeros(n)  # each row's z at the pass that flagged it
        passes = 0
        while passes < MAX_PASSES:
            passes += 1
            z_dist, z_iso = stats.z(~excluded, n_estimators=self.n_estimators,
                                    max_samples=self.max_samples)
            # a row flagged in an earlier pass keeps the z it was flagged with: fitted
            # without it, the forest cannot isolate it beyond the data's own edge
            dist[~excluded], iso[~excluded] = z_dist[~excluded], z_iso[~excluded]
            fresh = (np.minimum(z_dist, z_iso) >= self.z_flag) & ~excluded
            if not fresh.any() or (excluded | fresh).sum() > n // 2:
                break  # nothing new (or no longer a minority of far rows)
            excluded |= fresh
        if excluded.any():  # each flagged row again, alone against the rows never flagged
            rows = np.flatnonzero(excluded)
            z_dist = stats.distance_z(~excluded)[rows]
            z_iso, edge = stats.inserted_z(~excluded, rows, n_estimators=self.n_estimators,
                                           max_samples=self.max_samples,
                                           max_reference=self.max_reference)
            released = ((np.minimum(z_dist, z_iso) < self.z_flag)
                        & (z_iso < edge + EDGE_MARGIN))  # not beyond the data's own edge
            dist[rows[released]], iso[rows[released]] = z_dist[released], z_iso[released]
        grouped = self._far_groups(stats, dist, iso)
        return dist, iso, passes, grouped

    def _far_groups(self, stats: _Statistics, dist: np.ndarray, iso: np.ndarray) -> np.ndarray:
        """Judge each group of rows that are only each other's neighbours alone against the
        rest (module docstring). In place: the rows of a group found far get their z
        judged alone. Returns, for each row so flagged, the size of its group; else 0."""
        n = len(dist)
        grouped = np.zeros(n, dtype=np.int64)
        flagged = np.minimum(dist, iso) >= self.z_flag
        reference = ~flagged
        reach_z = stats.reach_z(reference)
        near = reach_z(stats.lengths) < self.z_flag  # edges within the data
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
        for c in np.flatnonzero((sizes <= n // 2) & (sizes > 1) & (np.arange(count) != bulk)):
            rows = order[bounds[c]:bounds[c + 1]]
            outside = pool[comp[pool] != c]
            z = self._every_row_out(rows, lambda part: reach_z(  # noqa: B023
                stats.outside_reach(part, outside)), self.z_flag)  # noqa: B023
            if z is not None:
                far.append((int(c), rows, z))
        if not far:
            return grouped
        rest = reference.copy()  # each group judged without every far group
        for _, rows, _ in far:
            rest[rows] = False
        alone, edge = stats.alone(rest, n_estimators=self.n_estimators,
                                  max_samples=self.max_samples,
                                  max_reference=self.max_reference)
        for part_of, rows, z in far:
            z_iso = self._every_row_out(rows, alone, max(self.z_flag, edge + EDGE_MARGIN))
            if z_iso is not None:
                dist[rows], iso[rows], grouped[rows] = z, z_iso, sizes[part_of]
        return grouped

    @staticmethod
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
