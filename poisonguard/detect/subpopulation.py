"""Does a class hold a separate subpopulation? The split test shared by the
representation-space detectors (``spectral``, ``spectre``, ``activation``).

Each detector brings its own 1-D projection of a class's embedding (a *direction*);
this module does the rest, the same way for all of them:

1. :func:`split_test`: fit one and two 1-D Gaussians to the projection; a candidate
   when two components clearly win and the small one holds at least ``min_rows``
   rows and less than ``max_share`` of the class;
2. :func:`separation_threshold`: how far apart the two parts must be (Ashman's D),
   at least ``min_separation`` and, with five classes or more, beyond what the
   classes themselves show (most classes are clean);
3. :func:`separation_bound`: the separation must pass the threshold at its 5%
   bootstrap bound too (the two parts resampled), not only as measured: a margin
   taken from the data's own sampling noise, so that a decision does not flip with
   the CPU's kernels or the seed. A class that passes only as measured is put up for
   review, not flagged;
4. :func:`find_subpopulations`: run them on every class and flag the small part of
   the classes that pass. Every other examined class is clean.

Plain functions, no detector: detectors import this module, never each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.covariance import MinCovDet
from sklearn.mixture import GaussianMixture

from poisonguard.data import Dataset
from poisonguard.detect.thresholds import FLAG_SCORE, robust_z, scores_from_z
from poisonguard.represent.base import Representation

__all__ = [
    "MAX_FIT_ROWS",
    "SplitTest",
    "Subpopulations",
    "find_subpopulations",
    "fit_sample",
    "per_class_tests",
    "robust_whiten",
    "separation_bound",
    "separation_threshold",
    "split_test",
]

#: Rows a per-class robust estimate (MCD, k-means) is fitted on; the rest are projected.
MAX_FIT_ROWS = 500


def fit_sample(n_rows: int, max_rows: int, seed: int) -> np.ndarray:
    """Indices of the rows a per-class estimate is fitted on: all, or a seeded sample.

    Robust estimates (MCD, k-means, mixtures) cost far more than applying them, so
    large classes are fitted on ``max_rows`` rows and every row is then projected.
    """
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def robust_whiten(embedding: np.ndarray, *, dims: int = 16, seed: int = 0,
                  max_fit_rows: int = MAX_FIT_ROWS) -> np.ndarray:
    """PCA to ``dims`` components, then whiten with a minimum covariance determinant estimate.

    The MCD support is half the rows plus, so a subpopulation of up to half the class
    cannot pull the mean or the covariance towards itself. The PCA basis and the MCD
    are fitted on at most ``max_fit_rows`` rows (:func:`fit_sample`).
    """
    e = np.asarray(embedding, dtype=np.float64)
    fit = fit_sample(len(e), max_fit_rows, seed)
    e = e - np.median(e[fit], axis=0)
    k = int(max(1, min(dims, e.shape[1], len(fit) // 5)))
    _, s, vt = np.linalg.svd(e[fit], full_matrices=False)
    keep = s[:k] > 1e-9 * max(float(s[0]) if len(s) else 0.0, 1e-300)
    z = e @ vt[:k][keep].T
    if z.shape[1] == 0:
        return np.zeros((len(e), 1))
    mcd = MinCovDet(random_state=seed).fit(z[fit])
    vals, vecs = np.linalg.eigh(mcd.covariance_)
    vals = np.maximum(vals, 1e-12 * max(float(vals.max()), 1e-300))
    return np.asarray(((z - mcd.location_) @ vecs) / np.sqrt(vals))


@dataclass(frozen=True)
class SplitTest:
    """Outcome of the per-class "is there a separate subpopulation?" test."""

    poisoned: bool
    members: np.ndarray  # boolean, rows in the small component (empty when clean)
    posterior: np.ndarray  # posterior of the small component per row
    separation: float  # Ashman's D between the two components
    share: float  # weight of the small component
    bic_gain: float  # BIC(1 component) - BIC(2 components)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the projection tested


def split_test(values: np.ndarray, *, min_rows: int, max_share: float,
               seed: int = 0, max_fit_rows: int = 20_000) -> SplitTest:
    """Fit one and two 1-D Gaussians to ``values``.

    ``poisoned`` here means "a candidate": two components clearly beat one (BIC gain
    over 10), the small one holds ``min_rows`` rows or more and less than
    ``max_share`` of the rows. Whether the parts are far enough apart
    (``separation``) is decided against the other classes by :func:`decide`.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    n = len(x)
    empty = np.zeros(n, dtype=bool)
    if n < max(2 * min_rows, 4) or float(np.ptp(x)) <= 1e-12:
        return SplitTest(False, empty, np.zeros(n), 0.0, 0.0, 0.0, x.ravel())
    # Large classes: fit on a sample; the BIC gain is scaled back to the whole class.
    fit = x[fit_sample(n, max_fit_rows, seed)]
    two = _two_components(fit, seed)
    one = GaussianMixture(1, random_state=seed).fit(fit)
    small = int(np.argmin(two.weights_))
    separation = _ashman_d(two)
    share = float(two.weights_[small])
    gain = float(one.bic(fit) - two.bic(fit)) * n / len(fit)
    posterior = two.predict_proba(x)[:, small]
    members = posterior > 0.5
    candidate = gain > 10.0 and share < max_share and int(members.sum()) >= min_rows
    return SplitTest(candidate, members if candidate else empty, posterior, separation, share,
                     gain, x.ravel())


def _two_components(x: np.ndarray, seed: int) -> GaussianMixture:
    return GaussianMixture(2, n_init=3, random_state=seed,
                           reg_covar=1e-6 * float(x.var())).fit(x)


def _ashman_d(two: GaussianMixture) -> float:
    m, v = two.means_.ravel(), two.covariances_.ravel()
    return float(abs(m[0] - m[1]) / np.sqrt((v[0] + v[1]) / 2))


def separation_bound(values: np.ndarray, members: np.ndarray, separation: float, *,
                     level: float = 0.05, resamples: int = 200, seed: int = 0) -> float:
    """Lower confidence bound of a split's ``separation`` (Ashman's D).

    The two parts (``members`` and the rest of ``values``) are resampled with
    replacement, each on its own (seeded), and D recomputed from their means and
    variances; the bound is ``separation`` less how far D's ``level`` quantile falls
    below the D of the parts as given (basic bootstrap). A class whose bound reaches
    the threshold holds a subpopulation on any machine and seed; one whose measured
    D only just passes does not (measured: a blend on digits at D 4.2 against 4.0
    flipped with the CPU's kernels).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> values = np.r_[rng.normal(0, 1, 480), rng.normal(9, 1, 20)]
    >>> members = np.arange(500) >= 480
    >>> bool(8 - 2 < separation_bound(values, members, 8.0) < 8)
    True
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    inside = np.asarray(members, dtype=bool)
    a, b = x[inside], x[~inside]
    if len(a) < 2 or len(b) < 2:
        return 0.0
    rng = np.random.default_rng(seed)

    def d(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        spread = np.sqrt((p.var(axis=-1) + q.var(axis=-1)) / 2)
        return np.abs(p.mean(axis=-1) - q.mean(axis=-1)) / np.maximum(spread, 1e-12)

    given = float(d(a, b))
    boot = d(a[rng.integers(0, len(a), size=(resamples, len(a)))],
             b[rng.integers(0, len(b), size=(resamples, len(b)))])
    return float(separation - max(given - float(np.quantile(boot, level)), 0.0))


def separation_threshold(separations: np.ndarray, *, min_separation: float,
                         z: float = 6.0, min_classes: int = 5) -> float:
    """The separation a class must reach to count as holding a subpopulation.

    At least ``min_separation``; with ``min_classes`` classes or more, also at least
    ``median + z * MAD`` of the classes' own separations (most classes are clean, so
    they calibrate what an ordinary class looks like in this representation).
    """
    d = np.asarray(separations, dtype=np.float64)
    if len(d) < min_classes:
        return float(min_separation)
    med = float(np.median(d))
    mad = 1.4826 * float(np.median(np.abs(d - med)))
    return float(max(min_separation, med + z * max(mad, 0.1)))


def per_class_tests(
    dataset: Dataset, representation: Representation,
    direction: Callable[[np.ndarray], np.ndarray], *, min_rows: int, max_share: float,
    seed: int = 0,
) -> tuple[dict[int, tuple[np.ndarray, SplitTest]], np.ndarray]:
    """Project each class's embedding with ``direction`` and split-test it.

    Returns the tests by class code (with the class's row indices) and provisional
    scores: below the flag level for every row, ranked by |robust z| of the projection.
    Classes with fewer than ``2 * min_rows + 2`` rows are not examined.
    """
    emb = representation.embedding  # converted to float64 class by class (memory)
    labels = dataset.labels
    scores = np.zeros(len(labels))
    tests: dict[int, tuple[np.ndarray, SplitTest]] = {}
    for c in range(dataset.n_classes):
        rows = np.flatnonzero(labels == c)
        if len(rows) < 2 * min_rows + 2:
            continue
        proj = direction(emb[rows])
        tests[c] = (rows, split_test(proj, min_rows=min_rows, max_share=max_share, seed=seed))
        z = np.abs(robust_z(proj))
        scores[rows] = FLAG_SCORE * scores_from_z(z, 6.0, width=2.0)
    return tests, scores


@dataclass(frozen=True, eq=False)
class Subpopulations:
    """Outcome of :func:`find_subpopulations`: the pieces of a detector result.

    ``examined`` are the class codes that were split-tested and decided (the others
    are too small, or passed only as measured: see ``review``); ``hypotheses`` one
    sentence per flagged class; ``review`` the rows of a class whose separation passes
    the threshold but not at its bootstrap bound, each with why; ``meta`` the
    separation threshold and each examined class's separation, small-part share and
    (for the classes that passed) bound.
    """

    flags: np.ndarray
    scores: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)
    review: dict[int, str] = field(default_factory=dict)
    hypotheses: tuple[str, ...] = ()
    examined: tuple[int, ...] = ()
    meta: dict[str, object] = field(default_factory=dict)


def find_subpopulations(
    dataset: Dataset, representation: Representation,
    direction: Callable[[np.ndarray], np.ndarray], *, min_rows: int, max_share: float,
    min_separation: float, what: str, seed: int = 0,
) -> Subpopulations:
    """Split-test every class along ``direction`` and flag the small part of the classes
    whose separation reaches :func:`separation_threshold`.

    Parameters
    ----------
    dataset, representation
        The data and its representation (``embedding`` is read).
    direction
        Maps one class's embedding (rows x K) to a 1-D projection (rows,).
    min_rows, max_share, seed
        Passed to :func:`split_test`.
    min_separation
        Passed to :func:`separation_threshold`.
    what
        How the reasons name the subpopulation ("a separate activation cluster").

    Returns
    -------
    Subpopulations
        Flags, scores (flagged rows 0.5 + half the posterior excess, the others
        below 0.5 by |robust z| along the direction), reasons and hypotheses.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.represent import build_representation
    >>> wine = builtin_dataset("wine")
    >>> found = find_subpopulations(wine, build_representation(wine),
    ...                             lambda e: e[:, 0], min_rows=5, max_share=0.45,
    ...                             min_separation=4.0, what="a separate cluster")
    >>> found.examined
    (0, 1, 2)
    """
    tests, scores = per_class_tests(dataset, representation, direction, min_rows=min_rows,
                                    max_share=max_share, seed=seed)
    seps = np.array([t.separation for _, t in tests.values()])
    cut = separation_threshold(seps, min_separation=min_separation)
    flags = np.zeros(len(dataset), dtype=bool)
    reasons: dict[int, str] = {}
    hypotheses: list[str] = []
    per_class: dict[str, dict[str, float]] = {}
    layer = representation.layer or "embedding"
    review: dict[int, str] = {}
    undecided: list[int] = []
    for c, (rows, test) in tests.items():
        name = dataset.classes[c]
        per_class[name] = {"separation": round(test.separation, 2), "share": round(test.share, 4)}
        if not (test.poisoned and test.separation >= cut):
            continue
        bound = separation_bound(test.values, test.members, test.separation, seed=seed)
        per_class[name]["bound"] = round(bound, 2)
        if bound < cut:
            doubt = (f"class {name}: {int(test.members.sum())} rows form {what} (separation "
                     f"D={test.separation:.1f}, but only {bound:.1f} at its 5% bootstrap "
                     f"bound, threshold {cut:.1f}): not a decision")
            review.update({int(i): doubt for i in rows[test.members]})
            # Ranked just under the flag level, above the other rows of the class.
            scores[rows[test.members]] = FLAG_SCORE * (0.9 + 0.1 * test.posterior[test.members])
            undecided.append(c)  # neither flagged nor reported clean
            continue
        hit = rows[test.members]
        flags[hit] = True
        scores[hit] = FLAG_SCORE + 0.5 * (2 * test.posterior[test.members] - 1)
        sentence = (f"class {name}: {len(hit)} rows form {what} in the model's {layer} layer "
                    f"(separation D={test.separation:.1f}, at least {bound:.1f} at its 5% "
                    f"bootstrap bound; threshold {cut:.1f})")
        for i in hit:
            reasons[int(i)] = sentence
        hypotheses.append(f"backdoor -> class {name}: {sentence.split(': ', 1)[1]}")
    return Subpopulations(
        flags=flags, scores=np.clip(scores, 0.0, 1.0), reasons=reasons,
        hypotheses=tuple(hypotheses), review=review,
        examined=tuple(c for c in sorted(tests) if c not in undecided),
        meta={"separation_threshold": round(cut, 3), "classes": per_class},
    )
