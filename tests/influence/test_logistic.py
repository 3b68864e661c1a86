"""Influence functions of softmax regression against leave-one-out retraining."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from poisonguard.errors import UsageError
from poisonguard.influence import fit_softmax


@pytest.fixture(scope="module")
def tiny() -> tuple[np.ndarray, np.ndarray]:
    """80 rows, 3 features, 3 overlapping classes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=80) > 0).astype(int)
    y[x[:, 2] > 1.2] = 2
    return x, y


def test_scores_match_leave_one_out_retraining(tiny: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny
    model = fit_softmax(x, y, n_classes=3, l2=0.05)
    queries = np.array([[0.3, -0.2, 0.1], [-1.0, 0.5, 1.5]])
    classes = model.predict(queries)
    predicted = model.influence(queries, classes, solver="cg")
    base = np.log(model.proba(queries)[np.arange(2), classes])
    actual = np.zeros((2, len(x)))
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        refit = fit_softmax(x[keep], y[keep], n_classes=3, l2=0.05, init=model.theta)
        actual[:, i] = base - np.log(refit.proba(queries)[np.arange(2), classes])
    for q in range(2):
        assert spearmanr(predicted[q], actual[q]).statistic >= 0.9
        assert np.corrcoef(predicted[q], actual[q])[0, 1] >= 0.9


def test_solvers_agree(tiny: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny
    model = fit_softmax(x, y, n_classes=3, l2=0.05)
    q = x[:2]
    exact = model.influence(q, y[:2], solver="exact")
    np.testing.assert_allclose(model.influence(q, y[:2], solver="cg"), exact, rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(model.influence(q, y[:2], solver="lissa"), exact, rtol=1e-3,
                               atol=1e-6)
    with pytest.raises(UsageError, match="unknown solver"):
        model.influence(q, y[:2], solver="newton")


def test_hessian_vector_products_match_the_hessian(tiny: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny
    model = fit_softmax(x, y, n_classes=3, l2=0.05)
    v = np.random.default_rng(1).normal(size=model.theta.shape)
    np.testing.assert_allclose(model.hvp(v).ravel(), model.hessian() @ v.ravel(), atol=1e-12)


def test_self_influence_is_largest_for_a_mislabelled_row(
        tiny: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny
    y = y.copy()
    far = int(np.argmax(x[:, 0] + 0.5 * x[:, 1]))  # deep inside class 1
    y[far] = 0
    model = fit_softmax(x, y, n_classes=3, l2=0.05)
    assert int(np.argmax(model.self_influence())) == far


def test_penalty_must_be_positive(tiny: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(UsageError, match="l2"):
        fit_softmax(*tiny, n_classes=3, l2=0.0)
