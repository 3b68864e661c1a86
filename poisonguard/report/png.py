"""A one-image PNG summary for terminals and CI logs (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poisonguard.data import atomic_path
from poisonguard.report.context import ReportContext
from poisonguard.report.projection import Projection
from poisonguard.report.svg import FLAG_COLOUR, PALETTE

__all__ = ["write_png"]


def write_png(ctx: ReportContext, projection: Projection | None, path: str | Path) -> None:
    """Four panels: fused score histogram, flagged per class, projection, top detectors.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "summary.png"
    >>> write_png(ctx, None, path)
    >>> path.read_bytes()[:4]
    b'\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7.5), dpi=100)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.08, top=0.9, hspace=0.4, wspace=0.3)
    (a, b), (c, d) = fig.subplots(2, 2)
    fig.suptitle(f"poisonguard: {ctx.n_flagged:,} of {ctx.n_rows:,} rows flagged "
                 f"({ctx.findings.dataset.get('path', '')})")

    edges = np.linspace(0, 1, 51)
    counts, _ = np.histogram(np.clip(ctx.score, 0, 1), bins=edges)
    colours = [FLAG_COLOUR if e >= ctx.threshold else PALETTE[0] for e in edges[:-1]]
    a.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours)
    a.set_yscale("symlog", linthresh=1)
    a.axvline(ctx.threshold, color="k", linestyle="--", linewidth=1)
    a.set(title="fused score (threshold dashed)", xlabel="score", ylabel="rows")

    by_class = _flagged_by_class(ctx)
    b.barh(list(by_class), list(by_class.values()), color=FLAG_COLOUR)
    b.invert_yaxis()
    b.set(title="flagged rows per class", xlabel="rows")

    if projection is not None:
        xy = projection.coords["PCA"]
        flag = ctx.flagged[projection.positions]
        c.scatter(xy[~flag, 0], xy[~flag, 1], s=3, color=PALETTE[0], alpha=0.4,
                  label="not flagged")
        c.scatter(xy[flag, 0], xy[flag, 1], s=10, color=FLAG_COLOUR, edgecolors="k",
                  linewidths=0.3, label="flagged")
        c.legend(loc="best", fontsize=8)
        c.set(title="PCA projection (sampled)", xlabel="PC 1", ylabel="PC 2")
    else:
        c.text(0.5, 0.5, "no projection (no data given)", ha="center", va="center")
        c.set_axis_off()

    names = list(ctx.detector_scores)
    over = [int((np.nan_to_num(ctx.detector_scores[n]) >= ctx.threshold).sum()) for n in names]
    d.barh(names, over, color=PALETTE[0])
    d.invert_yaxis()
    d.set(title="rows at or above each detector's threshold", xlabel="rows")
    if not names:
        d.text(0.5, 0.5, "no detector ran", ha="center", va="center", transform=d.transAxes)

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")


def _flagged_by_class(ctx: ReportContext) -> dict[str, int]:
    if ctx.labels is None:
        return {str(k): int(v) for k, v in (ctx.findings.summary.get("by_class") or {}).items()}
    counts = np.bincount(ctx.labels[ctx.flagged], minlength=len(ctx.classes))
    return {ctx.class_name(k): int(n) for k, n in enumerate(counts)}
