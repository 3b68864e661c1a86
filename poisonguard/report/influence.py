"""The influence page: per query, the training rows that raise and lower its class.

Images show as thumbnails (query first, then its influencers); tables and other
data as sortable tables with each row's score and its own scan findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from poisonguard.data import Dataset, atomic_write_text
from poisonguard.report.examples import image_range, png_data_uri
from poisonguard.report.html import Cell, esc, note, section, table

if TYPE_CHECKING:
    from poisonguard.influence import Influencer, InfluenceResult, QueryExplanation

__all__ = ["render_influence", "write_influence_report"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f2937;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1}main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 18px 14px;
margin:14px 0}h2{font-size:17px;margin:8px 0}h3{font-size:14px;margin:10px 0 4px}
.note{color:#555;font-style:italic}table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}.thumbs{display:flex;flex-wrap:wrap;gap:8px}
.thumb{border:1px solid #e5e7eb;padding:4px;text-align:center;width:92px;font-size:12px}
.thumb img{width:64px;height:64px;image-rendering:pixelated;border:1px solid #ccc}
.query{border-color:#1f2937;border-width:2px}.flag{color:#b91c1c}
"""

_METHOD = {"if": "influence functions (softmax regression)", "knn-shapley": "k-NN Shapley",
           "tracin": "TracIn"}


def _thumbs(rows: tuple[Influencer, ...], images: np.ndarray, lo: float, hi: float) -> str:
    cards = ['<div class="thumbs">']
    for r in rows:
        flag = ' class="flag"' if r.finding and r.finding.startswith("flagged") else ""
        cards.append(f'<figure class="thumb"><img alt="row {r.row}" src="'
                     f'{png_data_uri(images[r.row], lo, hi)}"><figcaption>row {r.row}<br>'
                     f"label {esc(r.label)}<br>{r.score:+.3g}"
                     + (f"<br><span{flag}>{esc(r.finding.split(':')[0])}</span>"
                        if r.finding else "") + "</figcaption></figure>")
    cards.append("</div>")
    return "".join(cards)


def _rows_table(rows: tuple[Influencer, ...]) -> str:
    body: list[list[Cell]] = [[(str(r.row), float(r.row)), r.label,
                               (f"{r.score:+.4g}", r.score), r.finding or "", r.id[:16]]
                              for r in rows]
    return table(["row", "label", "score", "its findings", "id"], body)


def _query_section(k: int, e: QueryExplanation, dataset: Dataset | None,
                   query_image: np.ndarray | None, scale: tuple[float, float]) -> str:
    head = (f"<p>Predicted class <b>{esc(e.predicted)}</b>"
            + (f", given label <b>{esc(e.label)}</b>" if e.label is not None else "")
            + "</p>")
    images = None if dataset is None else dataset.images
    parts = [head]
    if query_image is not None and images is not None:
        parts.append('<div class="thumbs"><figure class="thumb query"><img alt="query" src="'
                     f'{png_data_uri(query_image, *scale)}"><figcaption>query</figcaption>'
                     "</figure></div>")
    for title, rows in ((f"Rows that most raise class {e.predicted}", e.raising),
                        (f"Rows that most lower class {e.predicted}", e.lowering)):
        parts.append(f"<h3>{esc(title)}</h3>")
        if not rows:
            parts.append(note("None."))
        elif images is not None:
            parts.append(_thumbs(rows, images, *scale) + _rows_table(rows))
        else:
            parts.append(_rows_table(rows))
    return section(f"query-{k}", e.query, "".join(parts))


def render_influence(result: InfluenceResult, *, dataset: Dataset | None = None,
                     query_images: np.ndarray | None = None) -> str:
    """The influence page as one self-contained HTML string.

    ``dataset`` (the training data) turns image influencers into thumbnails;
    ``query_images`` (one per query) shows the queries themselves.
    """
    scale = (0.0, 1.0)
    if dataset is not None and dataset.images is not None:
        scale = image_range(dataset.images)
    sections = [
        _query_section(k, e, dataset, None if query_images is None else query_images[k], scale)
        for k, e in enumerate(result.explanations)
    ]
    meta = ", ".join(f"{k} {v}" for k, v in result.meta.items() if not isinstance(v, dict))
    intro = section("about", "How to read this", note(
        "Scores estimate how much each training row raises (+) or lowers (−) the query's "
        f"predicted class under {_METHOD.get(result.method, result.method)}. Rows that a "
        "scan flagged say so. Settings: " + meta + "."))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>poisonguard influence</title><style>{_CSS}</style></head><body><header>"
            f"<h1>poisonguard influence</h1><p>{esc(_METHOD.get(result.method, result.method))}"
            f" · {len(result.explanations)} queries</p></header><main>{intro}"
            f"{''.join(sections)}</main></body></html>\n")


def write_influence_report(result: InfluenceResult, path: str | Path, *,
                           dataset: Dataset | None = None,
                           query_images: np.ndarray | None = None) -> None:
    """Write :func:`render_influence` to ``path`` atomically."""
    atomic_write_text(path, render_influence(result, dataset=dataset,
                                             query_images=query_images))
