"""Representations from a small MLP: out-of-fold probabilities and hidden activations.

Works without the torch extra (scikit-learn's MLP). Used for tabular data and for
user-supplied embeddings of any modality (images always go through the CNN of
``represent/image.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from poisonguard.progress import NullProgress, Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.pixels import standardise_blocked

__all__ = ["mlp_representation", "scale_features", "scale_table"]


def scale_features(x: np.ndarray) -> np.ndarray:
    """Standardise columns (constant columns become 0): arrays without a schema.

    scikit-learn's ``StandardScaler`` in float64, then float32, bit for bit, computed
    a block of rows at a time (no full float64 copy; :func:`standardise_blocked`).

    Examples
    --------
    >>> scale_features(np.array([[1.0, 5.0], [3.0, 5.0]])).tolist()  # constant column: 0
    [[-1.0, 0.0], [1.0, 0.0]]
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"scale_features needs an N x D array, got shape {x.shape}")
    return standardise_blocked(x)


def scale_table(x: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """Robust scaling of a typed table's encoding.

    ``numeric`` columns become ``(x - median) / (IQR / 1.349)`` (the standard
    deviation when the IQR is 0, e.g. a mostly-zero column; 1 when constant), so
    that a few extreme values do not squash the rest. ``binary`` columns (one-hot
    categories, missing indicators) stay 0/1.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [100.0, 1.0]])
    >>> scaled = scale_table(x, ["numeric", "binary"])  # float32; 100 stays far out
    >>> [[round(float(v), 2) for v in row] for row in scaled]
    [[-0.08, 0.0], [-0.03, 1.0], [0.03, 0.0], [5.16, 1.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    if len(kinds) != x.shape[1]:
        raise ValueError("one kind per column")
    out = x.copy()
    numeric = np.flatnonzero(np.asarray(kinds) != "binary")
    if len(numeric) and len(x):
        cols = x[:, numeric]
        q1, median, q3 = np.percentile(cols, [25, 50, 75], axis=0)
        scale = (q3 - q1) / 1.349
        std = cols.std(axis=0)
        scale = np.where(scale > 1e-12, scale, np.where(std > 1e-12, std, 1.0))
        out[:, numeric] = (cols - median) / scale
    return np.asarray(out, dtype=np.float32)


def _fit_mlp(
    x: np.ndarray, y: np.ndarray, *, hidden: int, seed: int, max_rows: int
) -> MLPClassifier:
    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        keep = rng.choice(len(x), size=max_rows, replace=False)
        x, y = x[keep], y[keep]
    # Small data: train to convergence. Large data (capped sample): fewer, larger-batch
    # epochs, each of which already sees many rows, with early stopping on a held-out
    # tenth (about 1 s per model on 20k x 50 rows).
    large = len(x) > 5_000
    model = MLPClassifier(
        hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=30 if large else 300,
        random_state=seed, early_stopping=large, n_iter_no_change=5,
        batch_size=512 if large else "auto", learning_rate_init=2e-3 if large else 1e-3,
    )
    # One BLAS thread: a 512 x 64 batch is too small for threads to pay, and on a busy
    # machine spinning threads cost 2-8x the wall time (measured: 7 s vs 15 s at 100k).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def _hidden(model: MLPClassifier, x: np.ndarray) -> np.ndarray:
    h = x @ model.coefs_[0] + model.intercepts_[0]
    return np.asarray(np.maximum(h, 0.0), dtype=np.float32)


def _proba(model: MLPClassifier, x: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(x), n_classes), dtype=np.float64)
    out[:, model.classes_] = model.predict_proba(x)
    return out


def mlp_representation(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    hidden: int = 64,
    seed: int = 0,
    max_train_rows: int = 20_000,
    progress: Progress | None = None,
    model_name: str = "mlp",
    keep_oof_embedding: bool = True,
    kinds: Sequence[str] | None = None,
) -> Representation:
    """Scale ``features``, train ``folds`` MLPs out-of-fold and one on all rows.

    ``kinds`` (a typed table's column kinds) selects :func:`scale_table`; without it
    the columns are standardised. ``keep_oof_embedding=False`` skips the out-of-fold
    activations (N x ``hidden`` floats) when no detector reads them.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> rep = mlp_representation(wine.features, wine.labels, 3, folds=2, hidden=8)
    >>> rep.embedding.shape, rep.proba.shape, rep.model, rep.meta["folds"]
    ((178, 8), (178, 3), 'mlp(8)', 2)
    """
    progress = progress or NullProgress()
    x = scale_features(features) if kinds is None else scale_table(features, kinds)
    y = np.asarray(labels)
    proba = np.zeros((len(x), n_classes), dtype=np.float64)
    oof = np.zeros((len(x), hidden), dtype=np.float32) if keep_oof_embedding else None
    n_splits = int(min(folds, np.bincount(y).min()))
    n_splits = max(n_splits, 2)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    total = n_splits + 1
    for k, (train, held) in enumerate(splitter.split(x, y)):
        progress.update(f"training fold {k + 1}/{n_splits}", done=k, total=total)
        model = _fit_mlp(x[train], y[train], hidden=hidden, seed=seed + k, max_rows=max_train_rows)
        proba[held] = _proba(model, x[held], n_classes)
        if oof is not None:
            oof[held] = _hidden(model, x[held])
    progress.update("training on all rows", done=n_splits, total=total)
    full = _fit_mlp(x, y, hidden=hidden, seed=seed, max_rows=max_train_rows)
    progress.update("representation ready", done=total, total=total)
    return Representation(
        features=x, embedding=_hidden(full, x), proba=proba, embedding_oof=oof,
        model=f"{model_name}({hidden})", layer="hidden",
        meta={"folds": n_splits, "train_rows_cap": max_train_rows},
    )
