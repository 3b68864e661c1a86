"""CLI commands of the red team: ``attack``, ``score`` and ``bench``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from poisonguard.cli._app import command, err_console, out_console, progress_bar
from poisonguard.cli.options import (
    CategoricalOpt,
    DataArg,
    IdOpt,
    IgnoreOpt,
    LabelOpt,
    ProgressMode,
    ProgressOpt,
    ThreadsOpt,
    column_list,
)
from poisonguard.data import ensure_not_same
from poisonguard.errors import UsageError

#: The attack kinds, for --help without importing the attacks (a test keeps this
#: equal to poisonguard.attack.ATTACK_INFO).
ATTACK_KINDS = ("flip", "flip-targeted", "flip-adversarial", "outliers", "mislabeled",
                "near-duplicates", "badnets", "blend", "tabular-trigger", "categorical-trigger",
                "clean-label", "feature-collision", "token-trigger", "sentence-trigger",
                "style-trigger")

__all__ = ["attack_command", "bench_command", "score_command"]

@command("attack")
def attack_command(
    kind: Annotated[str, typer.Argument(help=f"one of: {', '.join(ATTACK_KINDS)}")],
    data: DataArg,
    rate: Annotated[float, typer.Option(help="fraction of output rows poisoned, in (0, 0.5]")],
    out: Annotated[Path, typer.Option(help="where to write the poisoned data (the input's "
                                           "file type)")],
    truth: Annotated[Path, typer.Option(help="where to write the truth record (JSON)")],
    target: Annotated[str | None, typer.Option(help="target class, as written in the data")]
    = None,
    source: Annotated[str | None, typer.Option(help="source class (flip-targeted)")] = None,
    seed: Annotated[int, typer.Option(help="random seed; the same seed reproduces")] = 0,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    categorical: CategoricalOpt = None,
    ignore: IgnoreOpt = None,
    size: Annotated[int | None, typer.Option(help="badnets patch size (pixels, default 2)")]
    = None,
    position: Annotated[str | None, typer.Option(
        help="badnets patch position (default bottom-right)")] = None,
    value: Annotated[float | None, typer.Option(help="badnets patch value (default max)")]
    = None,
    alpha: Annotated[float | None, typer.Option(help="blend pattern weight (default 0.2)")]
    = None,
    n_features: Annotated[int | None, typer.Option(
        help="tabular-trigger columns (default 3); categorical-trigger columns (default 2)")]
    = None,
    trigger: Annotated[str | None, typer.Option(help="clean-label trigger: badnets, blend, "
                                                     "tabular")] = None,
    perturb: Annotated[bool | None, typer.Option(
        help="clean-label: make rows harder to learn (default on)")] = None,
    token: Annotated[str | None, typer.Option(help="token-trigger word (default cf)")] = None,
    sentence: Annotated[str | None, typer.Option(
        help="sentence-trigger sentence (default 'I watched this 3D movie.')")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="print nothing on success")] = False,
) -> None:
    """Poison DATA with attack KIND; write the poisoned data (same file type, schema, ids
    and dtypes; only attacked cells differ) and the truth record."""
    from poisonguard.attack import attack_by_name, attack_info, save_poisoned, save_truth
    from poisonguard.attack.truth import check_rate
    from poisonguard.attack.write import check_output
    from poisonguard.datasets import open_dataset

    attack_info(kind)  # an unknown kind fails here, before the data is read
    check_rate(rate)
    if out.resolve() == truth.resolve():
        raise UsageError("--out and --truth must be different files")
    for path in (out, truth):
        ensure_not_same(data, path)
    dataset = open_dataset(data, label=label, id_column=id_column,
                           categorical=column_list(categorical), ignore=column_list(ignore))
    check_output(dataset, out)
    result = attack_by_name(kind, dataset, rate=rate, seed=seed, target=target, source=source,
                            size=size, position=position, value=value, alpha=alpha,
                            n_features=n_features, trigger=trigger, perturb=perturb,
                            token=token, sentence=sentence)
    save_poisoned(result, dataset, out)
    save_truth(result.truth, truth)
    if not quiet:
        out_console.print(f"{result.truth.description}\nwrote {out} ({len(result.dataset)} rows) "
                          f"and {truth}", markup=False)


@command("score")
def score_command(
    findings: Annotated[Path, typer.Argument(help="poisonguard findings, a JSON list of flagged "
                                                  "indices, or {\"flagged\": [...]}")],
    truth: Annotated[Path, typer.Option(help="truth record written by 'poisonguard attack'")],
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """Score a findings file against the truth of an attack."""
    from poisonguard.attack import load_truth
    from poisonguard.bench import load_flags, score_flags
    from poisonguard.bench.tables import fmt

    record = load_truth(truth)
    flags, scores, tool = load_flags(findings, record.n_rows)
    metrics = score_flags(flags, record, scores=scores)
    metrics.update(attack=record.kind, findings_tool=tool)
    if as_json:
        out_console.print_json(json.dumps(metrics))
        return
    table = Table(title=f"{findings} vs {truth} ({record.kind})", title_justify="left")
    for col in ("flagged", "poisoned", "tp", "fp", "fn", "precision", "recall", "f1", "fpr",
                "auroc", "ap"):
        table.add_column(col, justify="right")
    table.add_row(*(fmt(metrics[c]) for c in ("flagged", "poisoned", "tp", "fp", "fn",
                                                "precision", "recall", "f1", "fpr", "auroc",
                                                "ap")))
    out_console.print(table)


def _floats(text: str) -> list[float]:
    from poisonguard.attack.truth import check_rate

    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--rates must be numbers separated by commas, got '{text}'") from None
    if not values:
        raise UsageError("--rates is empty")
    for v in values:
        check_rate(v)
    return values


@command("bench")
def bench_command(
    data: DataArg,
    out: Annotated[Path, typer.Option(help="directory for results.json, results.md, plots")],
    attacks: Annotated[str, typer.Option(help="comma-separated attack kinds")]
    = "flip,outliers,badnets,blend,tabular-trigger",
    rates: Annotated[str, typer.Option(help="comma-separated poison rates")]
    = "0.005,0.01,0.05,0.1",
    detectors: Annotated[str, typer.Option(help="'all' or comma-separated names")] = "all",
    target: Annotated[str, typer.Option(help="backdoor target class")] = "",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    label: LabelOpt = "label",
    folds: Annotated[int, typer.Option(min=2, help="cross-validation folds of the "
                                                   "representation")] = 5,
    threads: ThreadsOpt = None,
    progress_mode: ProgressOpt = ProgressMode.auto,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no tables")] = False,
) -> None:
    """Benchmark the detectors: every attack x rate x detector, scored against the truth."""
    from poisonguard.attack import attack_info, class_code
    from poisonguard.bench import rich_tables, run_bench, write_outputs
    from poisonguard.data import check_output_path
    from poisonguard.datasets import open_dataset

    kinds = [k.strip() for k in attacks.split(",") if k.strip()]
    for kind in kinds:
        attack_info(kind)  # an unknown kind fails here, before the data is read
    rate_list = _floats(rates)
    check_output_path(out, folder=True, name="--out")
    dataset = open_dataset(data, label=label)
    code = class_code(dataset, target) if target else 0
    with progress_bar(not quiet, progress_mode.value) as progress:
        result = run_bench(dataset, attacks=kinds, rates=rate_list, detectors=detectors,
                           target=code, seed=seed, folds=folds, threads=threads,
                           progress=progress)
    cmd = "poisonguard " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    written = write_outputs(result, out, command=cmd)
    if not quiet:
        for table in rich_tables(result):
            out_console.print(table)
        for skip in result.skipped:
            rate = f" at rate {skip['rate']:g}" if skip["rate"] else ""
            out_console.print(f"skipped {skip['attack']}{rate}: {skip['reason']}", markup=False)
        for err in result.errors:
            err_console.print(f"detector {err['detector']} failed on {err['where']}: "
                              f"{err['error']}", markup=False)
        out_console.print(f"wrote {', '.join(str(p) for p in written)} "
                          f"({result.meta['seconds']} s)", markup=False)
