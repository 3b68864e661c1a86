"""Row-wise work on the scan's engine: a function of each row alone, per block of rows.

A detector's per-row score often needs only the row and something small fitted
beforehand on a bounded sample (an isolation forest, a reference sample for a
neighbour-distance statistic, a trained MLP). :func:`map_rows` applies such a
function to blocks of :data:`BLOCK_ROWS` rows on the engine in scope
(:func:`~poisonguard.engine.reduce.using_engine`, entered by ``scan --engine``):
the rows are shared once (:func:`~poisonguard.engine.reduce.share`: once per array
in a scan), each task reads its block and calls the function, and each block's
result is written, as it arrives, into one result array allocated from the first
block's shape and dtype. The driver keeps only the per-row results, once: never
the blocks and their concatenation side by side.

The blocks are the same on every engine, and the in-process engine calls the
function on the same blocks, so every engine returns the same bits. Data of one
block (at most :data:`BLOCK_ROWS` rows) runs here, without a task: shipping it would
cost more than the work.

Examples
--------
>>> x = np.arange(10.0).reshape(5, 2)
>>> map_rows(functools.partial(np.sum, axis=1), x, block_rows=2).tolist()
[1.0, 5.0, 9.0, 13.0, 17.0]
>>> map_rows(functools.partial(np.sum, axis=1), x, rows=np.array([4, 0]),
...          block_rows=1).tolist()
[17.0, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np

from poisonguard.engine.base import Engine, Handle
from poisonguard.engine.reduce import current_engine, share
from poisonguard.errors import UsageError

__all__ = ["BLOCK_ROWS", "map_rows"]

#: Rows per block (and per task) of :func:`map_rows`: the representation's own block.
BLOCK_ROWS = 65_536

#: What a row function returns: one array, or a tuple of arrays (each per row).
R = TypeVar("R", np.ndarray, tuple[np.ndarray, ...])
Result = np.ndarray | tuple[np.ndarray, ...]


@dataclass(frozen=True)
class _Block:
    """Rows ``start .. stop - 1`` of ``x``, or of ``x[rows]`` when ``rows`` is given."""

    start: int
    stop: int
    rows: np.ndarray | None


def _apply(block: _Block, *, fn: Callable[[np.ndarray], R], x: Handle[np.ndarray]) -> R:
    """``fn`` of one block's rows (runs on a worker)."""
    values = x.get()
    return fn(values[block.start:block.stop] if block.rows is None else values[block.rows])


def _columns(part: Result) -> tuple[np.ndarray, ...]:
    """A block's result as a tuple of arrays (one for a function that returns one)."""
    return tuple(np.asarray(a) for a in part) if isinstance(part, tuple) else (np.asarray(part),)


def _gather(parts: Iterator[Result], blocks: Sequence[_Block]) -> Result:
    """The blocks' results written in row order, as they arrive, into one array per
    result allocated from the first block's trailing shape and dtype: the values of
    their concatenation. A block whose result differs in dtype or shape is an error."""
    outs: tuple[np.ndarray, ...] = ()
    tuples = False
    for block, part in zip(blocks, parts, strict=True):  # one result per block
        columns = _columns(part)
        if not outs:
            tuples = isinstance(part, tuple)
            outs = tuple(np.empty((blocks[-1].stop, *col.shape[1:]), dtype=col.dtype)
                         for col in columns)
        rows = block.stop - block.start
        got = [(col.shape, col.dtype) for col in columns]
        if got != [((rows, *out.shape[1:]), out.dtype) for out in outs]:
            raise ValueError(f"map_rows: rows {block.start}-{block.stop - 1} gave "
                             f"{[(shape, dtype.str) for shape, dtype in got]}; the first block "
                             f"gave {[(out.shape[1:], out.dtype.str) for out in outs]} per row")
        for out, col in zip(outs, columns, strict=True):
            out[block.start:block.stop] = col
    return outs if tuples else outs[0]


def map_rows(fn: Callable[[np.ndarray], R], x: np.ndarray, *, rows: np.ndarray | None = None,
             block_rows: int = BLOCK_ROWS, engine: Engine | None = None,
             stage: str = "scoring rows") -> R:
    """``fn(x[rows])`` computed on ``engine`` one block of ``block_rows`` rows at a time.

    Parameters
    ----------
    fn
        A function of an M x ... array of rows that returns M results (an array,
        or a tuple of arrays, whose first axis is the rows): each result must
        depend on its row alone.
        On a cluster it is pickled with what it holds (a fitted model): keep that
        small.
    x
        The rows (N x ...).
    rows
        Row indices into ``x`` (default: every row, in order).
    block_rows
        Rows per block and per task.
    engine
        Default: the engine in scope (:func:`~poisonguard.engine.reduce.current_engine`).
    stage
        Progress text of the engine's tasks.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        The blocks' results in row order (element by element for tuples), written
        into one array allocated from the first block's shape and dtype: the same
        values as their concatenation, without holding both.

    Raises
    ------
    ValueError
        When a block's result has another dtype or trailing shape than the first's,
        or not one row per row.

    Examples
    --------
    >>> map_rows(np.negative, np.array([[1.0], [2.0], [3.0]]), block_rows=2).ravel().tolist()
    [-1.0, -2.0, -3.0]
    """
    if block_rows < 1:
        raise UsageError("block_rows must be at least 1")
    x = np.asarray(x)
    n = len(x) if rows is None else len(rows)
    starts = range(0, n, block_rows)
    if n <= block_rows:  # one block: here, without a task
        return fn(x if rows is None else x[rows])
    engine = engine or current_engine()
    blocks = [_Block(start, min(start + block_rows, n),
                     None if rows is None else np.asarray(rows[start:start + block_rows]))
              for start in starts]
    shared = share(x, engine)
    parts = engine.map(functools.partial(_apply, fn=fn, x=shared), blocks, stage=stage)
    return cast(R, _gather(parts, blocks))
