"""Representations from a small MLP: out-of-fold probabilities and hidden activations.

Works without the torch extra (scikit-learn's MLP). Used for tabular data and for
user-supplied embeddings of any modality (images always go through the CNN of
``represent/image.py``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from poisonguard.engine.rows import map_rows
from poisonguard.progress import NullProgress, Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.pixels import standardise_blocked

__all__ = ["BLOCK_ROWS", "hidden_units", "mlp_representation", "scale_features", "scale_table"]

#: Rows per block when the trained MLP is applied to the data.
BLOCK_ROWS = 65_536
#: Above this many rows the MLP's hidden layer (the embedding) is :data:`NARROW_HIDDEN`
#: units instead of 64: at a million rows a 64-wide float32 embedding alone is 1.3x a
#: 50-column table, and the models still train on a 20,000-row sample.
WIDE_MAX_ROWS = 200_000
NARROW_HIDDEN = 32
#: Numeric columns scaled together by :func:`scale_table` (float64 for these only).
SCALE_GROUP_COLUMNS = 8


def hidden_units(n_rows: int) -> int:
    """Units of the MLP's hidden layer for ``n_rows`` rows: 64, or 32 above 200,000.

    Examples
    --------
    >>> hidden_units(10_000), hidden_units(1_000_000)
    (64, 32)
    """
    return 64 if n_rows <= WIDE_MAX_ROWS else NARROW_HIDDEN


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


def scale_table(x: np.ndarray, kinds: Sequence[str], *,
                group_columns: int = SCALE_GROUP_COLUMNS) -> np.ndarray:
    """Robust scaling of a typed table's encoding.

    ``numeric`` columns become ``(x - median) / (IQR / 1.349)`` (the standard
    deviation when the IQR is 0, e.g. a mostly-zero column; 1 when constant), so
    that a few extreme values do not squash the rest. ``binary`` columns (one-hot
    categories, missing indicators) stay 0/1.

    Computed ``group_columns`` numeric columns at a time in float64: the float32
    result is the only full-size array made (the same values as scaling all
    columns at once).

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0], [100.0, 0.0]])
    >>> scale_table(x, ["numeric", "binary"])[:, 1].tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    x = np.asarray(x)
    if len(kinds) != x.shape[1]:
        raise ValueError("one kind per column")
    out = np.array(x, dtype=np.float32)
    numeric = np.flatnonzero(np.asarray(kinds) != "binary")
    if len(numeric) and len(x):
        for start in range(0, len(numeric), group_columns):
            group = numeric[start:start + group_columns]
            cols = np.asarray(x[:, group], dtype=np.float64)
            q1, median, q3 = np.percentile(cols, [25, 50, 75], axis=0)
            scale = (q3 - q1) / 1.349
            std = cols.std(axis=0)
            scale = np.where(scale > 1e-12, scale, np.where(std > 1e-12, std, 1.0))
            out[:, group] = (cols - median) / scale
    return out


def _fit_mlp(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray, *, hidden: int, seed: int, max_rows: int
) -> MLPClassifier:
    """An MLP on ``x[rows]``, on a seeded sample of ``max_rows`` of them when more.

    Only the sampled rows are copied (``x[rows][keep]`` is ``x[rows[keep]]``).
    """
    rng = np.random.default_rng(seed)
    if len(rows) > max_rows:
        rows = rows[rng.choice(len(rows), size=max_rows, replace=False)]
    x, y = x[rows], y[rows]
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


class _AllRowsEmbedding:
    """The hidden activations of every row under the model trained on all rows.

    Called, it trains that model the first time and keeps it (its weights: a
    features x hidden matrix, small beside the data), so a later call (the report's,
    after the scan's memo has gone) is one forward pass, not a second training. The
    activations themselves are not kept: each call computes them again (N x hidden
    floats, which the caller holds for as long as it needs them).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, *, hidden: int, seed: int,
                 max_rows: int) -> None:
        self._x, self._y = x, y
        self._hidden, self._seed, self._max_rows = hidden, seed, max_rows
        self._model: MLPClassifier | None = None

    def __call__(self) -> np.ndarray:
        if self._model is None:
            self._model = _fit_mlp(self._x, self._y, np.arange(len(self._x)),
                                   hidden=self._hidden, seed=self._seed,
                                   max_rows=self._max_rows)
        return _hidden(self._model, self._x)


def _hidden(model: MLPClassifier, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The hidden layer's activations (float32) of ``x[rows]`` (all rows when None).

    Computed :data:`BLOCK_ROWS` rows at a time, on the scan's engine
    (:func:`~poisonguard.engine.rows.map_rows`, which writes the blocks into one
    float32 result): the float64 products exist for one block only.
    """
    layer = functools.partial(_relu_layer, model.coefs_[0], model.intercepts_[0])
    return map_rows(layer, x, rows=rows, block_rows=BLOCK_ROWS, stage="embedding rows")


def _relu_layer(weights: np.ndarray, bias: np.ndarray, block: np.ndarray) -> np.ndarray:
    """One block's hidden activations, float32."""
    return np.maximum(block @ weights + bias, 0.0).astype(np.float32)


def _proba(model: MLPClassifier, x: np.ndarray, rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Predicted probabilities of ``x[rows]``, :data:`BLOCK_ROWS` rows at a time, on the
    scan's engine (:func:`~poisonguard.engine.rows.map_rows`)."""
    out = np.zeros((len(rows), n_classes), dtype=np.float64)
    out[:, model.classes_] = map_rows(model.predict_proba, x, rows=rows, block_rows=BLOCK_ROWS,
                                      stage="predicting rows")
    return out


def mlp_representation(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    hidden: int | None = None,
    seed: int = 0,
    max_train_rows: int = 20_000,
    progress: Progress | None = None,
    model_name: str = "mlp",
    keep_oof_embedding: bool = True,
    kinds: Sequence[str] | None = None,
    defer_embedding: bool = False,
) -> Representation:
    """Scale ``features``, train ``folds`` MLPs out-of-fold and one on all rows.

    ``kinds`` (a typed table's column kinds) selects :func:`scale_table`; without it
    the columns are standardised. ``keep_oof_embedding=False`` skips the out-of-fold
    activations (N x ``hidden`` floats) when no detector reads them. ``hidden``
    defaults to :func:`hidden_units` of the row count (narrower for large data).
    ``defer_embedding=True`` trains the out-of-fold models but leaves the all-rows model
    and its embedding (its activations, N x ``hidden``) to ``Representation.embed``
    (:meth:`~poisonguard.represent.Representation.with_embedding`): the same values,
    trained and computed when read (a scan none of whose detectors reads the
    embedding trains ``folds`` models, not ``folds + 1``).

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
    hidden = hidden_units(len(x)) if hidden is None else hidden
    y = np.asarray(labels)
    proba = np.zeros((len(x), n_classes), dtype=np.float64)
    oof = np.zeros((len(x), hidden), dtype=np.float32) if keep_oof_embedding else None
    n_splits = int(min(folds, np.bincount(y).min()))
    n_splits = max(n_splits, 2)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    total = n_splits + 1
    for k, (train, held) in enumerate(splitter.split(x, y)):
        progress.update(f"training fold {k + 1}/{n_splits}", done=k, total=total)
        model = _fit_mlp(x, y, train, hidden=hidden, seed=seed + k, max_rows=max_train_rows)
        proba[held] = _proba(model, x, held, n_classes)
        if oof is not None:
            oof[held] = _hidden(model, x, held)
    embed = _AllRowsEmbedding(x, y, hidden=hidden, seed=seed, max_rows=max_train_rows)
    embedding = np.zeros((len(x), 0), np.float32)
    if not defer_embedding:  # else the all-rows model is trained when its embedding is read
        progress.update("training on all rows", done=n_splits, total=total)
        embedding = embed()
    progress.update("representation ready", done=total, total=total)
    return Representation(
        features=x, embedding=embedding, proba=proba, embedding_oof=oof,
        model=f"{model_name}({hidden})", layer="hidden",
        meta={"folds": n_splits, "train_rows_cap": max_train_rows},
        embed=embed if defer_embedding else None,
    )
