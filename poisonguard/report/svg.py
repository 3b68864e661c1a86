"""Small inline-SVG plot builders: scatter, histogram, horizontal bars, pixel grid.

Every function returns one ``<svg>`` element as a string, with a ``viewBox`` so that
it scales with the page, coordinates rounded to one decimal to keep files small,
and all text escaped. No JavaScript, no external resources.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PALETTE", "Series", "bars", "histogram", "pixel_grid", "scatter"]

# Tableau 10 with its red swapped out (red marks flagged rows).
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#499894")
FLAG_COLOUR = "#d62728"
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'
_MARGIN = (14, 16, 36, 52)  # top, right, bottom, left


@dataclass(frozen=True)
class Series:
    """Points of one colour in a scatter plot; ``titles`` become hover tooltips."""

    x: np.ndarray
    y: np.ndarray
    colour: str
    label: str
    radius: float = 2.0
    titles: Sequence[str] | None = None
    outline: bool = False


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _open(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_esc(title)}" {_FONT}>'
            f"<title>{_esc(title)}</title>")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    """Slope and offset mapping [lo, hi] to [a, b] (a degenerate range maps to the middle)."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi - lo < 1e-12:
        return 0.0, (a + b) / 2
    k = (b - a) / (hi - lo)
    return k, a - k * lo


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= n:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _axes(width: int, height: int, xs: list[tuple[float, str]], ys: list[tuple[float, str]],
          xlabel: str, ylabel: str) -> str:
    top, right, bottom, left = _MARGIN
    parts = [f'<g stroke="#999" stroke-width="1"><line x1="{left}" y1="{height - bottom}" '
             f'x2="{width - right}" y2="{height - bottom}"/><line x1="{left}" y1="{top}" '
             f'x2="{left}" y2="{height - bottom}"/></g><g fill="#444">']
    for px, text in xs:
        parts.append(f'<text x="{px:.1f}" y="{height - bottom + 14}" '
                     f'text-anchor="middle">{_esc(text)}</text>')
    for py, text in ys:
        parts.append(f'<text x="{left - 4}" y="{py + 4:.1f}" text-anchor="end">{_esc(text)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" '
                 f'text-anchor="middle">{_esc(xlabel)}</text>')
    parts.append(f'<text transform="translate(12 {(top + height - bottom) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{_esc(ylabel)}</text></g>')
    return "".join(parts)


def scatter(series: Sequence[Series], *, title: str, xlabel: str = "", ylabel: str = "",
            width: int = 620, height: int = 420) -> str:
    """A scatter plot; untitled points are drawn as one path, titled ones as circles.

    The legend sits in a column to the right of the plot area.
    """
    top, right, bottom, left = _MARGIN
    legend = [(s.colour, s.label) for s in series if s.label]
    plot_right = width - right - (110 if legend else 0)
    all_x = np.concatenate([s.x for s in series]) if series else np.zeros(0)
    all_y = np.concatenate([s.y for s in series]) if series else np.zeros(0)
    lo_x, hi_x = (float(all_x.min()), float(all_x.max())) if all_x.size else (0.0, 1.0)
    lo_y, hi_y = (float(all_y.min()), float(all_y.max())) if all_y.size else (0.0, 1.0)
    kx, bx = _scale(lo_x, hi_x, left + 6, plot_right - 6)
    ky, by = _scale(lo_y, hi_y, height - bottom - 6, top + 6)
    parts = [_open(width, height, title)]
    xt = [(kx * t + bx, _fmt(t)) for t in _ticks(lo_x, hi_x)]
    yt = [(ky * t + by, _fmt(t)) for t in _ticks(lo_y, hi_y)]
    parts.append(_axes(plot_right + right, height, xt, yt, xlabel, ylabel))
    for s in series:
        px, py = kx * s.x + bx, ky * s.y + by
        if s.titles is None:
            d = "".join(f"M{a:.1f} {b:.1f}h0" for a, b in zip(px, py, strict=True))
            parts.append(f'<path d="{d}" stroke="{s.colour}" stroke-width="{2 * s.radius}" '
                         f'stroke-linecap="round" opacity="0.55" fill="none"/>')
        else:
            stroke = ' stroke="#000" stroke-width="0.8"' if s.outline else ""
            parts.append(f'<g fill="{s.colour}"{stroke}>')
            parts.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{s.radius}"><title>{_esc(t)}'
                         f"</title></circle>"
                         for a, b, t in zip(px, py, s.titles, strict=True))
            parts.append("</g>")
    parts.append(_legend(legend, width))
    parts.append("</svg>")
    return "".join(parts)


def _legend(items: Sequence[tuple[str, str]], width: int) -> str:
    right = _MARGIN[1]
    parts = ['<g fill="#333">']
    for k, (colour, label) in enumerate(items):
        y = _MARGIN[0] + 4 + 14 * k
        x = width - right - 100
        parts.append(f'<rect x="{x}" y="{y - 8}" width="9" height="9" fill="{colour}"/>'
                     f'<text x="{x + 13}" y="{y}">{_esc(label)}</text>')
    parts.append("</g>")
    return "".join(parts)


def histogram(edges: np.ndarray, counts: np.ndarray, *, title: str, xlabel: str = "score",
              threshold: float | None = None, log: bool = True, width: int = 360,
              height: int = 220, colour: str = PALETTE[0], above_colour: str = FLAG_COLOUR) -> str:
    """Pre-aggregated histogram; bins at or above ``threshold`` in ``above_colour``.

    With ``log``, bar heights are log10(1 + count) so that a few flagged rows stay
    visible beside many clean ones.
    """
    top, right, bottom, left = _MARGIN
    counts = np.asarray(counts, dtype=np.float64)
    heights = np.log10(1 + counts) if log else counts
    hi = float(heights.max(initial=0.0)) or 1.0
    kx, bx = _scale(float(edges[0]), float(edges[-1]), left, width - right)
    ky, by = _scale(0.0, hi, height - bottom, top)
    if log:
        yt = [(ky * math.log10(1 + 10**p) + by, f"{10**p:,}") for p in range(int(hi) + 1)]
    else:
        yt = [(ky * t + by, _fmt(t)) for t in _ticks(0.0, hi)]
    xt = [(kx * t + bx, _fmt(t)) for t in _ticks(float(edges[0]), float(edges[-1]))]
    parts = [_open(width, height, title), _axes(width, height, xt, yt, xlabel,
                                                "rows (log)" if log else "rows")]
    for k, h in enumerate(heights):
        if counts[k] <= 0:
            continue
        x0, x1 = kx * edges[k] + bx, kx * edges[k + 1] + bx
        above = threshold is not None and edges[k] >= threshold - 1e-12
        bar_w = max(x1 - x0 - 0.5, 0.5)
        parts.append(f'<rect x="{x0:.1f}" y="{ky * h + by:.1f}" width="{bar_w:.1f}"'
                     f' height="{-ky * h:.1f}" fill="{above_colour if above else colour}">'
                     f"<title>{_fmt(edges[k])}–{_fmt(edges[k + 1])}: {int(counts[k]):,} rows"
                     "</title></rect>")
    if threshold is not None:
        tx = kx * threshold + bx
        parts.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{height - bottom}" '
                     f'stroke="#222" stroke-dasharray="4 3"/><text x="{tx + 3:.1f}" y="{top + 10}" '
                     f'fill="#222">threshold {_fmt(threshold)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(labels: Sequence[str], values: Sequence[float], *, title: str, totals: Sequence[float]
         | None = None, xlabel: str = "", width: int = 480, colour: str = FLAG_COLOUR) -> str:
    """Horizontal bars, one per label; optional ``totals`` drawn as a pale bar behind."""
    top, right, bottom, _ = _MARGIN
    left = 12 + 7 * min(max((len(s) for s in labels), default=1), 18)
    row = 18
    height = top + bottom + row * max(len(labels), 1)
    hi = max([*values, *(totals or []), 1e-12])
    kx, bx = _scale(0.0, float(hi), left, width - right - 40)
    parts = [_open(width, height, title)]
    for k, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = top + k * row
        parts.append(f'<text x="{left - 4}" y="{y + 12}" text-anchor="end" fill="#333">'
                     f"{_esc(label[:18])}</text>")
        if totals is not None:
            parts.append(f'<rect x="{left}" y="{y + 2}" width="{kx * totals[k]:.1f}" '
                         f'height="{row - 4}" fill="#ddd"/>')
        text = f"{v:,.0f}" if float(v).is_integer() else _fmt(v)
        end = float(v)
        if totals is not None:
            text += f" / {totals[k]:,.0f}"
            end = max(end, float(totals[k]))
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{max(kx * v, 0.0):.1f}" '
                     f'height="{row - 4}" fill="{colour}"><title>{_esc(label)}: {text}</title>'
                     f'</rect><text x="{kx * end + bx + 4:.1f}" '
                     f'y="{y + 12}" fill="#333">{text}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" fill="#444">{_esc(xlabel)}</text></svg>')
    return "".join(parts)


def pixel_grid(values: np.ndarray, *, title: str, highlight: np.ndarray | None = None,
               cell: int = 14) -> str:
    """An H x W grid of grey cells (values in [0, 1]); ``highlight`` cells outlined in red."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, 1)
    h, w = v.shape
    parts = [_open(w * cell + 2, h * cell + 2, title)]
    for i in range(h):
        for j in range(w):
            g = int(round(255 * (1 - v[i, j])))
            parts.append(f'<rect x="{1 + j * cell}" y="{1 + i * cell}" width="{cell}" '
                         f'height="{cell}" fill="rgb({g},{g},{g})"/>')
    if highlight is not None:
        for i, j in zip(*np.nonzero(highlight), strict=True):
            parts.append(f'<rect x="{1 + j * cell}" y="{1 + i * cell}" width="{cell}" '
                         f'height="{cell}" fill="none" stroke="{FLAG_COLOUR}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)
