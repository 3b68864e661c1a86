"""The report's reliability section: how far the scan's label evidence can be trusted."""

from __future__ import annotations

from poisonguard.report.context import ReportContext
from poisonguard.report.html import esc, fmt_int, note, section, table

__all__ = ["reliability_view"]


def reliability_view(ctx: ReportContext) -> str:
    """Out-of-fold accuracy, per-class recall, confusion, class overlap, expected clean flags.

    Findings written before the section existed get a one-line note instead.
    """
    r = ctx.findings.summary.get("reliability")
    if not r:
        return section("reliability", "Reliability",
                       note("These findings carry no reliability section (no out-of-fold "
                            "model, or written by an older version)."))
    tiles = [("out-of-fold accuracy", f"{100 * r['out_of_fold_accuracy']:.1f}%"),
             ("label evidence", r["evidence"]),
             ("expected clean label flags", f"{r['expected_clean_flags']:.1f} "
                                            f"({100 * r['expected_clean_share']:.2f}%)"),
             ("flags in licensed pairs", fmt_int(r.get("licensed_flags", 0))),
             ("margin doubts reviewed", fmt_int(r.get("margin_flags_reviewed", 0))),
             ("max FPR", f"{r['max_fpr']:g}"), ("left for review", fmt_int(r["review"]))]
    body = ['<div class="tiles">']
    body += [f'<div class="tile"><div class="v">{esc(v)}</div><div class="k">{esc(t)}</div></div>'
             for t, v in tiles]
    body.append("</div>")
    body.append(f"<p>{esc(r['note'])}.</p>")
    classes = r["confusion"]["classes"]
    rows = [[name, fmt_int(c["rows"]), (f"{100 * c['recall']:.1f}%", c["recall"]),
             (f"{100 * c['precision']:.1f}%", c["precision"]),
             *((fmt_int(v), float(v)) for v in r["confusion"]["given_by_predicted"][k])]
            for k, (name, c) in enumerate(r["per_class"].items())]
    body.append(table(["given class", "rows", "recall", "precision",
                       *(f"predicted {c}" for c in classes)], rows,
                      caption="Out-of-fold model: per-class recall and precision, and the "
                              "confusion of given (rows) against predicted labels"))
    if r["overlap"]:
        pairs = [[p["given"], p["true"], (f"{100 * p['share']:.1f}%", p["share"]),
                  (fmt_int(p["rows"]), float(p["rows"]))] for p in r["overlap"]]
        body.append(table(["given", "likely true", "share of rows", "rows"], pairs,
                          caption="Class overlap: confident learning's estimated joint of "
                                  "given and true labels (off-diagonal cells). Label doubts "
                                  "inside this overlap are left for review, not flagged."))
    return section("reliability", "Reliability", "".join(body))
