"""The red-team benchmark on scikit-learn's digits: attack x rate x detector.

    .venv/bin/python benchmarks/bench_redteam.py
    .venv/bin/python benchmarks/bench_redteam.py --attacks flip,badnets --rates 0.05

Runs poisonguard.bench.run_bench (the same code as ``poisonguard bench``) with every
registered detector and writes benchmarks/results/redteam.md (numbers, machine,
command), redteam.json and the PNG plots under benchmarks/results/redteam/.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from poisonguard.bench import markdown_report, run_bench, write_json
from poisonguard.bench.plots import write_plots
from poisonguard.data import atomic_write_text
from poisonguard.datasets import open_dataset

RESULTS = Path(__file__).resolve().parent / "results"


class _Print:
    def update(self, stage: str, *, done: int, total: int) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {done}/{total} {stage}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="builtin:digits")
    parser.add_argument("--attacks", default="flip,badnets,blend,outliers")
    parser.add_argument("--rates", default="0.005,0.01,0.05,0.1")
    parser.add_argument("--detectors", default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    dataset = open_dataset(args.data)
    result = run_bench(dataset, attacks=args.attacks.split(","),
                       rates=[float(r) for r in args.rates.split(",")],
                       detectors=args.detectors, seed=args.seed, folds=args.folds,
                       threads=args.threads, progress=_Print())
    command = ".venv/bin/python benchmarks/bench_redteam.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out / "redteam.json")
    write_plots(result, args.out / "redteam")
    load = os.getloadavg()
    note = (f"\nLoad average at the end of the run: {load[0]:.1f} (1 min), {load[2]:.1f} (15 min) "
            f"on {os.cpu_count()} CPUs; a load above the CPU count means the wall time above "
            "includes waiting for other processes, and the CPU time is the better measure.\n")
    atomic_write_text(args.out / "redteam.md",
                      markdown_report(result, command=command.strip()) + note)
    print(f"wrote {args.out / 'redteam.md'} in {result.meta['seconds']} s")


if __name__ == "__main__":
    main()
