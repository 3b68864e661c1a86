"""The label-based decision (issue 12, session 6): clean flags and targeted flips, fused.

Untouched real tables (penguins, cars, seattle-weather, anes96, fair) and a targeted
flip (5% of the rows of the largest class relabelled to the second largest, as in
bench_real_tables.py), scanned with the default detectors (``scan_dataset(ds,
seed=s)``; seed s = attack seed = scan seed). Printed per case: fused flagged rows
and share, the ``label`` and ``knn`` flags, the pairs they licensed, and for the
targeted flips fused P / R / F1 beside the k-NN disagreement baseline (k = 10, the
neighbours' majority label differs) on the scan's own features.

    python benchmarks/bench_label_decision.py OUT.json [--seeds 3] [--tables penguins,...]
        [--cases clean,targeted] [--reps DIR]

``--reps DIR`` stores each case's representation (NPZ, as benchmarks/scan_mnist.py)
and reuses it on the next run, so that a change to the detectors is measured again
without training the models again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks._real_tables import HELD_OUT, TABLES  # noqa: E402
from benchmarks.bench_real_tables import _attacked, _knn_disagreement  # noqa: E402
from benchmarks.scan_mnist import cached, store  # noqa: E402
from poisonguard.datasets import open_dataset  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

CASES = {"clean": "clean", "targeted": "targeted flip 5%"}


def _prf(flags: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((flags & truth).sum())
    p = tp / max(int(flags.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    return {"precision": round(p, 3), "recall": round(r, 3),
            "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0}


def run(out: Path, seeds: int, tables: list[str], cases: list[str],
        reps: Path | None = None) -> None:
    every = {**TABLES, **HELD_OUT}
    done = json.loads(out.read_text()) if out.exists() else {}
    for name in tables:
        load, label = every[name]
        base = open_dataset(load(), label=label)
        for case in cases:
            for seed in range(seeds):
                key = f"{name}/{case}/{seed}"
                if key in done:
                    continue
                ds, mask = _attacked(base, CASES[case], seed)
                rep_path = None if reps is None else reps / f"{name}-{case}-s{seed}.npz"
                findings, results, rep = scan_dataset(ds, seed=seed,
                                                      representation=cached(rep_path))
                store(rep_path, rep)
                fused = np.zeros(len(ds), dtype=bool)
                fused[[r.index for r in findings.rows if r.flagged]] = True
                by = {r.detector: r for r in results}
                rec: dict[str, object] = {
                    "rows": len(ds), "fused": int(fused.sum()),
                    "fused_share": round(float(fused.mean()), 4),
                    "detectors": {d: int(r.flags.sum()) for d, r in by.items()},
                    "licensed": by["label"].meta.get("licensed_pairs", []),
                    "bands": by["label"].meta.get("licensed_bands", []),
                    "review": findings.summary.get("review", 0),
                    "oof_accuracy": (findings.summary.get("reliability") or {}).get(
                        "out_of_fold_accuracy")}
                if mask is not None:
                    rec["poisonguard"] = _prf(fused, mask)
                    rec["knn_baseline"] = _prf(_knn_disagreement(ds.labels, rep.features)[0],
                                               mask)
                done[key] = rec
                out.write_text(json.dumps(done, indent=1))
                print(key, rec, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tables", default=",".join([*TABLES, *HELD_OUT]))
    parser.add_argument("--cases", default="clean,targeted")
    parser.add_argument("--reps", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.reps is not None:
        args.reps.mkdir(parents=True, exist_ok=True)
    run(args.out, args.seeds, args.tables.split(","), args.cases.split(","), args.reps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
