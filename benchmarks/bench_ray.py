"""Benchmark ``--engine ray`` against in-process: scan loading, profile, snapshot.

The data is a folder of Parquet files (8 files, row groups of 65,536 rows) of ROWS x
COLS float32 features and an int label (5 classes). Every (job, engine, rows) runs in
a fresh child process, so that its peak memory (``ru_maxrss``) is its own. The Ray
child starts a local Ray with 2 CPUs (its start-up time is measured apart), then runs
the job through an engine that also records, per shard, the worker's time and peak
RSS, and the driver's own time between shards (the serial reduction). From those
per-row costs the report projects a run on a bigger cluster. Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_ray.py \\
        --rows 250000,1000000 --jobs load,profile,snapshot
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._common import command_line, machine, md_table, parse_ints, parse_names

JOBS = ("load", "profile", "snapshot", "scan")
FILES = 8
ROW_GROUP = 65_536


def make_folder(rows: int, cols: int, folder: Path) -> Path:
    """ROWS x COLS float32 features with an int label, in FILES Parquet files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(cols, 5)).astype(np.float32)
    bounds = np.linspace(0, rows, FILES + 1).astype(int)
    for k in range(FILES):
        n = int(bounds[k + 1] - bounds[k])
        x = rng.normal(size=(n, cols)).astype(np.float32)
        label = (x @ w).argmax(axis=1)
        table = pa.table({**{f"f{j}": x[:, j] for j in range(cols)}, "label": label})
        pq.write_table(table, folder / f"part-{k:05d}.parquet", row_group_size=ROW_GROUP)
    return folder


def _measured(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(item: Any) -> Any:
        import resource as res
        import time as tm

        t0 = tm.process_time()
        w0 = tm.perf_counter()
        out = fn(item)
        return out, {"cpu_s": tm.process_time() - t0, "wall_s": tm.perf_counter() - w0,
                     "peak_rss_mib": res.getrusage(res.RUSAGE_SELF).ru_maxrss / 1024}

    return run


def _measured_to_file(fn: Callable[[Any], Any], path: str) -> Callable[[Any], Any]:
    """``fn`` whose result stays with the engine (``map_shared``): its stats go to a
    file (one JSON line per task; the workers run on this host)."""
    def run(item: Any) -> Any:
        out, stats = _measured(fn)(item)
        with open(path, "a") as fh:
            fh.write(json.dumps(stats) + "\n")
        return out

    return run


def _measuring_engine(inner: Any, log: list[dict[str, float]], driver: list[float],
                      spans: list[float]) -> Any:
    from poisonguard.engine import Engine
    from poisonguard.progress import Progress

    class Measuring(Engine):
        name = inner.name

        def put(self, value: Any) -> Any:
            return inner.put(value)

        def describe(self) -> str:
            return str(inner.describe())

        def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
                stage: str = "working", progress: Progress | None = None) -> Iterator[Any]:
            start = time.perf_counter()
            for out, stats in inner.map(_measured(fn), items, stage=stage, progress=progress):
                log.append(stats)
                t0 = time.perf_counter()
                yield out
                driver.append(time.perf_counter() - t0)  # the consumer's reduction
            spans.append(time.perf_counter() - start)  # the whole map, start to last result

        def map_shared(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
                       stage: str = "working", progress: Progress | None = None) -> Any:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                stats = Path(tmp) / "stats.jsonl"
                out = inner.map_shared(_measured_to_file(fn, str(stats)), items, stage=stage,
                                       progress=progress)
                log.extend(json.loads(line) for line in stats.read_text().splitlines())
            spans.append(time.perf_counter() - start)
            return out

    return Measuring()


class MemorySampler:
    """Peaks, sampled every ``every`` seconds in a thread, of this process's private
    (``RssAnon``) and shared (``RssShmem``: pages of Ray's object store it mapped)
    resident memory, and of the bytes used in /dev/shm (the whole host's object store)."""

    KEYS = ("RssAnon", "RssShmem")

    def __init__(self, every: float = 0.5) -> None:
        self.peak = {"driver_peak_anon_mib": 0.0, "driver_peak_shm_mib": 0.0,
                     "dev_shm_peak_mib": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _sample(self) -> None:
        with open("/proc/self/status") as fh:
            values = {k: int(v.split()[0]) / 1024 for k, _, v in
                      (line.partition(":") for line in fh) if k in self.KEYS}
        used = shutil.disk_usage("/dev/shm").used / 2**20
        for key, value in (("driver_peak_anon_mib", values.get("RssAnon", 0.0)),
                           ("driver_peak_shm_mib", values.get("RssShmem", 0.0)),
                           ("dev_shm_peak_mib", used)):
            self.peak[key] = max(self.peak[key], value)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


#: Per-task stats (CPU s, wall s, peak RSS MiB) of the engine of this child process.
_TASKS: list[dict[str, float]] = []
#: The driver's peak RSS (MiB) before StageLog's resets of the kernel's high-water mark
#: (which ``ru_maxrss`` follows): the run's peak is the larger of this and ru_maxrss.
_PEAK_BEFORE_RESETS = [0.0]


class StageLog:
    """Progress of a scan as one line per stage, appended to ``path`` as it happens (a
    long run killed part-way still leaves its stages): wall and driver CPU seconds, the
    workers' CPU seconds and tasks so far, the driver's private and shared resident MiB,
    its peak since the previous line, and /dev/shm in use."""

    def __init__(self, path: str, workers: list[dict[str, float]]) -> None:
        self.path, self.workers, self.last = path, workers, ""
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def update(self, stage: str, *, done: int, total: int) -> None:
        key = "".join(ch for ch in stage if not ch.isdigit())
        if key == self.last:
            return
        self.last = key
        with open("/proc/self/status") as fh:
            mem = {k: int(v.split()[0]) / 1024 for k, _, v in (line.partition(":") for line in fh)
                   if k in ("RssAnon", "RssShmem", "VmHWM")}
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # VmHWM from here: each line shows the peak of the stage before
        _PEAK_BEFORE_RESETS[0] = max(_PEAK_BEFORE_RESETS[0], mem.get("VmHWM", 0.0))
        cpu = time.process_time() - self.c0
        line = (f"{time.perf_counter() - self.t0:8.1f} s  driver {cpu:7.1f}"
                f" cpu-s  workers {sum(w['cpu_s'] for w in self.workers):8.1f} cpu-s"
                f" ({len(self.workers)} tasks)  anon {mem.get('RssAnon', 0):6.0f}"
                f"  shm {mem.get('RssShmem', 0):6.0f}  peak before {mem.get('VmHWM', 0):6.0f}"
                f"  /dev/shm {shutil.disk_usage('/dev/shm').used / 2**20:6.0f} MiB"
                f"  load {os.getloadavg()[0]:5.1f}  -> {stage}")
        with open(self.path, "a") as fh:
            fh.write(line + "\n")


def child(job: str, engine_name: str, folder: str) -> dict[str, Any]:
    """One measurement (runs in its own process)."""
    out: dict[str, Any] = {"job": job, "engine": engine_name}
    log = _TASKS  # per-task stats of this child's engine (StageLog reads them too)
    driver: list[float] = []
    spans: list[float] = []
    engine = None
    if engine_name == "ray":
        from poisonguard.engine import RayEngine
        from poisonguard.errors import UsageError

        ray_engine = RayEngine(num_cpus=2)
        for attempt in range(5):  # a busy machine can miss Ray's fixed 30 s start-up wait
            try:
                ray_engine._ensure()
                break
            except UsageError:
                out["failed_starts"] = attempt + 1
        else:
            raise UsageError("Ray did not start in 5 attempts")
        out["startup_s"] = ray_engine.startup_seconds
        engine = _measuring_engine(ray_engine, log, driver, spans)
    cold = job != "scan" and not os.environ.get("BENCH_RAY_NO_COLD")
    if engine is not None and cold:  # a first, cold run: Ray starts its worker processes
        t0 = time.perf_counter()
        _job(job, folder, engine, {})
        out["cold_seconds"] = time.perf_counter() - t0
        log.clear()
        driver.clear()
        spans.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    with MemorySampler() as memory:
        _job(job, folder, engine, out)
    out["seconds"] = time.perf_counter() - t0
    out.update(memory.peak)
    out["driver_cpu_s"] = time.process_time() - c0  # robust to a busy machine, unlike wall
    out["driver_peak_rss_mib"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                     _PEAK_BEFORE_RESETS[0])
    if log:
        out["shards"] = len(log)
        out["worker_cpu_s"] = sum(s["cpu_s"] for s in log)
        out["worker_wall_s"] = sum(s["wall_s"] for s in log)
        out["worker_peak_rss_mib"] = max(s["peak_rss_mib"] for s in log)
        out["driver_reduce_s"] = sum(driver)
        out["map_s"] = sum(spans)
    if engine_name == "ray":
        ray_engine.close()
    return out


def _job(job: str, folder: str, engine: Any, out: dict[str, Any]) -> None:
    from poisonguard.data import dataset_digest
    from poisonguard.datasets import open_dataset
    from poisonguard.provenance.snapshot import build_manifest
    from poisonguard.scan import scan
    from poisonguard.validate import profile_data

    if job == "load":
        ds = open_dataset(folder, engine=engine)
        out["rows"], out["digest"] = len(ds), dataset_digest(ds)  # over every row id
    elif job == "profile":
        prof = profile_data(folder, engine=engine)
        out["rows"] = prof.rows
        out["digest"] = hashlib.sha256(json.dumps(prof.to_dict(), sort_keys=True).encode()
                                       ).hexdigest()
    elif job == "snapshot":
        manifest = build_manifest(folder, engine=engine)
        out["rows"], out["root"] = manifest.rows, manifest.root
    else:
        stages = os.environ.get("BENCH_RAY_STAGES")  # a file: one line per stage
        findings = scan(folder, engine=engine,
                        progress=StageLog(stages, _TASKS) if stages else None)
        out["rows"], out["flagged"] = len(findings.rows), findings.summary["flagged"]
        out["flags_sha256"] = hashlib.sha256(np.asarray(findings.rows.flagged).tobytes()
                                             ).hexdigest()[:16]
        out["by_detector"] = findings.summary["by_detector"]


def recall(rows: int, cols: int, *, queries: int = 2000, k: int = 20,
           probes: Sequence[int] = (8, 12, 16), lists: Sequence[int] = (),
           data: str = "synthetic") -> dict[str, Any]:
    """Recall@k of ``--knn ivf`` (the shared IVF construction, the same on every engine)
    against the exact neighbours, on ``queries`` random rows, for each ``nlist`` (the
    default of :func:`~poisonguard.detect.ivf.ivf_parameters` and ``lists``) and
    ``nprobe``, with the CPU seconds the probes and the list scans would take for 1M
    queries. ``data``: ``synthetic`` (poisonguard.datasets.synthetic, standardised: the
    scan benchmark's data) or ``noise`` (standard normal rows, the hardest case)."""
    from sklearn.neighbors import NearestNeighbors

    from poisonguard.detect.ivf import (
        IvfLayout,
        ivf_layout,
        ivf_lists,
        ivf_parameters,
        ivf_probes,
        search_ivf_lists,
    )

    if data == "noise":
        x = np.random.default_rng(0).normal(size=(rows, cols)).astype(np.float32)
    else:
        from poisonguard.datasets import synthetic

        x = np.asarray(synthetic(n_rows=rows, n_features=cols, seed=0).features, np.float32)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    sample = np.sort(np.random.default_rng(1).choice(rows, size=queries, replace=False))
    _, exact = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(
        x[sample])
    default_lists, default_probe = ivf_parameters(rows)
    out: dict[str, Any] = {"rows": rows, "cols": cols, "data": data, "k": k,
                           "queries": queries, "default": [default_lists, default_probe],
                           "runs": []}
    per_million = 1e6 / queries
    for nlist in sorted({default_lists, *lists}):
        c0 = time.process_time()
        layout = ivf_layout(x, seed=0, nlist=nlist)
        lists = ivf_lists(layout, x, 0, rows)
        build = time.process_time() - c0
        for nprobe in sorted({*probes, default_probe}):
            lay = IvfLayout(layout.centroids, min(nprobe, nlist))
            c0 = time.process_time()
            probe = ivf_probes(lay, x[sample], 0, queries)
            c1 = time.process_time()
            found = search_ivf_lists(lists, x, sample, probe, k + 1)[1]
            c2 = time.process_time()
            hit = float(np.mean([len(set(a) & set(b)) / (k + 1)
                                 for a, b in zip(exact, found, strict=True)]))
            out["runs"].append({"nlist": nlist, "nprobe": lay.nprobe,
                                f"recall_at_{k}": round(hit, 3),
                                "build_cpu_s": round(build, 1),
                                "probe_cpu_s_per_1m": round((c1 - c0) * per_million, 1),
                                "scan_cpu_s_per_1m": round((c2 - c1) * per_million, 1)})
            print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    return out


def run_child(job: str, engine: str, folder: Path) -> dict[str, Any]:
    # Ray starts its workers at niceness +15 by default: on a shared machine they would
    # starve beside the in-process run they are compared with; here they run at the
    # driver's niceness (both engines get the same share of the CPUs).
    env = {"RAY_worker_niceness": "0", **os.environ,
           "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.run([sys.executable, __file__, "--child", job, engine, str(folder)],
                          capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"job": job, "engine": engine, "error": proc.stderr.strip()[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def projection(results: list[dict[str, Any]], *, rows: int = 100_000_000, nodes: int = 16,
               cpus: int = 8) -> list[dict[str, Any]]:
    """Project each job to ``rows`` on ``nodes`` x ``cpus`` from measured CPU costs.

    Wall times on a shared machine mostly measure the other jobs, so the model uses
    CPU seconds per row (``process_time``): the workers' (parallel) and the driver's
    (serial: reading, merging, Ray's client side). Projected wall time on the cluster:
    Ray start-up + rows x (worker CPU per row / (nodes x cpus) + driver CPU per row),
    assuming the workers scale linearly and the driver is never starved. In-process:
    rows x its CPU per row. I/O waits and network transfers are not in the model.
    """
    out = []
    for job in sorted({r["job"] for r in results}):
        runs = {e: [r for r in results if r["job"] == job and r["engine"] == e
                    and "driver_cpu_s" in r] for e in ("local", "ray")}
        if not runs["local"] or not runs["ray"]:
            continue
        big = max(runs["ray"], key=lambda r: r["n_rows"])
        local = max(runs["local"], key=lambda r: r["n_rows"])
        worker = big["worker_cpu_s"] / big["n_rows"]
        driver = big["driver_cpu_s"] / big["n_rows"]
        local_cpu = local["driver_cpu_s"] / local["n_rows"]
        out.append({"job": job, "from_rows": big["n_rows"],
                    "worker_cpu_us_per_row": 1e6 * worker,
                    "driver_cpu_us_per_row": 1e6 * driver,
                    "local_cpu_us_per_row": 1e6 * local_cpu,
                    "cluster_100M_s": big.get("startup_s", 0.0)
                    + rows * (worker / (nodes * cpus) + driver),
                    "in_process_100M_s": rows * local_cpu})
    return out


def report(payload: dict[str, Any]) -> str:
    """The RESULTS.md section of a run."""
    res = payload["results"]
    m = payload["machine"]
    cols = ["n_rows", "job", "engine", "seconds", "cold_seconds", "startup_s", "shards",
            "driver_cpu_s", "worker_cpu_s", "worker_wall_s", "worker_peak_rss_mib",
            "driver_peak_rss_mib", "driver_peak_anon_mib", "driver_peak_shm_mib",
            "dev_shm_peak_mib", "flagged", "flags_sha256"]
    for r in res:
        if "seconds" in r:
            r["rows_per_s"] = r["n_rows"] / r["seconds"]
    lines = [f"Machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('ram_gib')} GiB; "
             f"load average before {payload['load_before']}, after {payload['load_after']} "
             "(shared with other jobs: times are pessimistic and noisy).",
             f"Command: `{payload['command']}`", "",
             *md_table([*cols[:4], "rows_per_s", *cols[4:]], res), "",
             "Projection to 100M rows on 16 nodes x 8 CPUs (model in `projection()`):", "",
             *md_table(["job", "from_rows", "worker_cpu_us_per_row", "driver_cpu_us_per_row",
                        "local_cpu_us_per_row", "cluster_100M_s", "in_process_100M_s"],
                       projection(res))]
    errors = [r for r in res if "error" in r]
    if errors:
        lines += ["", "Runs that failed: " + "; ".join(
            f"{r['job']}/{r['engine']}/{r['n_rows']}: {r['error'].splitlines()[-1][:160]}"
            for r in errors)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="250000,1000000")
    ap.add_argument("--cols", type=int, default=50)
    ap.add_argument("--jobs", default="load,profile,snapshot")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ray.json")
    ap.add_argument("--child", nargs=3, metavar=("JOB", "ENGINE", "FOLDER"))
    ap.add_argument("--report", type=Path, help="Print the RESULTS.md section of a run's JSON.")
    ap.add_argument("--engines", default="local,ray", help="Engines to time (local, ray).")
    ap.add_argument("--data", type=Path, help="Keep the Parquet folders here (DATA/rows-N, "
                    "reused when complete) instead of a temporary folder.")
    ap.add_argument("--no-cold", action="store_true",
                    help="Time one (cold) Ray run per job instead of a cold and a warm one.")
    ap.add_argument("--recall", type=int, metavar="ROWS",
                    help="Only measure the recall of --knn ivf at ROWS rows.")
    ap.add_argument("--recall-data", choices=("noise", "synthetic"), default="synthetic")
    ap.add_argument("--probes", default="8,12,16", help="nprobe values for --recall")
    ap.add_argument("--lists", default="", help="nlist values for --recall (besides the "
                    "default)")
    args = ap.parse_args(argv)
    if args.no_cold:
        os.environ["BENCH_RAY_NO_COLD"] = "1"  # read by the children
    if args.recall:
        print(json.dumps(recall(args.recall, args.cols, data=args.recall_data,
                                probes=parse_ints(args.probes),
                                lists=parse_ints(args.lists) if args.lists else ())))
        return
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    results: list[dict[str, Any]] = []
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        for rows in parse_ints(args.rows):
            folder = (args.data or Path(tmp)) / f"rows-{rows}-x{args.cols}"
            if not (folder / "_SUCCESS").exists():  # written last (Spark's marker; skipped)
                make_folder(rows, args.cols, folder)
                (folder / "_SUCCESS").write_text("")
            for job in parse_names(args.jobs):
                for engine in parse_names(args.engines):
                    r = run_child(job, engine, folder)
                    r["n_rows"] = rows
                    results.append(r)
                    print(json.dumps(r), flush=True)
    payload = {"command": command_line(__file__, argv), "machine": machine(),
               "load_before": load_before, "load_after": list(os.getloadavg()),
               "cols": args.cols, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(report(payload))


if __name__ == "__main__":
    main()
