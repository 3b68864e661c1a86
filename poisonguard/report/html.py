"""Tiny HTML helpers shared by the views: escaping, sections, sortable tables."""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["Cell", "esc", "fmt_int", "fmt_score", "note", "section", "table"]

# A table cell: text, or (text, sort key) for cells that should sort numerically.
Cell = str | tuple[str, float]


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt_int(n: float) -> str:
    return f"{int(n):,}"


def fmt_score(x: float) -> str:
    return "–" if x != x else f"{x:.3f}"  # x != x: NaN


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, caption: str = "",
          raw_columns: Sequence[int] = ()) -> str:
    """A sortable table (click a header); cells escaped except ``raw_columns`` (trusted HTML)."""
    parts = ['<table class="sortable">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        cells = []
        for k, cell in enumerate(row):
            text, key = (cell if isinstance(cell, tuple) else (cell, None))
            body = text if k in raw_columns else esc(text)
            attr = "" if key is None else f' data-sort="{key:.6g}"'
            cells.append(f"<td{attr}>{body}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)
