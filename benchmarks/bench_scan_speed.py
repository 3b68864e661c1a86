"""Scan time and peak memory at 10k, 100k and 1M rows x 50 features, stage by stage.

Each size runs in fresh subprocesses (one for the scan, one for Datalab), so that
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is the peak of that work alone:
tracemalloc misses numpy and torch buffers. The data (poisonguard.datasets.synthetic)
is made once in the parent and handed over as .npy files; the scan's time is split
into the representation and each detector from the scan's own progress messages.

    .venv/bin/python benchmarks/bench_scan_speed.py --sizes 10000,100000,1000000
    .venv/bin/python benchmarks/bench_scan_speed.py --quick     # 10k rows only

Writes benchmarks/results/scan-speed.md and scan-speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    command_line,
    machine,
    parse_ints,
    versions,
    write_results,
)
from benchmarks._speed_child import run_child  # noqa: E402
from benchmarks._speed_report import speed_markdown  # noqa: E402

__all__ = ["SIZES", "main", "measure_size"]

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _child(kind: str, folder: Path, *, cores: int | None, timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last stdout line is a JSON object."""
    env = dict(os.environ)
    cpus: list[int] | None = None
    if cores:
        env.update({v: str(cores) for v in THREAD_VARS})
        cpus = sorted(os.sched_getaffinity(0))[:cores]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--dir", str(folder)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            cmd, capture_output=True, text=True, env=env, timeout=timeout,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "note": f"did not finish within {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": "error", "note": " / ".join(tail)[:400]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["status"] = "ok"
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    return result


def measure_size(n_rows: int, *, n_features: int, seed: int, cores: int | None,
                 datalab: bool, datalab_timeout: float, scan_timeout: float,
                 previous_datalab: tuple[int, float] | None) -> dict[str, Any]:
    """Make the data, scan it in a subprocess, then run Datalab on the scan's outputs."""
    import numpy as np

    from poisonguard.datasets import synthetic

    with tempfile.TemporaryDirectory(prefix="pg-speed-") as tmp:
        folder = Path(tmp)
        data = synthetic(n_rows=n_rows, n_features=n_features, seed=seed)
        assert data.features is not None
        np.save(folder / "features.npy", data.features)
        np.save(folder / "labels.npy", data.labels)
        del data
        out: dict[str, Any] = {"rows": n_rows, "features": n_features,
                               "scan": _child("scan", folder, cores=cores, timeout=scan_timeout)}
        if not datalab:
            out["datalab"] = {"status": "skipped", "note": "--no-datalab"}
        elif out["scan"]["status"] != "ok":
            out["datalab"] = {"status": "skipped", "note": "the scan did not finish"}
        else:
            predicted = None
            if previous_datalab is not None:  # linear in rows: a lower bound for kNN work
                predicted = previous_datalab[1] * n_rows / previous_datalab[0]
            if predicted is not None and predicted > datalab_timeout:
                out["datalab"] = {"status": "skipped", "note": (
                    f"predicted >= {predicted:.0f} s from the previous size (limit "
                    f"{datalab_timeout:.0f} s)")}
            else:
                out["datalab"] = _child("datalab", folder, cores=cores, timeout=datalab_timeout)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10k rows only")
    p.add_argument("--sizes", help="comma list of row counts (default 10000,100000,1000000)")
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--cores", type=int, default=None,
                   help="pin each measurement to this many CPUs (default: all this process has)")
    p.add_argument("--no-datalab", action="store_true", help="skip the Datalab reference")
    p.add_argument("--datalab-timeout", type=float, default=600.0,
                   help="seconds; Datalab is skipped where it would take longer")
    p.add_argument("--scan-timeout", type=float, default=1800.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default="", help="a line for the page (e.g. the machine's load)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where scan-speed.md/.json go (default: benchmarks/results)")
    p.add_argument("--child", choices=("scan", "datalab"), help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every size and write the pages; exit status 1 if a scan failed."""
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.dir)))
        return 0
    sizes = parse_ints(args.sizes) if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    load_before = machine()["load_avg"]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    previous: tuple[int, float] | None = None
    for n in sizes:
        res = measure_size(n, n_features=args.features, seed=args.seed, cores=args.cores,
                           datalab=not args.no_datalab, datalab_timeout=args.datalab_timeout,
                           scan_timeout=args.scan_timeout, previous_datalab=previous)
        results.append(res)
        dl = res["datalab"]
        if dl["status"] == "ok":
            previous = (n, float(dl["seconds"]))
        scan = res["scan"]
        print(f"{n} rows: scan {scan.get('seconds', scan['status'])} s, "
              f"peak {scan.get('peak_mib', '-')} MiB; Datalab {dl.get('seconds', dl['status'])}",
              flush=True)
    payload = {"sizes": results, "meta": {
        "command": command_line(__file__, argv), "machine": machine(),
        "load_avg_start": load_before, "versions": versions(), "cores": args.cores,
        "features": args.features, "seed": args.seed, "note": args.note,
        "seconds": round(time.perf_counter() - started, 1)}}
    md_path, _ = write_results("scan-speed", speed_markdown(payload), payload, args.out_dir)
    print(f"wrote {md_path}")
    return 0 if all(r["scan"]["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
