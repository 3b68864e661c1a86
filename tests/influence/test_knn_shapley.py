"""Exact k-NN Shapley values against the Shapley definition, by enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from poisonguard.errors import UsageError
from poisonguard.influence import knn_predict, knn_shapley


def _brute_force(x: np.ndarray, y: np.ndarray, q: np.ndarray, c: int, k: int) -> np.ndarray:
    dist = ((x - q) ** 2).sum(axis=1)
    n = len(x)

    def utility(subset: tuple[int, ...]) -> float:
        near = sorted(subset, key=lambda i: dist[i])[:k]
        return sum(y[i] == c for i in near) / k

    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for r in range(n):
            weight = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for subset in itertools.combinations(others, r):
                phi[i] += weight * (utility((*subset, i)) - utility(subset))
    return phi


@pytest.mark.parametrize("k", [1, 3])
def test_matches_the_definition(k: int) -> None:
    rng = np.random.default_rng(k)
    x, y = rng.normal(size=(7, 2)), rng.integers(0, 2, 7)
    q = rng.normal(size=(2, 2))
    values = knn_shapley(x, y, q, np.array([1, 0]), k=k)
    for j, c in enumerate((1, 0)):
        np.testing.assert_allclose(values[j], _brute_force(x, y, q[j], c, k), atol=1e-12)


def test_values_sum_to_the_utility_and_sign_follows_the_class() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(4, 1, (30, 2))])
    y = np.repeat([0, 1], 30)
    q = np.array([[0.0, 0.0]])
    values = knn_shapley(x, y, q, np.array([0]), k=5)[0]
    assert values.sum() == pytest.approx(1.0)  # all 5 nearest are class 0
    nearest = int(np.argmin((x ** 2).sum(axis=1)))
    assert values[nearest] == values.max() > 0
    assert knn_predict(x, y, q, k=5, n_classes=2).tolist() == [0]
    with pytest.raises(UsageError):
        knn_shapley(x, y, q, np.array([0]), k=0)
