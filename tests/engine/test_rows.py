"""Row-wise work per block equals the one-call computation, bit for bit."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.neural_network import MLPClassifier

from poisonguard.detect.neighbours import _sklearn_search_to
from poisonguard.engine import InProcessEngine
from poisonguard.engine.reduce import using_engine
from poisonguard.engine.rows import map_rows
from poisonguard.errors import UsageError


def rows_and_models(n: int = 700, seed: int = 0) -> tuple[np.ndarray, list]:
    """float32 rows and fitted row-wise functions of the scan (isolation score, the
    search against a reference sample, an MLP's probabilities)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    forest = IsolationForest(n_estimators=20, max_samples=64, random_state=seed).fit(x)
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=seed).fit(x, y)
    reference = x[rng.choice(n, 50, replace=False)]
    return x, [forest.score_samples, mlp.predict_proba,
               functools.partial(_sklearn_search_to, reference, k=4)]


def same(a: object, b: object, atol: float = 0.0) -> bool:
    if isinstance(a, tuple):
        return all(same(p, q, atol) for p, q in zip(a, b, strict=True))  # type: ignore
    return np.allclose(a, b, rtol=0, atol=atol)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("block_rows", [1, 97, 700, 5_000])
def test_blocks_equal_one_call(block_rows: int) -> None:
    """Bit for bit, except blocks of one row, where BLAS takes its matrix-vector path
    for the MLP (float32 rounding; the scan's blocks are 65,536 rows)."""
    x, fns = rows_and_models()
    rows = np.random.default_rng(1).permutation(len(x))[:333]
    atol = 1e-6 if block_rows == 1 else 0.0
    for fn in fns:
        assert same(map_rows(fn, x, block_rows=block_rows), fn(x), atol)
        assert same(map_rows(fn, x, rows=rows, block_rows=block_rows), fn(x[rows]), atol)


def test_the_engine_in_scope_runs_the_blocks() -> None:
    seen: list[int] = []

    class Counting(InProcessEngine):
        def map(self, fn, items, **kw):  # noqa: ANN001, ANN003, ANN202
            seen.append(len(items))
            return super().map(fn, items, **kw)

    x = np.arange(10.0).reshape(5, 2)
    with using_engine(Counting()):
        assert map_rows(np.negative, x, block_rows=2).tolist() == (-x).tolist()
        map_rows(np.negative, x, block_rows=5)  # one block: no task
    assert seen == [3]
    with pytest.raises(UsageError, match="block_rows"):
        map_rows(np.negative, x, block_rows=0)
