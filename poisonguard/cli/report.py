"""CLI command: ``report`` (an HTML page with plots, and a PNG summary, from findings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poisonguard.cli._app import command, out_console
from poisonguard.cli.options import IdOpt

__all__ = ["report_command"]


@command("report")
def report_command(
    findings: Annotated[Path, typer.Argument(help="Findings written by scan (.json or .parquet).")],
    data: Annotated[str | None, typer.Option(
        help="The scanned data (file or builtin:NAME); without it the page leaves out the "
             "projection, per-class counts and flagged examples.")] = None,
    label: Annotated[str | None, typer.Option(
        "--label", help="Label column (default: the scan's).")] = None,
    id_column: IdOpt = None,
    embeddings: Annotated[Path | None, typer.Option(
        help="N x K embeddings (.npy/.npz) to project instead of the data's features.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "report.html"),
    png: Annotated[Path | None, typer.Option(help="Also write a PNG summary figure here.")] = None,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
) -> None:
    """Write a self-contained HTML report (no network needed to view it) for a scan."""
    from poisonguard.data import check_output_path, load_embeddings
    from poisonguard.datasets import open_dataset, scanned_options
    from poisonguard.findings import load_findings
    from poisonguard.report import check_match, write_report

    for option, target in (("--out", out), ("--png", png)):
        if target is not None:
            check_output_path(target, name=option)
    result = load_findings(findings)
    dataset = None
    if data is not None:
        dataset = open_dataset(data, **scanned_options(result.dataset, label=label,
                                                       id_column=id_column))
        check_match(result, dataset)
    n_rows = len(result.rows)
    emb = load_embeddings(embeddings, n_rows) if embeddings is not None else None
    write_report(result, out, dataset=dataset, embedding=emb, png_path=png)
    if not quiet:
        size = out.stat().st_size
        out_console.print(f"Report written to {out} ({size / 1e6:.2f} MB)"
                          + (f", summary figure to {png}" if png else ""),
                          markup=False, soft_wrap=True)
