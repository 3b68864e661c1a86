"""Label-flip attacks: random, targeted (source -> target) and adversarial."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from poisonguard.attack.truth import (
    AttackResult,
    check_target,
    make_truth,
    n_modified,
    pick,
    rebuild,
    values_of,
)
from poisonguard.data import Dataset
from poisonguard.errors import UsageError

__all__ = ["label_flip", "reference_model"]

MODES = ("random", "targeted", "adversarial")


def reference_model(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> tuple[StandardScaler,
                                                                             LogisticRegression]:
    """The attacker's simple reference model: logistic regression on scaled features."""
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(max_iter=300, C=1.0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(x), y)
    return scaler, model


def label_flip(
    dataset: Dataset,
    *,
    rate: float,
    seed: int = 0,
    mode: str = "random",
    source: int | None = None,
    target: int | None = None,
) -> AttackResult:
    """Flip the labels of ``rate`` of the rows.

    - ``random``: uniformly chosen rows get a uniformly chosen other class
      (or ``target`` when given, for rows not already in it).
    - ``targeted``: rows of class ``source`` (any non-target class when None) get
      label ``target``.
    - ``adversarial``: the rows nearest the decision boundary of a logistic
      regression reference model get their runner-up class (or ``target``): flips
      that look plausible and hurt the most per row.
    Only labels change; features are untouched.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> result = label_flip(wine, rate=0.1, seed=0)
    >>> int((result.dataset.labels != wine.labels).sum())
    18
    """
    if mode not in MODES:
        raise UsageError(f"unknown flip mode '{mode}' (known: {', '.join(MODES)})")
    if dataset.n_classes < 2:
        raise UsageError("label flips need at least two classes")
    rng = np.random.default_rng(seed)
    k = n_modified(rate, len(dataset))
    y = dataset.labels
    new = np.array(y)
    tgt = None if target is None else check_target(dataset, target)
    src = None if source is None else check_target(dataset, source, "source")
    if mode == "targeted":
        tgt = check_target(dataset, target)
        pool = np.flatnonzero(y == src) if src is not None else np.flatnonzero(y != tgt)
        if src == tgt:
            raise UsageError("source and target must differ")
        rows = pick(rng, pool, k, "source-class rows")
        new[rows] = tgt
        names = dataset.classes
        how = (f"class {names[src]}" if src is not None else "non-target rows") \
            + f" relabelled to {names[tgt]}"
    elif mode == "random":
        pool = np.flatnonzero(y != tgt) if tgt is not None else np.arange(len(y))
        rows = pick(rng, pool, k, "rows")
        if tgt is not None:
            new[rows] = tgt
        else:
            shift = rng.integers(1, dataset.n_classes, size=len(rows))
            new[rows] = (y[rows] + shift) % dataset.n_classes
        how = "random rows relabelled to a random other class"
    else:
        if dataset.texts is not None:
            raise UsageError("adversarial flips need features; text data takes random or "
                             "targeted flips")
        rows, flipped = _adversarial(dataset, k, tgt, seed)
        new[rows] = flipped
        how = "rows nearest a logistic-regression decision boundary relabelled to the runner-up"
    poisoned = rebuild(dataset, labels=new, values=values_of(dataset), changed=rows)
    truth = make_truth(
        dataset, poisoned, kind=f"flip-{mode}" if mode != "random" else "flip", seed=seed,
        params={"rate": rate, "mode": mode, "source": src, "target": tgt},
        poisoned=rows, target=tgt, original_labels={int(i): int(y[i]) for i in rows},
        description=f"label flip ({mode}): {len(rows)} {how}",
    )
    return AttackResult(poisoned, truth)


def _adversarial(dataset: Dataset, k: int, target: int | None,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = dataset.matrix()
    y = dataset.labels
    scaler, model = reference_model(x, y, seed=seed)
    proba = np.zeros((len(x), dataset.n_classes))
    proba[:, model.classes_] = model.predict_proba(scaler.transform(x))
    own = proba[np.arange(len(y)), y]
    others = proba.copy()
    others[np.arange(len(y)), y] = -1.0
    if target is not None:
        runner = np.full(len(y), target)
        margin = own - proba[:, target]
        eligible = y != target
    else:
        runner = others.argmax(axis=1)
        margin = own - others.max(axis=1)
        eligible = np.ones(len(y), dtype=bool)
    pool = np.flatnonzero(eligible)
    if k > len(pool):
        raise UsageError(f"the attack needs {k} rows but only {len(pool)} are eligible")
    order = pool[np.lexsort((pool, margin[pool]))]  # smallest margin first, ties by index
    rows = np.sort(order[:k])
    return rows, runner[rows]
