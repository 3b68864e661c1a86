"""Scan time and peak memory at 10k, 100k and 1M rows x 50 features, stage by stage.

``--images`` measures image scans the same way (each in a fresh subprocess running
``benchmarks/device_images.py``): ``mnist10k`` (10,000 28 x 28 digits, BadNets 5%)
and ``texturesN`` (N synthetic 32 x 32 x 3 uint8 images, BadNets 1%), with wall and
CPU seconds per stage, peak memory and F1.

Each size runs in fresh subprocesses (one for the scan, one for Datalab), so that
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is the peak of that work alone:
tracemalloc misses numpy and torch buffers. The data (poisonguard.datasets.synthetic)
is made once in the parent and handed over as .npy files; the scan's time is split
into the representation and each detector from the scan's own progress messages.

    .venv/bin/python benchmarks/bench_scan_speed.py --sizes 10000,100000,1000000
    .venv/bin/python benchmarks/bench_scan_speed.py --quick     # 10k rows only
    .venv/bin/python benchmarks/bench_scan_speed.py --sizes '' \
        --images mnist10k,textures20000,textures100000

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


def _child(kind: str, folder: Path | None, *, cores: int | None, timeout: float,
           command: list[str] | None = None, threads: int = 1) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last stdout line is a JSON object."""
    env = dict(os.environ)
    cpus: list[int] | None = None
    if cores:
        env.update({v: str(cores) for v in THREAD_VARS})
        cpus = sorted(os.sched_getaffinity(0))[:cores]
    cmd = command or [sys.executable, str(Path(__file__).resolve()), "--child", kind,
                      "--dir", str(folder), "--threads", str(threads)]
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
                 previous_datalab: tuple[int, float] | None,
                 flip: float = 0.0, threads: int = 1) -> dict[str, Any]:
    """Make the data, scan it in a subprocess, then run Datalab on the scan's outputs.

    ``flip`` > 0 flips that share of the labels first (poisonguard.attack.label_flip):
    both the scan and Datalab are then scored by F1 on the flipped rows. ``threads``
    is the scan's ``threads`` (its BLAS/OpenMP threads, e.g. faiss's search).
    """
    import numpy as np

    from poisonguard.attack import label_flip
    from poisonguard.datasets import synthetic

    with tempfile.TemporaryDirectory(prefix="pg-speed-") as tmp:
        folder = Path(tmp)
        data = synthetic(n_rows=n_rows, n_features=n_features, seed=seed)
        if flip > 0:
            res = label_flip(data, rate=flip, seed=seed)
            data = res.dataset
            np.save(folder / "poisoned.npy", np.asarray(res.truth.poisoned, dtype=np.int64))
            del res
        assert data.features is not None
        np.save(folder / "features.npy", data.features)
        np.save(folder / "labels.npy", data.labels)
        del data
        out: dict[str, Any] = {"rows": n_rows, "features": n_features,
                               "scan": _child("scan", folder, cores=cores, timeout=scan_timeout,
                                              threads=threads)}
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


def measure_images(case: str, *, cores: int | None, timeout: float,
                   seed: int) -> dict[str, Any]:
    """One image case (``mnist10k`` or ``texturesN``) in a fresh interpreter."""
    script = str(Path(__file__).resolve().parent / "device_images.py")
    if case == "mnist10k":
        args = ["--case", "mnist10k"]
    elif case.startswith("textures") and case[len("textures"):].isdigit():
        args = ["--rows", case[len("textures"):]]
    else:
        raise SystemExit(f"unknown image case '{case}' (mnist10k, texturesN)")
    out = _child("images", None, cores=cores, timeout=timeout,
                 command=[sys.executable, script, *args, "--seed", str(seed)])
    out.setdefault("case", case)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10k rows only")
    p.add_argument("--sizes", help="comma list of row counts (default 10000,100000,1000000)")
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--images", default="",
                   help="comma list of image cases: mnist10k, texturesN (e.g. textures20000)")
    p.add_argument("--cores", type=int, default=None,
                   help="pin each measurement to this many CPUs (default: all this process has)")
    p.add_argument("--threads", type=int, default=1,
                   help="the scan's threads (scan(threads=...); default 1, the library's default)")
    p.add_argument("--no-datalab", action="store_true", help="skip the Datalab reference")
    p.add_argument("--datalab-timeout", type=float, default=600.0,
                   help="seconds; Datalab is skipped where it would take longer")
    p.add_argument("--scan-timeout", type=float, default=1800.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--flip", type=float, default=0.05,
                   help="share of labels flipped before the scan (F1 of scan and Datalab)")
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
        print(json.dumps(run_child(args.child, args.dir, threads=args.threads)))
        return 0
    sizes = parse_ints(args.sizes) if args.sizes else (
        [] if args.sizes == "" else list(QUICK_SIZES if args.quick else SIZES))
    load_before = machine()["load_avg"]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    previous: tuple[int, float] | None = None
    for n in sizes:
        res = measure_size(n, n_features=args.features, seed=args.seed, cores=args.cores,
                           datalab=not args.no_datalab, datalab_timeout=args.datalab_timeout,
                           scan_timeout=args.scan_timeout, previous_datalab=previous,
                           flip=args.flip, threads=args.threads)
        results.append(res)
        dl = res["datalab"]
        if dl["status"] == "ok":
            previous = (n, float(dl["seconds"]))
        scan = res["scan"]
        print(f"{n} rows: scan {scan.get('seconds', scan['status'])} s, "
              f"peak {scan.get('peak_mib', '-')} MiB; Datalab {dl.get('seconds', dl['status'])}",
              flush=True)
    images: list[dict[str, Any]] = []
    for case in [c for c in args.images.split(",") if c]:
        res = measure_images(case, cores=args.cores, timeout=args.scan_timeout, seed=args.seed)
        images.append(res)
        print(f"{case}: scan {res.get('seconds', res['status'])} s wall, "
              f"{res.get('cpu_seconds', '-')} s CPU, F1 {res.get('f1', '-')}", flush=True)
    payload = {"sizes": results, "images": images, "meta": {
        "command": command_line(__file__, argv), "machine": machine(),
        "load_avg_start": load_before, "versions": versions(), "cores": args.cores,
        "threads": args.threads,
        "features": args.features, "seed": args.seed, "note": args.note, "flip": args.flip,
        "seconds": round(time.perf_counter() - started, 1)}}
    md_path, _ = write_results("scan-speed", speed_markdown(payload), payload, args.out_dir)
    print(f"wrote {md_path}")
    return 0 if all(r["scan"]["status"] == "ok" for r in results) and all(
        r["status"] == "ok" for r in images) else 1


if __name__ == "__main__":
    raise SystemExit(main())
