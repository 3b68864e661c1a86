"""Views of a scan: functions of a :class:`ReportContext` returning HTML fragments.

Each view is one ``<section>``; the page and the service dashboard assemble them.
Everything drawn is aggregated (histograms, counts) or capped (tables list the
highest-scoring rows, the scatter is sampled), so the page size does not grow
with the number of rows.
"""

from __future__ import annotations

import numpy as np

from poisonguard.report import svg
from poisonguard.report.context import ReportContext
from poisonguard.report.html import Cell, esc, fmt_int, fmt_score, note, section, table
from poisonguard.report.projection import Projection

__all__ = ["classes_view", "contributions_view", "flagged_table_view", "histograms_view",
           "projection_view", "summary_view"]


def summary_view(ctx: ReportContext) -> str:
    """Headline numbers: rows, flagged, actions, detectors, where the data came from.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> html = summary_view(ctx)
    >>> html.startswith('<section id="summary">'), "outlier" in html
    (True, True)
    """
    f = ctx.findings
    n, k = ctx.n_rows, ctx.n_flagged
    actions = {a: 0 for a in ("drop", "relabel")}
    for p in np.flatnonzero(ctx.flagged):
        action = f.rows[int(p)].action
        if action in actions:
            actions[action] += 1
    actions["review (not flagged)"] = int(f.summary.get("review", 0))
    tiles = [("rows", fmt_int(n)), ("flagged", f"{fmt_int(k)} ({100 * k / max(n, 1):.2f}%)"),
             *((a, fmt_int(c)) for a, c in actions.items()),
             ("suspected attacks", fmt_int(len(f.summary.get("suspected_attacks") or [])))]
    body = ['<div class="tiles">']
    body += [f'<div class="tile"><div class="v">{esc(v)}</div><div class="k">{esc(t)}</div></div>'
             for t, v in tiles]
    body.append("</div><dl>")
    rep = f.summary.get("representation") or {}
    facts = [("data", f.dataset.get("path", "")), ("modality", ctx.modality),
             ("sha256", f.dataset.get("sha256", "")),
             ("detectors", ", ".join(f.detectors) or "none"),
             ("representation", " / ".join(str(v) for v in rep.values() if v)),
             ("tool", f"{f.tool} {f.version}")]
    body += [f"<dt>{esc(t)}</dt><dd>{esc(v)}</dd>" for t, v in facts if v]
    body.append("</dl>")
    if not f.detectors:
        body.append(note("No detector ran in this scan: every row was kept."))
    if ctx.dataset is None:
        body.append(note("Report made without the data: the projection, per-class row counts "
                         "and the flagged examples are left out. Pass the data to include them."))
    return section("summary", "Summary", "".join(body))


def classes_view(ctx: ReportContext, *, rows_listed: int = 8) -> str:
    """Flagged rows per class: counts, fractions, actions and the top row numbers.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.attack import inject_outliers
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.report import build_context
    >>> data = inject_outliers(builtin_dataset("wine"), rate=0.03, seed=0).dataset
    >>> ctx = build_context(poisonguard.scan(data, detectors="outlier"), dataset=data)
    >>> "178, 183, 179" in classes_view(ctx)  # class 0's flagged rows, highest score first
    True
    """
    if ctx.labels is None:
        by_class = ctx.findings.summary.get("by_class") or {}
        rows: list[list[Cell]] = [[str(c), (fmt_int(v), v)] for c, v in by_class.items()]
        body = table(["class", "flagged"], rows) if rows else note("No flagged rows.")
        return section("classes", "Flagged rows per class",
                       body + note("Rows per class need the data."))
    n_cls = max(len(ctx.classes), int(ctx.labels.max(initial=-1)) + 1)
    totals = np.bincount(ctx.labels, minlength=n_cls)
    flagged = np.bincount(ctx.labels[ctx.flagged], minlength=n_cls)
    relabel = np.bincount(ctx.labels[ctx.flagged & (ctx.suggested >= 0)], minlength=n_cls)
    top = ctx.top_flagged(ctx.n_flagged)
    table_rows: list[list[Cell]] = []
    for c in range(n_cls):
        mine = top[ctx.labels[top] == c][:rows_listed]
        listed = ", ".join(str(i) for i in ctx.index[mine])
        if flagged[c] > len(mine):
            listed += ", …"
        share = flagged[c] / max(totals[c], 1)
        table_rows.append([ctx.class_name(c), (fmt_int(totals[c]), totals[c]),
                           (fmt_int(flagged[c]), flagged[c]), (f"{100 * share:.1f}%", share),
                           (fmt_int(relabel[c]), relabel[c]), listed])
    chart = svg.bars([ctx.class_name(c) for c in range(n_cls)], flagged.tolist(),
                     totals=None, title="Flagged rows per class", xlabel="flagged rows")
    body = (f'<div class="row"><div>{chart}</div><div>' +
            table(["class", "rows", "flagged", "% flagged", "label suggested", "top rows"],
                  table_rows) + "</div></div>")
    return section("classes", "Flagged rows per class", body)


def projection_view(ctx: ReportContext, projection: Projection | None) -> str:
    """Scatter of the 2-D projection(s), flagged rows drawn on top in red.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.report import build_context, project
    >>> wine = builtin_dataset("wine")
    >>> ctx = build_context(poisonguard.scan(wine, detectors="outlier"), dataset=wine)
    >>> html = projection_view(ctx, project(ctx))
    >>> "PCA 1" in html, "No projection" in projection_view(ctx, None)
    (True, True)
    """
    if projection is None:
        why = ("text data has no feature matrix; pass an embedding to project it"
               if ctx.modality == "text" else "the report was made without the data")
        return section("projection", "Projection", note(f"No projection: {why}."))
    pos = projection.positions
    flag = ctx.flagged[pos]
    panels = []
    for method, xy in projection.coords.items():
        series = []
        if ctx.labels is not None:
            labels = ctx.labels[pos]
            for c in np.unique(labels[~flag]):
                m = ~flag & (labels == c)
                series.append(svg.Series(xy[m, 0], xy[m, 1], svg.PALETTE[int(c) % len(svg.PALETTE)],
                                         f"class {ctx.class_name(int(c))}"))
        else:
            series.append(svg.Series(xy[~flag, 0], xy[~flag, 1], svg.PALETTE[0], "not flagged"))
        fp = pos[flag]
        titles = [f"row {ctx.index[p]}" +
                  (f", class {ctx.class_name(int(ctx.labels[p]))}" if ctx.labels is not None
                   else "") + f", score {ctx.score[p]:.3f}" for p in fp]
        series.append(svg.Series(xy[flag, 0], xy[flag, 1], svg.FLAG_COLOUR, "flagged",
                                 radius=3.0, titles=titles, outline=True))
        chart = svg.scatter(series, title=f"{method} projection", xlabel=f"{method} 1",
                            ylabel=f"{method} 2")
        panels.append(f"<figure>{chart}<figcaption>{esc(method)} of {esc(projection.source)}"
                      "</figcaption></figure>")
    shown = (f"{fmt_int(len(pos) - projection.n_flagged_shown)} sampled unflagged rows and "
             f"{fmt_int(projection.n_flagged_shown)} of {fmt_int(projection.n_flagged_total)} "
             "flagged rows (highest scores first); hover a red point for its row.")
    if "UMAP" not in projection.coords:
        shown += " Install umap-learn for a UMAP view as well."
    return section("projection", "Projection", '<div class="row">' + "".join(panels) +
                   "</div>" + note(shown))


def histograms_view(ctx: ReportContext, *, bins: int = 50) -> str:
    """Score histograms: the fused score and each detector, with the threshold at 0.5.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> html = histograms_view(ctx, bins=20)
    >>> html.count("<svg") >= 2  # the fused score and each detector
    True
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    panels = []
    for name, scores in [("fused score", ctx.score), *ctx.detector_scores.items()]:
        s = scores[np.isfinite(scores)]
        counts, _ = np.histogram(np.clip(s, 0, 1), bins=edges)
        above = int((s >= ctx.threshold).sum())
        chart = svg.histogram(edges, counts, title=f"{name} histogram", threshold=ctx.threshold)
        panels.append(f"<figure>{chart}<figcaption>{esc(name)}: {fmt_int(above)} of "
                      f"{fmt_int(len(s))} rows at or above the threshold</figcaption></figure>")
    text = ("Each detector puts its own threshold at score 0.5; bars in red are at or above it. "
            "Row counts are on a log scale.")
    return section("histograms", "Score histograms", note(text) + '<div class="grid">' +
                   "".join(panels) + "</div>")


def contributions_view(ctx: ReportContext) -> str:
    """Per detector: rows over threshold, rows only it flagged, rows where it scored highest.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> contributions_view(ctx).startswith('<section id="detectors">')
    True
    """
    names = list(ctx.detector_scores)
    if not names:
        return section("detectors", "Detector contributions", note("No detector ran."))
    m = np.vstack([np.nan_to_num(ctx.detector_scores[d], nan=0.0) for d in names])
    over = m >= ctx.threshold
    only = over & (over.sum(axis=0) == 1)
    top = np.zeros_like(over)
    flagged = np.flatnonzero(ctx.flagged)
    top[m[:, flagged].argmax(axis=0), flagged] = True
    results = ctx.findings.detector_results
    n_flag = max(ctx.n_flagged, 1)
    rows: list[list[Cell]] = []
    for k, d in enumerate(names):
        s = ctx.detector_scores[d]
        s = s[np.isfinite(s)]
        meta = results.get(d) or {}
        thr = meta.get("threshold")
        thr_text = "–" if not isinstance(thr, int | float) else f"{thr:.4g}"
        n_over, n_top = int(over[k].sum()), int(top[k, flagged].sum())
        mean, q99 = (float(s.mean()), float(np.quantile(s, 0.99))) if s.size else (0.0, 0.0)
        rows.append([d, (fmt_int(n_over), n_over), (fmt_int(only[k].sum()), only[k].sum()),
                     (fmt_int(n_top), n_top), (f"{100 * n_top / n_flag:.1f}%", n_top / n_flag),
                     (fmt_score(mean), mean), (fmt_score(q99), q99),
                     thr_text, str(len(meta.get("hypotheses") or []))])
    headers = ["detector", "rows ≥ threshold", "only this detector", "top detector of",
               "share of flagged", "mean score", "99th pct score", "flag threshold", "hypotheses"]
    chart = svg.bars(names, top[:, flagged].sum(axis=1).tolist(),
                     title="Flagged rows by top detector", xlabel="flagged rows it scored highest",
                     colour=svg.PALETTE[0])
    return section("detectors", "Detector contributions",
                   f'<div class="row"><div>{chart}</div><div>{table(headers, rows)}</div></div>')


def flagged_table_view(ctx: ReportContext, *, limit: int = 200) -> str:
    """The highest-scoring flagged rows with class, action, suggestion and reasons.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.attack import inject_outliers
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.report import build_context
    >>> data = inject_outliers(builtin_dataset("wine"), rate=0.03, seed=0).dataset
    >>> ctx = build_context(poisonguard.scan(data, detectors="outlier"), dataset=data)
    >>> html = flagged_table_view(ctx, limit=3)
    >>> "Top 3 of 6 flagged rows" in html, "far from the rest of" in html
    (True, True)
    """
    top = ctx.top_flagged(limit)
    if not len(top):
        return section("flagged", "Flagged rows", note("No row was flagged."))
    rows: list[list[Cell]] = []
    for p in top:
        r = ctx.findings.rows[p]
        cls = "" if ctx.labels is None else ctx.class_name(int(ctx.labels[p]))
        sug = r.suggested_label or ""
        dets = ", ".join(f"{x.detector} {x.score:.2f}" for x in r.reasons)
        detail = r.reasons[0].detail if r.reasons else ""
        rows.append([(str(r.index), r.index), r.id[:12], cls, (f"{r.score:.3f}", r.score),
                     r.action, sug, dets, detail])
    caption = (f"Top {fmt_int(len(top))} of {fmt_int(ctx.n_flagged)} flagged rows by score; "
               "the findings file lists them all. Click a header to sort.")
    return section("flagged", "Flagged rows",
                   table(["row", "id", "class", "score", "action", "suggested", "detectors",
                          "why"], rows, caption=caption))
