"""Natural class overlap: what label disagreement clean data of this difficulty shows.

Shared by the label-based detectors (``label``, ``knn``, ``duplicate``) and the scan's
reliability section. A label-based flag is a claim that a row's label is too
surprising to be natural confusion between classes. The null model of natural
confusion comes from the data itself:

- where the out-of-fold model is unsure (its top probability below ``certain``), a
  clean label is drawn from the model's own probabilities: classes that overlap
  there trade labels as often as the model says they do;
- where the model is sure, a clean label is the model's class. Natural confusion
  lives on class boundaries; a label that contradicts a sure region is not explained
  by overlap. (A model trained on poisoned labels hedges a little everywhere near
  the poison, so a null drawn from its probabilities alone would explain the poison
  away: measured on penguins with 5% targeted flips, recall 0.2 instead of 0.9.)

Labels drawn from that null go through the detector's own statistic; the threshold
is the ``1 - max_fpr`` quantile of the null statistic over every row and draw
(:func:`poisonguard.detect.thresholds.tail_threshold`), so that on clean data of this
difficulty about ``max_fpr`` of the rows would be flagged, and the scan reports the
expected number (:func:`null_threshold`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import gammaln
from scipy.stats import binom, poisson

from poisonguard.detect.flip_shape import SHAPE_ALPHA_SHARE, RisingShare, rising_share
from poisonguard.detect.thresholds import robust_z, tail_threshold
from poisonguard.memo import remember

__all__ = ["BACKED_SHARE", "CALIBRATION_SLACK", "CONFIDENCE_BANDS", "DEFAULT_CERTAIN",
           "band_edges",
           "DEFAULT_MAX_FPR", "DEFAULT_PAIR_ALPHA", "LONE_ALPHA_SHARE", "BandExcess",
           "LoneExcess", "MIN_PATTERN", "NullThreshold", "PAIR_LEVELS", "PairExcess",
           "SUPPORT_K", "SUPPORT_Z",
           "band_excess", "in_support", "lone_excess", "natural_label_proba",
           "neighbour_support", "null_labels", "null_threshold", "pair_excess",
           "tarone_family", "uninformed"]

#: The clean false-positive rate a label-based flag is held to unless told otherwise.
DEFAULT_MAX_FPR = 0.005
#: Out-of-fold confidence at which the model is taken as sure (no natural confusion).
DEFAULT_CERTAIN = 0.8
#: Label draws from the null; N x draws statistics set the threshold.
NULL_DRAWS = 20


def natural_label_proba(proba: np.ndarray, *, certain: float = DEFAULT_CERTAIN) -> np.ndarray:
    """Per-row distribution of a clean label under natural class overlap.

    The model's probabilities where its top class is below ``certain``; the top class
    alone where it is at least ``certain``.

    Examples
    --------
    >>> import numpy as np
    >>> natural_label_proba(np.array([[0.9, 0.1], [0.6, 0.4]])).tolist()
    [[1.0, 0.0], [0.6, 0.4]]
    """
    p = np.asarray(proba, dtype=np.float64)
    top = p.max(axis=1, keepdims=True)
    sure = np.zeros_like(p)
    sure[np.arange(len(p)), p.argmax(axis=1)] = 1.0
    out = np.where(top >= certain, sure, p)
    return np.asarray(out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12))


def null_labels(proba: np.ndarray, *, draws: int = NULL_DRAWS, seed: int = 0,
                certain: float = DEFAULT_CERTAIN) -> np.ndarray:
    """``draws`` x N clean labels drawn from :func:`natural_label_proba`."""
    out = np.empty((draws, len(proba)), dtype=np.int64)
    for d, labels in enumerate(_null_draws(proba, draws=draws, seed=seed, certain=certain)):
        out[d] = labels
    return out


def _null_draws(proba: np.ndarray, *, draws: int, seed: int,
                certain: float) -> Iterator[np.ndarray]:
    """The rows of :func:`null_labels`, one draw at a time (N labels each).

    One N x 1 block of uniforms per draw from one generator: the same numbers, in the
    same order, as a single draws x N x 1 block (no draws x N x C comparison exists).
    """
    p = natural_label_proba(proba, certain=certain)
    cumulative = np.cumsum(p, axis=1)
    cumulative[:, -1] = 1.0
    del p
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        u = rng.random((len(cumulative), 1))
        yield np.asarray((u >= cumulative).sum(axis=1), dtype=np.int64)


@dataclass(frozen=True)
class NullThreshold:
    """A statistic's flag threshold under natural overlap, and what it costs on clean data.

    ``expected_flags`` is the mean number of rows the rule (statistic at or above
    ``threshold`` and positive) flags on one null draw: the rows it would flag on
    clean data of this difficulty.
    """

    threshold: float
    expected_flags: float
    max_fpr: float


def null_threshold(statistic: Callable[[np.ndarray], np.ndarray], proba: np.ndarray, *,
                   max_fpr: float = DEFAULT_MAX_FPR, seed: int = 0,
                   certain: float = DEFAULT_CERTAIN, draws: int = NULL_DRAWS) -> NullThreshold:
    """The ``1 - max_fpr`` null quantile of ``statistic(labels)`` (positive = suspicious).

    ``statistic`` maps a label vector to one value per row; it is evaluated on
    ``draws`` label vectors from :func:`null_labels`. The threshold is never below
    the smallest positive value, so only rows whose statistic is positive can pass.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.tile([[0.95, 0.05]], (200, 1))
    >>> t = null_threshold(lambda y: proba[np.arange(200), 1 - y] - proba[np.arange(200), y],
    ...                    proba)
    >>> t.expected_flags
    0.0
    """
    # one draw at a time into one draws x N array; the quantile partitions it in place
    # (the same order statistics as on a copy) and the count below does not need order
    stats = np.empty((draws, len(proba)), dtype=np.float64)
    for d, labels in enumerate(_null_draws(proba, draws=draws, seed=seed, certain=certain)):
        stats[d] = np.asarray(statistic(labels), dtype=np.float64)
    threshold = max(tail_threshold(stats.ravel(), max_fpr, overwrite=True),
                    float(np.nextafter(0.0, 1.0)))
    expected = float((stats >= threshold).sum()) / len(stats)
    return NullThreshold(threshold=threshold, expected_flags=expected, max_fpr=max_fpr)



#: Family-wise level of the per-pair tests (Bonferroni over the pairs tested).
DEFAULT_PAIR_ALPHA = 0.05
#: One-sided level at which the model must beat always naming the largest class
#: (:func:`uninformed`): Zelig turnout's 85.5% against 85.4% (p 0.47) is not; the
#: real-table grid's weakest model, vega cars under 5% flips, 69.1% against 62.6% (p
#: 0.003), is.
UNINFORMED_ALPHA = 0.05
#: Classes a label must pass both licence rules with to be a flip target
#: (:meth:`PairExcess.target_pairs`).
MIN_TARGET_PAIRS = 2
#: Sure contradictions a pair needs before its lack of a boundary licenses them (the
#: no-boundary rule only; the pair tests take Tarone's family, :func:`tarone_family`).
MIN_PATTERN = 2


#: Lower edges of the confidence bands tested for a floor of sure contradictions
#: (with ``certain`` itself): the model's error estimate ``1 - top`` falls 2x, 7x and
#: 20x below its value at 0.8.
CONFIDENCE_BANDS = (0.9, 0.97, 0.99)
#: How many times more errors than its own estimate (the sum of ``1 - top``) a model may
#: make among its sure rows on clean data. Measured on untouched data at the bands
#: above, where 10 or more errors were seen: up to 4.1 (statsmodels fair, 17 errors
#: against 4.1 at top >= 0.9), 2-3 on anes96, seattle-weather and breast cancer, below 1
#: on real MNIST. A band is licensed only when its errors exceed this many times the
#: estimate beyond chance.
CALIBRATION_SLACK = 4.0
#: A row is backed by its neighbours when at least this share of them carry the model's
#: class (the second population tested by :func:`band_excess`).
BACKED_SHARE = 0.9
#: The lone-label tests (:func:`lone_excess`) run at this share of the pair level. Their
#: null is exact only where natural errors cluster; where a clean data set's label noise
#: is independent from row to row, every error also makes its neighbours' masses
#: "carried" and the test runs a little liberal: measured on labels drawn from a
#: calibrated model (two classes with a smooth boundary, 1,000 rows, 450 draws), 5.3-7.3%
#: of the draws licensed a test at 0.05, 1.7% at 0.01 (ten Gaussian classes: 0.7% and
#: 0.3%).
LONE_ALPHA_SHARE = 0.2


@dataclass(frozen=True)
class BandExcess:
    """One band test: sure rows at ``top >= lower`` (of ``population``).

    ``contradicted``: their labels the model contradicts; ``expected``: the model's own
    estimate of its errors there (sum of ``1 - top``); ``p_value``: Poisson upper tail
    of ``contradicted`` at :data:`CALIBRATION_SLACK` times ``expected``.
    """

    population: str
    lower: float
    contradicted: int
    expected: float
    p_value: float
    licensed: bool

    def describe(self) -> str:
        """One line, e.g. ``"top >= 0.97: 100 contradicted, model expects 7.2"``."""
        return (f"{_band_words(self.population, self.lower)}: {self.contradicted} "
                f"contradicted, model expects {self.expected:.1f}")


def _band_words(population: str, lower: float) -> str:
    """The rows of one band test in words, e.g. ``"rows at top >= 0.9"``."""
    rows = "rows backed by their neighbours" if population == "backed" else "rows"
    return f"{rows} at top >= {lower:g}"


def band_edges(certain: float) -> tuple[float, ...]:
    """The lower edges of the confidence bands tested: ``certain`` and the
    :data:`CONFIDENCE_BANDS` above it.

    Examples
    --------
    >>> band_edges(0.8), band_edges(0.95)
    ((0.8, 0.9, 0.97, 0.99), (0.95, 0.97, 0.99))
    """
    return (certain, *(b for b in CONFIDENCE_BANDS if b > certain))


def _bands(top: np.ndarray, certain: float, populations: list[tuple[str, np.ndarray]]
           ) -> Iterator[tuple[str, float, np.ndarray]]:
    """``(population, lower, rows at top >= lower)`` for every band of every population
    (:func:`band_edges`)."""
    for population, members in populations:
        for lower in band_edges(certain):
            yield population, lower, members & (top >= lower)


def band_excess(labels: np.ndarray, proba: np.ndarray, *, certain: float = DEFAULT_CERTAIN,
                alpha: float = DEFAULT_PAIR_ALPHA,
                backed: np.ndarray | None = None) -> tuple[BandExcess, ...]:
    """Test every confidence band for more contradicted labels than the model's calibration allows.

    A model that is 0.99 sure of a row expects to be wrong on about one such row in a
    hundred; natural overlap makes it wrong somewhat more often (overconfidence), but
    not :data:`CALIBRATION_SLACK` times more. Injected flips are spread through feature
    space, over every class pair, and leave a floor of contradicted labels where the
    model is surest: a band ``top >= t`` (``t`` = ``certain`` and the
    :data:`CONFIDENCE_BANDS` above it) is licensed when its contradicted rows exceed
    ``CALIBRATION_SLACK`` times the model's own estimate (Poisson upper tail at
    ``alpha``, Bonferroni over every band and population tested). The test pools every
    class pair, so flips spread over many pairs (too few per pair for
    :func:`pair_excess`) still add up. ``backed`` (optional): rows whose neighbours
    back the model's class; they are tested as a second population, whose natural
    errors are rarer (natural confusion mixes the neighbours' labels too).

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.tile([[0.995, 0.005]], (1000, 1))
    >>> labels = np.zeros(1000, dtype=int)
    >>> labels[:20] = 1  # 20 contradicted rows where the model expects 5
    >>> [b.licensed for b in band_excess(labels, proba)]
    [False, False, False, False]
    >>> labels[:40] = 1  # 40: more than 4 x 5 beyond chance
    >>> [b.licensed for b in band_excess(labels, proba)]
    [True, True, True, True]
    """
    p = np.asarray(proba, dtype=np.float64)
    top = p.max(axis=1)
    wrong = p.argmax(axis=1) != np.asarray(labels)
    populations = [("all", np.ones(len(p), dtype=bool))]
    if backed is not None:
        populations.append(("backed", np.asarray(backed, dtype=bool)))
    tests = []
    for population, lower, band in _bands(top, certain, populations):
        seen = int(wrong[band].sum())
        expected = float((1.0 - top[band]).sum())
        p_value = float(poisson.sf(seen - 1, CALIBRATION_SLACK * expected)) if seen else 1.0
        tests.append((population, lower, seen, expected, p_value))
    level = alpha / len(tests)
    return tuple(BandExcess(population=t[0], lower=t[1], contradicted=t[2], expected=t[3],
                            p_value=t[4], licensed=t[4] <= level) for t in tests)


@dataclass(frozen=True)
class LoneExcess:
    """One test of lone labels: sure rows at ``top >= lower`` (of ``population``).

    A contradicted label is *lone* when none of the row's neighbours carries it,
    *carried* when some do. ``share``: the part of the model's own error estimate
    (its probabilities of the classes other than its top one, summed over the rows)
    that falls on classes no neighbour of the row carries; ``p_value``: binomial
    upper tail of ``lone`` among ``lone + carried`` contradictions at ``share``.
    """

    population: str
    lower: float
    lone: int
    carried: int
    share: float
    p_value: float
    licensed: bool

    def describe(self) -> str:
        """One line, e.g. ``"rows at top >= 0.9: 15 of 17 contradicted labels ..."``."""
        return (f"{_band_words(self.population, self.lower)}: {self.lone} of "
                f"{self.lone + self.carried} contradicted labels carried by no neighbour, "
                f"model's share {self.share:.2f}")


def lone_excess(labels: np.ndarray, proba: np.ndarray, votes: np.ndarray, *,
                certain: float = DEFAULT_CERTAIN,
                alpha: float = DEFAULT_PAIR_ALPHA * LONE_ALPHA_SHARE) -> tuple[LoneExcess, ...]:
    """Test every confidence band for more lone contradicted labels than natural errors make.

    Natural confusion is shared by neighbours: a clean row whose label a sure model
    contradicts has neighbours that carry its label too (class overlap, a sub-style
    of the class), and where the model errs it spreads its probability over the
    classes around the row. A flipped label is drawn without regard to the row's
    place: among sure rows, almost no neighbour carries it. The null is the model's
    own: however over-confident it is (a common factor on its error estimate), its
    contradicted labels fall on classes no neighbour carries (``votes[r, j] == 0``;
    ``votes``: the neighbours' label shares, N x classes) as often as its
    probabilities put there. Under that null, given the band's contradicted rows,
    the lone ones are binomial at the model's share (Poisson counts conditioned on
    their sum), so the test needs no calibration slack (:data:`CALIBRATION_SLACK`).
    Bands as in :func:`band_excess`, in the population of every row and of the rows
    whose neighbours back the model's class (:data:`BACKED_SHARE` of ``votes``: one
    population for every detector that reads the same neighbours); the family is Tarone's
    (:func:`tarone_family`) over the tests' floors (``share ** n``, from the
    margins only) at ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.tile([[0.96, 0.02, 0.02]], (600, 1))
    >>> votes = np.tile([[0.9, 0.1, 0.0]], (600, 1))  # neighbours carry 1, never 2
    >>> labels = np.zeros(600, dtype=int)
    >>> labels[:6], labels[6:12] = 1, 2  # half the errors lone: the model's share
    >>> tests = lone_excess(labels, proba, votes)  # every row backed (90% of neighbours)
    >>> [(t.population, t.lower, t.licensed) for t in tests][:4]
    [('all', 0.8, False), ('all', 0.9, False), ('all', 0.97, False), ('all', 0.99, False)]
    >>> labels[6:30] = 2  # 24 lone against 6 carried
    >>> [t.licensed for t in lone_excess(labels, proba, votes)]  # no row at top >= 0.97
    [True, True, False, False, True, True, False, False]
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(labels)
    rows = np.arange(len(p))
    top = p.max(axis=1)
    pred = p.argmax(axis=1)
    carried_class = np.asarray(votes) > 0
    carried_class[rows, pred] = False
    lone_class = np.asarray(votes) <= 0
    lone_class[rows, pred] = False
    lone_mass = np.where(lone_class, p, 0.0).sum(axis=1)
    carried_mass = np.where(carried_class, p, 0.0).sum(axis=1)
    wrong = pred != y
    lone = wrong & lone_class[rows, y]
    populations = [("all", np.ones(len(p), dtype=bool)),
                   ("backed", np.asarray(votes)[rows, pred] >= BACKED_SHARE)]
    tests = []
    for population, lower, band in _bands(top, certain, populations):
        n_lone, n_wrong = int(lone[band].sum()), int(wrong[band].sum())
        mass = float(lone_mass[band].sum())
        share = mass / max(mass + float(carried_mass[band].sum()), 1e-300)
        p_value = float(binom.sf(n_lone - 1, n_wrong, share)) if n_lone else 1.0
        tests.append((population, lower, n_lone, n_wrong - n_lone, share, p_value,
                      share ** n_wrong))
    level = alpha / tarone_family(np.array([t[-1] for t in tests]), alpha)
    return tuple(LoneExcess(population=t[0], lower=t[1], lone=t[2], carried=t[3], share=t[4],
                            p_value=t[5], licensed=t[6] <= level and t[5] <= level)
                 for t in tests)


def tarone_family(p_floor: np.ndarray, alpha: float) -> int:
    """Tarone's (1990) Bonferroni family: the smallest ``m`` with at most ``m`` tests
    whose smallest attainable p-value (``p_floor``) is at most ``alpha / m``.

    A test whose margin cannot reach ``alpha / m`` whatever its outcome can never
    reject at that level, so it need not be counted: testing the others at
    ``alpha / m`` holds the family-wise level at ``alpha``. The family depends on the
    margins only, never on the outcomes tested.

    Examples
    --------
    >>> import numpy as np
    >>> tarone_family(np.array([1e-6, 1e-4, 0.3, 0.5, 0.9]), 0.05)
    2
    """
    floors = np.sort(np.asarray(p_floor, dtype=np.float64).ravel())
    lo, hi = 1, max(1, len(floors))
    while lo < hi:  # K(m) = #{floor <= alpha/m} falls as m grows: the first K(m) <= m
        mid = (lo + hi) // 2
        if int(np.searchsorted(floors, alpha / mid, side="right")) <= mid:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class PairExcess:
    """Which ordered class pairs show injected flips rather than natural confusion.

    ``sure[j, i]`` / ``unsure[j, i]``: rows labelled ``j`` that the out-of-fold model
    puts in class ``i`` with top probability at least / below ``certain``.
    ``natural_share[i]``: the share of class ``i``'s natural disagreement expected on
    its sure rows, from the model's own error rates (``1 - top``) summed over its
    sure rows and over all its rows. ``licensed[j, i]``: the pair's sure
    contradictions are not natural overlap (see :func:`pair_excess`).
    ``bands``: the confidence-band tests over every pair (:func:`band_excess`);
    ``confident[r]``: row ``r`` lies in a licensed band (of its population);
    ``backed[r]``: row ``r``'s neighbours back the model's class (a label that has a
    licensed pair is a flip target: see :meth:`unexplained`). ``tested[j, i]``: the
    pair is in the Bonferroni family of the pair tests (Tarone's, from the margins).
    ``lone``: the lone-label tests (:func:`lone_excess`); ``lone_rows[r]``: row ``r``'s
    label, contradicted by a sure model, is carried by none of its neighbours, in a
    licensed lone-label test (``confident`` holds them too). ``p_calibration`` /
    ``p_relative``: the pair tests' p-values against the model's calibration and
    against the other pairs (``p_values``: the smaller; :func:`pair_excess`).
    ``refused[j, i]``: the pair passed a licence test but its share of the rows the
    model puts in ``i`` rises with confidence, unlike a flip (``shape``:
    :func:`poisonguard.detect.flip_shape.rising_share`); it is not licensed.
    ``both_rules[j, i]``: the pair passes both licence rules, an excess of sure
    disagreement (the pair tests) and no boundary (more sure contradictions than
    unsure disagreements between the two classes, both ways); ``strong[j, i]``: it
    also has more than twice as many sure contradictions as boundary.
    """

    sure: np.ndarray
    unsure: np.ndarray
    natural_share: np.ndarray
    p_values: np.ndarray
    licensed: np.ndarray
    strong: np.ndarray
    alpha: float
    bands: tuple[BandExcess, ...] = ()
    confident: np.ndarray | None = None
    backed: np.ndarray | None = None
    tested: np.ndarray | None = None
    lone: tuple[LoneExcess, ...] = ()
    lone_rows: np.ndarray | None = None
    p_calibration: np.ndarray | None = None
    p_relative: np.ndarray | None = None
    refused: np.ndarray | None = None
    shape: RisingShare | None = None
    both_rules: np.ndarray | None = None

    def in_both_rules(self, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Rows whose pair (label, ``classes``: one class per row) passes both licence
        rules (``both_rules``; none when it was not computed)."""
        if self.both_rules is None:
            return np.zeros(len(labels), dtype=bool)
        return np.asarray(self.both_rules[np.asarray(labels), np.asarray(classes)], dtype=bool)

    def target_pairs(self) -> np.ndarray:
        """k x k: the pairs that pass both licence rules, of the labels that pass them
        with :data:`MIN_TARGET_PAIRS` or more classes (flip targets).

        Examples
        --------
        >>> import numpy as np
        >>> both = np.zeros((3, 3), dtype=bool)
        >>> both[0, 1] = both[0, 2] = both[2, 1] = True  # label 0 with two classes
        >>> z = np.zeros((3, 3))
        >>> excess = PairExcess(sure=z, unsure=z, natural_share=np.ones(3), p_values=z + 1,
        ...                     licensed=both, strong=z > 0, alpha=0.05, both_rules=both)
        >>> excess.target_pairs().astype(int).tolist()
        [[0, 1, 1], [0, 0, 0], [0, 0, 0]]
        """
        if self.both_rules is None:
            return np.zeros_like(self.licensed)
        many = self.both_rules.sum(axis=1) >= MIN_TARGET_PAIRS
        return np.asarray(self.both_rules & many[:, None])

    def unexplained(self, labels: np.ndarray, proba: np.ndarray,
                    certain: float = DEFAULT_CERTAIN, *, targets: bool = False) -> np.ndarray:
        """Rows whose label a sure model contradicts inside a licensed pair or band.

        ``targets``: also the rows backed by their neighbours whose label has a
        licensed pair (a flip target), in any pair.
        """
        p = np.asarray(proba, dtype=np.float64)
        pred = p.argmax(axis=1)
        sure = (p.max(axis=1) >= certain) & (pred != labels)
        licensed = self.licensed[labels, pred]
        if self.confident is not None:
            licensed = licensed | self.confident
        if targets and self.backed is not None:
            licensed = licensed | (self.backed & np.asarray(self.licensed.any(axis=1))[labels])
        return np.asarray(sure & licensed)

    def licensed_names(self, classes: tuple[str, ...]) -> list[str]:
        """The licensed pairs as ``"label -> model class"``."""
        return [f"{classes[j]} -> {classes[i]}" for j, i in np.argwhere(self.licensed)]

    def refused_names(self, classes: tuple[str, ...]) -> list[str]:
        """The refused pairs, each with its reason (:meth:`RisingShare.describe`)."""
        if self.refused is None or self.shape is None:
            return []
        return [self.shape.describe(int(j), int(i), classes)
                for j, i in np.argwhere(self.refused)]

    def licensed_bands(self) -> list[str]:
        """The licensed bands, e.g. ``["rows at top >= 0.97: 100 contradicted, ..."]``
        (and the licensed lone-label tests)."""
        return ([b.describe() for b in self.bands if b.licensed]
                + [t.describe() for t in self.lone if t.licensed])


def uninformed(labels: np.ndarray, proba: np.ndarray) -> bool:
    """Whether the model is no more accurate than always naming the largest class: its
    out-of-fold hits are not significantly more than that rule's (one-sided binomial
    tail at the largest class's share, level :data:`UNINFORMED_ALPHA`).

    Such a model has learned nothing about the classes that the class sizes do not
    say, and an MLP fitted to them is sure of noise: on untouched Ecdat OFP (4,406
    people, self-rated health; 77.6% accurate where "other" is 79.6% of the rows) it
    contradicted 24 labels at top >= 0.99 where its own probabilities expect 0.7, and
    the licences it gave flagged 347-362 rows (8%); KMsurv std (88.4% against 90.0%)
    43-50 rows (RESULTS.md, session 23). Its sure contradictions are no evidence of
    poisoning: :func:`pair_excess` licenses nothing on it. A model a hair above the
    rule is no better: Zelig turnout (2,000 voters, label ``race``: 85.5% where
    "white" is 85.4%, p 0.47) licensed 147-150 flags, Ecdat Kakadu (51.1% against
    50.2%, p 0.25) 107-131 (RESULTS.md, session 26).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([0] * 80 + [1] * 20)
    >>> some = np.array([[.9, .1]] * 80 + [[.2, .8]] * 2 + [[.9, .1]] * 18)  # 82% vs 80%
    >>> uninformed(labels, some)
    True
    >>> most = np.array([[.9, .1]] * 80 + [[.2, .8]] * 15 + [[.9, .1]] * 5)  # 95%
    >>> uninformed(labels, most)
    False
    """
    y = np.asarray(labels)
    if not len(y):
        return True
    hits = int(np.sum(np.asarray(proba).argmax(axis=1) == y))
    largest = float(np.bincount(y).max()) / len(y)
    return float(binom.sf(hits - 1, len(y), largest)) > UNINFORMED_ALPHA


def pair_excess(labels: np.ndarray, proba: np.ndarray, *, certain: float = DEFAULT_CERTAIN,
                alpha: float = DEFAULT_PAIR_ALPHA,
                backed: np.ndarray | None = None,
                support: np.ndarray | None = None,
                votes: np.ndarray | None = None) -> PairExcess:
    """License the class pairs whose sure contradictions natural overlap cannot explain.

    Natural confusion lives on class boundaries and thins out where the model is
    sure; injected flips are spread through feature space and leave a floor of
    disagreement among the sure rows. An ordered pair (label ``j``, model class
    ``i``) is licensed when either

    - it has no boundary to explain them: at least ``MIN_PATTERN`` sure
      contradictions and more of them than unsure disagreements between the two
      classes in either direction (a rule, not a test: it needs no family, and its
      count floor is what keeps one natural mislabel from licensing a pair); or
    - more of its disagreement falls on sure rows than natural confusion allows: its
      count at or above the split ``certain`` (and again ``(1 + certain) / 2``) among
      its sure + unsure disagreements, against two nulls, the model's own error rates
      (one-sided binomial at ``natural_share[i]``, :func:`_calibration_tests`) and
      every other pair at the same confidence levels (the exact conditional law of
      :func:`_level_tests`, no calibration assumed); the smaller p-value, Bonferroni
      over both splits and Tarone's family of pairs (:func:`tarone_family`).

    The two nulls miss different attacks: uniform random flips raise every pair alike
    and cancel against the other pairs, while a targeted flip among classes of unequal
    difficulty, where the model's ``1 - top`` overstates its natural errors on sure
    rows (cars), stands out only against them. Both are tested at the full level
    (session 11's halving lost cars seed 1). At one split both are upper tails of one
    count, but the relative null's critical count moves with the level totals, so the
    union's size is bounded by the sum of the two (twice the level), not by the level;
    measured on clean synthetic draws, some pair is licensed in 2-3% of them at
    ``pair_alpha = 0.05`` (docs/reliability.md; RESULTS.md, session 13).
    ``p_calibration`` / ``p_relative`` keep each null's p-value, ``p_values`` the
    smaller.

    Tarone's family holds the pairs whose margin (sure + unsure disagreements) could
    reach the level whatever its split: the smallest p-value a margin of ``n``
    allows (``natural_share ** n``, all ``n`` sure, or the relative law's weight of
    its largest count, whichever is smaller). It depends on the margins only, so the
    family-wise level is ``alpha`` (a family chosen by the observed sure
    counts, as in session 8, was not: untouched seattle-weather licensed natural
    pairs; RESULTS.md, session 9). ``tested`` marks the family.

    Independently of the pairs, a confidence band that holds more contradicted labels
    than the model's calibration allows licenses every sure contradiction in it
    (:func:`band_excess`, at ``alpha`` on its own; ``backed``: rows whose neighbours
    back the model's class, tested as a second population). ``votes`` (optional, the
    neighbours' label shares, N x classes): a band that holds more contradicted labels
    no neighbour carries than the model's own probabilities put there licenses those
    rows (:func:`lone_excess`, on its own at ``alpha`` times :data:`LONE_ALPHA_SHARE`).
    ``support`` (optional, :func:`in_support`): only these rows are counted; the others
    are no evidence.

    Nothing is licensed when the model is :func:`uninformed` (no more accurate than
    always naming the largest class): its sure contradictions are overconfidence, not
    evidence.

    A pair that passes either rule is refused when its share of the rows the model puts
    in class ``i`` rises with confidence beyond chance (``refused``,
    :func:`poisonguard.detect.flip_shape.rising_share`, at ``alpha`` times
    :data:`~poisonguard.detect.flip_shape.SHAPE_ALPHA_SHARE`): a flip
    relabels a uniform draw of class ``i``'s rows, so its share of the sure rows is at
    most its share of the unsure ones. (Untouched statsmodels fair: the model is surer
    of class 4 where label 6 is common, and pair 6 -> 4 licensed 60-70 clean flags.)

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.vstack([np.tile([[0.99, 0.01]], (200, 1)), np.tile([[0.6, 0.4]], (50, 1)),
    ...                    np.tile([[0.01, 0.99]], (100, 1))])
    >>> labels = np.r_[np.zeros(230, dtype=int), np.ones(120, dtype=int)]
    >>> bool(pair_excess(labels, proba).licensed.any())  # disagreement on the boundary only
    False
    >>> labels[:30] = 1  # 30 sure rows contradicted: a floor among the sure rows
    >>> pair_excess(labels, proba).licensed.tolist()
    [[False, False], [True, False]]
    """
    if support is not None:  # rows off the data's support are no evidence
        inside = np.asarray(support, dtype=bool)
        part = pair_excess(np.asarray(labels)[inside], np.asarray(proba)[inside],
                           certain=certain, alpha=alpha,
                           backed=None if backed is None else np.asarray(backed)[inside],
                           votes=None if votes is None else np.asarray(votes)[inside])
        confident = np.zeros(len(inside), dtype=bool)
        if part.confident is not None:
            confident[inside] = part.confident
        lone_rows = None
        if part.lone_rows is not None:
            lone_rows = np.zeros(len(inside), dtype=bool)
            lone_rows[inside] = part.lone_rows
        return dataclasses.replace(part, confident=confident, backed=None if backed is None
                                   else np.asarray(backed, dtype=bool), lone_rows=lone_rows)
    y = np.asarray(labels)
    p = np.asarray(proba, dtype=np.float64)
    k = p.shape[1]
    top = p.max(axis=1)
    pred = p.argmax(axis=1)
    is_sure = top >= certain
    sure = np.zeros((k, k))
    unsure = np.zeros((k, k))
    np.add.at(sure, (y[is_sure], pred[is_sure]), 1.0)
    np.add.at(unsure, (y[~is_sure], pred[~is_sure]), 1.0)
    np.fill_diagonal(sure, 0.0)
    np.fill_diagonal(unsure, 0.0)
    # The split is tested at ``certain`` and again at ``(1 + certain) / 2``, by both
    # nulls: per pair, each split's p-value and the smallest p-value its margin allows.
    margin = sure + unsure
    splits = (certain, (1.0 + certain) / 2)
    p_calibration, floor_calibration, natural = _calibration_tests(y, pred, top, margin, splits)
    p_relative, floor_relative = _level_tests(y, pred, top, margin, splits)
    # The union of the two nulls: the smaller p-value at the full level (its size is
    # bounded by twice the level; measured 2-3% at 0.05 on clean draws, docstring).
    p_values = np.minimum(p_calibration, p_relative)
    p_floor = np.minimum(floor_calibration, floor_relative)
    level = alpha / len(splits) / tarone_family(p_floor, alpha / len(splits))
    tested = p_floor <= level
    boundary = unsure + unsure.T
    # a model no better than the largest class licenses nothing (docstring)
    informed = not uninformed(y, p)
    no_boundary = (sure >= MIN_PATTERN) & (sure > boundary) & informed
    excess = tested & (p_values <= level) & informed
    shape = rising_share(y, p, certain=certain, alpha=alpha * SHAPE_ALPHA_SHARE)
    refused = (no_boundary | excess) & shape.rising
    excess &= ~shape.rising
    band_tests = tuple(t if informed else dataclasses.replace(t, licensed=False)
                       for t in band_excess(y, p, certain=certain, alpha=alpha, backed=backed))
    confident = np.zeros(len(y), dtype=bool)
    for test in (t for t in band_tests if t.licensed):
        rows = top >= test.lower
        confident |= rows if test.population == "all" else rows & np.asarray(backed, bool)
    lone_tests: tuple[LoneExcess, ...] = ()
    lone_rows = None
    if votes is not None:
        lone_tests = tuple(t if informed else dataclasses.replace(t, licensed=False)
                           for t in lone_excess(y, p, votes, certain=certain,
                                                alpha=alpha * LONE_ALPHA_SHARE))
        lone = (np.asarray(votes)[np.arange(len(y)), y] <= 0) & (pred != y)
        lone_backed = lone & (np.asarray(votes)[np.arange(len(y)), pred] >= BACKED_SHARE)
        lone_rows = np.zeros(len(y), dtype=bool)
        for lone_test in (t for t in lone_tests if t.licensed):
            rows = lone if lone_test.population == "all" else lone_backed
            lone_rows |= rows & (top >= lone_test.lower)
        confident |= lone_rows
    return PairExcess(sure=sure, unsure=unsure, natural_share=natural, p_values=p_values,
                      p_calibration=p_calibration, p_relative=p_relative,
                      licensed=(no_boundary | excess) & ~refused,
                      strong=excess & (sure > 2 * boundary), alpha=alpha, bands=band_tests,
                      confident=confident,
                      backed=None if backed is None else np.asarray(backed, dtype=bool),
                      tested=tested, lone=lone_tests, lone_rows=lone_rows, refused=refused,
                      shape=shape, both_rules=excess & no_boundary)


def _calibration_tests(y: np.ndarray, pred: np.ndarray, top: np.ndarray, margin: np.ndarray,
                       splits: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ordered pair, against the model's own calibration: the p-value of its sure
    disagreements (smallest over ``splits``), the smallest p-value its margin allows,
    and each class's natural share at the first split.

    The null: class ``i``'s disagreement falls on its rows at or above a split in the
    share its model's error estimate ``1 - top`` puts there (one-sided binomial of the
    pair's count at or above the split among its ``margin`` disagreements).
    """
    k = margin.shape[0]
    p_values = np.ones((k, k))
    p_floor = np.ones((k, k))
    natural = np.ones(k)
    error = 1.0 - top
    all_error = np.bincount(pred, weights=error, minlength=k)
    for split in splits:
        above = top >= split
        high = np.zeros((k, k))
        np.add.at(high, (y[above], pred[above]), 1.0)
        np.fill_diagonal(high, 0.0)
        sure_error = np.bincount(pred[above], weights=error[above], minlength=k)
        share = np.where(all_error > 0, sure_error / np.maximum(all_error, 1e-12), 1.0)
        if split == splits[0]:
            natural = share
        p_floor = np.minimum(p_floor, share[None, :] ** margin)
        for j, i in np.argwhere(high > 0):
            p_values[j, i] = min(p_values[j, i],
                                 float(binom.sf(high[j, i] - 1, margin[j, i], share[i])))
    np.fill_diagonal(p_floor, 1.0)
    return p_values, p_floor, natural


#: Lower edges of the confidence levels the relative pair test compares at (the splits
#: are edges too): within a level the model's error estimate ``1 - top`` varies little.
PAIR_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)
#: Polynomials longer than this are multiplied by FFT (relative error about 1e-16 of
#: the largest term: only tail probabilities far below any test's level blur).
_FFT_FROM = 512


def _times(a: np.ndarray, b: np.ndarray, degree: int) -> np.ndarray:
    """``a * b`` (coefficient arrays) up to ``degree``, scaled to a largest term of 1."""
    c = (fftconvolve(a, b) if min(len(a), len(b)) > _FFT_FROM
         else np.convolve(a, b))[:degree + 1]
    c = np.clip(c, 0.0, None)
    return np.asarray(c / c.max())


def _level_tests(y: np.ndarray, pred: np.ndarray, top: np.ndarray, margin: np.ndarray,
                 splits: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per ordered pair, against every other pair at the same confidence: the p-value
    of its sure disagreements (smallest over ``splits``) and the smallest p-value its
    margin allows.

    The null (RESULTS.md, session 10): at every confidence level ``l``
    (:data:`PAIR_LEVELS`), the pair's disagreement rate on the rows the model puts in
    its class is a fixed multiple of the disagreement rate of all the level's rows,
    whatever that rate is. Given ``t_l`` disagreements at level ``l``, the pair holds
    ``h_l`` of them with probability proportional to ``C(t_l, h_l) (e_l / f_l) ** h_l``
    (``e_l``: rows of the pair's model class at the level, ``f_l``: all rows there);
    the multiple and every level's rate cancel once the pair's total is fixed: the
    exact conditional law of its count at or above a split (a multivariate Fisher
    noncentral hypergeometric), from two products of polynomials. No calibration is
    assumed.
    """
    k = margin.shape[0]
    p_values = np.ones((k, k))
    p_floor = np.ones((k, k))
    edges = np.unique(np.r_[PAIR_LEVELS, splits])
    level = np.searchsorted(edges, top, side="right")  # 0 below the first edge
    levels = len(edges) + 1
    rows_at = np.bincount(level, minlength=levels).astype(np.float64)
    disagreeing = np.bincount(level[y != pred], minlength=levels)
    lower = np.r_[0.0, edges]  # each level's lower edge
    for i in range(k):
        pairs = np.flatnonzero(margin[:, i] > 0)
        if not len(pairs):
            continue
        in_class = np.bincount(level[pred == i], minlength=levels).astype(np.float64)
        most = int(margin[pairs, i].max())
        terms = [_level_term(int(t), e, f, most)
                 for t, e, f in zip(disagreeing, in_class, rows_at, strict=True)]
        for split in splits:
            law = {True: np.ones(1), False: np.ones(1)}
            for sure, term in zip(lower >= split - 1e-12, terms, strict=True):
                law[bool(sure)] = _times(law[bool(sure)], term, most)
            high = np.bincount(y[(top >= split) & (pred == i)], minlength=k)
            for j in pairs:
                weight = _split_law(law[True], law[False], int(margin[j, i]))
                if weight is None:
                    continue
                p_floor[j, i] = min(p_floor[j, i], float(weight[np.flatnonzero(weight)[-1]]))
                if high[j] > 0:
                    p_values[j, i] = min(p_values[j, i], float(weight[high[j]:].sum()))
    np.fill_diagonal(p_floor, 1.0)
    np.fill_diagonal(p_values, 1.0)
    return p_values, p_floor


def _level_term(t: int, e: float, f: float, most: int) -> np.ndarray:
    """One level's factor of :func:`_level_tests`: ``C(t, h) (e / f) ** h`` for
    ``h = 0 ... min(t, most)``, scaled to a largest term of 1."""
    if e <= 0 or t == 0:
        return np.ones(1)
    h = np.arange(min(t, most) + 1)
    log = gammaln(t + 1) - gammaln(h + 1) - gammaln(t - h + 1) + h * np.log(e / f)
    return np.asarray(np.exp(log - log.max()))


def _split_law(above: np.ndarray, below: np.ndarray, n: int) -> np.ndarray | None:
    """The law of the count at or above a split among ``n`` disagreements (index =
    count), from the polynomials of the levels above and below it; None when no split
    of ``n`` is possible."""
    s = np.arange(min(n, len(above) - 1) + 1)
    fits = n - s < len(below)
    weight = np.zeros(len(s))
    weight[fits] = above[s[fits]] * below[n - s[fits]]
    if weight.sum() <= 0:
        return None
    return np.asarray(weight / weight.sum())


#: Rows whose robust z of log mean neighbour distance reaches this lie off the data's
#: support (:func:`in_support`).
SUPPORT_Z = 6.0


def in_support(dist: np.ndarray) -> np.ndarray:
    """Rows inside the data's support: robust z of the log mean k-NN distance below
    :data:`SUPPORT_Z`.

    A model's sureness on a row far from every other row is extrapolation: injected
    outliers (random labels) got out-of-fold probabilities of 0.99 and up, and their
    contradicted labels alone licensed bands and pairs on real tables (anes96, cars,
    seattle-weather, 3% outliers), which then flagged natural label noise.
    :func:`pair_excess` counts only the rows inside. Measured (3% outliers, 3 seeds):
    every injected row of penguins, cars, seattle-weather and anes96 is outside (z 6.6
    and up), 0-3 clean rows per table; on statsmodels fair none of the 197 is (z 3.9 and
    up, below the bar).

    Examples
    --------
    >>> import numpy as np
    >>> dist = np.ones((100, 5)) + np.linspace(0, 0.1, 100)[:, None]
    >>> dist[0] = 50.0
    >>> in_support(dist)[:3].tolist()
    [False, True, True]
    """
    reach = np.asarray(dist, dtype=np.float64).mean(axis=1)
    floor = max(0.1 * float(np.median(reach)), 1e-12)
    return np.asarray(robust_z(np.log(np.maximum(reach, floor))) < SUPPORT_Z)


#: Nearest neighbours (the first of each row's list) whose mean distance
#: :func:`neighbour_support` reads: the same rows for every detector of a scan.
SUPPORT_K = 20


def neighbour_support(x: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """:func:`in_support` of the first :data:`SUPPORT_K` columns of ``dist`` (the
    neighbours of ``x``), computed once per scan for ``x``.

    ``label`` and ``knn`` search the same features (one search: the scan's memo keeps
    the longest lists) and read the same support, kept in the scan's memo
    (:func:`poisonguard.memo.remember`, keyed on ``x``, the array held and
    compared with ``is``). Outside a scan it is computed on every call. Each detector
    on its own neighbour count (20 and 10) left them different supports; 10 columns for
    both undid the anes96 backdoor fix of session 8 (label flags 21 -> 31). On 20 for
    both (real-table grid, 3 seeds, RESULTS.md session 10): anes96 backdoor 2% F1 0.62 /
    0.88 / 0.72 -> 0.64 / 0.97 / 0.72 (knn's clean flags 10 -> 8 and 4 -> 0), every
    other cell unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.memo import scan_memo
    >>> x = np.zeros((100, 2))
    >>> dist = np.ones((100, 20)) + np.linspace(0, 0.1, 100)[:, None]
    >>> dist[0] = 50.0
    >>> with scan_memo() as memo:
    ...     first = neighbour_support(x, dist)
    ...     again = neighbour_support(x, dist)  # knn: the same search
    ...     first is again, int((~first).sum()), len(memo)
    (True, 1, 1)
    """
    columns = min(SUPPORT_K, dist.shape[1])
    held, support = remember("in_support", (id(x), x.shape, columns),
                             lambda: (x, in_support(dist[:, :columns])), keep=2)
    if held is not x:  # an id another array held before: not these rows
        return in_support(dist[:, :columns])
    return np.asarray(support)
