"""Smoke test of the monitor benchmark: one seed, tiny settings, pages written."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_monitor


def test_monitor_benchmark_writes_its_numbers(tmp_path: Path) -> None:
    status = bench_monitor.main(["--seeds", "0", "--archs", "mlp", "--steps", "20",
                                 "--repeats", "1", "--out-dir", str(tmp_path)])
    assert status == 0
    (case,) = json.loads((tmp_path / "monitor.json").read_text())["cases"]
    assert case["arch"] == "mlp" and case["target"] == 0
    assert case["badnets"]["true_asr"] > 0.9 and case["badnets"]["canary_fired"]
    assert not case["clean"]["canary_fired"]
    assert 0 <= case["clean"]["strip"]["frr_mean"] <= 1
    assert "| mlp | 0 | 0 | badnets |" in (tmp_path / "monitor.md").read_text()
