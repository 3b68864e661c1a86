"""CLI commands: ``profile`` (a trusted baseline) and ``check`` (the batch gate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from poisonguard.cli._app import command, out_console, progress_bar
from poisonguard.cli.engine import AddressOpt, EngineName, EngineOpt, engine_for
from poisonguard.cli.options import (
    IdOpt,
    IgnoreOpt,
    LabelOpt,
    ProgressMode,
    ProgressOpt,
    column_list,
)

if TYPE_CHECKING:
    from poisonguard.validate import CheckReport, Finding

__all__ = ["print_report"]

BatchOpt = Annotated[int, typer.Option("--batch-rows", help="Rows per streamed Parquet batch.")]


@command("profile")
def profile_command(
    data: Annotated[list[str], typer.Argument(
        help="CSV, Parquet, NPZ, JSONL, image folder, builtin:NAME, or saved profiles "
             "(.json) to merge; several inputs are merged into one profile.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the profile (JSON).")],
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    ignore: IgnoreOpt = None,
    sample_per_class: Annotated[int, typer.Option(
        help="Rows kept per class for the tests (a content-keyed sample).")] = 1000,
    max_fingerprints: Annotated[int, typer.Option(
        help="Most row fingerprints kept for the duplicate check (0: none).")] = 1_000_000,
    batch_rows: BatchOpt = 65_536,
    progress_mode: ProgressOpt = ProgressMode.auto,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    engine: EngineOpt = EngineName.local,
    address: AddressOpt = None,
) -> None:
    """Profile trusted data: schema, sketches, label and class statistics, fingerprints."""
    from poisonguard.data import check_output_path, ensure_not_same
    from poisonguard.validate import profile_data, save_profile

    check_output_path(out, name="--out")
    for d in data:
        ensure_not_same(d, out)
    with engine_for(engine, address) as runner, \
            progress_bar(not quiet and not as_json, progress_mode.value) as progress:
        prof = profile_data(data, label=label, sample_per_class=sample_per_class,
                            max_fingerprints=max_fingerprints, batch_rows=batch_rows,
                            progress=progress, id_column=id_column, ignore=column_list(ignore),
                            engine=runner)
    save_profile(prof, out)
    summary = {"profile": str(out), "rows": prof.rows, "columns": len(prof.kinds),
               "classes": {c: int(n) for c, n in zip(prof.classes, prof.label_counts,
                                                      strict=True)},
               "sampled_rows": int(sum(len(s) for s in prof.samples)),
               "fingerprints": int(len(prof.fingerprints.hashes))}
    if as_json:
        print(json.dumps(summary))
    elif not quiet:
        out_console.print(
            f"Profiled {prof.rows} rows, {len(prof.numeric)} numeric and "
            f"{len(prof.categorical)} categorical columns, {len(prof.classes)} classes; "
            f"{summary['sampled_rows']} rows sampled, {summary['fingerprints']} fingerprints. "
            f"Profile written to {out}")


@command("check")
def check_command(
    data: Annotated[str, typer.Argument(help="The new batch (same formats as profile).")],
    baseline: Annotated[Path, typer.Option("--baseline", help="Profile of the trusted data.")],
    label: Annotated[str | None, typer.Option(
        "--label", help="Label column (default: the baseline's).")] = None,
    id_column: IdOpt = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Thresholds and per-feature tests (TOML or YAML).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report as JSON.")] = None,
    batch_rows: BatchOpt = 65_536,
    show_all: Annotated[bool, typer.Option("--all", help="List passing tests too.")] = False,
    progress_mode: ProgressOpt = ProgressMode.auto,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Gate a new batch: exit 1 when it fails the checks against the baseline, else 0."""
    from poisonguard.data import check_output_path
    from poisonguard.validate import check, load_config, load_profile, save_report

    if out is not None:
        check_output_path(out, name="--out")
    cfg = load_config(config)
    base = load_profile(baseline)
    with progress_bar(not quiet and not as_json, progress_mode.value) as progress:
        report = check(base, data, config=cfg, label=label, batch_rows=batch_rows,
                       progress=progress, id_column=id_column)
    if out is not None:
        save_report(report, out)
    if as_json:
        print(json.dumps(report.to_dict()))
    elif not quiet:
        print_report(report, show_all=show_all)
        if out is not None:
            out_console.print(f"Report written to {out}")
    if not report.passed:
        raise typer.Exit(1)


def _rows(f: Finding) -> str:
    if not f.n_rows:
        return ""
    head = ", ".join(str(r) for r in f.rows[:5])
    return f"{f.n_rows}: {head}" + (", ..." if f.n_rows > 5 else "")


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.3g}"


def print_report(report: CheckReport, *, show_all: bool = False) -> None:
    """The verdict line and a table of failing and warning findings."""
    s = report.summary
    verdict = "[green]PASSED[/green]" if report.passed else "[red]FAILED[/red]"
    out_console.print(
        f"Gate {verdict}: {s['rows']} rows against a baseline of {s['baseline_rows']}; "
        f"{s['tests']} tests ({s['correction']} corrected, alpha {s['alpha']}), "
        f"{s['failed']} failed, {s['warnings']} warnings")
    for note in s.get("notes", []):
        out_console.print(f"Note: {note}", markup=False)
    levels = ("fail", "warn", "info", "pass") if show_all else ("fail", "warn", "info")
    shown = report.by_severity(*levels)
    if not shown:
        return
    table = Table()
    for col in ("severity", "check", "feature", "class", "test", "statistic", "p (adj.)",
                "rows", "why"):
        table.add_column(col, overflow="fold")
    order = {lvl: i for i, lvl in enumerate(levels)}
    for f in sorted(shown, key=lambda f: (order[f.severity], f.p_adjusted or 0.0)):
        style = {"fail": "red", "warn": "yellow"}.get(f.severity, "")
        table.add_row(f"[{style}]{f.severity}[/{style}]" if style else f.severity, f.check,
                      f.feature or "", f.cls or "", f.test, _num(f.statistic),
                      _num(f.p_adjusted), _rows(f), f.message)
    out_console.print(table)
