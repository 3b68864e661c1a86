"""PNG plots of a benchmark result (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from poisonguard.bench.runner import BenchResult  # noqa: E402
from poisonguard.data import atomic_path  # noqa: E402

__all__ = ["write_plots"]


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _by_attack(result: BenchResult) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for run in result.runs:
        out.setdefault(run["attack"], []).append(run)
    return out


def write_plots(result: BenchResult, out_dir: str | Path) -> list[Path]:
    """detection.png (F1 and AUROC vs rate per attack, one line per detector),
    downstream.png (ASR and accuracy before/after cleaning), clean_fpr.png."""
    out = Path(out_dir)
    written: list[Path] = []
    groups = _by_attack(result)
    if groups:
        fig, axes = plt.subplots(2, len(groups), figsize=(3.6 * len(groups), 6.4),
                                 squeeze=False)
        for j, (attack, runs) in enumerate(groups.items()):
            for i, metric in enumerate(("f1", "auroc")):
                ax = axes[i][j]
                for det in runs[0]["detectors"]:
                    xs = [r["rate"] for r in runs]
                    ys = [r["detectors"].get(det, {}).get(metric) for r in runs]
                    ys = [float("nan") if y is None else y for y in ys]
                    ax.plot(xs, ys, marker="o", lw=2.5 if det == "fused" else 1.2, label=det)
                ax.set_xscale("log")
                ax.set_ylim(0, 1.02)
                ax.set_title(f"{attack}: {metric.upper()}", fontsize=9)
                ax.set_xlabel("poison rate", fontsize=8)
        axes[0][0].legend(fontsize=7)
        written.append(out / "detection.png")
        _save(fig, written[-1])
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), squeeze=False)
        for attack, runs in groups.items():
            xs = [r["rate"] for r in runs]
            for ax, key in ((axes[0][0], "asr"), (axes[0][1], "accuracy")):
                for stage, style in (("poisoned", "-"), ("cleaned", "--")):
                    ys = [r["downstream"].get(f"{stage}_{key}") for r in runs]
                    if all(y is None for y in ys):
                        continue
                    ax.plot(xs, [float("nan") if y is None else y for y in ys], style,
                            marker="o", label=f"{attack} ({stage})")
        for ax, title in ((axes[0][0], "attack success rate"), (axes[0][1], "test accuracy")):
            ax.set_xscale("log")
            ax.set_ylim(0, 1.02)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("poison rate", fontsize=8)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
        written.append(out / "downstream.png")
        _save(fig, written[-1])
    if result.clean:
        fig, ax = plt.subplots(figsize=(6, 3))
        names = list(result.clean)
        ax.bar(names, [result.clean[n]["clean_fpr"] for n in names])
        ax.set_title("share of unpoisoned rows flagged (clean FPR)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        written.append(out / "clean_fpr.png")
        _save(fig, written[-1])
    return written
