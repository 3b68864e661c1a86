"""Benchmark the validation gate: profile and check N rows x 50 columns from Parquet.

Writes synthetic Parquet files (48 numeric columns, 2 categorical, 5 classes) in row
groups, then times each step in a fresh child process (so peak memory is the
step's own): ``profile`` of the baseline, ``check`` of a clean batch drawn from the
same distribution, and ``check`` of a poisoned batch (one shifted feature plus a
0.5% dirty-label tabular trigger). Results go to benchmarks/results/validate.md.

    .venv/bin/python benchmarks/bench_validate.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poisonguard.data import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "validate.md"
N_NUM, N_CAT, N_CLASSES = 48, 2, 5
CHUNK = 100_000


def write_parquet(path: Path, rows: int, seed: int, poison: bool = False) -> list[int]:
    """Write the synthetic table chunk by chunk; returns the poisoned row indices."""
    centers = np.random.default_rng(12345).normal(0, 1, size=(N_CLASSES, N_NUM))
    rng = np.random.default_rng(seed)
    writer = None
    poisoned: list[int] = []
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        y = rng.integers(0, N_CLASSES, size=n)
        x = centers[y] + rng.normal(0, 1.5, size=(n, N_NUM))
        cats = [rng.choice(["red", "green", "blue", "grey"], size=n, p=[.4, .3, .2, .1]),
                np.char.add("site-", rng.integers(0, 30, size=n).astype(str))]
        if poison:
            x[:, 7] += 0.5  # a shifted sensor
            hit = np.flatnonzero(rng.random(n) < 0.005)
            x[np.ix_(hit, [3, 11, 29])] = [4.25, -3.5, 5.0]  # trigger values
            y[hit] = 0
            poisoned += (start + hit).tolist()
        cols = {f"f{j}": x[:, j] for j in range(N_NUM)}
        cols.update({f"c{j}": cats[j] for j in range(N_CAT)})
        cols["label"] = y
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return poisoned


STEP = """
import json, sys, time, resource
from poisonguard.validate import profile_data, save_profile, load_profile, check
kind, data, prof = sys.argv[1:4]
t = time.perf_counter()
c = time.process_time()
if kind == "profile":
    save_profile(profile_data(data), prof)
    out = {}
else:
    r = check(load_profile(prof), data)
    out = {"passed": r.passed, "failures": [[f.check, f.feature, f.cls, f.n_rows, list(f.rows)]
                                            for f in r.failures]}
out["seconds"] = time.perf_counter() - t
out["cpu_seconds"] = time.process_time() - c
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_step(kind: str, data: Path, prof: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", STEP, kind, str(data), str(prof)], env=env,
                         capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = time.perf_counter() - t  # including interpreter start and imports
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    load0 = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_parquet(d / "base.parquet", args.rows, seed=1)
        write_parquet(d / "clean.parquet", args.rows, seed=2)
        truth = write_parquet(d / "poisoned.parquet", args.rows, seed=3, poison=True)
        prof = d / "base.json"
        steps = {"profile baseline": run_step("profile", d / "base.parquet", prof),
                 "check clean batch": run_step("check", d / "clean.parquet", prof),
                 "check poisoned batch": run_step("check", d / "poisoned.parquet", prof)}
        profile_mib = prof.stat().st_size / 2**20
        file_mib = (d / "base.parquet").stat().st_size / 2**20
    poison = steps["check poisoned batch"]
    trig = [f for f in poison["failures"] if f[0] == "trigger"]
    found = set(trig[0][4]) if trig else set()
    cpu = os.cpu_count()
    lines = [
        "# Validation gate benchmark (`profile`, `check`)", "",
        f"{args.rows:,} rows x {N_NUM + N_CAT} columns ({N_NUM} numeric, {N_CAT} categorical, "
        f"{N_CLASSES} classes) per Parquet file ({file_mib:.0f} MiB, row groups of "
        f"{CHUNK:,}), streamed in batches of 65,536 rows. Each step runs in a fresh process; "
        "time is measured inside it: wall seconds (with interpreter start and imports in "
        "brackets) and CPU seconds of the process (user + system; what the step costs "
        "when the machine is not shared). Peak memory is the process's maximum resident "
        "set size (about 240 MiB of it is the imported libraries).", "",
        f"Load average when the run started: {load0}.", "",
        "| step | seconds | (wall) | CPU seconds | peak RSS MiB | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in steps.items():
        verdict = "" if "passed" not in s else ("passed" if s["passed"] else "FAILED")
        lines.append(f"| {name} | {s['seconds']:.1f} | ({s['wall_seconds']:.1f}) | "
                     f"{s['cpu_seconds']:.1f} | {s['peak_rss_mib']:.0f} | {verdict} |")
    lines += [
        "", f"Profile JSON: {profile_mib:.1f} MiB (row sample of 1,000 per class, "
        f"{min(args.rows, 1_000_000):,} fingerprints).", "",
        "Poisoned batch: feature f7 shifted by 0.5 (a third of its std) and a dirty-label "
        f"trigger (f3, f11, f29 fixed, relabelled to class 0) on {len(truth):,} rows "
        f"({len(truth) / args.rows:.2%}). Failing findings:", "",
    ]
    for f in poison["failures"]:
        lines.append(f"- {f[0]} feature={f[1]} class={f[2]} rows={f[3]:,}")
    lines += ["", f"Trigger rows named: {len(found & set(truth)):,} of {len(truth):,} poisoned "
              f"(+{len(found - set(truth))} others; the row list is capped at 10,000).", "",
              "## Machine", "",
              f"- {cpu} CPUs ({platform.processor() or platform.machine()}), "
              f"{platform.platform()}, Python {platform.python_version()}",
              f"- load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
              f"- peak RSS of this driver: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", "",
              "## Command", "", "```",
              "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_validate.py "
              + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
              "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
