"""CLI commands: ``train`` (robust training into a safe model folder) and ``certify``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from poisonguard.cli._app import command, out_console
from poisonguard.cli.scan import DataArg, IdOpt, LabelOpt, LedgerOpt, NoLedgerOpt
from poisonguard.data import atomic_path

__all__: list[str] = []


class Method(StrEnum):
    dpa = "dpa"
    fa = "fa"
    itlm = "itlm"
    abl = "abl"
    dp = "dp"


class Base(StrEnum):
    auto = "auto"
    logistic = "logistic"
    cnn = "cnn"
    mlp = "mlp"


@command("train")
def train_command(
    data: DataArg,
    out: Annotated[Path, typer.Option(help="New folder for the model, its card and findings.")],
    method: Annotated[Method, typer.Option(
        help="dpa / fa: certified partition ensembles; itlm: trimmed loss; abl: "
             "anti-backdoor learning; dp: DP-SGD.")] = Method.dpa,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    partitions: Annotated[int, typer.Option(help="dpa/fa: number of partitions k.", min=1)] = 10,
    spread: Annotated[int, typer.Option(help="fa: base models per bucket d.", min=1)] = 4,
    epsilon: Annotated[float, typer.Option(help="dp: target epsilon.")] = 3.0,
    delta: Annotated[float | None, typer.Option(
        help="dp: target delta (default 1/(10 N)).")] = None,
    base: Annotated[Base, typer.Option(
        help="Base model: auto (CNN for images, logistic regression for tables), logistic, "
             "cnn, mlp.")] = Base.auto,
    trim_fraction: Annotated[float, typer.Option(help="itlm: share of rows left out.")] = 0.1,
    isolation_fraction: Annotated[float, typer.Option(
        help="abl: share of rows isolated.")] = 0.05,
    epochs: Annotated[int | None, typer.Option(help="Torch epochs (default: by data size).",
                                               min=1)] = None,
    test_size: Annotated[float, typer.Option(help="Held-out share for the card.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed for the split and training.")] = 0,
    ledger: LedgerOpt = None,
    no_ledger: NoLedgerOpt = False,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Train a model that a few poisoned rows cannot take over; write it safely."""
    from poisonguard.datasets import open_dataset  # heavy imports here: `--help` stays fast
    from poisonguard.provenance import data_ref, record_event
    from poisonguard.train import train_dataset, write_model
    from poisonguard.train.pipeline import file_sha256

    dataset = open_dataset(data, label=label, id_column=id_column)
    result = train_dataset(dataset, method.value, partitions=partitions, spread=spread,
                           epsilon=epsilon, delta=delta, base=base.value,
                           trim_fraction=trim_fraction, isolation_fraction=isolation_fraction,
                           epochs=epochs, test_size=test_size, seed=seed)
    ref = data_ref(data, dataset)
    card = write_model(result, out, data={**ref, "sha256": file_sha256(data),
                                          "rows": len(dataset), "modality": dataset.modality})
    if not no_ledger:
        record_event("train", inputs=[ref],
                     outputs=[{"path": str(out.absolute()),
                               "model_sha256": card["files"].get("model.json")}],
                     details={"method": method.value,
                              "held_out_accuracy": card["held_out_accuracy"],
                              "epsilon": card.get("epsilon")}, ledger=ledger)
    if as_json:
        print(json.dumps(card, sort_keys=True))
        return
    if quiet:
        return
    line = (f"Trained {method.value} on {card['split']['train_rows']} rows: held-out accuracy "
            f"{card['held_out_accuracy']:.3f} on {card['split']['test_rows']} rows")
    if "epsilon" in card:
        line += f"; epsilon {card['epsilon']:.2f} at delta {card['delta']:.2g}"
    out_console.print(line, markup=False)
    if "certified_accuracy" in card:
        acc = ", ".join(f"r>={r}: {v:.3f}" for r, v in card["certified_accuracy"].items())
        out_console.print(f"Held-out certified accuracy: {acc}", markup=False, soft_wrap=True)
    if "flagged_rows" in card:
        out_console.print(f"Rows set aside as suspects: {card['flagged_rows']} "
                          f"(findings in {out / 'findings.json'})", markup=False)
    out_console.print(f"Model written to {out}", markup=False)


@command("certify")
def certify_command(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by train (dpa or fa).")],
    data: DataArg,
    out: Annotated[Path, typer.Option(help="Parquet file: prediction and radius per row.")],
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Each row's prediction and certified radius (training rows an attacker may insert,
    delete or relabel without changing it); certified accuracy at radius 1, 5, 10, 20."""
    from poisonguard.datasets import open_dataset  # heavy imports here: `--help` stays fast
    from poisonguard.train import certify_dataset
    from poisonguard.train.certify import RADII

    dataset = open_dataset(data, label=label, id_column=id_column)
    certs = certify_dataset(model_dir, dataset)
    with atomic_path(out) as tmp:
        certs.table.to_parquet(tmp, index=False)
    if as_json:
        print(json.dumps({"certificates": str(out), "rows": len(certs.table),
                          "certified_accuracy": {str(r): v for r, v in certs.accuracy.items()}}))
        return
    if quiet:
        return
    out_console.print(f"Certified {len(certs.table)} rows with a {certs.method} model; "
                      f"accuracy {certs.accuracy[0]:.3f}", markup=False)
    for r in RADII[1:]:
        out_console.print(f"  certified accuracy at radius {r:>2}: {certs.accuracy[r]:.3f}",
                          markup=False)
    out_console.print(f"Certificates written to {out}", markup=False)
