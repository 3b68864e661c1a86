"""A small multi-file Parquet dataset with typed columns, row groups and missing cells;
a multi-node Ray cluster on this host."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.datasets import builtin_dataset


def write_parquet_folder(folder: Path, frame: pd.DataFrame, *, files: int = 3,
                         row_group_size: int = 40) -> Path:
    """``frame`` split into ``files`` Parquet parts (several row groups each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[part].reset_index(drop=True).to_parquet(
            folder / f"part-{k:05d}.parquet", row_group_size=row_group_size)
    (folder / "_SUCCESS").write_text("")  # Spark's marker is skipped
    return folder


def typed_frame(seed: int = 0) -> pd.DataFrame:
    """Wine (178 rows) with a category, an integer column and missing cells."""
    wine = builtin_dataset("wine")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(wine.features[:, :6], columns=[f"f{j}" for j in range(6)])
    frame.loc[rng.choice(len(frame), 9, replace=False), "f2"] = np.nan
    frame["region"] = rng.choice(["north", "south", "east"], len(frame))
    frame["count"] = rng.integers(0, 50, len(frame))
    frame["label"] = np.asarray(wine.classes)[wine.labels]
    return frame


@pytest.fixture(scope="session")
def parquet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parquet_folder(tmp_path_factory.mktemp("engine") / "wine-parts", typed_frame())


def flipped_blobs(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Three overlapping 8-d classes with 8% of the labels flipped (each to the next
    class): enough rows for an IVF search that probes only some of its lists, and more
    flips than natural overlap explains, which the scan flags."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, rows)
    x = rng.normal(size=(rows, 8)) + 1.5 * np.eye(3, 8)[label]
    flipped = rng.choice(rows, rows // 12, replace=False)
    label[flipped] = (label[flipped] + 1) % 3
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"x{j}" for j in range(8)])
    frame["label"] = np.array(["a", "b", "c"])[label]
    return frame


@pytest.fixture(scope="session")
def ivf_parquet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 rows in 3 Parquet files: ``--knn ivf`` is approximate there (8 of 37 lists)."""
    return write_parquet_folder(tmp_path_factory.mktemp("engine") / "blobs-parts",
                                flipped_blobs(), row_group_size=200)


@dataclass
class RayCluster:
    """A Ray cluster of ``ray start`` nodes on this host (loopback), as docs/distributed.md
    tells users to start one: its GCS address (``--address``) and environment."""

    address: str
    env: dict[str, str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)


#: A loopback address Ray keeps as it is (it swaps 127.0.0.1 for the host's own IP).
LOOPBACK = "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _ray_start(args: list[str], env: dict[str, str], *, timeout: float) -> subprocess.Popen[str]:
    """``ray start ARGS --block`` in its own session; returns once the node is up."""
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray_cli if ray_cli.exists() else "ray"), "start", *args,
                             "--block"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "block forever" in line:  # printed once every process of the node runs
                up.set()
        up.set()

    threading.Thread(target=read, daemon=True).start()
    if not up.wait(timeout) or proc.poll() is not None:
        _stop(proc)
        raise RuntimeError("ray start failed:\n" + "".join(lines[-30:]))
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to a ``ray start --block`` stops its node's processes; SIGKILL the
    session it leads if that did not end it."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _reload_ray_auth() -> None:
    """Ray reads RAY_AUTH_MODE and the token once per process: a user exports them
    before starting poisonguard; this test process sets them later, so Ray rereads."""
    import ray._raylet

    ray._raylet.Config.initialize("")
    ray._raylet.AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def ray_cluster(nodes: int = 2, *, cpus: int = 1, timeout: float = 240) -> Iterator[RayCluster]:
    """``nodes`` Ray nodes of ``cpus`` CPUs each on 127.0.0.2 with token authentication:
    ``ray start --head --port=PORT`` and ``ray start --address=127.0.0.2:PORT``, as the
    README shows; every process stopped and the temp dir removed afterwards, even on
    failure. The environment (token) is this process's while the cluster lives."""
    tmp = Path(tempfile.mkdtemp(prefix="pgray-"))  # short: Ray's socket paths are limited
    token = tmp / "auth_token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    port = _free_port()
    common = [f"--num-cpus={cpus}", "--object-store-memory=100000000",
              f"--node-ip-address={LOOPBACK}", "--disable-usage-stats"]
    cluster = RayCluster(f"{LOOPBACK}:{port}", env)
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    try:
        cluster.processes.append(_ray_start(
            ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={tmp}",
             f"--ray-client-server-port={_free_port()}", *common], env, timeout=timeout))
        for _ in range(nodes - 1):
            cluster.processes.append(_ray_start([f"--address={cluster.address}", *common],
                                                env, timeout=timeout))
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
        _reload_ray_auth()
        yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_ray_auth()
        for proc in reversed(cluster.processes):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
