"""Benchmark the input-space backdoor detectors (trigger, cleanlabel).

Quality: clean false-positive rate on every built-in dataset, then precision, recall,
F1, AUROC and clean FPR for each backdoor x rate against the attack's truth. Scale:
each detector alone on synthetic N x 50 data carrying a 1% tabular trigger.

    .venv/bin/python benchmarks/detectors_trigger.py                       # quality grid
    .venv/bin/python benchmarks/detectors_trigger.py --scale 100000 1000000 --no-quality

Both detectors read only ``representation.features`` (the standardised input, the
same ``scale_features`` every real representation uses), so no model is trained
here: the numbers are those of a scan with any representation.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import command_line, machine, md_table, versions, write_results  # noqa: E402
from poisonguard.attack import AttackResult, run_attack  # noqa: E402
from poisonguard.bench.metrics import detection_metrics  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import builtin_dataset, synthetic  # noqa: E402
from poisonguard.detect import get_detector  # noqa: E402
from poisonguard.represent import Representation, scale_features  # noqa: E402

DETECTORS = ("trigger", "cleanlabel")
DATASETS = ("digits", "digits-tabular", "breast_cancer", "wine", "synthetic")
RATES = (0.005, 0.01, 0.05, 0.1)
# (case name, dataset, attack kind, parameters)
CASES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("badnets 2x2 bottom-right", "digits", "badnets", {"size": 2, "position": "bottom-right"}),
    ("badnets 3x3 bottom-right", "digits", "badnets", {"size": 3, "position": "bottom-right"}),
    ("badnets 2x2 top-left", "digits", "badnets", {"size": 2, "position": "top-left"}),
    ("badnets 2x2 center", "digits", "badnets", {"size": 2, "position": "center"}),
    ("badnets 3x3 center", "digits", "badnets", {"size": 3, "position": "center"}),
    ("blend a=0.2", "digits", "blend", {}),
    ("tabular-trigger", "digits-tabular", "tabular-trigger", {}),
    ("tabular-trigger", "breast_cancer", "tabular-trigger", {}),
    ("tabular-trigger", "wine", "tabular-trigger", {}),
    ("tabular-trigger", "synthetic", "tabular-trigger", {}),
    ("clean-label badnets", "digits", "clean-label", {}),
    ("clean-label badnets, no perturbation", "digits", "clean-label", {"perturb": False}),
    ("clean-label blend", "digits", "clean-label", {"trigger": "blend"}),
    ("clean-label tabular", "breast_cancer", "clean-label", {}),
)


def features_only(dataset: Dataset) -> Representation:
    f = scale_features(dataset.matrix())
    proba = np.full((len(dataset), dataset.n_classes), 1.0 / dataset.n_classes)
    return Representation(features=f, embedding=f, proba=proba, model="input-features")


def _prepared(attack: AttackResult) -> tuple[Dataset, Representation, np.ndarray]:
    """The poisoned dataset, its features-only representation and the truth mask."""
    ds = attack.dataset
    truth = np.zeros(len(ds), dtype=bool)
    truth[attack.truth.poisoned] = True
    return ds, features_only(ds), truth


def quality(rates: tuple[float, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clean_rows: list[dict[str, Any]] = []
    for name in DATASETS:
        ds = builtin_dataset(name)
        rep = features_only(ds)
        for det in DETECTORS:
            res = get_detector(det).score(ds, rep)
            clean_rows.append({"dataset": name, "detector": det, "rows": len(ds),
                               "flagged": res.n_flagged, "fpr": res.n_flagged / len(ds),
                               "clean_classes": f"{len(res.clean_classes)}/{ds.n_classes}"})
            print(f"clean {name} {det}: {res.n_flagged} flagged", flush=True)
    rows: list[dict[str, Any]] = []
    for case, name, kind, params in CASES:
        for rate in rates:
            try:
                attack = run_attack(kind, builtin_dataset(name), rate=rate, target=0, seed=0,
                                    **params)
            except Exception as exc:  # noqa: BLE001 - an impossible cell is recorded, not fatal
                rows.append({"case": case, "dataset": name, "rate": rate, "note": str(exc)[:60]})
                continue
            ds, rep, truth = _prepared(attack)
            for det in DETECTORS:
                t0 = time.perf_counter()
                res = get_detector(det).score(ds, rep)
                m = detection_metrics(res.flags, truth, res.scores)
                rows.append({"case": case, "dataset": name, "rate": rate, "detector": det,
                             "poisoned": int(truth.sum()), "flagged": res.n_flagged,
                             "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                             "auroc": m["auroc"], "clean_fpr": m["fpr"],
                             "seconds": time.perf_counter() - t0})
                print(f"{case} {name} {rate} {det}: F1={m['f1']}", flush=True)
    return clean_rows, rows


def scale(sizes: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in sizes:
        base = synthetic(n, 50, 5, seed=0)
        ds, rep, truth = _prepared(run_attack("tabular-trigger", base, rate=0.01, target=0,
                                              seed=0))
        for det in DETECTORS:
            t0 = time.perf_counter()
            res = get_detector(det).score(ds, rep)
            secs = time.perf_counter() - t0
            m = detection_metrics(res.flags, truth)
            out.append({"rows": n, "detector": det, "seconds": secs, "f1": m["f1"],
                        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20})
            print(f"scale {n} {det}: {secs:.1f}s F1={m['f1']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--scale", type=int, nargs="*", default=[])
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    clean_rows, rows = ([], []) if args.no_quality else quality(tuple(args.rates))
    scale_rows = scale(args.scale) if args.scale else []
    mach = machine()
    lines = ["# Input-space backdoor detectors: trigger and cleanlabel", "",
             f"Command: `{command_line(__file__, argv)}`", "",
             f"Machine: {mach}", "", f"Versions: {versions()}", "",
             "Representation: the standardised input features only (both detectors read "
             "nothing else). Attacks: `poisonguard.attack`, target class 0, seed 0. "
             "Clean FPR = share of the unpoisoned rows flagged.", ""]
    if clean_rows:
        lines += ["## Clean data", ""]
        lines += md_table(["dataset", "detector", "rows", "flagged", "fpr", "clean_classes"],
                          clean_rows)
        lines += ["", "## Backdoors", ""]
        lines += md_table(["case", "dataset", "rate", "detector", "poisoned", "flagged",
                           "precision", "recall", "f1", "auroc", "clean_fpr", "seconds", "note"],
                          rows)
    if scale_rows:
        lines += ["", "## Scale (synthetic N x 50, 5 classes, 1% tabular trigger)", ""]
        lines += md_table(["rows", "detector", "seconds", "f1", "peak_rss_gib"], scale_rows)
    stem = "detectors-trigger" if not args.no_quality else "detectors-trigger-scale"
    md, _ = write_results(stem, "\n".join(lines) + "\n",
                          {"machine": mach, "clean": clean_rows, "backdoors": rows,
                           "scale": scale_rows}, args.out)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
