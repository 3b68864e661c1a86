"""The statistical tests and the multiple-testing corrections."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from poisonguard.validate.tests import (
    adjust,
    binned,
    chi2_test,
    fisher_greater,
    gamma_tail,
    js_test,
    ks_columns,
    psi_test,
    range_test,
    wasserstein_test,
)


def test_ks_matches_scipy_and_handles_nan_and_weights() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(120, 3)), rng.normal(0.3, 1, size=(150, 3))
    a[5, 1] = np.nan
    d, p = ks_columns(a, np.ones(120), b, np.ones(150))
    for j in range(3):
        ref = stats.ks_2samp(a[~np.isnan(a[:, j]), j], b[:, j], method="asymp")
        assert d[j] == pytest.approx(ref.statistic)
        assert p[j] == pytest.approx(ref.pvalue, rel=0.05)
    # integer weights act like repeated rows
    w = rng.integers(1, 4, size=120).astype(float)
    dw, _ = ks_columns(a[:, :1], w, b[:, :1], np.ones(150))
    rep = np.repeat(a[:, 0], w.astype(int))
    assert dw[0] == pytest.approx(stats.ks_2samp(rep, b[:, 0]).statistic)


def test_ks_null_calibration() -> None:
    rng = np.random.default_rng(1)
    _, p = ks_columns(rng.normal(size=(100, 2000)), np.ones(100),
                      rng.normal(size=(80, 2000)), np.ones(80))
    assert 0.02 < (p < 0.05).mean() < 0.07


def test_binned_tests_zero_on_identical_and_large_on_shift() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=5000)
    cb, cn = binned(x, np.ones(5000), x, np.ones(5000), bins=10)
    for fn in (chi2_test, psi_test, js_test):
        stat, p = fn(cb, cn, 5000, 5000)
        assert stat == pytest.approx(0, abs=1e-9) and p > 0.99
    y = rng.normal(1, 1, size=5000)
    cb, cn = binned(x, np.ones(5000), y, np.ones(5000), bins=10)
    psi, p = psi_test(cb, cn, 5000, 5000)
    assert psi > 0.5 and p < 1e-10
    dist, p = js_test(cb, cn, 5000, 5000)
    assert 0.2 < dist < 1 and p < 1e-10


def test_wasserstein_scaled_and_permutation_p() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(size=300)
    stat, p = wasserstein_test(a, np.ones(300), b, np.ones(300), scale=1.0, permutations=100)
    assert stat < 0.2 and p > 0.01
    stat, p = wasserstein_test(a, np.ones(300), b + 1, np.ones(300), scale=1.0, permutations=100)
    assert stat == pytest.approx(1, abs=0.2) and p < 1e-6


def test_gamma_tail_extrapolates_beyond_permutations() -> None:
    null = np.random.default_rng(4).gamma(2.0, 1.0, size=200)
    assert gamma_tail(30.0, null) < 1e-8
    assert gamma_tail(float(np.median(null)), null) > 0.3


def test_fisher_and_range_tests() -> None:
    assert fisher_greater(10, 20, 1, 20) < 0.01
    assert fisher_greater(1, 20, 10, 20) > 0.99
    assert range_test(0, 100, 100) == 1.0
    assert range_test(2, 100, 100) > 0.3  # about 2 expected
    assert range_test(30, 100, 100) < 1e-6
    # exact for exchangeable continuous data
    rng = np.random.default_rng(5)
    hits = sum(range_test(int(((b < a.min()) | (b > a.max())).sum()), 50, 50) < 0.05
               for a, b in (rng.normal(size=(2, 50)) for _ in range(1000)))
    assert hits / 1000 <= 0.05


def test_holm_and_bh() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2])
    np.testing.assert_allclose(adjust(p, "holm"), [0.04, 0.09, 0.09, 0.2])
    np.testing.assert_allclose(adjust(p, "bh"), [0.04, 0.0533333, 0.0533333, 0.2], rtol=1e-5)
    assert len(adjust(np.empty(0))) == 0
    with pytest.raises(ValueError):
        adjust(p, "nope")
