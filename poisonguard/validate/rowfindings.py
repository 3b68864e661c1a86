"""Rule findings from the row screen: schema violations and duplicated rows."""

from __future__ import annotations

from scipy import stats

from poisonguard.data.schema import MAX_CATEGORIES
from poisonguard.validate.config import CheckConfig
from poisonguard.validate.profile import Profile
from poisonguard.validate.result import Finding
from poisonguard.validate.screen import RowScreen

__all__ = ["duplicate_findings", "schema_findings"]


def _rule(check: str, test: str, message: str, *, feature: str | None = None,
          severity: str = "fail", rows: tuple[int, ...] = (), n_rows: int = 0) -> Finding:
    return Finding(check=check, test=test, feature=feature, severity=severity, message=message,
                   rows=rows, n_rows=n_rows)


def _free_text(base: Profile, name: str) -> bool:
    """A string column the typed encoder would leave out: ids or free text, whose new
    values are no schema change (see :mod:`poisonguard.data.schema`)."""
    if name not in base.categorical:
        return False
    distinct = len(base.category_totals(base.categorical.index(name)))
    return distinct > MAX_CATEGORIES or distinct > max(10, base.rows // 2)


def schema_findings(base: Profile, new: Profile, screen: RowScreen,
                    cfg: CheckConfig) -> list[Finding]:
    """Missing or extra columns, type changes, non-integers, new classes and categories."""
    out: list[Finding] = []
    bk, nk = base.kinds, new.kinds
    for name in [*bk, *base.hashed]:
        if name not in nk and name not in new.hashed:
            out.append(_rule("schema", "column", f"column '{name}' is missing", feature=name))
    for name in [*nk, *new.hashed]:
        if name not in bk and name not in base.hashed:
            out.append(_rule("schema", "column", f"unexpected column '{name}'", feature=name,
                             severity="info" if cfg.allow_extra_columns else "fail"))
    for name, kind in nk.items():
        if name in bk and bk[name] != kind:
            out.append(_rule("schema", "type", f"'{name}' is {kind}, the baseline's is "
                             f"{bk[name]}", feature=name))
    for (kind, name), rs in sorted(screen.sets.items()):
        if not rs.count:
            continue
        if kind == "type":
            out.append(_rule("schema", "type", f"{rs.count} values of '{name}' are not numbers",
                             feature=name, rows=tuple(rs.rows), n_rows=rs.count))
        elif kind == "integer":
            out.append(_rule("schema", "type", f"{rs.count} values of '{name}' are not "
                             "integers (the baseline's all were)", feature=name,
                             rows=tuple(rs.rows), n_rows=rs.count))
        elif kind == "category":
            free = _free_text(base, name)
            out.append(_rule("schema", "category", f"{rs.count} rows have a category of "
                             f"'{name}' the baseline never had"
                             + (" (free text or ids in the baseline: new values expected)"
                                if free else ""), feature=name,
                             severity="info" if cfg.allow_new_categories or free else "fail",
                             rows=tuple(rs.rows), n_rows=rs.count))
        elif kind == "class":
            unseen = ", ".join(sorted(set(new.classes) - set(base.classes)))
            out.append(_rule("schema", "label", f"{rs.count} rows have a class the baseline "
                             f"never had ({unseen})",
                             rows=tuple(rs.rows), n_rows=rs.count))
    return out


def duplicate_findings(base: Profile, screen: RowScreen, cfg: CheckConfig,
                       notes: list[str]) -> list[Finding]:
    """Rows already in the baseline: with the same label (info), with another (fail).

    If the baseline itself holds no conflicting duplicates, any new one beyond
    ``max_label_conflicts`` fails. Otherwise the count is tested against the
    baseline's own rate: conflicting pairs arise in proportion to the pairs that can
    form, ``n * N`` across versus ``N^2 / 2`` inside the baseline.
    """
    fps = base.fingerprints
    if not len(fps.hashes):
        notes.append("duplicate check skipped: the baseline profile keeps no fingerprints")
        return []
    if screen.fingerprinted == 0 and screen.rows:
        notes.append("duplicate check skipped: the columns differ from the baseline's")
        return []
    if fps.coverage < 1.0:
        notes.append(f"duplicates checked for {screen.fingerprinted} rows "
                     f"({fps.coverage:.0%} of the hash space the baseline profile keeps)")
    out = []
    same, conflict = screen.get("duplicate"), screen.get("conflict")
    if same.count:
        out.append(_rule("duplicates", "exact", f"{same.count} rows already are in the "
                         "baseline with the same label", severity="info", rows=tuple(same.rows),
                         n_rows=same.count))
    k_b, k_n = fps.conflicts(), conflict.count
    n, big_n = screen.fingerprinted, max(len(fps.hashes), 1)
    p = float(stats.binom.sf(k_n - 1, k_b + k_n, 2 * n / (2 * n + big_n))) if k_n else 1.0
    rule = k_n > cfg.max_label_conflicts and k_b == 0
    out.append(Finding(
        check="duplicates", test="exact-conflict", statistic=float(k_n), p_value=p,
        message=f"{k_n} rows duplicate a baseline row with another label "
                f"(baseline has {k_b} such conflicts)",
        rows=tuple(conflict.rows), n_rows=k_n, detail={"rule": "fail"} if rule else {}))
    return out
