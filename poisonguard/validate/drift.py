"""Per-feature findings: drift of each column, drift inside each class, label shift,
range and missing-rate tests. Raw p-values; ``check`` corrects and grades them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.validate.config import CheckConfig
from poisonguard.validate.profile import Profile
from poisonguard.validate.result import Finding
from poisonguard.validate.screen import RowScreen
from poisonguard.validate.tests import (
    BINNED_TESTS,
    binned,
    chi2_test,
    effective_size,
    fisher_greater,
    js_test,
    ks_columns,
    range_test,
    wasserstein_test,
)

__all__ = ["Aligned", "class_drift", "column_drift", "label_shift", "missing_and_range"]


@dataclass(frozen=True)
class Aligned:
    """Columns and classes that the baseline and the new batch share."""

    numeric: list[str]
    num_base: list[int]
    num_new: list[int]
    categorical: list[str]
    cat_base: list[int]
    cat_new: list[int]
    remap: np.ndarray  # new class code -> baseline class code (-1: unknown class)

    @classmethod
    def of(cls, base: Profile, new: Profile) -> Aligned:
        num = [n for n in base.numeric if n in new.numeric]
        cat = [n for n in base.categorical if n in new.categorical]
        pos = {c: i for i, c in enumerate(base.classes)}
        return cls(num, [base.numeric.index(n) for n in num], [new.numeric.index(n) for n in num],
                   cat, [base.categorical.index(n) for n in cat],
                   [new.categorical.index(n) for n in cat],
                   np.array([pos.get(c, -1) for c in new.classes], dtype=np.int64))


def choose_test(name: str, kind: str, n_rows: int, cfg: CheckConfig) -> str | None:
    """The configured test of a feature, else the default for its type and size."""
    rule = cfg.features.get(name)
    if rule is not None and rule.ignore:
        return None
    if rule is not None and rule.test is not None:
        if kind == "categorical" and rule.test in ("ks", "wasserstein"):
            raise UsageError(f"feature '{name}' is categorical; test '{rule.test}' needs numbers "
                             "(use chi2, psi or jensen_shannon)")
        return rule.test
    large = n_rows > cfg.large_batch
    if kind == "numeric":
        return "psi" if large else "ks"
    return "jensen_shannon" if large else "chi2"


def _numeric_tests(tests: list[str], xb: np.ndarray, wb: np.ndarray, xn: np.ndarray,
                   wn: np.ndarray, cfg: CheckConfig, scales: np.ndarray) -> list[tuple[float,
                                                                                    float]]:
    """One result per column of ``xb``/``xn``; the KS columns are tested together."""
    out: list[tuple[float, float]] = [(0.0, 1.0)] * len(tests)
    ks = [j for j, t in enumerate(tests) if t == "ks"]
    if ks:
        d, p = ks_columns(xb[:, ks], wb, xn[:, ks], wn)
        for j, dj, pj in zip(ks, d, p, strict=True):
            out[j] = (float(dj), float(pj))
    for j, test in enumerate(tests):
        if test == "ks":
            continue
        vb, vn = xb[:, j], xn[:, j]
        okb, okn = ~np.isnan(vb), ~np.isnan(vn)
        if okb.sum() < 2 or okn.sum() < 2:
            continue
        if test == "wasserstein":
            out[j] = wasserstein_test(vb[okb], wb[okb], vn[okn], wn[okn], scale=float(scales[j]),
                                      permutations=cfg.permutations, seed=cfg.seed)
        else:
            cb, cn = binned(vb[okb], wb[okb], vn[okn], wn[okn], cfg.bins)
            out[j] = BINNED_TESTS[test](cb, cn, effective_size(wb[okb]), effective_size(wn[okn]))
    return out


def _count_test(test: str, base: dict[str, int], new: dict[str, int]) -> tuple[float, float]:
    cats = sorted(set(base) | set(new))
    cb = np.array([base.get(c, 0) for c in cats], dtype=float)
    cn = np.array([new.get(c, 0) for c in cats], dtype=float)
    if cb.sum() == 0 or cn.sum() == 0:
        return 0.0, 1.0
    return BINNED_TESTS[test](cb, cn, float(cb.sum()), float(cn.sum()))


def _finding(check: str, test: str, name: str | None, cls: str | None, res: tuple[float, float],
             cfg: CheckConfig, message: str) -> Finding:
    return Finding(check=check, test=test, feature=name, cls=cls, statistic=res[0],
                   p_value=res[1], threshold=cfg.threshold(test, name), message=message)


def _numeric_findings(check: str, cls: str | None, n_rows: int, al: Aligned, xb: np.ndarray,
                      wb: np.ndarray, xn: np.ndarray, wn: np.ndarray, std: np.ndarray,
                      cfg: CheckConfig) -> list[Finding]:
    chosen = [(i, t) for i, name in enumerate(al.numeric)
              if (t := choose_test(name, "numeric", n_rows, cfg)) is not None]
    if not chosen:
        return []
    cols = [i for i, _ in chosen]
    jb = [al.num_base[i] for i in cols]
    res = _numeric_tests([t for _, t in chosen], xb[:, jb], wb,
                         xn[:, [al.num_new[i] for i in cols]], wn, cfg, std[jb])
    where = f" inside class {cls}" if cls is not None else ""
    return [_finding(check, t, al.numeric[i], cls, r, cfg, f"{al.numeric[i]} moved{where}")
            for (i, t), r in zip(chosen, res, strict=True)]


def column_drift(base: Profile, new: Profile, al: Aligned, cfg: CheckConfig) -> list[Finding]:
    """One drift test per shared column, on the whole batch."""
    out: list[Finding] = []
    xb, _, wb = base.sample_matrix()
    xn, _, wn = new.sample_matrix()
    std = base.global_moments().std
    out += _numeric_findings("drift", None, new.rows, al, xb, wb, xn, wn, std, cfg)
    for name, jb, jn in zip(al.categorical, al.cat_base, al.cat_new, strict=True):
        test = choose_test(name, "categorical", new.rows, cfg)
        if test is None:
            continue
        res = _count_test(test, base.category_totals(jb), new.category_totals(jn))
        out.append(_finding("drift", test, name, None, res, cfg, f"{name} frequencies moved"))
    return out


def class_drift(base: Profile, new: Profile, al: Aligned, cfg: CheckConfig) -> list[Finding]:
    """One test per shared column and class: shifts hidden inside a single class."""
    out: list[Finding] = []
    for c_new, c in enumerate(al.remap):
        if c < 0:
            continue
        cls = base.classes[c]
        n_rows = int(new.label_counts[c_new])
        sb, sn = base.samples[c], new.samples[c_new]
        if min(len(sb), len(sn)) < 5:
            continue
        out += _numeric_findings("class_shift", cls, n_rows, al, sb.numeric.astype(float),
                                 np.ones(len(sb)), sn.numeric.astype(float), np.ones(len(sn)),
                                 base.moments[c].std, cfg)
        for name, jb, jn in zip(al.categorical, al.cat_base, al.cat_new, strict=True):
            test = choose_test(name, "categorical", n_rows, cfg)
            if test is None:
                continue
            res = _count_test(test, base.categories[c][jb], new.categories[c_new][jn])
            out.append(_finding("class_shift", test, name, cls, res, cfg,
                                f"{name} frequencies moved inside class {cls}"))
    return out


def label_shift(base: Profile, new: Profile, al: Aligned, cfg: CheckConfig) -> list[Finding]:
    """Has the class balance changed? (chi-square; Jensen-Shannon on large batches)."""
    counts_new: dict[str, int] = {}
    for c_new, c in enumerate(al.remap):
        if c >= 0:
            counts_new[base.classes[c]] = int(new.label_counts[c_new])
    counts_base = {c: int(v) for c, v in zip(base.classes, base.label_counts, strict=True)}
    test = "jensen_shannon" if new.rows > cfg.large_batch else "chi2"
    cats = list(base.classes)
    cb = np.array([counts_base[c] for c in cats], dtype=float)
    cn = np.array([counts_new.get(c, 0) for c in cats], dtype=float)
    if len(cats) < 2 or cn.sum() == 0:
        return []
    fn = chi2_test if test == "chi2" else js_test
    res = fn(cb, cn, float(cb.sum()), float(cn.sum()))
    shares = {c: round(float(n / cn.sum()), 4) for c, n in zip(cats, cn, strict=True)}
    base_shares = {c: round(float(n / cb.sum()), 4) for c, n in zip(cats, cb, strict=True)}
    return [Finding(check="label_shift", test=test, statistic=res[0], p_value=res[1],
                    threshold=cfg.threshold(test), message="class balance changed",
                    detail={"new": shares, "baseline": base_shares})]


def missing_and_range(base: Profile, al: Aligned, screen: RowScreen,
                      cfg: CheckConfig) -> list[Finding]:
    """More missing values than the baseline had; values outside the baseline's range."""
    out: list[Finding] = []
    g = base.global_moments()
    if cfg.checks.missing:
        names = [(n, g.missing[j], g.count[j] + g.missing[j]) for n, j in
                 zip(al.numeric, al.num_base, strict=True)]
        names += [(n, base.cat_missing[:, j].sum(), base.rows) for n, j in
                  zip(al.categorical, al.cat_base, strict=True)]
        for name, b_missing, b_total in names:
            rs = screen.get("missing", name)
            p = float(fisher_greater(rs.count, screen.rows, int(b_missing), int(b_total)))
            out.append(Finding(check="missing", test="fisher", feature=name,
                               statistic=rs.count / max(screen.rows, 1), p_value=p,
                               message=f"{rs.count} missing (baseline rate "
                                       f"{b_missing / max(b_total, 1):.3g})",
                               rows=tuple(rs.rows), n_rows=rs.count))
    if cfg.checks.range:
        for name, j in zip(al.numeric, al.num_base, strict=True):
            if name in cfg.features and cfg.features[name].ignore:
                continue
            rs = screen.get("range", name)
            n = screen.valid.get(name, 0)
            p = range_test(rs.count, n, int(g.count[j]))
            out.append(Finding(check="range", test="beta-binomial", feature=name,
                               statistic=rs.count / max(n, 1), p_value=p,
                               message=f"{rs.count} values outside the baseline range "
                                       f"[{g.min[j]:.6g}, {g.max[j]:.6g}]",
                               rows=tuple(rs.rows), n_rows=rs.count))
    return out
