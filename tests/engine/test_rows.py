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
    """Bit for bit, except the MLP's matrix products on blocks smaller than the call:
    BLAS may round float32 differently by block shape (blocks of one row take its
    matrix-vector path; on an Intel Sapphire Rapids, OpenBLAS's AVX-512 kernel gives
    blocks of 97 rows a last-bit difference, 6e-8; the scan's blocks are 65,536 rows).
    The isolation score and the neighbour search stay bit for bit."""
    x, fns = rows_and_models()
    rows = np.random.default_rng(1).permutation(len(x))[:333]
    for fn in fns:
        blas = fn is fns[1] and block_rows < len(x)  # the MLP, blocked
        atol = 1e-6 if blas else 0.0
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


def _wide(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: 64 float64 values and one int32."""
    return np.repeat(block, 32, axis=1).astype(np.float64), np.arange(len(block), dtype=np.int32)


def test_the_blocks_are_written_into_one_result_never_held_twice() -> None:
    """The result is allocated once and each block written into it as it arrives:
    the peak is the result plus about one block (their concatenation held the blocks
    and the result side by side: twice the result)."""
    import tracemalloc

    x = np.random.default_rng(0).normal(size=(40_000, 2))
    blocks = [_wide(x[s:s + 1_000]) for s in range(0, len(x), 1_000)]
    expected = tuple(np.concatenate(column) for column in zip(*blocks, strict=True))
    result_bytes = sum(a.nbytes for a in expected)
    del blocks
    tracemalloc.start()
    try:
        got = map_rows(_wide, x, block_rows=1_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(np.array_equal(a, b) and a.dtype == b.dtype
               for a, b in zip(got, expected, strict=True))
    assert result_bytes < peak < 1.2 * result_bytes  # 20.6 MB result; the blocks: 0.5 MB each


def test_a_block_of_another_dtype_or_width_is_refused() -> None:
    def changing(block: np.ndarray) -> np.ndarray:
        return block.astype(np.float32 if block[0, 0] >= 4 else np.float64)

    x = np.arange(12.0).reshape(6, 2)
    with pytest.raises(ValueError, match="rows 2-3 gave"):
        map_rows(changing, x, block_rows=2)
    with pytest.raises(ValueError, match="the first block gave"):
        map_rows(lambda b: b[:, :1] if b[0, 0] else b, x, block_rows=3)
