"""Benchmark streaming snapshot / verify: time and peak memory at 1M and 10M rows.

Each step runs the CLI in a child process (``poisonguard snapshot`` / ``verify``) and
records its wall time and peak RSS (``ru_maxrss`` of the child). The data is a Parquet
of tiny rows (an int id, a float, a string, an int label), the case that used to need
5.8 GB for 10M rows. Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_provenance.py --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _table(rows: int, path: Path) -> None:
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        batch = pa.table({"id": pa.array(np.arange(start, start + n)),
                          "x": pa.array(rng.normal(size=n)),
                          "tag": pa.array(np.char.add("u", (np.arange(n) % 1000).astype(str))),
                          "label": pa.array(rng.integers(0, 5, size=n))})
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch)
    assert writer is not None
    writer.close()


def _child(*args: str) -> dict[str, float]:
    exe = Path(sys.executable).with_name("poisonguard")
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "r=subprocess.run(sys.argv[1:]); w=time.perf_counter()-t; "
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, str(exe), *args], capture_output=True,
                         text=True, check=True).stdout.split()
    wall, rss_kib, rc = float(out[-3]), int(out[-2]), int(out[-1])
    if rc not in (0, 1):
        raise RuntimeError(f"poisonguard {' '.join(args)} exited {rc}")
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(rss_kib / 1024, 0), "exit": rc}


def run(rows: int, work: Path) -> dict[str, Any]:
    data = work / f"d{rows}.parquet"
    _table(rows, data)
    keys = work / "keys"
    if not keys.exists():
        subprocess.run([str(Path(sys.executable).with_name("poisonguard")), "keys", "generate",
                        "--out", str(keys)], check=True, capture_output=True)
    m = work / f"m{rows}.pgm"
    snap = _child("snapshot", str(data), "--out", str(m), "--key", str(keys / "poisonguard.key"),
                  "--no-ledger")
    ver = _child("verify", str(data), "--manifest", str(m), "--pubkey",
                 str(keys / "poisonguard.pub"))
    return {"rows": rows, "parquet_mib": round(data.stat().st_size / 2**20, 1),
            "manifest_mib": round(m.stat().st_size / 2**20, 1),
            "manifest_bytes_per_row": round(m.stat().st_size / rows, 1),
            "snapshot": snap, "verify": ver}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp:
        for rows in args.rows:
            load = os.getloadavg()
            t0 = time.time()
            r = run(rows, Path(tmp))
            r["load_avg_before"] = [round(x, 2) for x in load]
            r["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
            r["total_s"] = round(time.time() - t0, 1)
            results.append(r)
            print(json.dumps(r), flush=True)
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
