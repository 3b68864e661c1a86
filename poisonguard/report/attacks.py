"""The suspected-attack view: hypotheses in words, and trigger patches when known.

The trigger detector may describe what it found in
``detector_results["trigger"]["meta"]["triggers"]``: a list of dicts (or a dict by
class) with, where known, ``target`` / ``class``, a sentence (``hypothesis``,
``description`` or ``detail``), ``rows``, and the trigger itself as ``features``
(flat indices into the row's matrix, or feature names) with optional ``values``,
or as a ``pattern`` / ``mask`` array. Anything missing or unreadable is shown as
text only: the view never fails on detector metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from poisonguard.report import svg
from poisonguard.report.context import ReportContext
from poisonguard.report.html import esc, note, section

__all__ = ["attacks_view", "trigger_entries"]


def trigger_entries(ctx: ReportContext) -> list[dict[str, Any]]:
    """The trigger detector's trigger descriptions, as a list of dicts (maybe empty)."""
    result = ctx.findings.detector_results.get("trigger")
    meta = result.get("meta") if isinstance(result, Mapping) else None
    triggers = meta.get("triggers") if isinstance(meta, Mapping) else None
    if isinstance(triggers, Mapping):
        triggers = [{"target": k, **v} if isinstance(v, Mapping) else {"target": k, "detail": v}
                    for k, v in triggers.items()]
    if not isinstance(triggers, list):
        return []
    return [dict(t) for t in triggers if isinstance(t, Mapping)]


def attacks_view(ctx: ReportContext) -> str:
    """Every suspected attack sentence, then one card per trigger the detector described.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> "No detector put forward an attack hypothesis" in attacks_view(ctx)
    True
    """
    hypotheses = [str(h) for h in ctx.findings.summary.get("suspected_attacks") or []]
    parts = []
    if hypotheses:
        parts.append("<ul class='attacks'>" + "".join(f"<li>{esc(h)}</li>" for h in hypotheses)
                     + "</ul>")
    else:
        parts.append(note("No detector put forward an attack hypothesis."))
    triggers = trigger_entries(ctx)
    if triggers:
        parts.append('<div class="thumbs">' + "".join(_trigger_card(ctx, t) for t in triggers)
                     + "</div>")
    elif "trigger" not in ctx.findings.detector_results:
        parts.append(note("The trigger detector did not run, so no trigger pattern is drawn."))
    return section("attacks", "Suspected attacks", "".join(parts))


def _trigger_card(ctx: ReportContext, t: Mapping[str, Any]) -> str:
    target = t.get("target", t.get("class", t.get("target_class")))
    text = t.get("hypothesis") or t.get("description") or t.get("detail") or ""
    head = [] if target is None else [f"class {_class(ctx, target)}"]
    if isinstance(t.get("rows"), int | float) and not isinstance(t.get("rows"), bool):
        head.append(f"{int(t['rows']):,} rows")
    if isinstance(t.get("looks_other"), int) and not isinstance(t.get("looks_other"), bool):
        head.append(f"{t['looks_other']:,} look like another class with it masked")
    caption = esc(": ".join(x for x in (", ".join(head), str(text)) if x))
    try:
        drawing = _draw(ctx, t)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        drawing = note(f"(the trigger could not be drawn: {exc})")
    return f'<figure class="trigger">{drawing}<figcaption>{caption}</figcaption></figure>'


def _class(ctx: ReportContext, target: object) -> str:
    if isinstance(target, int | np.integer) and not isinstance(target, bool):
        return ctx.class_name(int(target))
    return str(target)


def _image_shape(ctx: ReportContext, t: Mapping[str, Any]) -> tuple[int, ...] | None:
    if ctx.dataset is not None and ctx.dataset.images is not None:
        return tuple(int(s) for s in ctx.dataset.images.shape[1:])
    shape = t.get("shape") or ctx.findings.dataset.get("shape")
    return tuple(int(s) for s in shape) if isinstance(shape, list | tuple) and shape else None


def _draw(ctx: ReportContext, t: Mapping[str, Any]) -> str:
    pattern = t.get("pattern", t.get("mask"))
    if pattern is not None:
        arr = np.asarray(pattern, dtype=np.float64)
        arr = arr.mean(axis=2) if arr.ndim == 3 else arr
        if arr.ndim != 2:
            raise ValueError(f"pattern of shape {arr.shape}")
        span = float(arr.max() - arr.min()) or 1.0
        return svg.pixel_grid((arr - arr.min()) / span, title="trigger pattern", highlight=arr != 0)
    features = t.get("features")
    if not isinstance(features, list | tuple) or not features:
        return ""
    values = t.get("values")
    shape = _image_shape(ctx, t)
    if shape is not None and ctx.modality == "image" and all(
            isinstance(f, int | np.integer) for f in features):
        return _draw_on_image(ctx, t, shape, [int(f) for f in features], values)
    pixels = t.get("pixels")
    if ctx.modality == "image" and isinstance(pixels, list) and pixels:
        cells = dict.fromkeys((int(p[0]), int(p[1])) for p in pixels)
        return "<ul>" + "".join(f"<li>pixel ({r}, {c})</li>" for r, c in cells) + "</ul>"
    names = ctx.dataset.feature_names if ctx.dataset is not None else ()
    items = []
    for k, f in enumerate(features):
        name = names[f] if isinstance(f, int) and 0 <= f < len(names) else str(f)
        value = f" = {float(values[k]):.4g}" if isinstance(values, list | tuple) else ""
        items.append(f"<li>{esc(name)}{esc(value)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _draw_on_image(ctx: ReportContext, t: Mapping[str, Any], shape: tuple[int, ...],
                   features: list[int], values: object) -> str:
    h, w = shape[0], shape[1]
    c = shape[2] if len(shape) > 2 else 1
    flat_mask = np.zeros(h * w * c, dtype=bool)
    flat_mask[features] = True
    mask = np.asarray(flat_mask.reshape(h, w, c).any(axis=2))
    background = np.zeros((h, w, c))
    lo, hi = 0.0, 1.0
    if ctx.dataset is not None and ctx.dataset.images is not None and ctx.labels is not None:
        target = t.get("target", t.get("class"))
        rows = ctx.flagged & (ctx.labels == target) if isinstance(target, int) else ctx.flagged
        pick = ctx.index[np.flatnonzero(rows)[:500]]
        if len(pick):
            background = np.asarray(ctx.dataset.images[pick], dtype=np.float64).mean(axis=0)
            lo, hi = float(ctx.dataset.images[pick].min()), float(ctx.dataset.images[pick].max())
    flat = background.reshape(-1).copy()
    if isinstance(values, list | tuple) and len(values) == len(features):
        flat[features] = np.asarray(values, dtype=np.float64)
    grey = ((flat.reshape(h, w, c).mean(axis=2)) - lo) / max(hi - lo, 1e-12)
    return svg.pixel_grid(grey, title="trigger on the mean flagged image", highlight=mask,
                          cell=max(4, min(20, 160 // max(h, w))))
