"""Flags of two code versions, side by side: do the scale changes keep every decision?

Run once with the old code on the path (a checkout of main before the change) and
``--save``, then with the new code and ``--compare``: each case's flags (and scores,
rounded as the findings round them) must be equal. Cases: builtin digits (clean,
BadNets 5%, blend 5%) and a 20k x 50 synthetic table with 5% random label flips.
CPU time and wall time per case are recorded beside the flags.

    PYTHONPATH=/tmp/old python benchmarks/compare_paths.py --save /tmp/flags-old
    PYTHONPATH=$PWD     python benchmarks/compare_paths.py --save /tmp/flags-new \\
        --compare /tmp/flags-old
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CASES = ("digits", "digits-badnets5", "digits-blend5", "synthetic20k-flip5")
#: Cases where the training plan differs by design (larger data): F1, not flags, compared.
F1_CASES = ("mnist10k-badnets5", "mnist10k-blend5")


def mnist10k() -> Any:
    """10,000 28 x 28 digits: the 5,000 builtin MNIST digits and a copy shifted one
    pixel right and down (zero filled), as float32 so that old code reads them too."""
    from poisonguard.data import Dataset
    from poisonguard.datasets import builtin_dataset

    mnist = builtin_dataset("mnist")
    assert mnist.images is not None
    images = np.asarray(mnist.images, dtype=np.float32)
    shifted = np.zeros_like(images)
    shifted[:, 1:, 1:] = images[:, :-1, :-1]
    return Dataset(labels=np.concatenate([mnist.labels, mnist.labels]), classes=mnist.classes,
                   images=np.concatenate([images, shifted]), source="mnist10k")


def _case(name: str) -> tuple[Any, np.ndarray | None]:
    from poisonguard.attack import badnets, blend, label_flip
    from poisonguard.datasets import builtin_dataset, synthetic

    if name == "synthetic20k-flip5":
        res = label_flip(synthetic(n_rows=20_000, seed=0), rate=0.05, seed=0)
        return res.dataset, np.asarray(res.truth.poisoned)
    base = mnist10k() if name.startswith("mnist10k") else builtin_dataset("digits")
    if name == "digits":
        return base, None
    attack = badnets if "badnets" in name else blend
    res = attack(base, rate=0.05, target=0, seed=0)
    return res.dataset, np.asarray(res.truth.poisoned)


def f1(flags: np.ndarray, poisoned: np.ndarray) -> float:
    """F1 of ``flags`` against the poisoned rows."""
    tp = int(flags[poisoned].sum())
    return round(2 * tp / max(int(flags.sum()) + len(poisoned), 1), 3)


def run_case(name: str) -> dict[str, Any]:
    """Scan one case; flags, scores, per-detector flags and times."""
    from poisonguard.scan import scan_dataset

    ds, poisoned = _case(name)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    findings, results, _ = scan_dataset(ds, seed=0)
    flags = np.asarray(findings.rows.flagged, dtype=bool)
    return {
        "f1": None if poisoned is None else f1(flags, poisoned),
        "flags": np.asarray(findings.rows.flagged, dtype=bool),
        "scores": np.asarray(findings.rows.score, dtype=np.float64),
        "detectors": {r.detector: np.asarray(r.flags, dtype=bool) for r in results},
        "cpu_s": round(time.process_time() - cpu0, 2),
        "wall_s": round(time.perf_counter() - wall0, 2),
    }


def _save(folder: Path, name: str, res: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"flags": res["flags"], "scores": res["scores"],
              **{f"det_{k}": v for k, v in res["detectors"].items()}}
    np.savez(folder / f"{name}.npz", **arrays)
    (folder / f"{name}.json").write_text(json.dumps(
        {"cpu_s": res["cpu_s"], "wall_s": res["wall_s"], "flagged": int(res["flags"].sum()),
         "f1": res["f1"], "load_avg": os.getloadavg()}))


def compare(old: Path, name: str, res: dict[str, Any]) -> list[str]:
    """Differences between the saved old result and ``res`` (empty: identical)."""
    saved = np.load(old / f"{name}.npz")
    problems = []
    if not np.array_equal(saved["flags"], res["flags"]):
        diff = np.flatnonzero(saved["flags"] != res["flags"])
        problems.append(f"fused flags differ on {len(diff)} rows (first {diff[:10].tolist()})")
    if not np.array_equal(saved["scores"], res["scores"]):
        gap = float(np.abs(saved["scores"] - res["scores"]).max())
        problems.append(f"fused scores differ (max |diff| {gap:.3g})")
    for det, flags in res["detectors"].items():
        key = f"det_{det}"
        if key not in saved.files:
            problems.append(f"detector {det} absent from the old run")
        elif not np.array_equal(saved[key], flags):
            problems.append(f"detector {det}: flags differ on "
                            f"{int((saved[key] != flags).sum())} rows")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases; exit 1 when ``--compare`` finds any difference."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--save", type=Path, help="folder to write this run's flags to")
    p.add_argument("--compare", type=Path, help="folder of an earlier --save to compare with")
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failed = False
    for name in args.cases.split(","):
        res = run_case(name)
        line = f"{name}: {int(res['flags'].sum())} flagged, F1 {res['f1']}, " \
               f"{res['cpu_s']} s CPU, {res['wall_s']} s wall, load {os.getloadavg()[0]:.1f}"
        if args.save:
            _save(args.save, name, res)
        if args.compare and name in F1_CASES:
            old = json.loads((args.compare / f"{name}.json").read_text())
            line += f" (old: F1 {old['f1']}, {old['cpu_s']} s CPU, {old['wall_s']} s wall)"
        elif args.compare:
            problems = compare(args.compare, name, res)
            failed |= bool(problems)
            line += ": IDENTICAL flags and scores" if not problems else ": " + "; ".join(problems)
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
