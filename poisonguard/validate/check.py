"""The gate: check a new batch against a baseline profile.

Pass 1 streams the batch once: it profiles it with the same sketches as the
baseline (a row sample that remembers row indices) and screens every row against
the baseline's rules. Then the tests run on the two profiles; p-values are corrected
(Holm or Benjamini-Hochberg within each check family, Bonferroni across families,
so the gate's false-alarm rate is at most ``alpha``). Pass 2, only when needed,
streams the batch again to collect the rows that match a trigger pattern or leave
their class's range. See docs/validate.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from poisonguard.data import Dataset
from poisonguard.errors import UsageError
from poisonguard.progress import NullProgress, Progress
from poisonguard.validate.config import CheckConfig
from poisonguard.validate.drift import (
    Aligned,
    class_drift,
    column_drift,
    label_shift,
    missing_and_range,
)
from poisonguard.validate.multivariate import label_consistency, mmd_test, standardize
from poisonguard.validate.profile import Profile, Profiler
from poisonguard.validate.result import CheckReport, Finding
from poisonguard.validate.rowfindings import duplicate_findings, schema_findings
from poisonguard.validate.screen import RowScreen, collect_rows
from poisonguard.validate.sources import ColumnBatch, Source, open_source
from poisonguard.validate.tests import adjust
from poisonguard.validate.triggers import Candidate, group_patterns, trigger_candidates

__all__ = ["check"]


def check(baseline: Profile, data: str | Path | Dataset | Source, *,
          config: CheckConfig | None = None, label: str | None = None,
          batch_rows: int = 65_536, progress: Progress | None = None,
          id_column: str | None = None) -> CheckReport:
    """Check ``data`` (a path, a Dataset or a Source) against ``baseline``.

    The id column (``id_column``, else the baseline's) and the columns the config
    marks ``ignore = true`` are not features: no test, rule or schema check sees them.

    Examples
    --------
    >>> from poisonguard.validate import profile_data
    >>> check(profile_data("builtin:wine"), "builtin:wine").passed
    True
    """
    cfg = config or CheckConfig()
    prog = progress or NullProgress()
    ignored = {name for name, rule in cfg.features.items() if rule.ignore}
    skip = ignored | set(baseline.ignored) | {c for c in (id_column, baseline.id_column) if c}
    unknown = sorted(set(cfg.features) - set(baseline.kinds) - (skip - ignored))
    if unknown:
        raise UsageError(f"the config names feature '{unknown[0]}', which the baseline lacks")
    source = data if isinstance(data, Source) else open_source(
        data, label=label or baseline.label_column, batch_rows=batch_rows,
        schema=baseline.kinds, exclude=skip)  # type: ignore[arg-type]
    screen = RowScreen(baseline, max_rows=cfg.max_rows)
    profiler = Profiler(sample_per_class=cfg.sample_per_class, max_fingerprints=0,
                        keep_index=True)
    for batch in source:
        profiler.update(batch, screen.update(batch))
        prog.update("checking rows", done=screen.rows, total=screen.rows)
    new = profiler.result(sources=[source.path], label_column=source.label_column,
                          modality=source.modality)
    al = Aligned.of(baseline, new)
    notes: list[str] = []
    prog.update("testing", done=0, total=1)
    findings = [f for f in _raw_findings(baseline, new, al, screen, cfg, notes)
                if f.feature not in skip]
    candidates = trigger_candidates(baseline, new, al.remap, al.num_base, al.num_new,
                                    min_rows=cfg.trigger_min_rows) if cfg.checks.triggers else []
    trig_p = np.array([h.p_value for h in candidates], dtype=float)
    graded, trig_adj = _grade(findings, {"trigger": trig_p} if len(trig_p) else {}, cfg)
    adj = trig_adj.get("trigger", np.empty(0))
    hits = [h for h, a in zip(candidates, adj, strict=True) if a < cfg.alpha]
    padj = {id(h): float(a) for h, a in zip(candidates, adj, strict=True)}
    graded += _blame(graded, hits, padj, baseline, new, al, source, cfg)
    prog.update("testing", done=1, total=1)
    n_tests = sum(f.p_value is not None for f in findings) + len(trig_p)
    return CheckReport(tuple(graded), {
        "rows": new.rows, "baseline_rows": baseline.rows, "source": source.path,
        "alpha": cfg.alpha, "correction": cfg.correction, "tests": n_tests,
        "families": sorted({f.check for f in findings if f.p_value is not None}
                           | ({"trigger"} if len(trig_p) else set())),
        "failed": sum(f.severity == "fail" for f in graded),
        "warnings": sum(f.severity == "warn" for f in graded),
        "sampled_rows": int(sum(len(s) for s in new.samples)), "notes": notes,
    })


def _raw_findings(base: Profile, new: Profile, al: Aligned, screen: RowScreen,
                  cfg: CheckConfig, notes: list[str]) -> list[Finding]:
    c = cfg.checks
    out: list[Finding] = schema_findings(base, new, screen, cfg) if c.schema_ else []
    out += missing_and_range(base, al, screen, cfg)
    if c.drift:
        out += column_drift(base, new, al, cfg)
    if c.class_shift:
        out += class_drift(base, new, al, cfg)
    if c.label_shift:
        out += label_shift(base, new, al, cfg)
    if c.duplicates:
        out += duplicate_findings(base, screen, cfg, notes)
    if (c.multivariate or c.label_consistency) and al.numeric:
        g = base.global_moments()
        mean, std = g.mean[al.num_base], g.std[al.num_base]
        xb, cb, wb = base.sample_matrix()
        xn, cn, _ = new.sample_matrix()
        zb = standardize(xb[:, al.num_base], mean, std)
        zn = standardize(xn[:, al.num_new], mean, std)
        if c.multivariate:
            stat, p = mmd_test(zb, wb, zn, rows=cfg.mmd_rows, permutations=cfg.permutations,
                               seed=cfg.seed)
            out.append(Finding(check="multivariate", test="mmd", statistic=stat, p_value=p,
                               message="the joint distribution of the numeric columns moved"))
        if c.label_consistency or c.outliers:
            out += _consistency(base, new, al, zb, cb, wb, zn, cn, cfg, notes)
    return out


def _consistency(base: Profile, new: Profile, al: Aligned, zb: np.ndarray, cb: np.ndarray,
                 wb: np.ndarray, zn: np.ndarray, cn: np.ndarray, cfg: CheckConfig,
                 notes: list[str]) -> list[Finding]:
    index = np.concatenate([s.index for s in new.samples])
    pick = np.arange(len(zn))
    if len(pick) > cfg.knn_rows:
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(zn), cfg.knn_rows,
                                                              replace=False))
    if len(pick) < new.rows:
        notes.append(f"label consistency evaluated on {len(pick)} sampled rows of {new.rows}")
    res = label_consistency(zb, cb, wb, zn[pick], al.remap[cn[pick]], k=cfg.knn,
                            max_agreement=cfg.knn_max_agreement)
    rows = index[pick][res.flagged]
    order = np.argsort(rows)
    suggested = {int(r): base.classes[s] for r, s in zip(rows[order], res.suggested[order],
                                                       strict=True)}
    dup_rows = np.sort(index[pick][res.near_dup])
    far = np.sort(index[pick][res.outliers])
    found = [
        Finding(check="label_consistency", test="knn-fisher", statistic=res.rate,
                p_value=res.p_value, rows=tuple(int(r) for r in rows[order][:cfg.max_rows]),
                n_rows=len(rows), message=f"{res.rate:.1%} of rows carry a label that their "
                f"{cfg.knn} nearest baseline rows reject (baseline {res.base_rate:.1%})",
                detail={"suggested_label": dict(list(suggested.items())[:cfg.max_rows]),
                        "evaluated": res.evaluated, "baseline_rate": res.base_rate}),
        Finding(check="duplicates", test="near-duplicate", statistic=float(len(dup_rows)),
                p_value=res.near_dup_p, rows=tuple(int(r) for r in dup_rows[:cfg.max_rows]),
                n_rows=len(dup_rows),
                message=f"{len(dup_rows)} rows nearly duplicate a baseline row of another class"),
        Finding(check="outliers", test="knn-distance", statistic=float(len(far)),
                p_value=res.outlier_p, rows=tuple(int(r) for r in far[:cfg.max_rows]),
                n_rows=len(far), message=f"{len(far)} rows lie farther from the baseline than "
                "any baseline row does"),
    ]
    keep = {"outliers"} if cfg.checks.outliers else set()
    if cfg.checks.label_consistency and len(base.classes) > 1:
        keep |= {"label_consistency", "duplicates"}
    return [f for f in found if f.check in keep]


def _grade(findings: list[Finding], extra: dict[str, np.ndarray],
           cfg: CheckConfig) -> tuple[list[Finding], dict[str, np.ndarray]]:
    """Correct p-values per family (and Bonferroni across), then set severities.

    ``extra`` holds families given as bare p-value arrays (the trigger candidates);
    their adjusted p-values are returned alongside the graded findings.
    """
    fams = sorted({f.check for f in findings if f.p_value is not None} | set(extra))
    adjusted: dict[int, float] = {}
    by_fam: dict[str, list[int]] = {}
    for i, f in enumerate(findings):
        if f.p_value is not None:
            by_fam.setdefault(f.check, []).append(i)
    for idx in by_fam.values():
        p = adjust(np.array([findings[i].p_value for i in idx], dtype=float), cfg.correction)
        for i, v in zip(idx, p, strict=True):
            adjusted[i] = float(min(1.0, v * len(fams)))
    extra_adj = {k: np.minimum(1.0, adjust(v, cfg.correction) * len(fams))
                 for k, v in extra.items()}
    out = []
    for i, f in enumerate(findings):
        if f.p_value is None:
            out.append(f)
            continue
        pa = adjusted[i]
        significant = pa < cfg.alpha
        big = f.threshold is None or (f.statistic or 0.0) >= f.threshold
        severity = "fail" if significant and big else "warn" if significant else "pass"
        if f.detail.get("rule") == "fail":
            severity = "fail"
        out.append(f.with_(p_adjusted=pa, severity=severity))
    return out, extra_adj


def _blame(graded: list[Finding], hits: list[Candidate], padj: dict[int, float], base: Profile,
           new: Profile, al: Aligned, source: Source, cfg: CheckConfig) -> list[Finding]:
    """Trigger-pattern findings, and the rows behind failing class shifts (pass 2)."""
    new_code = {int(c): i for i, c in enumerate(al.remap) if c >= 0}
    patterns = group_patterns(hits, new, new_code, al.num_new)
    preds: dict[str, Callable[[ColumnBatch], np.ndarray]] = {}
    for k, pat in enumerate(patterns):
        preds[f"t{k}"] = _pattern_pred(base.classes[pat.cls],
                                       [(al.numeric[h.column], h.value) for h in pat.items])
    shifts = [i for i, f in enumerate(graded) if f.check == "class_shift" and
              f.severity == "fail" and f.feature in al.numeric]
    for i in shifts:
        f = graded[i]
        c, j = base.classes.index(str(f.cls)), base.numeric.index(str(f.feature))
        m = base.moments[c]
        preds[f"s{i}"] = _outside_pred(str(f.cls), str(f.feature), m.min[j], m.max[j])
    sets = collect_rows(source, preds, max_rows=cfg.max_rows) if preds else {}
    drift_failed = {f.feature for f in graded if f.check == "drift" and f.severity == "fail"}
    for i in shifts:
        rs = sets[f"s{i}"]
        f = graded[i]
        where = "" if f.feature in drift_failed else " only"
        graded[i] = f.with_(rows=tuple(rs.rows), n_rows=rs.count,
                            message=f"{f.feature} moved{where} inside class {f.cls}; "
                                    f"{rs.count} rows of the class leave its baseline range")
    out = []
    for k, pat in enumerate(patterns):
        rs = sets[f"t{k}"]
        cls = base.classes[pat.cls]
        items = [{"feature": al.numeric[h.column], "value": h.value, "rate": h.count / h.n,
                  "baseline_rate": h.base_rate} for h in pat.items]
        desc = ", ".join(f"{d['feature']}={d['value']:.6g}" for d in items)
        sev = "fail" if rs.count >= cfg.trigger_min_rows else "warn"
        out.append(Finding(
            check="trigger", test="fisher", feature=",".join(str(d["feature"]) for d in items),
            cls=cls, statistic=float(rs.count), p_value=min(h.p_value for h in pat.items),
            p_adjusted=min(padj[id(h)] for h in pat.items), severity=sev,
            rows=tuple(rs.rows), n_rows=rs.count,
            message=f"{rs.count} rows of class {cls} share the constant pattern {desc}, "
                    "rare in every baseline class", detail={"pattern": items}))
    return out


def _pattern_pred(cls: str, items: list[tuple[str, float]]) -> Callable[[ColumnBatch],
                                                                        np.ndarray]:
    need = (len(items) + 1) // 2

    def pred(b: ColumnBatch) -> np.ndarray:
        match = sum((b.numeric[n].astype(np.float32) == np.float32(v)).astype(int)
                    for n, v in items)
        return b.is_class(cls) & (np.asarray(match) >= need)

    return pred


def _outside_pred(cls: str, name: str, lo: float, hi: float) -> Callable[[ColumnBatch],
                                                                        np.ndarray]:
    def pred(b: ColumnBatch) -> np.ndarray:
        v = b.numeric[name]
        with np.errstate(invalid="ignore"):
            return b.is_class(cls) & ((v < lo) | (v > hi))

    return pred
