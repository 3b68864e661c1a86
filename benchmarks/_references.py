"""The reference defences the scan is compared with, run on what the scan computed.

- ``datalab``: cleanlab's Datalab with the ``label``, ``outlier`` and ``near_duplicate``
  issue types, given the scan's out-of-fold probabilities (``representation.proba``)
  and its input-space features (``representation.features``). A row is flagged when
  any issue type flags it; its score is 1 - the lowest of its three issue scores.
- ``art_activation``: IBM ART's ``ActivationDefence`` with its defaults (2 clusters
  per class, PCA to 10 dimensions, the smaller cluster is poison). Flags only.
- ``art_spectral``: ART's ``SpectralSignatureDefense`` with its defaults
  (``expected_pp_poison=0.33``, ``eps_multiplier=1.5``: it removes the top 50% of
  every class). Score: the row's within-class rank of ART's spectral score.
- ``art_spectral_oracle``: the same with ``expected_pp_poison`` set to the *true*
  poison rate, information the scan never gets (the best case for that defence).
- ``knn``: k-NN disagreement on the input features (a row is flagged when the majority
  label of its 10 nearest rows differs from its own): the plain baseline for flips.
- ``isolation_forest``: scikit-learn's IsolationForest (contamination 'auto') on the
  input features: the plain baseline for outliers.

Both ART defences read the activations of the classifier's last layer
(``layer_names[-1]``). We wrap ART's ``PyTorchClassifier`` around an identity
module fed with the scan's own penultimate activations (``representation.embedding``:
the CNN's hidden dense layer for images, the MLP's hidden layer for tables, of the
model the scan trained on all rows, poison included), so that ART analyses exactly
the activations our detectors see. Each reference is optional: a missing package
makes it a recorded skip.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["REFERENCES", "isolation_forest", "knn_disagreement", "missing_references",
           "run_reference"]

Flags = tuple[np.ndarray, np.ndarray | None]

_NEEDS = {"datalab": ("cleanlab", "datasets"), "art_activation": ("art", "torch"),
          "art_spectral": ("art", "torch"), "art_spectral_oracle": ("art", "torch"),
          "knn": ("sklearn",), "isolation_forest": ("sklearn",)}
_PACKAGES = {"cleanlab": "cleanlab[datalab]", "datasets": "cleanlab[datalab]",
             "art": "adversarial-robustness-toolbox", "torch": "torch",
             "sklearn": "scikit-learn"}
#: Reference names, in table order.
REFERENCES: tuple[str, ...] = tuple(_NEEDS)


def missing_references(names: tuple[str, ...] | list[str] = REFERENCES) -> dict[str, str]:
    """Reference name -> the package it lacks, for references that cannot run here."""
    out = {}
    for name in names:
        lacking = [m for m in _NEEDS[name] if importlib.util.find_spec(m) is None]
        if lacking:
            out[name] = " and ".join(sorted({_PACKAGES[m] for m in lacking}))
    return out

def datalab(labels: np.ndarray, proba: np.ndarray, features: np.ndarray) -> Flags:
    """Datalab's label, outlier and near-duplicate issues; flagged if any issue type says so."""
    from cleanlab import Datalab

    lab = Datalab(data={"label": np.asarray(labels, dtype=np.int64)}, label_name="label",
                  verbosity=0)
    lab.find_issues(pred_probs=np.asarray(proba, dtype=np.float64),
                    features=np.asarray(features, dtype=np.float32),
                    issue_types={"label": {}, "outlier": {}, "near_duplicate": {}})
    issues = lab.get_issues()
    flag_cols = [c for c in issues.columns if c.startswith("is_") and c.endswith("_issue")]
    score_cols = [c for c in issues.columns if c.endswith("_score")]
    flags = issues[flag_cols].to_numpy(dtype=bool).any(axis=1)
    scores = 1.0 - issues[score_cols].to_numpy(dtype=np.float64).min(axis=1)
    return flags, scores


def _art_classifier(embedding: np.ndarray, n_classes: int) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier

    model = torch.nn.Sequential(OrderedDict(penultimate=torch.nn.Identity()))
    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(),
                             input_shape=(embedding.shape[1],), nb_classes=n_classes)


def art_activation(embedding: np.ndarray, labels: np.ndarray, n_classes: int,
                   seed: int) -> Flags:
    """ART's activation clustering with its defaults (flags only, no scores)."""
    from art.defences.detector.poison import ActivationDefence

    x = np.asarray(embedding, dtype=np.float32)
    defence = ActivationDefence(_art_classifier(x, n_classes), x, np.asarray(labels))
    np.random.seed(seed)  # ART's MiniBatchKMeans draws from numpy's global state
    _, is_clean = defence.detect_poison()
    return np.asarray(is_clean) == 0, None


def art_spectral(embedding: np.ndarray, labels: np.ndarray, n_classes: int,
                 expected_pp_poison: float = 0.33) -> Flags:
    """ART's spectral signatures; scores are within-class ranks of ART's own statistic."""
    from art.defences.detector.poison import SpectralSignatureDefense

    x = np.asarray(embedding, dtype=np.float32)
    y = np.asarray(labels)
    defence = SpectralSignatureDefense(_art_classifier(x, n_classes), x, y,
                                       expected_pp_poison=expected_pp_poison)
    _, is_clean = defence.detect_poison()
    scores = np.zeros(len(y))
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        raw = SpectralSignatureDefense.spectral_signature_scores(x[rows]).ravel()
        scores[rows] = (np.argsort(np.argsort(raw)) + 1) / len(rows)
    return np.asarray(is_clean) == 0, scores


def knn_disagreement(labels: np.ndarray, features: np.ndarray, k: int = 10) -> Flags:
    """Baseline: flag a row when the majority label of its k nearest rows differs."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=min(k + 1, len(labels))).fit(features).kneighbors(
        features, return_distance=False)[:, 1:]
    votes = np.stack([np.bincount(labels[row], minlength=labels.max() + 1) for row in idx])
    share = votes[np.arange(len(labels)), labels] / idx.shape[1]
    return votes.argmax(axis=1) != labels, 1.0 - share


def isolation_forest(features: np.ndarray, seed: int = 0) -> Flags:
    """Baseline: scikit-learn's IsolationForest (contamination 'auto') on the features."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(random_state=seed).fit(features)
    return forest.predict(features) == -1, -forest.score_samples(features)


def run_reference(name: str, *, labels: np.ndarray, n_classes: int, proba: np.ndarray,
                  features: np.ndarray, embedding: np.ndarray, true_rate: float | None,
                  seed: int = 0) -> Flags:
    """Flags (and scores, where the reference has them) of reference ``name``."""
    runners: dict[str, Callable[[], Flags]] = {
        "datalab": lambda: datalab(labels, proba, features),
        "art_activation": lambda: art_activation(embedding, labels, n_classes, seed),
        "art_spectral": lambda: art_spectral(embedding, labels, n_classes),
        "art_spectral_oracle": lambda: art_spectral(
            embedding, labels, n_classes, expected_pp_poison=min(max(true_rate or 0.0, 1e-4), 1.0)),
        "knn": lambda: knn_disagreement(np.asarray(labels), features),
        "isolation_forest": lambda: isolation_forest(features, seed),
    }
    return runners[name]()
