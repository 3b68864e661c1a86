"""The self-contained HTML page: views assembled with inline CSS and a tiny sort script."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poisonguard.data import Dataset, atomic_write_text
from poisonguard.findings import Findings
from poisonguard.report.attacks import attacks_view
from poisonguard.report.context import ReportContext, build_context
from poisonguard.report.examples import examples_view
from poisonguard.report.html import esc
from poisonguard.report.projection import Projection, project
from poisonguard.report.reliability import reliability_view
from poisonguard.report.views import (
    classes_view,
    contributions_view,
    flagged_table_view,
    histograms_view,
    projection_view,
    summary_view,
)

__all__ = ["render_context", "render_report", "write_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#f6f7f9}
header{background:#1f2937;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1}nav{padding:6px 28px;background:#e5e7eb}
nav a{margin-right:14px;color:#1f2937}main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 18px 14px;
margin:14px 0}h2{font-size:17px;margin:8px 0}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{border:1px solid #e5e7eb;border-radius:6px;
padding:8px 14px;min-width:110px}.tile .v{font-size:20px;font-weight:600}.tile .k{color:#666}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{color:#666}
dd{margin:0;word-break:break-all}.note{color:#555;font-style:italic}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.grid{display:flex;flex-wrap:wrap;gap:10px}figure{margin:4px}
figcaption{color:#555;font-size:12px;max-width:560px}
svg{max-width:100%;height:auto;background:#fff}
table{border-collapse:collapse;font-size:13px}caption{text-align:left;color:#555;padding:4px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;cursor:pointer;user-select:none;position:sticky;top:0}
th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumb{border:1px solid #e5e7eb;padding:4px;
text-align:center;width:92px}.thumb img{width:64px;height:64px;image-rendering:pixelated;
border:1px solid #ccc}.trigger{border:1px solid #e5e7eb;padding:6px;max-width:320px}
ul.attacks li{margin:3px 0}
"""

# Click a header to sort its table; numeric cells carry data-sort.
_JS = """
document.querySelectorAll("table.sortable th").forEach(function(th){
 th.addEventListener("click",function(){
  var table=th.closest("table"),body=table.tBodies[0],col=th.cellIndex;
  var asc=!th.classList.contains("asc");
  table.querySelectorAll("th").forEach(function(h){h.classList.remove("asc","desc");});
  th.classList.add(asc?"asc":"desc");
  var key=function(tr){var td=tr.cells[col];var s=td.getAttribute("data-sort");
   return s===null?td.textContent:parseFloat(s);};
  Array.from(body.rows).sort(function(a,b){var x=key(a),y=key(b);
   var c=(typeof x==="number"&&typeof y==="number")?x-y:String(x).localeCompare(String(y));
   return asc?c:-c;}).forEach(function(tr){body.appendChild(tr);});
 });
});
"""

_NAV = [("summary", "Summary"), ("reliability", "Reliability"), ("attacks", "Attacks"),
        ("classes", "Classes"),
        ("projection", "Projection"), ("histograms", "Scores"), ("detectors", "Detectors"),
        ("examples", "Examples"), ("flagged", "Flagged rows")]


def render_context(ctx: ReportContext, projection: Projection | None) -> str:
    """The whole page for an already-built context and projection.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> render_context(ctx, None).startswith("<!DOCTYPE html>")
    True
    """
    views = [summary_view(ctx), reliability_view(ctx), attacks_view(ctx), classes_view(ctx),
             projection_view(ctx, projection), histograms_view(ctx), contributions_view(ctx),
             examples_view(ctx), flagged_table_view(ctx)]
    path = str(ctx.findings.dataset.get("path", "")) or "dataset"
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in _NAV)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>poisonguard scan report: {esc(path)}</title><style>{_CSS}</style></head>"
            f"<body><header><h1>poisonguard scan report</h1><p>{esc(path)} · "
            f"{ctx.n_flagged:,} of {ctx.n_rows:,} rows flagged</p></header><nav>{nav}</nav>"
            f"<main>{''.join(views)}</main><script>{_JS}</script></body></html>\n")


def render_report(findings: Findings, *, dataset: Dataset | None = None,
                  embedding: np.ndarray | None = None) -> str:
    """The report as one self-contained HTML string (no network, no external files).

    ``embedding`` (N x K, one row per data row) is projected when given; otherwise
    the dataset's standardised matrix is; without either the projection is left out,
    and without the dataset so are per-class counts and the flagged examples.
    Raises :class:`~poisonguard.errors.DataError` when ``dataset`` is not the data
    the findings describe.

    Examples
    --------
    >>> import poisonguard
    >>> html = render_report(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> html.startswith("<!DOCTYPE html>"), html.rstrip().endswith("</html>")
    (True, True)
    """
    ctx = build_context(findings, dataset=dataset, embedding=embedding)
    return render_context(ctx, project(ctx))


def write_report(findings: Findings, out_path: str | Path, *, dataset: Dataset | None = None,
                 embedding: np.ndarray | None = None, png_path: str | Path | None = None) -> None:
    """Write the HTML report to ``out_path`` (atomically), and a PNG summary when asked.

    Examples
    --------
    >>> import tempfile, pathlib, poisonguard
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> write_report(poisonguard.scan("builtin:wine", detectors="outlier"), out / "report.html")
    >>> sorted(p.name for p in out.iterdir())
    ['report.html']
    """
    ctx = build_context(findings, dataset=dataset, embedding=embedding)
    projection = project(ctx)
    page = render_context(ctx, projection)
    if png_path is not None:
        from poisonguard.report.png import write_png

        write_png(ctx, projection, png_path)
    atomic_write_text(out_path, page)
