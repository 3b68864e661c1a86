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

Far rows that are only each other's neighbours are judged as a group, alone against
the rest (:mod:`poisonguard.detect.far_groups`): a tight clump of injected near-copies
far out in every column is each other's neighbours and shares the isolation trees'
splits, so neither statistic sees it row by row.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.ensemble import IsolationForest

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.far_groups import (
    EDGE_MARGIN,
    InsertedIsolation,
    far_groups,
    inserted_isolation,
)
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
        # Rows with k exact copies (zero distances) say nothing about how far apart the
        # data's distinct rows lie: the z are centred on the others (:meth:`centre`).
        self.spread = reach > 0
        # A floor keeps a row next to a clump of exact copies (zero distances) finite.
        floor = max(0.1 * float(np.median(reach[self.spread])) if self.spread.any() else 0.0,
                    1e-9)
        local = (np.maximum(np.median(reach[idx], axis=1), floor) if idx.size
                 else reach + floor)
        self.x, self.seed, self.k, self.neighbours, self.lengths = x, seed, k, idx, dist
        self.reach, self.floor, self.linear = reach, floor, linear
        self.max_reference = max_reference
        self.distances = [np.log(reach + floor), np.log(np.maximum(reach, floor) / local)]
        if linear:
            self.distances.append(reach)

    def centre(self, reference: np.ndarray) -> np.ndarray:
        """The ``reference`` rows whose median and MAD centre every z: those with a
        neighbour at some distance (when at least ``2 k`` of them do).

        Where most rows have ``k`` exact copies (a table of a few discrete columns:
        untouched Ecdat Yogurt without its household id, 67% of 2,412 rows), their zero
        distances and their clumps' equal isolation depths would make the scale zero,
        and every distinct row "far": 114 rows (4.7%) were flagged at distance z up to
        23 (RESULTS.md, session 24). The clumps still train the forest.
        """
        ref = np.asarray(reference, dtype=bool)
        spread = ref & self.spread
        return spread if int(spread.sum()) >= 2 * self.k else ref

    def z(self, reference: np.ndarray | None, *, n_estimators: int,
          max_samples: int) -> tuple[np.ndarray, np.ndarray]:
        ref = (np.ones(len(self.x), dtype=bool) if reference is None
               else np.asarray(reference, dtype=bool))
        forest = self._forest(ref, n_estimators=n_estimators, max_samples=max_samples)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iso = -map_rows(forest.score_samples, self.x, stage="isolation scores")
        return self.distance_z(ref), robust_z(iso, iso[self.centre(ref)])

    def distance_z(self, reference: np.ndarray) -> np.ndarray:
        """The distance z of every row against the ``reference`` rows' median and MAD
        (those :meth:`centre` keeps)."""
        ref = self.centre(reference)
        return np.max([robust_z(d, d[ref]) for d in self.distances], axis=0)

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

    def reach_z(self, reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Robust z of mean neighbour distances (any shape) against the ``reference``
        rows' own, as in :meth:`distance_z` without the density ratio (a row judged
        alone has no neighbours of its own to compare with): the larger of the log and
        (global view) plain distance's. The reference's median and MAD are taken once."""
        own = self.reach[self.centre(reference)]
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
        score = InsertedIsolation(forest, self.x[reference])  # the trees read once
        own = score(self.x[pool])
        return (lambda rows: robust_z(score(self.x[rows]), own),
                float(robust_z(own, own).max()))

    def _judge(self, reference: np.ndarray, *, n_estimators: int, max_samples: int,
               max_reference: int) -> tuple[IsolationForest, np.ndarray]:
        """The forest fitted on the ``reference`` rows, and at most ``max_reference`` of
        those :meth:`centre` keeps (a seeded sample) to centre the z."""
        forest = self._forest(reference, n_estimators=n_estimators, max_samples=max_samples)
        pool = np.flatnonzero(self.centre(reference))
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
        grouped = far_groups(stats, dist, iso, z_flag=self.z_flag,
                             n_estimators=self.n_estimators, max_samples=self.max_samples,
                             max_reference=self.max_reference)
        return dist, iso, passes, grouped
