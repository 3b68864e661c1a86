"""Exact data Shapley values of a k-nearest-neighbour classifier (Jia et al., 2019).

For one query with class ``c`` the utility of a training subset ``S`` is the share
of its ``k`` nearest members (in ``S``) labelled ``c``. Its Shapley values have a
closed form: sort the N training rows by distance to the query, nearest first
(``a_1 .. a_N``), then

    s(a_N) = [y(a_N) = c] / N
    s(a_i) = s(a_{i+1}) + ([y(a_i) = c] - [y(a_{i+1}) = c]) / k * min(k, i) / i

so one sort per query gives every row's value. A positive value means the row
raises the query's class (a near row of that class), a negative one that it lowers
it (a near row of another class). Model-agnostic: it works on any embedding.
"""

from __future__ import annotations

import numpy as np

from poisonguard.errors import UsageError

__all__ = ["knn_predict", "knn_shapley"]


def _distances(block: np.ndarray, xt: np.ndarray, sq_train: np.ndarray) -> np.ndarray:
    return np.asarray((block ** 2).sum(axis=1)[:, None] - 2.0 * block @ xt.T + sq_train[None, :])


def knn_predict(x_train: np.ndarray, y_train: np.ndarray, x_query: np.ndarray, *, k: int,
                n_classes: int) -> np.ndarray:
    """The majority class among each query's ``k`` nearest training rows (ties: lowest code).

    Examples
    --------
    >>> import numpy as np
    >>> knn_predict(np.array([[0.0], [1.0], [5.0]]), np.array([0, 0, 1]), np.array([[4.0]]),
    ...             k=1, n_classes=2).tolist()
    [1]
    """
    xt = np.asarray(x_train, dtype=np.float64)
    xq = np.asarray(x_query, dtype=np.float64)
    y = np.asarray(y_train)
    k = min(k, len(xt))
    near = np.argsort(_distances(xq, xt, (xt ** 2).sum(axis=1)), axis=1, kind="stable")[:, :k]
    votes = np.stack([np.bincount(y[row], minlength=n_classes) for row in near])
    return np.asarray(votes.argmax(axis=1))


def knn_shapley(x_train: np.ndarray, y_train: np.ndarray, x_query: np.ndarray,
                classes: np.ndarray, *, k: int = 10, batch: int = 256) -> np.ndarray:
    """Shapley value of every training row for each query's class, Q x N.

    Parameters
    ----------
    x_train : (N, D) array
        Training rows in the embedding (scaled features, activations, ...).
    y_train : (N,) int array
        Their labels.
    x_query : (Q, D) array
        Query rows in the same embedding.
    classes : (Q,) int array
        The class whose likelihood each query's utility measures (its predicted or
        given class).
    k : int
        Neighbours of the k-NN classifier (>= 1).
    batch : int
        Queries per distance block (memory: batch x N floats).

    Returns
    -------
    numpy.ndarray
        Q x N values; each query's values sum to its k-NN utility on all rows.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [5.0]]); y = np.array([0, 0, 1])
    >>> knn_shapley(x, y, np.array([[0.2]]), np.array([0]), k=1).round(3).tolist()
    [[0.5, 0.5, 0.0]]
    """
    if k < 1:
        raise UsageError("k must be >= 1")
    xt = np.asarray(x_train, dtype=np.float64)
    xq = np.asarray(x_query, dtype=np.float64)
    y = np.asarray(y_train)
    classes = np.asarray(classes)
    n = len(xt)
    out = np.zeros((len(xq), n))
    if n == 0:
        return out
    ranks = np.arange(1, n + 1, dtype=np.float64)
    weight = np.minimum(k, ranks[:-1]) / ranks[:-1] / k  # for i = 1 .. N-1
    sq_train = (xt ** 2).sum(axis=1)
    for start in range(0, len(xq), batch):
        block = xq[start:start + batch]
        order = np.argsort(_distances(block, xt, sq_train), axis=1, kind="stable")
        for j, row_order in enumerate(order):
            match = (y[row_order] == classes[start + j]).astype(np.float64)
            steps = (match[:-1] - match[1:]) * weight
            values = np.empty(n)
            values[-1] = match[-1] / n
            # s_i = s_N + sum_{m >= i} steps_m: a reversed cumulative sum.
            values[:-1] = values[-1] + np.cumsum(steps[::-1])[::-1]
            out[start + j, row_order] = values
    return out
