"""Benchmark snapshot / verify / inclusion proofs on a large table.

Targets (issue 4): snapshot and verify of 1M rows x 50 columns in under 30 s each on
2 cores; an inclusion proof for one row in under 10 ms. Writes
benchmarks/results/provenance.md (and .json) with the numbers, the machine and the
command. Usage::

    .venv/bin/python benchmarks/bench_provenance.py [--rows 1000000] [--cols 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.data import atomic_write_text, load_dataset
from poisonguard.provenance.keys import generate_keypair, load_private_key, load_public_key
from poisonguard.provenance.manifest import read_manifest
from poisonguard.provenance.merkle import verify_inclusion
from poisonguard.provenance.snapshot import snapshot
from poisonguard.provenance.verify import check_manifest, verify_dataset

RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None, "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def _table(rows: int, cols: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, cols)).astype(np.float32),
                         columns=[f"c{j}" for j in range(cols)])
    frame["label"] = rng.integers(0, 5, size=rows)
    return frame


CPU: dict[str, float] = {}  # CPU seconds per step (wall time suffers on a busy machine)


def _timed(fn: Any, name: str = "") -> tuple[Any, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    CPU[name] = time.process_time() - c0
    return out, time.perf_counter() - t0


def _cli(name: str, *args: str) -> float:
    exe = Path(sys.executable).with_name("poisonguard")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"poisonguard {' '.join(args)} failed: {res.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[name] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - t0


def run(rows: int, cols: int, work: Path, proofs: int = 1000) -> dict[str, Any]:
    data, changed = work / "data.parquet", work / "changed.parquet"
    frame = _table(rows, cols)
    frame.to_parquet(data, index=False)
    edited = frame.copy()
    hit = np.random.default_rng(1).choice(rows, size=min(1000, rows), replace=False)
    edited.loc[hit, "c7"] += 1.0
    edited = pd.concat([edited.iloc[:10], edited.iloc[[3]], edited.iloc[10:]], ignore_index=True)
    edited.to_parquet(changed, index=False)
    del frame, edited
    priv, pub = generate_keypair(work / "keys")
    key, trusted = load_private_key(priv), load_public_key(pub)
    ledger, manifest_path = work / "ledger.sqlite", work / "m.json"
    r: dict[str, Any] = {"rows": rows, "cols": cols}

    ds, r["load_s"] = _timed(lambda: load_dataset(data), "load_s")
    _, r["snapshot_core_s"] = _timed(lambda: snapshot(ds, out=manifest_path, path=data, key=key,
                                                      ledger=ledger), "snapshot_core_s")
    r["snapshot_s"] = r["load_s"] + r["snapshot_core_s"]
    r["manifest_mib"] = round(manifest_path.stat().st_size / 2**20, 1)
    ds = None  # free the memory before verify

    def verify(path: Path) -> Any:
        m = read_manifest(manifest_path)
        checked = check_manifest(m, trusted=trusted)
        return verify_dataset(load_dataset(path), m, path=str(path), checked=checked), checked

    (res, checked), r["verify_s"] = _timed(lambda: verify(data), "verify_s")
    assert res.identical, "benchmark data should verify"
    (res2, _), r["verify_changed_s"] = _timed(lambda: verify(changed), "verify_changed_s")
    r["changed_found"] = {"added": res2.count("added"), "modified": res2.count("modified"),
                          "removed": res2.count("removed")}

    tree = checked[1]
    hashes = read_manifest(manifest_path)["row_hashes"]
    picks = [random.Random(2).randrange(rows) for _ in range(proofs)]
    t0 = time.perf_counter()
    made = [tree.proof(i, bytes.fromhex(hashes[i])) for i in picks]
    r["proof_ms"] = (time.perf_counter() - t0) / proofs * 1000
    t0 = time.perf_counter()
    assert all(verify_inclusion(p) for p in made)
    r["proof_verify_ms"] = (time.perf_counter() - t0) / proofs * 1000
    r["proof_hashes"] = len(made[0].path)
    r["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)

    m2, proof_file = str(work / "m2.json"), work / "p.json"
    r["cli_snapshot_s"] = _cli("cli_snapshot_s", "snapshot", str(data), "--out", m2,
                               "--key", str(priv), "--ledger", str(ledger))
    r["cli_verify_s"] = _cli("cli_verify_s", "verify", str(data), "--manifest", m2,
                             "--pubkey", str(pub))
    r["cli_verify_row_s"] = _cli("cli_verify_row_s", "verify", str(data), "--manifest", m2,
                                 "--pubkey", str(pub), "--row", "123", "--proof-out",
                                 str(proof_file))
    r["cli_verify_proof_s"] = _cli("cli_verify_proof_s", "verify-proof", str(proof_file),
                                   "--root", json.loads(proof_file.read_text())["root"])
    CPU["snapshot_s"] = CPU["load_s"] + CPU["snapshot_core_s"]
    r["cpu"] = {k: round(v, 2) for k, v in CPU.items()}
    return r


def _markdown(r: dict[str, Any], machine: dict[str, Any], command: str) -> str:
    cpu = r["cpu"]

    def row(label: str, key: str, limit: float | None = None) -> str:
        wall, used = r[key], cpu.get(key, float("nan"))
        met = ("" if limit is None else
               f"{'yes' if wall < limit else '**no**'} / {'yes' if used < limit else '**no**'}")
        return (f"| {label} | {wall:.2f} | {used:.2f} | "
                f"{'' if limit is None else f'< {limit:g} s'} | {met} |")

    lines = [
        "# Provenance benchmark", "",
        f"{r['rows']:,} rows x {r['cols']} float32 columns + label (Parquet), "
        f"Ed25519-signed manifest ({r['manifest_mib']} MiB), SQLite ledger.", "",
        "| step | wall s | CPU s | target | met (wall / CPU) |", "|---|---|---|---|---|",
        row("load Parquet -> Dataset (incl. row ids)", "load_s"),
        row("build manifest + sign + write + ledger entry", "snapshot_core_s"),
        row("**snapshot total (library)**", "snapshot_s", 30),
        row("**verify, identical (library)**", "verify_s", 30),
        row("verify, 1,000 modified + 1 inserted row", "verify_changed_s", 30),
        row("`poisonguard snapshot` (CLI, incl. start-up)", "cli_snapshot_s", 30),
        row("`poisonguard verify` (CLI, incl. start-up)", "cli_verify_s", 30),
        row("`poisonguard verify --row 123` (CLI)", "cli_verify_row_s"),
        row("`poisonguard verify-proof` (CLI, incl. start-up)", "cli_verify_proof_s"),
        "", "| inclusion proof | ms | target | met |", "|---|---|---|---|",
        f"| make one proof ({r['proof_hashes']} hashes) from the tree | {r['proof_ms']:.4f} | "
        f"< 10 ms | {'yes' if r['proof_ms'] < 10 else '**no**'} |",
        f"| check one proof | {r['proof_verify_ms']:.4f} | | |", "",
        f"verify of the changed file found {r['changed_found']}.", "",
        f"Peak RSS of the library run: {r['peak_rss_gib']} GiB.", "",
        "CPU s is the CPU time of the process (user + system; children for the CLI rows). "
        "The work is single-threaded, so on an otherwise idle machine wall time is close to "
        "CPU time; on a busy machine wall time is inflated by waiting for a core. "
        "The proof times are for a tree already built (it is built once per manifest: "
        "`verify --row` builds it while checking the manifest, so its cost is that of "
        "verify). CLI rows include the interpreter and package start-up.", "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), Python {machine['python']}, "
        f"load average {machine['load_avg']} at the end of the run.", "",
        f"Command: `{command}`", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp:
        result = run(args.rows, args.cols, Path(tmp))
    machine = _machine()
    command = " ".join([".venv/bin/python", "benchmarks/bench_provenance.py",
                        *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])
    md = _markdown(result, machine, command)
    atomic_write_text(args.out / "provenance.md", md)
    atomic_write_text(args.out / "provenance.json", json.dumps(
        {"result": result, "machine": machine, "command": command}, indent=1) + "\n")
    print(md)


if __name__ == "__main__":
    main()
