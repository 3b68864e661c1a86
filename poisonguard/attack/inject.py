"""Injection attacks: new rows appended to the data.

- outliers: rows far outside the data distribution, with random labels;
- mislabeled: in-distribution rows (mixes of two real rows of one class) labelled
  with a wrong class;
- near-duplicates: copies of real rows with a tiny perturbation and a flipped label.
"""

from __future__ import annotations

import numpy as np

from poisonguard.attack.truth import (
    AttackResult,
    make_truth,
    n_injected,
    rebuild,
    require_modality,
    values_of,
)
from poisonguard.data import Dataset
from poisonguard.errors import UsageError

__all__ = ["inject_mislabeled", "inject_near_duplicates", "inject_outliers"]


def _append(dataset: Dataset, kind: str, seed: int, params: dict[str, object],
            values: np.ndarray, labels: np.ndarray, description: str) -> AttackResult:
    base = values_of(dataset)
    poisoned = rebuild(dataset, labels=dataset.labels, values=base,
                       changed=np.empty(0, dtype=np.int64), added_labels=labels,
                       added_values=values)
    added = np.arange(len(dataset), len(poisoned), dtype=np.int64)
    truth = make_truth(dataset, poisoned, kind=kind, seed=seed, params=params, poisoned=added,
                       n_added=len(added), description=description)
    return AttackResult(poisoned, truth)


def _other_class(rng: np.random.Generator, labels: np.ndarray, n_classes: int) -> np.ndarray:
    if n_classes < 2:
        raise UsageError("this attack needs at least two classes")
    return (labels + rng.integers(1, n_classes, size=len(labels))) % n_classes


def inject_outliers(dataset: Dataset, *, rate: float, seed: int = 0,
                    scale: float = 6.0) -> AttackResult:
    """Append rows far outside the distribution, each with a random label.

    Tabular rows are ``mean + scale * std * z`` per feature with ``z`` a random sign
    times U(0.5, 1.5) (constant columns get ``scale``); images are uniform noise over
    the data's value range, which real images never look like.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = inject_outliers(builtin_dataset("wine"), rate=0.05, seed=0)
    >>> len(result.dataset), result.truth.n_added
    (187, 9)
    """
    require_modality(dataset, "outliers", "tabular", "image")
    rng = np.random.default_rng(seed)
    x = values_of(dataset)
    m = n_injected(rate, len(dataset))
    shape = (m, *x.shape[1:])
    if dataset.images is not None:
        values = rng.uniform(float(x.min()), float(x.max()), size=shape)
        how = "uniform-noise images"
    else:
        mu, sd = x.mean(axis=0), x.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        z = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)
        values = mu + scale * sd * z
        how = f"rows about {scale:g} standard deviations out in every feature"
    labels = rng.integers(0, dataset.n_classes, size=m)
    return _append(dataset, "outliers", seed, {"rate": rate, "scale": scale}, values, labels,
                   f"outlier injection: {m} {how} with random labels")


def inject_mislabeled(dataset: Dataset, *, rate: float, seed: int = 0) -> AttackResult:
    """Append in-distribution rows with a wrong label.

    Each new row is a random convex mix of two real rows of the same class, so it
    looks like that class, and it is labelled with a different class.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> inject_mislabeled(builtin_dataset("wine"), rate=0.05, seed=0).truth.description
    'mislabeled injection: 9 mixes of two same-class rows given another class'
    """
    require_modality(dataset, "mislabeled", "tabular", "image")
    rng = np.random.default_rng(seed)
    x, y = values_of(dataset), dataset.labels
    m = n_injected(rate, len(dataset))
    first = rng.integers(0, len(y), size=m)
    second = np.empty(m, dtype=np.int64)
    for j, i in enumerate(first):
        same = np.flatnonzero(y == y[i])
        second[j] = rng.choice(same)
    lam = rng.uniform(0.3, 0.7, size=(m,) + (1,) * (x.ndim - 1))
    values = lam * x[first] + (1 - lam) * x[second]
    labels = _other_class(rng, y[first], dataset.n_classes)
    return _append(dataset, "mislabeled", seed, {"rate": rate}, values, labels,
                   f"mislabeled injection: {m} mixes of two same-class rows given another class")


def inject_near_duplicates(dataset: Dataset, *, rate: float, seed: int = 0,
                           noise: float = 0.01) -> AttackResult:
    """Append copies of real rows, perturbed by ``noise`` x the feature std, relabelled.

    ``params["sources"]`` records which original row each copy came from. Text data
    gets edited repeats of a few messages instead
    (:func:`poisonguard.attack.text.near_duplicate_texts`).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = inject_near_duplicates(builtin_dataset("wine"), rate=0.05, seed=0)
    >>> result.truth.n_added, result.truth.params["sources"][:3]
    (9, [2, 7, 13])
    """
    if dataset.texts is not None:
        from poisonguard.attack.text import near_duplicate_texts

        return near_duplicate_texts(dataset, rate=rate, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = values_of(dataset), dataset.labels
    m = n_injected(rate, len(dataset))
    sources = np.sort(rng.choice(len(y), size=m, replace=m > len(y)))
    sd = x.reshape(len(x), -1).std(axis=0).reshape(x.shape[1:])
    values = x[sources] + noise * sd * rng.standard_normal((m, *x.shape[1:]))
    labels = _other_class(rng, y[sources], dataset.n_classes)
    return _append(dataset, "near-duplicates", seed,
                   {"rate": rate, "noise": noise, "sources": sources}, values, labels,
                   f"near-duplicate injection: {m} copies of real rows with flipped labels")
