"""Write a simulation's JSON history and its plot (atomically)."""

from __future__ import annotations

import json
from pathlib import Path

from poisonguard.data import atomic_path, atomic_write_text
from poisonguard.errors import UsageError
from poisonguard.federated.simulator import SimulationResult

__all__ = ["check_out_dir", "plot_history", "save_history", "write_outputs"]


def check_out_dir(out_dir: str | Path) -> Path:
    """Refuse an output folder that exists as a file (checked before any work starts)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    return out


def save_history(result: SimulationResult, path: str | Path) -> Path:
    """Write the run as JSON (config, per-round records, reputation)."""
    p = Path(path)
    atomic_write_text(p, json.dumps(result.to_dict(), indent=1) + "\n")
    return p


def plot_history(result: SimulationResult, path: str | Path) -> Path:
    """A PNG: accuracy and backdoor success per round, and the number of flagged clients."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rounds = [r.round for r in result.history]
    fig = Figure(figsize=(7.5, 3.4))
    ax, ax2 = fig.subplots(1, 2)
    ax.plot(rounds, [r.accuracy for r in result.history], label="main-task accuracy")
    if result.history[0].attack_success is not None:
        ax.plot(rounds, [r.attack_success for r in result.history], label="backdoor ASR")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("round")
    ax.legend(loc="center right", fontsize=8)
    cfg = result.config
    ax.set_title(f"{cfg.aggregator} vs {cfg.attack} ({cfg.malicious}/{cfg.clients} malicious)",
                 fontsize=9)
    ax2.step(rounds, [len(r.flagged) for r in result.history], where="post")
    ax2.axhline(len(result.malicious_clients), color="grey", ls=":", lw=1)
    ax2.set_xlabel("round")
    ax2.set_title("clients flagged by reputation (dotted: malicious)", fontsize=9)
    fig.tight_layout()
    p = Path(path)
    with atomic_path(p, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return p


def write_outputs(result: SimulationResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/history.json`` and ``out_dir/history.png`` (the folder is created)."""
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return save_history(result, out / "history.json"), plot_history(result, out / "history.png")
