"""The masking test: with the trigger features neutralised, do the rows look like another class?

A trigger is what makes poisoned rows of other classes look like the target class.
Neutralise its features (every row's value set to the column median, whatever the
class) and train a model on the rest of the data: poisoned rows then look like the
class they came from, while rows whose candidate features are naturally predictive
still look like their own class. Plain functions, usable alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, mannwhitneyu
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from poisonguard.memo import content_key, remember

__all__ = ["MaskTest", "backdoor_kind", "crossfit_predictions", "crossfit_test", "mask_test",
           "principal_basis", "seen_kind_test"]


def principal_basis(features: np.ndarray, *, dims: int = 64, max_rows: int = 4_000,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """``(centre, basis)``: the ``dims`` leading principal axes of ``features`` (fitted on
    a seeded sample of ``max_rows`` rows), or None when the data has ``dims`` columns
    or fewer. Computed once per scan and shared by every masking test (and by the
    detectors: within a scan, a second call on the same values returns the first
    one's result, :mod:`poisonguard.memo`)."""
    if features.shape[1] <= dims:
        return None
    return remember("principal_basis", content_key((features,), (dims, max_rows, seed)),
                    lambda: _basis(features, dims, max_rows, seed))


def _basis(features: np.ndarray, dims: int, max_rows: int,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`principal_basis`, computed."""
    rng = np.random.default_rng(seed)
    n = len(features)
    # The sample is taken before the float64 conversion: no full-size float64 copy.
    some = features[np.sort(rng.choice(n, size=max_rows, replace=False))] if n > max_rows \
        else features
    fit = np.asarray(some, dtype=np.float64)
    centre = fit.mean(axis=0)
    with threadpool_limits(1):
        _, sv, vt = np.linalg.svd(fit - centre, full_matrices=False)
    # Unit variance along each axis: the model then converges in a few dozen steps.
    scale = np.maximum(sv[:dims], 1e-9 * max(float(sv[0]), 1e-300)) / np.sqrt(len(fit))
    return centre, np.ascontiguousarray(vt[:dims].T / scale)


def crossfit_predictions(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    projection: tuple[np.ndarray, np.ndarray] | None = None,
    folds: int = 5,
    max_train_rows: int = 20_000,
    chunk: int = 20_000,
    seed: int = 0,
) -> np.ndarray:
    """Each row's class as called by a logistic regression that never saw it.

    A seeded sample of at most ``max_train_rows`` rows is dealt into ``folds`` folds;
    the model trained on the other folds calls each fold's rows, and rows outside the
    sample (never trained on) are called by the models in turn. ``projection`` (from
    :func:`principal_basis`) maps the rows first, ``chunk`` rows at a time: no
    full-size float64 copy. The trigger detector's own view of which labels the rest
    of the data contradicts; it reads the features only, as the detector does.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2))
    >>> y = (x[:, 0] > 0).astype(int)
    >>> y[:5] = 1 - y[:5]  # five labels flipped
    >>> called = crossfit_predictions(x, y)
    >>> int(np.sum(called[:5] != y[:5])), int(np.sum(called[5:] != y[5:]))
    (5, 4)
    """
    y = np.asarray(labels)
    n = len(y)
    rng = np.random.default_rng(seed)
    trained = np.sort(rng.choice(n, size=max_train_rows, replace=False)) \
        if n > max_train_rows else np.arange(n)
    fold = _dealt(n, (trained,), folds, rng)
    untrained = np.flatnonzero(fold < 0)
    fold[untrained] = np.arange(len(untrained)) % folds

    def view(idx: np.ndarray) -> np.ndarray:
        return _project(np.asarray(features[idx], dtype=np.float64), projection)

    called = np.empty(n, dtype=np.int64)
    for k in range(folds):
        with threadpool_limits(1):
            train = trained[fold[trained] != k]
            model = _fitted(view(train), y[train])
            scored = np.flatnonzero(fold == k)
            for start in range(0, len(scored), chunk):
                part = scored[start:start + chunk]
                called[part] = model.classes_[model.predict_proba(view(part)).argmax(axis=1)]
    return called


@dataclass(frozen=True, eq=False)
class MaskTest:
    """Outcome for the candidate rows labelled ``label``.

    ``rows`` are those rows; ``other`` marks the ones the masked model assigns to
    another class, ``predicted`` its class per row and ``p_label`` its probability
    of ``label``. ``base_error`` is the masked model's error on held-out rows of
    ``label`` outside the candidate; ``p_value`` the binomial tail of seeing that
    many "other" rows at that error rate (uncorrected). ``crowding_p`` is the binomial
    tail of the masked model's errors on those held-out rows of ``label`` at its error
    rate on the held-out rows of the other classes (uncorrected): small when rows of
    ``label`` look like other classes far more often than rows of other classes do,
    as when many rows were relabelled into ``label``. ``rank_p`` compares how far the
    rows moved rather than whether they crossed a class boundary: the rank-sum
    (Mann-Whitney) tail of their ``p_label`` below those of the held-out rows of
    ``label`` (uncorrected; 1.0 when there are none). Where the masked model errs on
    much of the class (a weak model on a small table: 35-60% of cars' Japan rows), rows
    it calls another class at p(label) 0.01 are far below the class's own rows, which
    it rarely puts under 0.1, while a count of rows crossing the boundary cannot
    tell them from its errors.
    """

    rows: np.ndarray
    other: np.ndarray
    predicted: np.ndarray
    p_label: np.ndarray
    base_error: float
    p_value: float
    crowding_p: float = 1.0
    rank_p: float = 1.0

    @property
    def n_other(self) -> int:
        return int(self.other.sum())

    @property
    def fraction_other(self) -> float:
        return self.n_other / max(len(self.rows), 1)


def _outside(n: int, candidate: np.ndarray, max_rows: int,
             rng: np.random.Generator) -> np.ndarray:
    """The rows outside ``candidate`` (of ``n``), sorted; a seeded sample of ``max_rows``
    of them where there are more."""
    outside = np.ones(n, dtype=bool)
    outside[candidate] = False
    pool = np.flatnonzero(outside)
    if len(pool) > max_rows:
        pool = np.sort(rng.choice(pool, size=max_rows, replace=False))
    return pool


def _mask_own_cells(x: np.ndarray, idx: np.ndarray, row_cells: dict[int, np.ndarray],
                    cols: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Set, in place, the marked cells of each row of ``x`` (row ``idx[k]``'s mask in
    ``row_cells``, where it has one) to the column medians; return ``x``."""
    for k, i in enumerate(idx.tolist()):
        hit = row_cells.get(i)
        if hit is not None:
            x[k, cols[hit]] = median[hit]
    return x


def mask_test(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    candidate: np.ndarray,
    label: int,
    masked: tuple[int, ...],
    cells: np.ndarray | None = None,
    max_train_rows: int = 20_000,
    projection: tuple[np.ndarray, np.ndarray] | None = None,
    min_error: float = 0.02,
    seed: int = 0,
) -> MaskTest:
    """Train on the rows outside ``candidate`` with ``masked`` columns neutralised;
    score the candidate rows labelled ``label``.

    ``features`` should be standardised (the representation's). A quarter of the
    training rows is held out to measure the model's own error on ``label``
    (floored at ``min_error``), the rate a clean subset would show. ``projection``
    (``(centre, basis)`` from :func:`principal_basis`) maps the neutralised rows to
    fewer dimensions before the model sees them: on images the model is then a
    second's work, not a minute's.

    ``cells`` (one row per ``candidate`` row, one column per ``masked`` feature) masks
    per row instead: only the marked cells of the candidate rows are neutralised and
    the training rows keep every feature. This is for wide triggers (a blended
    pattern touches every pixel, and where the image has ink it no longer holds the
    shared value) and moving ones: neutralising such columns everywhere would leave
    nothing to learn. The base error is then measured under the same intervention:
    the held-out rows of ``label`` get the candidates' cells masked too, so that a
    natural pattern whose masking removes part of what makes the class (a stroke of
    a digit) does not pass for a trigger.
    """
    y = np.asarray(labels)
    rows = np.asarray(candidate)[y[candidate] == label]
    rng = np.random.default_rng(seed)
    pool = rng.permutation(_outside(len(y), candidate, max_train_rows, rng))
    n_hold = max(len(pool) // 4, 1)
    held, train = pool[:n_hold], pool[n_hold:]
    cols, median = _medians(features, masked)
    row_cells: dict[int, np.ndarray] = {}
    if cells is not None:
        cand = np.asarray(candidate)
        row_cells = _cells_by_row(cand, cells)

    def neutral(idx: np.ndarray) -> np.ndarray:
        x = np.array(features[idx], dtype=np.float64)
        if cells is None:
            x[:, cols] = median
            return x
        return _mask_own_cells(x, idx, row_cells, cols, median)

    def control(idx: np.ndarray) -> np.ndarray:
        """Held-out rows with the candidates' own cells masked (cycled over them)."""
        x = neutral(idx)
        if cells is not None and len(rows):
            own = [row_cells[int(i)] for i in rows]
            for k in range(len(idx)):
                hit = own[k % len(own)]
                x[k, cols[hit]] = median[hit]
        return x

    with threadpool_limits(1):
        model = _fitted(_project(neutral(train), projection), y[train])
    classes = model.classes_

    def proba(idx: np.ndarray, masking: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        out = np.zeros((len(idx), n_classes))
        if len(idx):
            out[:, classes] = model.predict_proba(_project(masking(idx), projection))
        return out

    held_c = held[y[held] == label]
    held_pr = proba(held_c, control)
    wrong = int(np.sum(held_pr.argmax(axis=1) != label))
    held_o = held[y[held] != label]
    other_error = (float(np.mean(proba(held_o, control).argmax(axis=1) != y[held_o]))
                   if len(held_o) else 0.0)
    crowding_p = (float(binom.sf(wrong - 1, len(held_c), max(other_error, min_error)))
                  if wrong else 1.0)
    base_error = max(wrong / len(held_c) if len(held_c) else 0.0, min_error)
    return _moved(rows, proba(rows, neutral), held_pr, label, base_error,
                  crowding_p=crowding_p)


def crossfit_test(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    candidate: np.ndarray,
    label: int,
    masked: tuple[int, ...],
    folds: int = 5,
    max_train_rows: int = 20_000,
    min_error: float = 0.02,
    seed: int = 0,
) -> MaskTest:
    """The masking test cross-fitted: every row scored by trees that never saw it.

    The rows (the candidate's and a seeded sample of at most ``max_train_rows``
    others) are dealt into ``folds`` folds, the candidate rows labelled ``label``
    spread evenly over them. Gradient-boosted trees trained on the rows of the other
    folds outside the candidate (as :func:`mask_test`, none of its labels is
    learnt) score each fold with the ``masked`` columns set to their medians. Trees
    follow each row's other features down their branches, where a linear model
    spreads a small table's class overlap over every row. Every row of ``label`` is
    scored, not a quarter held out: ``rank_p`` is the rank-sum tail of the candidate
    rows' masked p(label) below the other rows of ``label``'s, ``base_error`` the
    share of those the trees call another class (floored at ``min_error``),
    ``p_value`` the binomial tail of the candidate rows called another class at that
    rate; ``crowding_p`` is not measured (1.0). All uncorrected.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 3))
    >>> y = (x[:, 0] > 0).astype(int)
    >>> stamped = np.flatnonzero(y == 0)[:12]  # 12 rows of class 0 stamped, relabelled
    >>> x[stamped, 2], y[stamped] = 5.0, 1
    >>> moved = crossfit_test(x, y, 2, candidate=stamped, label=1, masked=(2,))
    >>> moved.n_other, bool(moved.rank_p < 1e-6)  # rank-sum p 6e-9
    (12, True)
    """
    y = np.asarray(labels)
    rows = np.asarray(candidate)[y[candidate] == label]
    rng = np.random.default_rng(seed)
    pool = _outside(len(y), candidate, max_train_rows, rng)
    fold = _dealt(len(y), (rows, pool), folds, rng)
    cols, median = _medians(features, masked)
    used = np.flatnonzero(fold >= 0)
    pr = np.zeros((len(y), n_classes))
    for k in range(folds):
        train, test = pool[fold[pool] != k], used[fold[used] == k]
        model = HistGradientBoostingClassifier(early_stopping=False, random_state=seed)
        with threadpool_limits(1):
            model.fit(np.asarray(features[train], dtype=np.float64), y[train])
            x = np.array(features[test], dtype=np.float64)
            x[:, cols] = median
            pr[np.ix_(test, model.classes_)] = model.predict_proba(x)
    own = pool[y[pool] == label]
    return _crossfit_verdict(pr, rows, own, label, min_error)


def seen_kind_test(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    candidate: np.ndarray,
    label: int,
    masked: tuple[int, ...],
    cells: np.ndarray,
    folds: int = 5,
    max_train_rows: int = 20_000,
    projection: tuple[np.ndarray, np.ndarray] | None = None,
    min_error: float = 0.02,
    seed: int = 0,
) -> MaskTest:
    """The masking test of a moving pattern, cross-fitted by a model that has seen its kind.

    :func:`mask_test` trains without every row holding the pattern: the model cannot
    have learnt a trigger, but it has not seen the pattern's natural sub-style either.
    Where the pattern is a sub-style of the class (a thick stroke, held by half the
    "1"s), that model calls many of its rows other classes because it never saw a
    "1" drawn that way, not because they came from elsewhere. Here every row stays
    in: the candidate rows labelled ``label`` are dealt evenly into ``folds`` folds,
    the other rows (every holder in ``candidate`` and a seeded sample of at most
    ``max_train_rows`` others) too, and a model trained on the other folds scores
    each fold. The holders' own ``cells`` (one line per ``candidate`` row, one
    column per ``masked`` column) are set to the column medians wherever they are
    read, so the pattern itself teaches nothing. Rows of a natural sub-style then
    look like their class (the model saw others like them, with that label); rows
    stamped and relabelled still look like where they came from, since the rest of
    each of them is another class's. ``base_error`` is the share of the class's own
    rows outside the candidate that the same models call another class (each scored
    with a candidate's cells masked, cycled over the candidates, as
    :func:`mask_test` measures it; floored at ``min_error``); ``p_value`` and
    ``rank_p`` as :class:`MaskTest`'s; ``crowding_p`` is not measured (1.0). All
    uncorrected.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 4))
    >>> y = (x[:, 0] > 0).astype(int)
    >>> stamped = np.flatnonzero(y == 0)[:20]  # 20 rows of class 0, relabelled 1
    >>> cells = np.zeros((20, 2), dtype=bool)  # a moving stamp: column 2 or column 3
    >>> cells[:10, 0] = cells[10:, 1] = True
    >>> x[stamped[:10], 2] = x[stamped[10:], 3] = 6.0
    >>> y[stamped] = 1
    >>> moved = seen_kind_test(x, y, 2, candidate=stamped, label=1, masked=(2, 3),
    ...                        cells=cells)
    >>> moved.n_other, bool(moved.p_value < 1e-6)
    (17, True)
    """
    y = np.asarray(labels)
    holders = np.asarray(candidate)
    rows = holders[y[holders] == label]
    rng = np.random.default_rng(seed)
    pool = _outside(len(y), holders, max(max_train_rows - len(holders), 1), rng)
    others = np.concatenate([holders[y[holders] != label], pool])
    fold = _dealt(len(y), (rows, others), folds, rng)
    cols, median = _medians(features, masked)
    own_cells = _cells_by_row(holders, cells)
    own = pool[y[pool] == label]
    stand_in = {int(i): own_cells[int(rows[k % len(rows)])] for k, i in enumerate(own)} \
        if len(rows) else {}

    def neutral(idx: np.ndarray) -> np.ndarray:
        return _mask_own_cells(np.array(features[idx], dtype=np.float64), idx, own_cells,
                               cols, median)

    used = np.flatnonzero(fold >= 0)
    pr = np.zeros((len(y), n_classes))
    for k in range(folds):
        train, test = used[fold[used] != k], used[fold[used] == k]
        test = test[np.isin(test, rows) | (y[test] == label)]
        with threadpool_limits(1):
            model = _fitted(_project(neutral(train), projection), y[train])
            x = _mask_own_cells(neutral(test), test, stand_in, cols, median)
            if len(test):
                pr[np.ix_(test, model.classes_)] = model.predict_proba(_project(x, projection))
    return _crossfit_verdict(pr, rows, own, label, min_error)


def _medians(features: np.ndarray, masked: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The ``masked`` columns (as an index array) and their medians over every row."""
    cols = np.asarray(masked, dtype=np.int64)
    return cols, np.median(features[:, cols], axis=0) if len(cols) else np.zeros(0)


def _cells_by_row(rows: np.ndarray, cells: np.ndarray) -> dict[int, np.ndarray]:
    """Each of ``rows``' own line of ``cells`` (one per row, in order), by row number."""
    return {int(i): np.asarray(m, dtype=bool) for i, m in zip(rows, cells, strict=True)}


def _project(x: np.ndarray, projection: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``x`` mapped by ``projection`` (``(centre, basis)``, :func:`principal_basis`), or
    ``x`` itself where there is none."""
    return x if projection is None else (x - projection[0]) @ projection[1]


def _fitted(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """The masking tests' logistic regression, fitted on ``x``, ``y`` (convergence
    warnings silenced). Callers hold one BLAS thread around it: small fits
    oversubscribe the cores otherwise (10x slower)."""
    model = LogisticRegression(max_iter=200, C=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def _dealt(n: int, groups: tuple[np.ndarray, ...], folds: int,
           rng: np.random.Generator) -> np.ndarray:
    """Fold of each of ``n`` rows (-1: unused): each group's rows dealt evenly over
    ``folds`` folds in a seeded random order."""
    fold = np.full(n, -1, dtype=np.int64)
    for group in groups:
        fold[rng.permutation(group)] = np.arange(len(group)) % folds
    return fold


def _crossfit_verdict(pr: np.ndarray, rows: np.ndarray, own: np.ndarray, label: int,
                      min_error: float) -> MaskTest:
    """:func:`_moved` on cross-fitted probabilities ``pr`` (one line per row of the
    data): the base error is the share of the class's own rows ``own`` called another
    class, floored at ``min_error``."""
    base_error = max(float(np.mean(pr[own].argmax(axis=1) != label)) if len(own) else 0.0,
                     min_error)
    return _moved(rows, pr[rows], pr[own], label, base_error)


def _moved(rows: np.ndarray, masked_pr: np.ndarray, class_pr: np.ndarray, label: int,
           base_error: float, *, crowding_p: float = 1.0) -> MaskTest:
    """The verdict on the candidate ``rows`` from their masked probabilities
    (``masked_pr``) against the class's own rows' (``class_pr``): how many another
    class now claims (binomial tail at ``base_error``), and how far their p(``label``)
    fell below the class's (rank-sum tail)."""
    predicted = masked_pr.argmax(axis=1)
    other = predicted != label
    p_value = float(binom.sf(int(other.sum()) - 1, len(rows), base_error)) if len(rows) else 1.0
    rank_p = (float(mannwhitneyu(masked_pr[:, label], class_pr[:, label],
                                 alternative="less").pvalue)
              if len(rows) and len(class_pr) else 1.0)
    return MaskTest(rows=rows, other=other, predicted=predicted, p_label=masked_pr[:, label],
                    base_error=base_error, p_value=p_value, crowding_p=crowding_p,
                    rank_p=rank_p)


def backdoor_kind(test: MaskTest, *, min_other: float, alpha: float, tests: int) -> str:
    """What the masking test ``test`` says a pattern's rows are.

    ``dirty-label`` when at least ``min_other`` of them look like other classes once the
    pattern is masked and that is beyond the masked model's own error on the class
    (``p_value`` times ``tests`` below ``alpha``): their other features say they came
    from other classes, so their labels were changed. ``clean-label`` when most of them
    still look like their class: their labels agree with their other features.
    ``undetermined`` otherwise (most move, but masking moves the class's own rows as
    well).

    Examples
    --------
    >>> import numpy as np
    >>> moved = MaskTest(rows=np.arange(9), other=np.ones(9, bool), predicted=np.ones(9, int),
    ...                  p_label=np.zeros(9), base_error=0.02, p_value=5e-16)
    >>> backdoor_kind(moved, min_other=0.5, alpha=1e-3, tests=1)
    'dirty-label'
    """
    if test.fraction_other >= min_other and test.p_value * tests < alpha:
        return "dirty-label"
    return "clean-label" if test.fraction_other < min_other else "undetermined"
