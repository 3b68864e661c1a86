"""Tests on whole rows: MMD drift and label consistency against the baseline sample.

Both work on the numeric columns, standardised with the baseline's mean and std
(missing values imputed by the baseline mean), and on the profile's row sample, so
the baseline never has to be loaded again.

- :func:`mmd_test`: maximum mean discrepancy with a Gaussian kernel (median
  bandwidth) and a permutation p-value (gamma fit to the permutation statistics, so
  the p-value can be small enough to survive the correction); the baseline side is
  a proportional draw from the stratified sample.
- :func:`label_consistency`: each new row's k nearest baseline rows vote (weighted
  by ``N_c / n_c``); the rate of rows whose neighbours outvote their label is
  compared with the same rate inside the baseline (leave-one-out) by a one-sided
  Fisher test. The disagreeing rows are the ones to blame. Near-duplicates of a
  baseline row carrying another label are counted the same way, and rows farther
  from their neighbours than any baseline row is from its own are outliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poisonguard.validate.tests import fisher_greater, gamma_tail, range_test

__all__ = ["Consistency", "label_consistency", "mmd_test", "nearest", "standardize"]


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` with NaN imputed by the mean and constant columns kept at 0."""
    scale = np.where(std > 0, std, 1.0)
    z = (np.asarray(x, dtype=np.float64) - mean) / scale
    return np.where(np.isnan(z), 0.0, z)


def proportional_draw(w: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a draw without replacement with probability proportional to ``w``."""
    if size >= len(w):
        return np.arange(len(w))
    return np.sort(rng.choice(len(w), size=size, replace=False, p=w / w.sum()))


def mmd_test(base: np.ndarray, wb: np.ndarray, new: np.ndarray, *, rows: int = 500,
             permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """MMD^2 (biased) between standardised samples and its permutation p-value."""
    rng = np.random.default_rng(seed)
    a = base[proportional_draw(wb, rows, rng)]
    b = new[proportional_draw(np.ones(len(new)), rows, rng)]
    if len(a) < 2 or len(b) < 2 or a.shape[1] == 0:
        return 0.0, 1.0
    pooled = np.concatenate([a, b])
    sq = np.einsum("ij,ij->i", pooled, pooled)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0)
    pick = rng.choice(len(pooled), size=min(len(pooled), 300), replace=False)
    med = np.median(d2[np.ix_(pick, pick)][np.triu_indices(len(pick), 1)])
    k = np.exp(-d2 / (med if med > 0 else 1.0))
    s = np.empty((len(pooled), permutations + 1))
    s[:, 0] = np.r_[np.full(len(a), 1 / len(a)), np.full(len(b), -1 / len(b))]
    for i in range(1, permutations + 1):
        s[:, i] = rng.permutation(s[:, 0])
    mmd2 = np.einsum("ip,ip->p", s, k @ s)
    return float(mmd2[0]), gamma_tail(float(mmd2[0]), mmd2[1:])


def nearest(query: np.ndarray, ref: np.ndarray, k: int,
            chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances and indices of the ``k`` nearest ``ref`` rows, sorted.

    Brute force: numpy in float32 chunks for small problems, scikit-learn's
    (parallel, heap-based) search for large ones.
    """
    if len(query) * len(ref) > 4_000_000:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(ref)
        d, i = nn.kneighbors(query)
        return d, i.astype(np.int64)
    ref32 = np.ascontiguousarray(ref, dtype=np.float32)
    rsq = np.einsum("ij,ij->i", ref32, ref32)
    dist = np.empty((len(query), k))
    idx = np.empty((len(query), k), dtype=np.int64)
    for s in range(0, len(query), chunk):
        q = np.ascontiguousarray(query[s:s + chunk], dtype=np.float32)
        d2 = rsq[None, :] - 2 * (q @ ref32.T)  # + |q|^2, constant per row
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(ref) else \
            np.tile(np.arange(len(ref)), (len(q), 1))
        dp = np.take_along_axis(d2, part, axis=1) + np.einsum("ij,ij->i", q, q)[:, None]
        order = np.argsort(dp, axis=1, kind="stable")
        idx[s:s + chunk] = np.take_along_axis(part, order, axis=1)
        dist[s:s + chunk] = np.sqrt(np.maximum(np.take_along_axis(dp, order, axis=1), 0.0))
    return dist, idx


@dataclass(frozen=True)
class Consistency:
    """Row-level comparisons of the new rows with their nearest baseline rows."""

    rate: float  # fraction of new rows outvoted by their baseline neighbours
    base_rate: float  # the same fraction inside the baseline (leave-one-out)
    p_value: float
    flagged: np.ndarray  # positions (into the new rows) of outvoted rows
    suggested: np.ndarray  # the neighbours' class for each flagged row
    near_dup: np.ndarray  # positions of near-duplicates of a baseline row with another label
    near_dup_p: float
    outliers: np.ndarray  # positions of rows farther from the baseline than any baseline row
    outlier_p: float
    evaluated: int


def label_consistency(base: np.ndarray, base_codes: np.ndarray, wb: np.ndarray,
                      new: np.ndarray, new_codes: np.ndarray, *, k: int = 10,
                      max_agreement: float = 0.1) -> Consistency:
    """Compare each new row with its k nearest baseline rows (see the module doc).

    A row is outvoted when at most ``max_agreement`` of its neighbours' weight is
    on its own label. Its outlier score is the mean distance to its neighbours;
    under exchangeability the number of new rows scoring above every baseline row
    (leave-one-out) is beta-binomial(n, 1, N), which gives the outlier p-value.
    """
    n_classes = int(max(base_codes.max(initial=0), new_codes.max(initial=0))) + 1
    k = min(k, len(base) - 1)
    ok = new_codes >= 0
    if k < 1 or not len(new):
        e = np.empty(0, np.int64)
        return Consistency(0.0, 0.0, 1.0, e, e, e, 1.0, e, 1.0, 0)
    bd, bi = nearest(base, base, k + 1)
    bd, bi = bd[:, 1:], bi[:, 1:]  # leave one out
    nd, ni = nearest(new, base, k)

    def outvoted(idx: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        votes = np.zeros((len(idx), n_classes))
        np.add.at(votes, (np.repeat(np.arange(len(idx)), idx.shape[1]), base_codes[idx].ravel()),
                  wb[idx].ravel())
        share = votes[np.arange(len(idx)), np.maximum(own, 0)] / votes.sum(axis=1)
        return share <= max_agreement, votes.argmax(axis=1)

    b_out, _ = outvoted(bi, base_codes)
    n_out, n_best = outvoted(ni, new_codes)
    n_out &= ok
    n_eval = max(int(ok.sum()), 1)
    p = float(fisher_greater(n_out.sum(), n_eval, b_out.sum(), len(base)))
    # near-duplicates: closer to a baseline row than 99% of baseline rows are to theirs
    tiny = np.quantile(bd[:, 0], 0.01)
    b_dup = (bd[:, 0] <= tiny) & (base_codes[bi[:, 0]] != base_codes)
    n_dup = ok & (nd[:, 0] <= tiny) & (base_codes[ni[:, 0]] != new_codes)
    p_dup = float(fisher_greater(n_dup.sum(), n_eval, b_dup.sum(), len(base)))
    far = nd.mean(axis=1) > bd.mean(axis=1).max()
    p_far = range_test(int(far.sum()), len(new), len(base), tails=1)
    flagged = np.flatnonzero(n_out)
    return Consistency(float(n_out.sum()) / n_eval, float(b_out.mean()), p, flagged,
                       n_best[flagged], np.flatnonzero(n_dup), p_dup, np.flatnonzero(far),
                       p_far, int(ok.sum()))
