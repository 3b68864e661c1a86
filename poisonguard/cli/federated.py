"""CLI: ``poisonguard fl-sim``, a federated-learning simulation with attackers and a defence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poisonguard.cli._app import command, out_console, progress_bar
from poisonguard.federated import (
    FL_ATTACKS,
    RoundRecord,
    SimulationConfig,
    available_aggregators,
    simulate,
)
from poisonguard.federated.output import check_out_dir, write_outputs

__all__ = ["fl_sim_command"]


def _round_line(record: RoundRecord, total: int) -> str:
    asr = "" if record.attack_success is None else f"  backdoor ASR {record.attack_success:.3f}"
    new = f"  newly flagged: {', '.join(record.newly_flagged)}" if record.newly_flagged else ""
    return (f"round {record.round:>{len(str(total))}}/{total}  accuracy {record.accuracy:.3f}"
            f"{asr}  flagged {len(record.flagged)}{new}")


@command("fl-sim")
def fl_sim_command(
    out: Annotated[Path, typer.Option(help="folder for history.json and history.png")],
    clients: Annotated[int, typer.Option(help="number of clients")] = 20,
    malicious: Annotated[int, typer.Option(help="how many of them attack")] = 4,
    attack: Annotated[str, typer.Option(help=f"one of: {', '.join(FL_ATTACKS)}")] = "scaling",
    aggregator: Annotated[str, typer.Option(
        help=f"one of: {', '.join(available_aggregators())}")] = "fedavg",
    rounds: Annotated[int, typer.Option(help="training rounds")] = 30,
    dataset: Annotated[str, typer.Option(help="digits or synthetic")] = "digits",
    split: Annotated[str, typer.Option(help="iid or dirichlet")] = "iid",
    alpha: Annotated[float, typer.Option(help="Dirichlet concentration (non-IID)")] = 0.5,
    byzantine: Annotated[int | None, typer.Option(
        help="attackers the robust rules are built to tolerate (default 30% of clients)")]
    = None,
    attack_scale: Annotated[float | None, typer.Option(
        help="boost of scaling/sign-flip, noise level (default: the attack's own)")] = None,
    exclude_flagged: Annotated[bool, typer.Option(
        "--exclude-flagged", help="leave clients the reputation flags out of later rounds")]
    = False,
    hidden: Annotated[int, typer.Option(help="hidden units of the model (0: softmax)")] = 32,
    seed: Annotated[int, typer.Option(help="random seed; the same seed reproduces")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="print only the summary")] = False,
) -> None:
    """Simulate federated training with malicious clients; print accuracy, backdoor success
    and flagged clients per round; write history.json and history.png."""
    config = SimulationConfig(
        clients=clients, malicious=malicious, attack=attack, aggregator=aggregator,
        rounds=rounds, dataset=dataset, split=split, alpha=alpha, byzantine=byzantine,
        attack_scale=attack_scale, exclude_flagged=exclude_flagged, hidden=hidden, seed=seed)
    check_out_dir(out)

    def show(record: RoundRecord) -> None:
        if not quiet:
            out_console.print(_round_line(record, rounds), markup=False, highlight=False,
                              soft_wrap=True)

    with progress_bar(not quiet) as progress:
        result = simulate(config, progress=progress, on_round=show)
    history, plot = write_outputs(result, out)
    final_asr = ("" if result.final_attack_success is None
                 else f", backdoor ASR {result.final_attack_success:.3f}")
    flagged = result.history[-1].flagged
    out_console.print(
        f"{result.aggregator} vs {attack}: accuracy {result.final_accuracy:.3f}{final_asr}\n"
        f"flagged: {', '.join(flagged) if flagged else 'none'}; "
        f"malicious: {', '.join(result.malicious_clients) or 'none'}\n"
        f"wrote {history} and {plot}", markup=False, highlight=False, soft_wrap=True)
