"""Downstream effect of poison: clean accuracy and attack success of a simple model.

The model is deliberately small and fast (logistic regression on standardised,
flattened features; on texts, on TF-IDF of word 1-2-grams): it is the victim the
benchmark trains on the poisoned data, then again on the data with the flagged rows
dropped.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from poisonguard.attack import Truth, apply_trigger
from poisonguard.data import Dataset, ngrams, words

__all__ = ["attack_success_rate", "downstream_effect", "train_victim", "victim_inputs"]


def victim_inputs(dataset: Dataset) -> Any:
    """What the victim model reads: the feature matrix, or the list of texts."""
    return list(dataset.texts) if dataset.texts is not None else dataset.matrix()


def _word_ngrams(text: str) -> list[str]:
    return list(ngrams(words(text), 2))


def train_victim(train: Dataset, *, seed: int = 0) -> Pipeline:
    """Fit the benchmark's victim model on ``train``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> model = train_victim(builtin_dataset("wine"))
    >>> list(model.named_steps)
    ['standardscaler', 'logisticregression']
    """
    first: Any = (TfidfVectorizer(analyzer=_word_ngrams, sublinear_tf=True)
                  if train.texts is not None else StandardScaler())
    model = make_pipeline(first, LogisticRegression(max_iter=500, C=1.0, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(victim_inputs(train), train.labels)
    return model


def attack_success_rate(model: Pipeline, test: Dataset, truth: Truth) -> float | None:
    """Share of triggered test inputs (true class != target) the model calls the target.

    For feature collision (no trigger) it is 1.0 when the held-out victim row is
    classified as the target, else 0.0. None when the attack has no target.

    Examples
    --------
    >>> from poisonguard.attack import tabular_trigger
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> truth = tabular_trigger(wine, rate=0.1, target=0, seed=0).truth
    >>> clean_model = train_victim(wine)  # never saw the trigger: a third call it class 0
    >>> round(attack_success_rate(clean_model, wine, truth), 2)
    0.33
    """
    if truth.target is None:
        return None
    if truth.trigger is not None:
        victims = test.subset(np.flatnonzero(test.labels != truth.target))
        if len(victims) == 0:
            return None
        pred = model.predict(victim_inputs(apply_trigger(victims, truth)))
        return float((pred == truth.target).mean())
    if "victim" in truth.params:
        row = np.asarray(truth.params["victim"], dtype=np.float32)[None]
        return float(model.predict(row)[0] == truth.target)
    return None


def downstream_effect(poisoned: Dataset, flags: np.ndarray, test: Dataset, truth: Truth,
                      *, seed: int = 0) -> dict[str, Any]:
    """Accuracy on ``test`` and ASR of models trained on the poisoned data and on it
    after dropping the flagged rows.

    Examples
    --------
    >>> from poisonguard.attack import tabular_trigger
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> attack = tabular_trigger(wine, rate=0.1, target=0, seed=0)
    >>> effect = downstream_effect(attack.dataset, attack.truth.mask, wine, attack.truth)
    >>> effect["dropped"], round(effect["poisoned_asr"], 2), round(effect["cleaned_asr"], 2)
    (18, 0.99, 0.37)
    """
    out: dict[str, Any] = {}
    keep = np.flatnonzero(~np.asarray(flags, dtype=bool))
    for name, data in (("poisoned", poisoned), ("cleaned", poisoned.subset(keep))):
        if len(np.unique(data.labels)) < 2:
            out[f"{name}_accuracy"] = out[f"{name}_asr"] = None
            continue
        model = train_victim(data, seed=seed)
        out[f"{name}_accuracy"] = float((model.predict(victim_inputs(test))
                                         == test.labels).mean())
        out[f"{name}_asr"] = attack_success_rate(model, test, truth)
    out["dropped"] = int(len(poisoned) - len(keep))
    return out
