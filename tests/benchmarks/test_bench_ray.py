"""The Ray benchmark's data, its in-process child and its cost model (no Ray started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench_ray


def test_data_folder_and_local_child(tmp_path: Path) -> None:
    folder = bench_ray.make_folder(2_000, 4, tmp_path / "parts")
    assert len(list(folder.glob("*.parquet"))) == bench_ray.FILES
    run = bench_ray.child("snapshot", "local", str(folder))
    assert run["rows"] == 2_000 and run["seconds"] > 0 and len(run["root"]) == 64


def test_projection_from_cpu_costs() -> None:
    results = [
        {"job": "profile", "engine": "local", "n_rows": 100, "driver_cpu_s": 2.0},
        {"job": "profile", "engine": "ray", "n_rows": 100, "driver_cpu_s": 0.5,
         "worker_cpu_s": 4.0, "startup_s": 5.0},
    ]
    (row,) = bench_ray.projection(results, rows=1_000, nodes=2, cpus=2)
    assert row["worker_cpu_us_per_row"] == pytest.approx(40_000)
    assert row["cluster_100M_s"] == pytest.approx(5.0 + 1_000 * (0.04 / 4 + 0.005))
    assert row["in_process_100M_s"] == pytest.approx(20.0)
