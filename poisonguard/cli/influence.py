"""CLI command: ``influence`` (which training rows drive a prediction)."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from poisonguard.cli._app import command, out_console
from poisonguard.cli.options import (
    CategoricalOpt,
    DataArg,
    IdOpt,
    IgnoreOpt,
    JsonOpt,
    LabelOpt,
    LedgerOpt,
    NoLedgerOpt,
    QuietOpt,
    ThreadsOpt,
    column_list,
)

if TYPE_CHECKING:
    from poisonguard.data import Dataset

__all__: list[str] = []

_ROWS = re.compile(r"^\s*\d+(\s*,\s*\d+)*\s*$")


class Method(StrEnum):
    tracin = "tracin"
    knn_shapley = "knn-shapley"
    influence_functions = "if"


class Layers(StrEnum):
    last = "last"
    all = "all"


@command("influence")
def influence_command(
    data: DataArg,
    query: Annotated[str, typer.Option(
        help="Rows of DATA to explain ('17' or '3,17,42'), or a file of query rows in the "
             "same format and columns as DATA (with the label column).")],
    out: Annotated[Path, typer.Option(
        help="Folder for influence.json, influencers.csv and report.html.")] = Path("influence"),
    method: Annotated[Method, typer.Option(
        help="if: influence functions of a softmax regression (reference); knn-shapley: "
             "exact k-NN Shapley values; tracin: TracIn over torch checkpoints.")
    ] = Method.influence_functions,
    model: Annotated[Path | None, typer.Option(
        "--model", help="tracin: a checkpoint folder or a 'poisonguard train' folder with a "
                        "torch model (safetensors only); default: train one into OUT/model.")
    ] = None,
    layers: Annotated[Layers, typer.Option(
        help="tracin: gradients of the output layer only (exact, fast) or of all layers "
             "(randomly projected).")] = Layers.last,
    epochs: Annotated[int | None, typer.Option(
        help="tracin without --model: training epochs (default: by data size).", min=1)
    ] = None,
    top: Annotated[int, typer.Option(help="Rows listed per query and direction.", min=1)] = 20,
    k: Annotated[int, typer.Option(help="knn-shapley: neighbours.", min=1)] = 10,
    findings: Annotated[Path | None, typer.Option(
        help="A scan's findings of DATA: each influencer shows its own outcome.")] = None,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    categorical: CategoricalOpt = None,
    ignore: IgnoreOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for model training (tracin).")] = 0,
    threads: ThreadsOpt = None,
    ledger: LedgerOpt = None,
    no_ledger: NoLedgerOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List, for each query row, the training rows that most raise and most lower its
    predicted class, with scores and their own scan findings."""
    from threadpoolctl import threadpool_limits

    from poisonguard.data import check_output_path
    from poisonguard.datasets import open_dataset
    from poisonguard.findings import load_findings
    from poisonguard.influence import run_influence
    from poisonguard.provenance import data_ref, record_event
    from poisonguard.provenance.text import printable

    def opened(spec: str) -> Dataset:
        return open_dataset(spec, label=label, id_column=id_column,
                            categorical=column_list(categorical), ignore=column_list(ignore))

    check_output_path(out, folder=True, name="--out")
    dataset = opened(data)
    queries = [int(v) for v in query.split(",")] if _ROWS.match(query) else opened(query)
    scanned = load_findings(findings) if findings is not None else None
    with threadpool_limits(limits=threads or 1):
        result, written = run_influence(dataset, queries, out, method=method.value, top=top,
                                        k=k, model_dir=model, findings=scanned, seed=seed,
                                        threads=threads, layers=layers.value,
                                        epochs=epochs)
    if not no_ledger:
        inputs = [data_ref(data, dataset)]
        if not isinstance(queries, list):
            inputs.append(data_ref(query, queries))
        record_event("influence", inputs=inputs,
                     outputs=[{"path": str(p.absolute())} for p in written],
                     details={"method": method.value, "queries": len(result.explanations),
                              "top": top}, ledger=ledger)
    if as_json:
        print(json.dumps({"influence": str(written[0]), "method": method.value,
                          "queries": [e.to_dict() for e in result.explanations]}))
        return
    if quiet:
        return
    for e in result.explanations:
        title = f"{e.query}: predicted {e.predicted}" + (
            f" (label {e.label})" if e.label is not None else "")
        table = Table(title=Text(printable(title)))
        for col in ("direction", "row", "label", "score", "its findings"):
            table.add_column(col)
        for direction, rows in (("raises", e.raising), ("lowers", e.lowering)):
            for r in rows[:5]:
                table.add_row(*(Text(printable(c)) for c in (
                    direction, str(r.row), r.label, f"{r.score:+.4g}", r.finding or "")))
        out_console.print(table)
    out_console.print(printable(f"Influencers written to {written[0].parent} (influence.json, "
                                "influencers.csv, report.html)"), markup=False, soft_wrap=True)
