"""``--engine ray`` on a real two-node Ray cluster on this host (``ray start`` on
127.0.0.2, one CPU per node, started once here): the same findings, profile and Merkle
root as in-process, with work on both nodes, even when a worker is killed in the middle
of a job."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.datasets import open_dataset
from poisonguard.engine import Engine, Handle, RayEngine
from poisonguard.engine.neighbours import engine_neighbours
from poisonguard.engine.reduce import class_moments, confident_joint, using_engine
from poisonguard.engine.rows import map_rows
from poisonguard.progress import Progress
from poisonguard.provenance.snapshot import build_manifest
from poisonguard.scan import scan_dataset
from poisonguard.validate import profile_data
from tests.engine.conftest import RayCluster, ray_cluster

ray = pytest.importorskip("ray", reason="the dist extra (ray[data]) is in CI's install line")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    """Two nodes started the way docs/distributed.md says; stopped even on failure."""
    with ray_cluster(nodes=2, cpus=1) as started:
        yield started


@pytest.fixture(scope="module")
def connected(cluster: RayCluster) -> Iterator[RayCluster]:
    """This process joined to the cluster (``RayEngine()`` then uses it)."""
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    try:
        yield cluster
    finally:
        ray.shutdown()


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return result


def _nodes_used(output: str, stage: str) -> int:
    """How many nodes ran the shards of ``stage``, from the engine's last progress line."""
    found = re.findall(rf"{stage} on ray \([^)]*\): \d+ shards ran on (\d+) nodes?", output)
    assert found, output
    return int(found[-1])


def test_scan_profile_and_snapshot_on_two_nodes_equal_in_process(
        cluster: RayCluster, parquet_folder: Path, tmp_path: Path) -> None:
    """Through ``--address`` (the cluster's GCS, as the README says), not a local Ray."""
    assert not ray.is_initialized()
    folder, shown = str(parquet_folder), {}
    for engine in ("local", "ray"):
        where = ["--engine", engine] + (["--address", cluster.address] if engine == "ray"
                                        else [])
        shown[engine, "scan"] = _cli("scan", folder, "--out", str(tmp_path / engine),
                                     "--no-ledger", "--progress", "plain", *where).output
        shown[engine, "profile"] = _cli(
            "profile", folder, "--out", str(tmp_path / f"{engine}.json"), "--progress",
            "plain", "--batch-rows", "16", *where).output
        shown[engine, "snapshot"] = _cli(
            "snapshot", folder, "--out", str(tmp_path / f"{engine}.pgm"), "--no-ledger",
            "--progress", "plain", *where).output
    on = f"ray ({cluster.address}, 2 nodes, 2 CPUs)"
    assert f"hashing rows on {on}: shard 6/6" in shown["ray", "snapshot"]  # shard by shard
    assert f"searching neighbours on {on}" in shown["ray", "scan"]  # the k-NN ran there
    # every command placed its shards on both nodes (node ids reported by the tasks)
    assert _nodes_used(shown["ray", "scan"], "hashing rows") == 2
    assert _nodes_used(shown["ray", "profile"], "profiling") == 2
    assert _nodes_used(shown["ray", "snapshot"], "hashing rows") == 2
    assert not ray.is_initialized()  # each command left the cluster it joined
    local = json.loads((tmp_path / "local" / "findings.json").read_text())
    on_ray = json.loads((tmp_path / "ray" / "findings.json").read_text())
    assert on_ray["dataset"]["sha256"] == local["dataset"]["sha256"]
    assert [r["flagged"] for r in on_ray["rows"]] == [r["flagged"] for r in local["rows"]]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(on_ray["rows"], local["rows"],
                                                           strict=True)) <= 1e-6
    assert [r["id"] for r in on_ray["rows"]] == [r["id"] for r in local["rows"]]
    local_profile = json.loads((tmp_path / "local.json").read_text())
    assert json.loads((tmp_path / "ray.json").read_text()) == local_profile
    root = build_manifest(parquet_folder).root
    assert root in (tmp_path / "ray.pgm").read_bytes().decode("latin-1")
    assert root in (tmp_path / "local.pgm").read_bytes().decode("latin-1")


def _findings(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((out / "findings.json").read_text())["rows"]
    return rows


def test_knn_ivf_on_ray_equals_in_process(connected: RayCluster, ivf_parquet_folder: Path,
                                          tmp_path: Path) -> None:
    """The approximate search, forced on 1,500 rows: the same flags and scores (through
    this process's connection: its warm workers serve every later test)."""
    folder = str(ivf_parquet_folder)
    for engine in ("local", "ray", "exact"):
        _cli("scan", folder, "--out", str(tmp_path / engine), "--no-ledger", "--quiet",
             "--detectors", "knn,label", "--engine", "local" if engine == "exact" else engine,
             "--knn", "exact" if engine == "exact" else "ivf")
    local, on_ray, exact = (_findings(tmp_path / e) for e in ("local", "ray", "exact"))
    assert [r["flagged"] for r in on_ray] == [r["flagged"] for r in local]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(on_ray, local, strict=True)) <= 1e-6
    # the same decisions and words: review and its reasons (the null's margin test) too
    assert [(r["action"], [x["detail"] for x in r["reasons"]]) for r in on_ray] == \
        [(r["action"], [x["detail"] for x in r["reasons"]]) for r in local]
    # not vacuous: rows are flagged, by both detectors (measured 42, 31 of them among the
    # 125 flips, in three licensed class pairs; knn 15), and margin doubts reviewed
    assert sum(r["flagged"] for r in local) >= 20
    assert {x["detector"] for r in local if r["flagged"] for x in r["reasons"]} == \
        {"knn", "label"}
    assert any("margin doubts" in x["detail"] for r in local for x in r["reasons"])
    assert [r["score"] for r in exact] != [r["score"] for r in local]  # ivf was approximate


class KillFirstWorker(Engine):
    """A Ray engine whose first shard waits in its worker until the test kills it."""

    name = "ray"

    def __init__(self, marker: Path) -> None:
        self.inner = RayEngine()
        self.marker = str(marker)

    def put(self, value: Any) -> Handle[Any]:
        return self.inner.put(value)

    def _first_waits(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Callable[[Any], Any]:
        marker = self.marker

        def first_run_waits_to_be_killed(item: Any) -> Any:
            if item == items[0]:  # work items are plain data: equal after the trip
                if not os.path.exists(marker):
                    with open(marker + ".tmp", "w") as fh:
                        fh.write(str(os.getpid()))
                    os.replace(marker + ".tmp", marker)
                    time.sleep(120)  # killed long before this ends
            return fn(item)

        return first_run_waits_to_be_killed

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, stage: str = "working",
            progress: Progress | None = None) -> Iterator[Any]:
        return self.inner.map(self._first_waits(fn, items), items, stage=stage,
                              progress=progress)

    def map_shared(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
                   stage: str = "working", progress: Progress | None = None) -> list[Handle[Any]]:
        return self.inner.map_shared(self._first_waits(fn, items), items, stage=stage,
                                     progress=progress)


def _kill_when_waiting(marker: Path, killed: list[int]) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 240
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(marker.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("job", ["scan-load", "scan-knn", "profile", "snapshot"])
def test_a_killed_worker_is_retried_and_the_job_finishes_the_same(
        connected: RayCluster, parquet_folder: Path, ivf_parquet_folder: Path,
        tmp_path: Path, job: str) -> None:
    marker = tmp_path / "worker.pid"
    killed: list[int] = []
    thread = _kill_when_waiting(marker, killed)
    engine = KillFirstWorker(marker)
    if job == "scan-load":
        assert list(open_dataset(parquet_folder, engine=engine).ids) == list(
            open_dataset(parquet_folder).ids)
    elif job == "scan-knn":  # the IVF search: shards indexed (map_shared), then searched
        dataset = open_dataset(ivf_parquet_folder)
        with engine_neighbours(engine, mode="ivf", block_rows=600, shard_rows=500):
            on_ray = scan_dataset(dataset, detectors="knn")[1][0]
        with engine_neighbours(None, mode="ivf"):
            here = scan_dataset(dataset, detectors="knn")[1][0]
        assert on_ray.flags.tolist() == here.flags.tolist()
        assert abs(on_ray.scores - here.scores).max() <= 1e-6
    elif job == "profile":
        assert profile_data(parquet_folder, batch_rows=16, engine=engine).to_dict() == \
            profile_data(parquet_folder, batch_rows=16).to_dict()
    else:
        assert build_manifest(parquet_folder, engine=engine).root == \
            build_manifest(parquet_folder).root
    thread.join(timeout=5)
    assert killed, "the worker was never killed"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)


def test_reductions_on_two_nodes_equal_in_process_bit_for_bit(connected: RayCluster) -> None:
    """Class moments and the confident joint from per-shard partials computed on the
    cluster's workers: the same bits as in-process."""
    from tests.engine.test_reduce import noisy_proba

    labels, proba = noisy_proba(rows=600, classes=3)
    engine = RayEngine()
    with using_engine(engine):
        moments = class_moments(proba, labels, 3, shard_rows=100)
        joint = confident_joint(labels, proba, shard_rows=100)
    here = class_moments(proba, labels, 3, shard_rows=100)
    assert here.scatter is not None and moments.scatter is not None
    assert np.array_equal(moments.counts, here.counts)
    assert np.array_equal(moments.means, here.means)
    assert np.array_equal(moments.scatter, here.scatter)
    assert joint.tolist() == confident_joint(labels, proba, shard_rows=100).tolist()
    assert len(engine.tasks_per_node) == 2  # shards of both reductions ran on both nodes


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_row_scores_on_two_nodes_equal_in_process_bit_for_bit(connected: RayCluster) -> None:
    """The scan's row-wise work (isolation scores, the search against a reference
    sample, the MLP's probabilities) per block on the cluster's workers: the same bits
    as the same blocks in-process."""
    from tests.engine.test_rows import rows_and_models

    x, fns = rows_and_models()
    rows = np.random.default_rng(1).permutation(len(x))[:333]
    engine = RayEngine()
    for fn in fns:
        for picked in (None, rows):
            with using_engine(engine):
                there = map_rows(fn, x, rows=picked, block_rows=120)
            here = map_rows(fn, x, rows=picked, block_rows=120)
            pairs = zip(there, here, strict=True) if isinstance(here, tuple) else [(there, here)]
            assert all(np.array_equal(a, b) for a, b in pairs)
    assert len(engine.tasks_per_node) == 2  # blocks ran on both nodes


def _slow_abs(value: int) -> int:
    time.sleep(0.2)  # long enough that the scheduler uses the second node's CPU
    return abs(value)


def test_plain_tasks_for_ray_client_run_on_both_nodes_in_order(connected: RayCluster) -> None:
    """The path ``--address ray://`` takes (Ray Data does not run through Ray Client):
    plain tasks, a bounded window, results in item order, the node of each; and
    ``map_shared`` (the IVF shards' indexes), whose results stay on the cluster."""
    import ray as ray_module

    out = list(RayEngine._tasks(ray_module, _slow_abs, list(range(0, -12, -1))))
    assert [result for result, _ in out] == list(range(12))
    assert len({node for _, node in out}) == 2
    engine = RayEngine()  # map_shared: plain tasks too; results stay in the object store
    handles = engine.map_shared(_slow_abs, list(range(0, -12, -1)))
    assert all(isinstance(h.ref, ray_module.ObjectRef) for h in handles)  # type: ignore[attr-defined]
    assert [h.get() for h in handles] == list(range(12))
    assert len(engine.tasks_per_node) == 2
