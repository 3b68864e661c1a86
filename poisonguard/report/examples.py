"""The flagged rows themselves: image thumbnails, tabular explanations, text snippets.

Needs the dataset; each view shows only the highest-scoring flagged rows.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from poisonguard.data import phrase_spans, words
from poisonguard.report.cells import unusual_cells
from poisonguard.report.context import ReportContext
from poisonguard.report.html import Cell, esc, fmt_int, note, section, table

__all__ = ["examples_view", "highlight", "image_range", "png_data_uri", "robust_class_z",
           "trigger_phrases"]

_MAD_TO_SD = 1.4826


def image_range(images: np.ndarray, *, sample: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Min and max pixel value over a fixed sample of images (for a shared grey scale)."""
    n = len(images)
    idx = np.arange(n) if n <= sample else np.random.default_rng(seed).choice(n, sample, False)
    part = np.asarray(images[np.sort(idx)])
    return float(part.min(initial=0.0)), float(part.max(initial=1.0))


def png_data_uri(image: np.ndarray, lo: float, hi: float, *, max_side: int = 64) -> str:
    """An H x W x C image scaled from [lo, hi] to 8 bits, as a ``data:image/png`` URI."""
    from PIL import Image

    im = np.asarray(image, dtype=np.float64)
    if im.ndim == 3:
        im = im[..., :3] if im.shape[2] >= 3 else im[..., 0]
    scaled = np.clip((im - lo) / max(hi - lo, 1e-12), 0, 1)
    pic = Image.fromarray((scaled * 255).round().astype(np.uint8))
    if max(pic.size) > max_side:
        pic.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    pic.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def robust_class_z(features: np.ndarray, labels: np.ndarray, rows: np.ndarray, *,
                   sample: int = 5000, seed: int = 0) -> np.ndarray:
    """Robust z of ``features[rows]`` against the median and MAD of each row's class.

    Class statistics come from at most ``sample`` rows per class (fixed seed). A zero
    MAD falls back to the mean absolute deviation, then to 1 (as in
    :func:`poisonguard.detect.thresholds.robust_z`).
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((len(rows), features.shape[1]))
    for c in np.unique(labels[rows]):
        members = np.flatnonzero(labels == c)
        if len(members) > sample:
            members = np.sort(rng.choice(members, sample, replace=False))
        ref = np.asarray(features[members], dtype=np.float64)
        med = np.median(ref, axis=0)
        dev = np.abs(ref - med)
        mad = np.median(dev, axis=0) * _MAD_TO_SD
        mean_dev = dev.mean(axis=0) * 1.2533
        mad = np.where(mad > 1e-12, mad, np.where(mean_dev > 1e-12, mean_dev, 1.0))
        mine = labels[rows] == c
        out[mine] = (np.asarray(features[rows[mine]], dtype=np.float64) - med) / mad
    return out


def examples_view(ctx: ReportContext, *, limit: int = 48) -> str:
    """Thumbnails (images), suspicious features (tabular) or snippets (text).

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.attack import inject_outliers
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.report import build_context
    >>> data = inject_outliers(builtin_dataset("wine"), rate=0.03, seed=0).dataset
    >>> ctx = build_context(poisonguard.scan(data, detectors="outlier"), dataset=data)
    >>> "flavanoids = 7.496" in examples_view(ctx, limit=6)  # row 181's most unusual feature
    True
    """
    title = "Flagged examples"
    if ctx.dataset is None:
        return section("examples", title, note("The flagged examples need the data."))
    top = ctx.top_flagged(limit)
    if not len(top):
        return section("examples", title, note("No row was flagged."))
    head = note(f"The {fmt_int(len(top))} highest-scoring of {fmt_int(ctx.n_flagged)} "
                "flagged rows.")
    if ctx.dataset.images is not None:
        return section("examples", title, head + _thumbnails(ctx, top))
    if ctx.dataset.features is not None:
        return section("examples", title, head + _features(ctx, top[:30]))
    return section("examples", title, head + _texts(ctx, top[:30]))


def _label_text(ctx: ReportContext, p: int) -> tuple[str, str]:
    assert ctx.labels is not None
    label = ctx.class_name(int(ctx.labels[p]))
    sug = int(ctx.suggested[p])
    return label, ("" if sug < 0 else ctx.class_name(sug))


def _thumbnails(ctx: ReportContext, top: np.ndarray) -> str:
    assert ctx.dataset is not None and ctx.dataset.images is not None
    images = ctx.dataset.images
    lo, hi = image_range(images)
    cards = ['<div class="thumbs">']
    for p in top:
        label, sug = _label_text(ctx, int(p))
        row = int(ctx.index[p])
        arrow = f" → {esc(sug)}" if sug else ""
        cards.append(f'<figure class="thumb"><img alt="row {row}" src="'
                     f'{png_data_uri(images[row], lo, hi)}"><figcaption>row {row}<br>'
                     f"label {esc(label)}{arrow}<br>score {ctx.score[p]:.2f}</figcaption></figure>")
    cards.append("</div>")
    return "".join(cards) + note("label → suggested label where a detector suggested one.")


def _features(ctx: ReportContext, top: np.ndarray, n_features: int = 3) -> str:
    ds = ctx.dataset
    assert ds is not None and ds.features is not None and ctx.labels is not None
    rows_ds = ctx.index[top]
    if ds.schema is not None:
        return _table_cells(ctx, top, n_features)
    z = robust_class_z(ds.features, ds.labels, rows_ds)
    out: list[list[Cell]] = []
    for k, p in enumerate(top):
        label, sug = _label_text(ctx, int(p))
        order = np.argsort(-np.abs(z[k]))[:n_features]
        why = "; ".join(f"{ds.feature_names[j]} = {ds.features[rows_ds[k], j]:.4g} "
                        f"(z {z[k, j]:+.1f})" for j in order)
        out.append([(str(rows_ds[k]), float(rows_ds[k])), label, sug,
                    (f"{ctx.score[p]:.3f}", float(ctx.score[p])), why,
                    (f"{np.abs(z[k, order[0]]):.1f}", float(np.abs(z[k, order[0]])))])
    return table(["row", "label", "suggested", "score", "most unusual features vs its class",
                  "max |z|"], out,
                 caption="Robust z = (value − class median) / (1.4826 · class MAD).")


def _table_cells(ctx: ReportContext, top: np.ndarray, n_cells: int) -> str:
    """Typed tables: the most unusual cells in the table's own values."""
    ds = ctx.dataset
    assert ds is not None
    out: list[list[Cell]] = []
    for p in top:
        label, sug = _label_text(ctx, int(p))
        row = int(ctx.index[p])
        why = "; ".join(unusual_cells(ds, row, top=n_cells))
        out.append([(str(row), float(row)), label, sug,
                    (f"{ctx.score[p]:.3f}", float(ctx.score[p])), why])
    return table(["row", "label", "suggested", "score", "most unusual values for its class"],
                 out, caption="Categories with their share of the row's class; numbers with "
                              "a robust z = (value − class median) / (1.4826 · class MAD).")


def _texts(ctx: ReportContext, top: np.ndarray, chars: int = 200) -> str:
    ds = ctx.dataset
    assert ds is not None and ds.texts is not None
    phrases = trigger_phrases(ctx.findings.detector_results)
    out: list[list[Cell]] = []
    for p in top:
        label, sug = _label_text(ctx, int(p))
        text = ds.texts[int(ctx.index[p])]
        out.append([(str(ctx.index[p]), float(ctx.index[p])), label, sug,
                    (f"{ctx.score[p]:.3f}", float(ctx.score[p])),
                    highlight(text, phrases, chars=chars)])
    caption = ("Trigger words a detector named are marked." if phrases else "")
    return table(["row", "label", "suggested", "score", "text"], out, caption=caption,
                 raw_columns=(4,))


def trigger_phrases(detector_results: Mapping[str, Any]) -> list[list[str]]:
    """The word sequences of the text triggers the detectors confirmed."""
    out = []
    for result in detector_results.values():
        meta = result.get("meta", {}) if isinstance(result, Mapping) else {}
        for trig in meta.get("triggers", []) if isinstance(meta, Mapping) else []:
            if isinstance(trig, Mapping) and isinstance(trig.get("trigger"), str):
                out.append(words(trig["trigger"]))
    return [p for p in out if p]


def highlight(text: str, phrases: Sequence[Sequence[str]], *, chars: int = 200) -> str:
    """``text`` (cut at ``chars``) as escaped HTML with each occurrence of a phrase (a word
    sequence, compared in lower case) wrapped in ``<mark>``.

    Example
    -------
    >>> highlight("So <b>CF</b> it is", [["cf"]])
    'So &lt;b&gt;<mark>CF</mark>&lt;/b&gt; it is'
    """
    marks = phrase_spans(text, phrases)
    cut = min(len(text), chars)
    parts, at = [], 0
    for start, end in marks:
        if start < at or start >= cut:
            continue
        end = min(end, cut)
        parts += [esc(text[at:start]), f"<mark>{esc(text[start:end])}</mark>"]
        at = end
    parts.append(esc(text[at:cut]) + ("…" if len(text) > chars else ""))
    return "".join(parts)
