"""The MLP representation: a deferred embedding is the eager one, computed when read."""

from __future__ import annotations

import numpy as np

from poisonguard.datasets import builtin_dataset
from poisonguard.represent import Representation, build_representation, mlp_representation


def test_a_deferred_embedding_is_the_eager_one_bit_for_bit() -> None:
    wine = builtin_dataset("wine")
    eager = mlp_representation(wine.features, wine.labels, 3, folds=2, hidden=8, seed=1)
    lazy = mlp_representation(wine.features, wine.labels, 3, folds=2, hidden=8, seed=1,
                              defer_embedding=True)
    assert lazy.embedding.shape == (len(wine), 0) and lazy.embed is not None
    assert eager.embed is None and eager.with_embedding() is eager
    full = lazy.with_embedding()
    assert full.embed is None and full.embedding.dtype == np.float32
    np.testing.assert_array_equal(full.embedding, eager.embedding)
    np.testing.assert_array_equal(lazy.proba, eager.proba)
    np.testing.assert_array_equal(lazy.features, eager.features)
    # computed again at each call, never kept by the deferred representation
    assert lazy.with_embedding().embedding is not full.embedding
    assert lazy.embedding.shape[1] == 0


def test_build_representation_defers_only_when_asked() -> None:
    wine = builtin_dataset("wine")
    assert build_representation(wine, folds=2).embed is None
    rep = build_representation(wine, folds=2, defer_embedding=True)
    assert isinstance(rep, Representation) and rep.with_embedding().embedding.shape[1] == 64


def test_the_embedding_is_the_blockwise_product_bit_for_bit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import functools

    import poisonguard.represent.tabular as tabular

    wine = builtin_dataset("wine")
    rep = mlp_representation(wine.features, wine.labels, 3, folds=2, hidden=8,
                             defer_embedding=True)
    # the all-rows model the deferred embedding trains when read (the same seed)
    model = tabular._fit_mlp(rep.features, wine.labels, np.arange(len(wine)), hidden=8, seed=0,
                             max_rows=20_000)
    layer = functools.partial(tabular._relu_layer, model.coefs_[0], model.intercepts_[0])
    monkeypatch.setattr(tabular, "BLOCK_ROWS", 7)
    # each block's product, concatenated (float32 products depend on the block's rows,
    # so the blocks must be the same ones): map_rows writes them into one array
    x = rep.features
    former = np.concatenate([layer(x[s:s + 7]) for s in range(0, len(x), 7)])
    np.testing.assert_array_equal(rep.with_embedding().embedding, former)
    rows = np.arange(3, 170, 2)
    np.testing.assert_array_equal(
        tabular._hidden(model, x, rows),
        np.concatenate([layer(x[rows[s:s + 7]]) for s in range(0, len(rows), 7)]))
