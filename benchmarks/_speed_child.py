"""What runs inside one fresh subprocess of the speed benchmark: a scan, or Datalab.

Memory is ``ru_maxrss`` (the process's peak resident set, KiB on Linux). The
baseline is the peak right after the imports, before any data is loaded, so
``peak - baseline`` is what the data and the work on it cost.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StageTimer", "run_child"]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StageTimer:
    """A poisonguard Progress that timestamps every stage message of a scan."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []

    def update(self, stage: str, *, done: int, total: int) -> None:
        self.marks.append((time.perf_counter(), stage))

    def breakdown(self, start: float, end: float) -> dict[str, float]:
        """Seconds per part: representation, each ``detector NAME``, fusion + findings.

        Everything before the first "detector ..." message is the representation;
        "fusing" until ``end`` is fusion plus building the findings.
        """
        out: dict[str, float] = {}
        first = next((t for t, s in self.marks if s.startswith("detector ")), None)
        if first is None:
            return {"total (no stage messages)": round(end - start, 3)}
        out["representation"] = first - start
        timeline = [(t, s) for t, s in self.marks if t >= first]
        for (t, stage), nxt in zip(timeline, [*timeline[1:], (end, "")], strict=True):
            name = stage if stage.startswith("detector ") else (
                "fusion + findings" if stage == "fusing" else stage)
            out[name] = out.get(name, 0.0) + nxt[0] - t
        return {k: round(v, 3) for k, v in out.items()}


def _scan(folder: Path) -> dict[str, Any]:
    from poisonguard.data import Dataset
    from poisonguard.scan import scan_dataset

    baseline = _peak_mib()
    x = np.load(folder / "features.npy")
    y = np.load(folder / "labels.npy")
    data_bytes = int(x.nbytes + y.nbytes)
    t0 = time.perf_counter()
    dataset = Dataset(labels=y, classes=tuple(str(c) for c in range(int(y.max()) + 1)),
                      features=x, source=f"synthetic-{len(y)}")
    dataset_seconds = time.perf_counter() - t0
    timer = StageTimer()
    t0 = time.perf_counter()
    findings, results, rep = scan_dataset(dataset, progress=timer)
    end = time.perf_counter()
    peak = _peak_mib()
    np.save(folder / "proba.npy", rep.proba)
    np.save(folder / "rep_features.npy", rep.features)
    return {
        "seconds": round(end - t0, 3), "dataset_seconds": round(dataset_seconds, 3),
        "stages": timer.breakdown(t0, end),
        "marks": [[round(t - t0, 3), s] for t, s in timer.marks],
        "detectors": [r.detector for r in results], "flagged": int(findings.summary["flagged"]),
        "data_mib": round(data_bytes / 2**20, 2), "baseline_mib": round(baseline, 1),
        "peak_mib": round(peak, 1), "over_baseline_mib": round(peak - baseline, 1),
        "ratio_to_data": round((peak - baseline) * 2**20 / data_bytes, 2),
        "representation": rep.model,
    }


def _datalab(folder: Path) -> dict[str, Any]:
    from cleanlab import Datalab  # noqa: F401  (imported before the baseline is taken)

    from benchmarks._references import datalab

    baseline = _peak_mib()
    y = np.load(folder / "labels.npy")
    proba = np.load(folder / "proba.npy")
    feats = np.load(folder / "rep_features.npy")
    t0 = time.perf_counter()
    flags, _ = datalab(y, proba, feats)
    seconds = time.perf_counter() - t0
    peak = _peak_mib()
    return {"seconds": round(seconds, 3), "flagged": int(flags.sum()),
            "baseline_mib": round(baseline, 1), "peak_mib": round(peak, 1),
            "over_baseline_mib": round(peak - baseline, 1)}


def run_child(kind: str, folder: Path) -> dict[str, Any]:
    """Measure ``kind`` ("scan" or "datalab") on the .npy files in ``folder``."""
    return _scan(folder) if kind == "scan" else _datalab(folder)
