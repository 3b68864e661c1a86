"""CLI commands: ``scan`` and ``clean``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from poisonguard.cli._app import command, err_console, out_console, progress_bar
from poisonguard.cli.engine import (
    AddressOpt,
    EngineName,
    EngineOpt,
    KnnName,
    KnnOpt,
    engine_for,
)
from poisonguard.cli.options import (
    CategoricalOpt,
    DataArg,
    IdOpt,
    IgnoreOpt,
    LabelOpt,
    LedgerOpt,
    NoLedgerOpt,
    ProgressMode,
    ProgressOpt,
    ThreadsOpt,
    column_list,
)
from poisonguard.errors import UsageError
from poisonguard.provenance.text import printable

if TYPE_CHECKING:
    from poisonguard.data import Dataset
    from poisonguard.findings import Findings

__all__ = ["print_reliability", "print_summary"]


class OutputFormat(StrEnum):
    json = "json"
    parquet = "parquet"


class CleanAction(StrEnum):
    quarantine = "quarantine"
    drop = "drop"
    relabel = "relabel"
    review = "review"



def print_notes(dataset: Dataset) -> None:
    """Say which table columns were left out of the features, and why (on stderr)."""
    if dataset.schema is not None:
        for line in dataset.schema.notes:
            err_console.print(f"note: {line}", markup=False, soft_wrap=True)


def print_summary(findings: Findings, *, top: int = 10) -> None:
    """Rows scanned, flags per class, suspected attacks and the top rows with reasons."""
    s = findings.summary
    rows = findings.dataset.get("rows", len(findings.rows))
    flagged = s.get("flagged", 0)
    out_console.print(
        f"[bold]Scanned[/bold] {rows} rows ({findings.dataset.get('modality')}) with "
        f"{', '.join(findings.detectors) or 'no detectors'}: "
        f"[bold]{flagged}[/bold] flagged ({100 * flagged / max(rows, 1):.1f}%)"
    )
    if s.get("by_class"):
        counts = ", ".join(f"{k}: {v}" for k, v in s["by_class"].items())
        out_console.print(f"Flagged per class: {counts}")
    for hypothesis in s.get("suspected_attacks", []):
        out_console.print(f"[red]Suspected[/red] {hypothesis}", markup=True)
    untested = s.get("untested", [])
    caveat = (f"not tested: {', '.join(untested)} (no detector of this scan tests labels; "
              "label and knn do: add them with --detectors)") if untested else ""
    if s.get("clean_classes") and not untested:
        out_console.print(f"Classes found clean by every detector: {', '.join(s['clean_classes'])}")
    elif s.get("clean_classes"):
        out_console.print(f"Classes without a flag: {', '.join(s['clean_classes'])}; {caveat}",
                          markup=False, soft_wrap=True)
    elif untested:
        out_console.print(caveat.capitalize(), markup=False, soft_wrap=True)
    print_reliability(s.get("reliability"))
    ranked = sorted(findings.flagged, key=lambda r: -r.score)[:top]
    if not ranked:
        return
    table = Table(title=f"Top {len(ranked)} flagged rows")
    for col in ("index", "score", "action", "reasons"):
        table.add_column(col)
    for r in ranked:
        detail = "; ".join(f"{x.detector}: {x.detail}" for x in r.reasons)
        table.add_row(str(r.index), f"{r.score:.3f}", r.action, detail)
    out_console.print(table)


def print_reliability(section: dict[str, Any] | None) -> None:
    """The scan's own reliability: out-of-fold accuracy, overlap, expected clean flags."""
    if not section:
        return
    colour = "green" if section["evidence"] == "strong" else "yellow"
    out_console.print(f"[{colour}]Reliability[/{colour}]: {section['note']} "
                      f"(--max-fpr {section['max_fpr']:g}).", markup=True, soft_wrap=True)
    recall = ", ".join(f"{name} {c['recall']:.0%}" for name, c in section["per_class"].items())
    out_console.print(f"Out-of-fold recall per class: {recall}", markup=False, soft_wrap=True)
    if section["overlap"]:
        pairs = ", ".join(f"{p['given']} given / {p['true']} likely: ~{p['rows']} rows"
                          for p in section["overlap"][:4])
        out_console.print(f"Class overlap (confident learning): {pairs}", markup=False,
                          soft_wrap=True)
    if section.get("review"):
        out_console.print(f"{section['review']} rows left for review (labels the natural "
                          "overlap explains; not flagged)", markup=False)


@command("scan")
def scan_command(
    data: DataArg,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    categorical: CategoricalOpt = None,
    ignore: IgnoreOpt = None,
    out: Annotated[Path, typer.Option(
        help="Folder for findings.json (or .parquet).")] = Path("scan"),
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="Findings file format.")] = OutputFormat.json,
    detectors: Annotated[str | None, typer.Option(
        help="Comma-separated detector names, 'all', or 'default'.")] = None,
    embeddings: Annotated[Path | None, typer.Option(
        help="N x K embeddings (.npy/.npz) to use as the representation.")] = None,
    fail_on: Annotated[float | None, typer.Option(
        help="Exit 1 when any row is flagged with a score at or above this (0-1).")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write an HTML report here.")] = None,
    png: Annotated[Path | None, typer.Option(
        help="Also write a PNG summary figure here (and the report, to OUT/report.html).")] = None,
    target_input: Annotated[str | None, typer.Option(
        help="Inputs under attack (same format and columns as DATA, labelled with their "
             "correct class): also run the influence detector on the rows pushing them to "
             "another class.")] = None,
    seed: Annotated[int, typer.Option(
        help="Seed of the model training and of every detector.")] = 0,
    max_fpr: Annotated[float, typer.Option(
        "--max-fpr", help="Target clean false-positive rate of the label detector's "
        "margin flags, held against the data's natural class overlap (the summary says "
        "how many rows clean data this hard would get). Every other label flag (label, "
        "knn, duplicate) is a sure held-out model's contradiction where the data holds "
        "more of them than natural overlap explains; the summary counts those.")] = 0.005,
    threads: ThreadsOpt = None,
    ledger: LedgerOpt = None,
    no_ledger: NoLedgerOpt = False,
    progress_mode: ProgressOpt = ProgressMode.auto,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    engine: EngineOpt = EngineName.local,
    address: AddressOpt = None,
    knn: KnnOpt = KnnName.auto,
    reproducible: Annotated[bool, typer.Option(
        "--reproducible", help="Images on the CPU: train the CNN with kernels that give "
        "the same findings on any x86-64 CPU (same --seed and --threads), for about twice "
        "its CPU time.")] = False,
) -> None:
    """Find poisoned rows: rank every row, flag the suspicious ones, say why."""
    from poisonguard.data import check_output_path, load_embeddings
    from poisonguard.datasets import open_dataset
    from poisonguard.engine.neighbours import engine_neighbours
    from poisonguard.findings import save_findings
    from poisonguard.provenance import data_ref, record_event
    from poisonguard.report import write_report
    from poisonguard.scan import scan_dataset

    if fail_on is not None and not 0.0 <= fail_on <= 1.0:
        raise UsageError("--fail-on must be between 0 and 1")
    if not 0.0 < max_fpr < 1.0:
        raise UsageError("--max-fpr must be between 0 and 1 (exclusive)")
    check_output_path(out, folder=True, name="--out")
    for option, extra in (("--report", report), ("--png", png)):
        if extra is not None:
            check_output_path(extra, name=option)
    show = not quiet and not as_json
    with engine_for(engine, address) as runner:
        with progress_bar(show, progress_mode.value) as bar:
            dataset = open_dataset(data, label=label, id_column=id_column,
                                   categorical=column_list(categorical),
                                   ignore=column_list(ignore), engine=runner, progress=bar)
        if show:
            print_notes(dataset)
        chosen: Any = detectors
        if target_input is not None:
            from poisonguard.influence.targeted import aim_at_targets

            chosen = aim_at_targets(detectors, dataset, open_dataset(
                target_input, label=label, id_column=id_column,
                categorical=column_list(categorical), ignore=column_list(ignore)), seed=seed)
        emb = load_embeddings(embeddings, len(dataset)) if embeddings is not None else None
        with progress_bar(show, progress_mode.value) as progress, \
                engine_neighbours(runner, mode=knn.value, progress=progress):
            findings, _, rep = scan_dataset(dataset, detectors=chosen,
                                            embeddings=emb, seed=seed, progress=progress,
                                            threads=threads, max_fpr=max_fpr,
                                            reproducible=reproducible)
    held = findings.summary["representation"].get("cpu_reproducible", "yes")
    if reproducible and held != "yes" and not quiet:
        err_console.print(f"note: --reproducible did not hold: {printable(held)}",
                          markup=False, soft_wrap=True)
    target = out / f"findings.{fmt.value}"
    save_findings(findings, target)
    if report is not None or png is not None:
        html_path = report if report is not None else out / "report.html"
        write_report(findings, html_path, dataset=dataset,
                     embedding=rep.with_embedding().embedding, png_path=png)
    if not no_ledger:
        record_event(
            "scan", inputs=[data_ref(data, dataset)], outputs=[{"path": str(target.absolute())}],
            details={"flagged": findings.summary["flagged"], "detectors": list(findings.detectors),
                     "suspected_attacks": findings.summary["suspected_attacks"]},
            ledger=ledger,
        )
    if as_json:
        print(json.dumps({"findings": str(target), **findings.summary}))
    elif not quiet:
        print_summary(findings)
        out_console.print(f"Findings written to {target}")
        if report is not None:
            out_console.print(f"Report written to {report}")
    if fail_on is not None and findings.fails_gate(fail_on):
        raise typer.Exit(1)


@command("clean")
def clean_command(
    data: DataArg,
    findings: Annotated[Path, typer.Option(help="Findings written by scan.")],
    out: Annotated[Path, typer.Option(help="Where to write the clean data.")],
    quarantine: Annotated[Path | None, typer.Option(
        help="Where to write the removed rows with their reasons (default: "
             "OUT.quarantine.EXT).")] = None,
    action: Annotated[CleanAction, typer.Option(
        help="quarantine (default), drop or review: flagged rows leave the clean data; "
             "relabel: confident suggestions are applied, the rest quarantined. Conflicting "
             "duplicates always keep one consistent copy.")] = CleanAction.quarantine,
    label: Annotated[str | None, typer.Option(
        "--label", help="Label column (default: the scan's).")] = None,
    id_column: IdOpt = None,
    ledger: LedgerOpt = None,
    no_ledger: NoLedgerOpt = False,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
) -> None:
    """Drop, relabel or quarantine the rows a scan flagged; never overwrites the input."""
    from poisonguard.clean import apply_findings
    from poisonguard.datasets import open_dataset, scanned_options
    from poisonguard.findings import load_findings
    from poisonguard.provenance import data_ref, record_event

    scanned = load_findings(findings)
    options = scanned_options(scanned.dataset, label=label, id_column=id_column)
    dataset = open_dataset(data, **options)
    result = apply_findings(dataset, scanned, out, quarantine=quarantine,
                            action=action.value)
    if not no_ledger:
        record_event(
            "clean", inputs=[data_ref(data, dataset), {"path": str(findings.absolute())}],
            outputs=result.ledger_outputs(**options), ledger=ledger,
            details={"action": action.value, "kept": len(result.plan.keep),
                     "dropped": len(result.plan.drop), "relabelled": len(result.plan.relabel)},
        )
    if not quiet:
        plan = result.plan
        out_console.print(
            f"Kept {len(plan.keep)} of {len(dataset)} rows ({len(plan.relabel)} relabelled), "
            f"quarantined {len(plan.drop)}; clean data in {result.out}"
            + (f", quarantine in {result.quarantine}" if result.quarantine else "")
        )
