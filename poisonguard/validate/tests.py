"""Two-sample tests between a baseline (a weighted row sample, or exact counts) and a
new batch, and the multiple-testing corrections.

Every test returns ``(statistic, p_value)``. The baseline side is either a weighted
sample (weights ``N_c / n_c`` from the stratified profile sample; effective sizes by
Kish's formula) or exact counts. Binned tests (chi-square, PSI, Jensen-Shannon) bin
numbers on baseline quantiles. PSI and Jensen-Shannon get asymptotic p-values from
their chi-square limits: ``PSI * mn/(m+n)`` and ``8 * JSD * mn/(m+n)`` are about
chi-square with ``bins - 1`` degrees of freedom on identical distributions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.spatial.distance import jensenshannon

from poisonguard.validate.summary import weighted_quantiles

__all__ = [
    "BINNED_TESTS",
    "SAMPLE_TESTS",
    "TESTS",
    "adjust",
    "binned",
    "chi2_test",
    "effective_size",
    "fisher_greater",
    "gamma_tail",
    "js_test",
    "ks_columns",
    "ks_test",
    "psi_test",
    "range_test",
    "wasserstein_test",
]

Result = tuple[float, float]


def effective_size(w: np.ndarray) -> float:
    """Kish's effective sample size of weights ``w``."""
    s2 = float(np.sum(w**2))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def ks_columns(base: np.ndarray, wb: np.ndarray, new: np.ndarray,
               wn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kolmogorov-Smirnov for every column at once (NaN = left out), weighted samples.

    The statistic is exact; the p-value is Kolmogorov's limit with Stephens'
    small-sample correction at ``n = m n / (m + n)`` (Kish's effective sizes), within
    a few percent of scipy's ``kstwo`` and much faster; conservative on tied data.
    """
    base = np.asarray(base, dtype=np.float64).reshape(len(base), -1)
    new = np.asarray(new, dtype=np.float64).reshape(len(new), -1)
    pooled = np.concatenate([base, new])
    w = np.concatenate([np.broadcast_to(wb[:, None], base.shape),
                        -np.broadcast_to(wn[:, None], new.shape)])
    nan = np.isnan(pooled)
    w = np.where(nan, 0.0, w)
    pooled = np.where(nan, np.inf, pooled)
    tb = np.where(w > 0, w, 0.0).sum(axis=0)
    tn = -np.where(w < 0, w, 0.0).sum(axis=0)
    sb, sn = np.where(w > 0, w / np.where(tb > 0, tb, 1), 0.0), np.where(
        w < 0, w / np.where(tn > 0, tn, 1), 0.0)
    order = np.argsort(pooled, axis=0, kind="stable")
    v = np.take_along_axis(pooled, order, axis=0)
    diff = np.cumsum(np.take_along_axis(sb + sn, order, axis=0), axis=0)
    last = np.ones_like(v, dtype=bool)
    last[:-1] = v[1:] != v[:-1]  # evaluate the CDFs only after the last of tied values
    d = np.where(last & np.isfinite(v), np.abs(diff), 0.0).max(axis=0, initial=0.0)
    m = tb**2 / np.maximum((np.where(w > 0, w, 0.0) ** 2).sum(axis=0), 1e-300)
    n = tn**2 / np.maximum((np.where(w < 0, w, 0.0) ** 2).sum(axis=0), 1e-300)
    en = np.sqrt(np.maximum(1.0, m * n / np.maximum(m + n, 1e-300)))
    p = np.where((tb > 0) & (tn > 0), stats.kstwobign.sf((en + 0.12 + 0.11 / en) * d), 1.0)
    return d, np.clip(p, 0.0, 1.0)


def ks_test(base: np.ndarray, wb: np.ndarray, new: np.ndarray, wn: np.ndarray) -> Result:
    """Kolmogorov-Smirnov on one column of weighted samples."""
    d, p = ks_columns(base[:, None], wb, new[:, None], wn)
    return float(d[0]), float(p[0])


def binned(base: np.ndarray, wb: np.ndarray, new: np.ndarray, wn: np.ndarray,
           bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Weighted counts of both samples in bins cut at baseline quantiles."""
    cuts = np.unique(weighted_quantiles(base, wb, np.linspace(0, 1, bins + 1)[1:-1]))
    cb = np.bincount(np.searchsorted(cuts, base, side="right"), weights=wb,
                     minlength=len(cuts) + 1)
    cn = np.bincount(np.searchsorted(cuts, new, side="right"), weights=wn,
                     minlength=len(cuts) + 1)
    return cb, cn


def _props(cb: np.ndarray, cn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = (cb + cn) > 0
    return cb[keep] / cb.sum(), cn[keep] / cn.sum(), keep


def chi2_test(cb: np.ndarray, cn: np.ndarray, m: float, n: float) -> Result:
    """Chi-square homogeneity of two count vectors (``m``, ``n``: effective sizes)."""
    p, q, _ = _props(cb, cn)
    if len(p) < 2 or m <= 0 or n <= 0:
        return 0.0, 1.0
    pooled = (m * p + n * q) / (m + n)
    stat = m * n / (m + n) * float(np.sum((p - q) ** 2 / pooled))
    return stat, float(stats.chi2.sf(stat, len(p) - 1))


def psi_test(cb: np.ndarray, cn: np.ndarray, m: float, n: float) -> Result:
    """Population stability index (half-count smoothing), chi-square p-value."""
    keep = (cb + cn) > 0
    k = int(keep.sum())
    if k < 2 or m <= 0 or n <= 0:
        return 0.0, 1.0
    p = (cb[keep] / cb.sum() * m + 0.5) / (m + 0.5 * k)
    q = (cn[keep] / cn.sum() * n + 0.5) / (n + 0.5 * k)
    psi = float(np.sum((q - p) * np.log(q / p)))
    return psi, float(stats.chi2.sf(psi * m * n / (m + n), k - 1))


def js_test(cb: np.ndarray, cn: np.ndarray, m: float, n: float) -> Result:
    """Jensen-Shannon distance (base 2, in [0, 1]), chi-square p-value."""
    p, q, _ = _props(cb, cn)
    if len(p) < 2 or m <= 0 or n <= 0:
        return 0.0, 1.0
    dist = float(jensenshannon(p, q, base=2))
    jsd_nats = float(jensenshannon(p, q)) ** 2
    return dist, float(stats.chi2.sf(8 * jsd_nats * m * n / (m + n), len(p) - 1))


def wasserstein_test(base: np.ndarray, wb: np.ndarray, new: np.ndarray, wn: np.ndarray, *,
                     scale: float = 1.0, permutations: int = 200, cap: int = 2000,
                     seed: int = 0) -> Result:
    """Wasserstein-1 distance / ``scale`` (the baseline std); permutation p-value."""
    scale = scale if scale > 0 else 1.0
    stat = float(stats.wasserstein_distance(new, base, wn, wb)) / scale
    rng = np.random.default_rng(seed)
    b = rng.choice(base, size=min(cap, len(base)), replace=False, p=wb / wb.sum())
    a = rng.choice(new, size=min(cap, len(new)), replace=False, p=wn / wn.sum())
    obs = stats.wasserstein_distance(a, b)
    pooled = np.concatenate([a, b])
    null = np.empty(permutations)
    for i in range(permutations):
        perm = rng.permutation(pooled)
        null[i] = stats.wasserstein_distance(perm[:len(a)], perm[len(a):])
    return stat, gamma_tail(obs, null)


def gamma_tail(observed: float, null: np.ndarray) -> float:
    """P-value of ``observed`` under a gamma fitted to permutation statistics.

    A permutation p-value cannot go below ``1 / (B + 1)``, too coarse once corrected
    for multiple testing; the gamma fit (as for MMD in Gretton et al., 2012)
    extrapolates the tail. The empirical p-value bounds it from below when the
    observation lies inside the permutation range.
    """
    null = np.asarray(null, dtype=float)
    empirical = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + len(null))
    mean, var = float(null.mean()), float(null.var())
    if mean <= 0 or var <= 0:
        return empirical
    fitted = float(stats.gamma.sf(observed, mean**2 / var, scale=var / mean))
    return fitted if observed > null.max() else max(fitted, empirical)


def fisher_greater(a: ArrayLike, n: ArrayLike, b: ArrayLike, m: ArrayLike) -> np.ndarray:
    """One-sided Fisher exact p-values that ``a / n`` exceeds ``b / m`` (vectorised)."""
    ai, ni, bi, mi = (np.asarray(v, dtype=np.int64) for v in (a, n, b, m))
    return np.asarray(stats.hypergeom.sf(ai - 1, ni + mi, ai + bi, ni), dtype=float)


def range_test(outside: int, n: int, n_base: int, tails: int = 2) -> float:
    """P-value of ``outside`` of ``n`` new values falling outside the baseline's
    [min, max] (``tails=1``: above its max): under exchangeability the mass outside
    is Beta(tails, N + 1 - tails), so the count is beta-binomial (exact for
    continuous data, conservative with ties)."""
    if outside <= 0 or n_base < 2:
        return 1.0
    return float(stats.betabinom.sf(outside - 1, n, tails, n_base + 1 - tails))


def adjust(p_values: np.ndarray, method: str = "holm") -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjustment."""
    p = np.asarray(p_values, dtype=float)
    k = len(p)
    if k == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (k - np.arange(k)) * ranked))
    elif method == "bh":
        adj = np.minimum.accumulate((k / np.arange(1, k + 1) * ranked)[::-1])[::-1]
        adj = np.minimum(adj, 1.0)
    else:
        raise ValueError(f"unknown correction {method!r}")
    out = np.empty(k)
    out[order] = adj
    return out


SAMPLE_TESTS: dict[str, Callable[..., Result]] = {"ks": ks_test, "wasserstein": wasserstein_test}
BINNED_TESTS: dict[str, Callable[[np.ndarray, np.ndarray, float, float], Result]] = {
    "chi2": chi2_test, "psi": psi_test, "jensen_shannon": js_test}
TESTS = (*SAMPLE_TESTS, *BINNED_TESTS)
