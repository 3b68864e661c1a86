"""Load test of the service on loopback: concurrent clients mixing uploads and reads.

Starts ``poisonguard serve`` in a subprocess on 127.0.0.1 (fresh home, SQLite), makes
a contributor, then runs ``--clients`` asyncio clients for ``--seconds``; each client
uploads a small unique CSV one request in five and otherwise reads (its datasets,
one dataset, /api/me). Every upload's SHA-256 is compared with the server's answer
and, at the end, with the stored file on disk and the dataset list: an upload lost
or corrupted is an error. Prints and writes p50/p99 latency and throughput per kind.

    .venv/bin/python benchmarks/service_load.py --clients 50 --seconds 60 \
        --out benchmarks/results/service-load.json

Only loopback addresses are contacted; the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"pgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    uploads: dict[str, str] = field(default_factory=dict)  # dataset id -> sha256 sent

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


def small_csv(rng: random.Random) -> bytes:
    rows = ["a,b,c,label"] + [f"{rng.random():.6f},{rng.random():.6f},{rng.randint(0, 99)},"
                              f"{k % 2}" for k in range(40)]
    return ("\n".join(rows) + "\n").encode()


async def client(base: str, token: str, seconds: float, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    h = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, headers=h, timeout=60.0) as http:
        while time.monotonic() < deadline:
            roll = rng.random()
            t0 = time.perf_counter()
            try:
                if roll < 0.2 or not mine:
                    body = small_csv(rng)
                    r = await http.post("/api/datasets", params={"name": f"c{seed}.csv"},
                                        content=body)
                    kind = "upload"
                    if r.status_code == 201:
                        sent = hashlib.sha256(body).hexdigest()
                        if r.json()["sha256"] != sent:
                            tally.errors.append(f"upload {r.json()['id']}: hash differs")
                        tally.uploads[r.json()["id"]] = sent
                        mine.append(r.json()["id"])
                elif roll < 0.5:
                    kind, r = "get dataset", await http.get(f"/api/datasets/{rng.choice(mine)}")
                elif roll < 0.75:
                    kind, r = "list datasets", await http.get("/api/datasets")
                else:
                    kind, r = "me", await http.get("/api/me")
            except httpx.HTTPError as exc:
                tally.errors.append(f"transport: {type(exc).__name__}")
                continue
            tally.add(kind, time.perf_counter() - t0)
            if r.status_code >= 400:
                tally.errors.append(f"{kind}: HTTP {r.status_code} {r.text[:120]}")


async def run_load(base: str, token: str, *, clients: int, seconds: float) -> Tally:
    """Run ``clients`` concurrent clients against ``base`` for ``seconds``."""
    tally = Tally()
    await asyncio.gather(*(client(base, token, seconds, k, tally) for k in range(clients)))
    return tally


def check_stored(base: str, token: str, home: Path, tally: Tally) -> None:
    """Every upload is listed with its hash, and the stored bytes hash to it."""
    listed = httpx.get(f"{base}/api/datasets", headers={"Authorization": f"Bearer {token}"},
                       timeout=60.0).json()
    server = {d["id"]: d["sha256"] for d in listed}
    for ds_id, sent in tally.uploads.items():
        if server.get(ds_id) != sent:
            tally.errors.append(f"dataset {ds_id}: missing or wrong hash in the list")
        stored = home / "files" / "datasets" / f"{ds_id}.csv"
        if not stored.exists() or hashlib.sha256(stored.read_bytes()).hexdigest() != sent:
            tally.errors.append(f"dataset {ds_id}: stored file lost or corrupted")


def summary(tally: Tally, seconds: float) -> dict[str, Any]:
    total = sum(len(v) for v in tally.latencies.values())
    kinds = {}
    for kind, values in sorted(tally.latencies.items()):
        arr = np.asarray(values) * 1000
        kinds[kind] = {"requests": len(values), "p50_ms": round(float(np.percentile(arr, 50)), 1),
                       "p99_ms": round(float(np.percentile(arr, 99)), 1),
                       "per_s": round(len(values) / seconds, 1)}
    every = np.concatenate([np.asarray(v) for v in tally.latencies.values()]) * 1000
    return {"requests": total, "per_s": round(total / seconds, 1),
            "p50_ms": round(float(np.percentile(every, 50)), 1),
            "p99_ms": round(float(np.percentile(every, 99)), 1),
            "uploads": len(tally.uploads), "errors": len(tally.errors),
            "first_errors": tally.errors[:10], "kinds": kinds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--port", type=int, default=18765)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="pg-load-")) / "home"
    env = {**os.environ, "POISONGUARD_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("POISONGUARD_DATABASE_URL", None)
    cli = [sys.executable, "-m", "poisonguard"]
    made = subprocess.run([*cli, "users", "add", "loader", "--role", "contributor"], env=env,
                          capture_output=True, text=True, check=True)
    found = TOKEN.search(made.stdout)
    assert found is not None, made.stdout
    token, base = found.group(0), f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([*cli, "serve", "--port", str(args.port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        started = time.monotonic()
        tally = asyncio.run(run_load(base, token, clients=args.clients, seconds=args.seconds))
        elapsed = time.monotonic() - started
        check_stored(base, token, home, tally)
    finally:
        server.terminate()
        server.wait(timeout=60)
    result = {"clients": args.clients, "seconds": args.seconds, "elapsed_s": round(elapsed, 1),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"load average {os.getloadavg()[0]:.1f}",
              **summary(tally, elapsed)}
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
