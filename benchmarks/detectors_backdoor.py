"""Benchmark the representation-space backdoor detectors (spectral, spectre, activation).

For each dataset, a clean run (clean false-positive rate) and each dirty-label
backdoor x rate (target class 0, seed 0): precision, recall, F1, AUROC and the
false-positive rate on the clean rows, against the attack's truth. One
representation (CNN for images, MLP for tabular) is trained per poisoned dataset,
exactly as a scan builds it, and shared by the three detectors.

    .venv/bin/python benchmarks/detectors_backdoor.py
    .venv/bin/python benchmarks/detectors_backdoor.py --datasets digits --rates 0.05

IBM ART's ActivationDefence / SpectralSignatureDefense are not run here (see
docs/detectors-backdoor.md for the figures quoted from the issue).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    command_line,
    machine,
    md_table,
    parse_floats,
    parse_names,
    versions,
    write_results,
)
from poisonguard.attack import run_attack  # noqa: E402
from poisonguard.bench.metrics import detection_metrics  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import builtin_dataset  # noqa: E402
from poisonguard.detect import get_detector  # noqa: E402
from poisonguard.represent import build_representation  # noqa: E402

DETECTORS = ("spectral", "spectre", "activation")
ATTACK_OF = {"digits": ("badnets", "blend"), "breast_cancer": ("tabular-trigger",),
             "digits-tabular": ("tabular-trigger",)}
RATES = (0.01, 0.05, 0.1)
COLUMNS = ("dataset", "attack", "rate", "detector", "flagged", "poisoned", "precision",
           "recall", "f1", "auroc", "clean_fpr", "clean_classes", "seconds")


def _score(dataset: Dataset, truth: np.ndarray, case: dict[str, Any],
           detectors: list[str]) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    rep = build_representation(dataset, seed=0)
    build_s = time.perf_counter() - t0
    rows = []
    for name in detectors:
        t1 = time.perf_counter()
        result = get_detector(name).score(dataset, rep)
        m = detection_metrics(result.flags, truth, result.scores)
        rows.append({**case, "detector": name, **m, "clean_fpr": m["fpr"],
                     "clean_classes": len(result.clean_classes),
                     "seconds": round(time.perf_counter() - t1, 2),
                     "representation_s": round(build_s, 1), "hypotheses": result.hypotheses})
    return rows


def run(datasets: list[str], rates: list[float], detectors: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in datasets:
        data = builtin_dataset(name)
        rows += _score(data, np.zeros(len(data), dtype=bool),
                       {"dataset": name, "attack": "clean", "rate": 0.0}, detectors)
        for attack in ATTACK_OF[name]:
            for rate in rates:
                res = run_attack(attack, data, rate=rate, target=0, seed=0)
                truth = np.zeros(len(res.dataset), dtype=bool)
                truth[res.truth.poisoned] = True
                rows += _score(res.dataset, truth,
                               {"dataset": name, "attack": attack, "rate": rate}, detectors)
                print(f"{name} {attack} {rate}: done", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,breast_cancer,digits-tabular")
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run(parse_names(args.datasets), parse_floats(args.rates), parse_names(args.detectors))
    cmd = command_line(__file__, argv)
    info = machine()
    lines = [
        "# Backdoor detectors in representation space: spectral, spectre, activation", "",
        f"Command: `{cmd}`", "",
        f"Machine: {info}", "",
        f"Versions: {versions()}", "",
        f"Wall time: {time.perf_counter() - started:.0f} s (shared machine; load above).", "",
        "Target class 0, attack seed 0, representation seed 0. `clean_fpr` is the share "
        "of the clean rows flagged; `clean_classes` the number of classes reported clean.",
        "",
        *md_table(COLUMNS, rows), "",
    ]
    write_results("detectors-backdoor", "\n".join(lines),
                  {"command": cmd, "machine": info, "versions": versions(), "rows": rows},
                  out_dir=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
