"""Robust training benchmark: clean accuracy, attack success rate (ASR) and time of
plain training, each robust method and scan-then-clean, under BadNets, blend and
label flips; and certified accuracy versus radius for DPA and FA.

    .venv/bin/python benchmarks/bench_train.py --datasets digits,breast_cancer \
        --attacks badnets,blend,flip --rates 0.01,0.05,0.1 --out-dir benchmarks/results

On tables ``badnets`` means the tabular trigger and ``blend`` does not apply. Base
models: logistic regression for plain, dpa, fa, itlm and scan-clean; the scan's CNN
(images) or an MLP (tables) for plain-torch, abl and dp.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from benchmarks._common import (
    RESULTS,
    command_line,
    machine,
    md_table,
    parse_floats,
    parse_ints,
    parse_names,
    versions,
    write_results,
)
from poisonguard.attack import apply_trigger, run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, synthetic
from poisonguard.scan import scan_dataset
from poisonguard.train import (
    ABLClassifier,
    DPAClassifier,
    DPSGDClassifier,
    FAClassifier,
    TorchClassifier,
    TrimmedLossClassifier,
    certified_accuracy,
    default_estimator,
)

METHODS = ("plain", "dpa", "fa", "itlm", "scan-clean", "plain-torch", "abl", "dp")
CERT_RADII = (0, 1, 2, 5, 10, 20, 50)


def _dataset(name: str, synthetic_rows: int) -> Dataset:
    if name == "synthetic":
        return synthetic(synthetic_rows, 20, 5, seed=0)
    return builtin_dataset(name)


def _shape(ds: Dataset) -> tuple[int, int, int] | None:
    return None if ds.images is None else tuple(int(v) for v in ds.images.shape[1:])  # type: ignore[return-value]


def _model(method: str, ds: Dataset, args: argparse.Namespace, seed: int) -> Any:
    shape = _shape(ds)
    if method == "plain":
        return default_estimator()
    if method == "dpa":
        return DPAClassifier(n_partitions=args.partitions)
    if method == "fa":
        return FAClassifier(n_partitions=args.partitions, spread=args.spread)
    if method == "itlm":
        return TrimmedLossClassifier(trim_fraction=0.1)
    if method == "plain-torch":
        return TorchClassifier(image_shape=shape, seed=seed)
    if method == "abl":
        return ABLClassifier(image_shape=shape, seed=seed, isolation_fraction=0.05)
    if method == "dp":
        return DPSGDClassifier(image_shape=shape, seed=seed, epsilon=args.epsilon)
    raise ValueError(method)


def _attack_kind(kind: str, ds: Dataset) -> str | None:
    if ds.modality == "image":
        return kind
    return {"badnets": "tabular-trigger", "flip": "flip"}.get(kind)


def _case(ds: Dataset, kind: str, rate: float, seed: int, methods: Sequence[str],
          args: argparse.Namespace) -> list[dict[str, Any]]:
    tr, te = train_test_split(np.arange(len(ds)), test_size=0.3, random_state=seed,
                              stratify=ds.labels)
    test = ds.subset(te)
    target = 0
    attack = run_attack(kind, ds.subset(tr), rate=rate, seed=seed,
                        target=target if kind != "flip" else None)
    x, y = attack.dataset.matrix(), attack.dataset.labels
    trig = None
    if attack.truth.trigger is not None:
        trig = apply_trigger(test, attack.truth).matrix()[test.labels != target]
    rows = []
    plain_seconds = None
    for method in methods:
        started = time.perf_counter()
        fit_x, fit_y = x, y
        model = _model("plain" if method == "scan-clean" else method, ds, args, seed)
        if method == "scan-clean":
            findings, _, _ = scan_dataset(attack.dataset, seed=seed, threads=1)
            keep = np.setdiff1d(np.arange(len(y)), findings.flagged_indices())
            fit_x, fit_y = x[keep], y[keep]
        model.fit(fit_x, fit_y)
        seconds = time.perf_counter() - started
        if method == "plain":
            plain_seconds = seconds
        row = {"method": method, "acc": float((model.predict(test.matrix()) == test.labels).mean()),
               "asr": None if trig is None else float((model.predict(trig) == target).mean()),
               "seconds": round(seconds, 2),
               "x_plain": None if not plain_seconds else round(seconds / plain_seconds, 1)}
        if method == "dp":
            row["epsilon"] = round(model.epsilon_, 3)
        print(f"  {kind} {rate} seed {seed} {method}: acc {row['acc']:.3f} asr {row['asr']} "
              f"{seconds:.1f}s", flush=True)
        rows.append(row)
    return rows


def _certified(ds: Dataset, ks: Sequence[int], spread: int, seed: int) -> list[dict[str, Any]]:
    tr, te = train_test_split(np.arange(len(ds)), test_size=0.3, random_state=seed,
                              stratify=ds.labels)
    x, y = ds.matrix(), ds.labels
    out = []
    for k in ks:
        for name, model in (("dpa", DPAClassifier(n_partitions=k)),
                            ("fa", FAClassifier(n_partitions=k, spread=spread))):
            started = time.perf_counter()
            model.fit(x[tr], y[tr])
            pred, radius = model.certify(x[te])
            acc = certified_accuracy(pred, radius, y[te], CERT_RADII)
            out.append({"method": f"{name} k={k}" + (f" d={spread}" if name == "fa" else ""),
                        "seconds": round(time.perf_counter() - started, 2),
                        **{f"r{r}": v for r, v in acc.items()},
                        "curve": certified_accuracy(pred, radius, y[te],
                                                    tuple(range(int(radius.max()) + 2)))})
            print(f"  certified {out[-1]['method']}: {acc}", flush=True)
    return out


def _plot(cert: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cert), figsize=(5 * len(cert), 3.6), squeeze=False)
    for ax, (name, rows) in zip(axes[0], cert.items(), strict=True):
        for row in rows:
            curve = row["curve"]
            ax.step(list(curve), list(curve.values()), where="post", label=row["method"])
        ax.set_title(name)
        ax.set_xlabel("radius (training rows)")
        ax.set_ylabel("certified accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,breast_cancer,synthetic")
    parser.add_argument("--synthetic-rows", type=int, default=50_000)
    parser.add_argument("--attacks", default="badnets,blend,flip")
    parser.add_argument("--rates", default="0.01,0.05,0.1")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--spread", type=int, default=4)
    parser.add_argument("--epsilon", type=float, default=3.0)
    parser.add_argument("--cert-partitions", default="10,30,50")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    methods = parse_names(args.methods)
    cases: list[dict[str, Any]] = []
    cert: dict[str, list[dict[str, Any]]] = {}
    for name in parse_names(args.datasets):
        ds = _dataset(name, args.synthetic_rows)
        print(f"{name}: {len(ds)} rows", flush=True)
        cert[name] = _certified(ds, parse_ints(args.cert_partitions), args.spread, 0)
        for kind in parse_names(args.attacks):
            real = _attack_kind(kind, ds)
            if real is None:
                continue
            for rate in parse_floats(args.rates):
                for seed in parse_ints(args.seeds):
                    rows = _case(ds, real, rate, seed, methods, args)
                    cases.append({"dataset": name, "attack": real, "rate": rate, "seed": seed,
                                  "methods": rows})
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _plot(cert, out / "train-certified.png")
    lines = ["# Robust training (issue 16)", "", f"Command: `{command_line(__file__, argv)}`",
             "", f"Machine: {machine()}", "", f"Versions: {versions(('opacus', 'skops'))}", "",
             "## Clean accuracy / ASR / seconds (x plain)", ""]
    table = []
    for case in cases:
        for row in case["methods"]:
            table.append({"dataset": case["dataset"], "attack": case["attack"],
                          "rate": case["rate"], "seed": case["seed"], **row})
    lines += md_table(["dataset", "attack", "rate", "seed", "method", "acc", "asr", "seconds",
                       "x_plain", "epsilon"], table)
    lines += ["", "## Certified accuracy vs radius (clean data, 30% held out)", "",
              "![certified accuracy](train-certified.png)", ""]
    for name, rows in cert.items():
        lines += [f"### {name}", ""]
        lines += md_table(["method", *[f"r{r}" for r in CERT_RADII], "seconds"], rows,
                          ["method", *[f"r>={r}" for r in CERT_RADII], "seconds"])
        lines.append("")
    for rows in cert.values():
        for row in rows:
            row["curve"] = {str(k): v for k, v in row["curve"].items()}
    write_results("train", "\n".join(lines) + "\n",
                  {"cases": cases, "certified": cert, "machine": machine(),
                   "command": command_line(__file__, argv)}, out)
    print(f"wrote {out / 'train.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
