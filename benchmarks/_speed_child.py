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

__all__ = ["StageTimer", "cpu_seconds", "peak_mib", "run_child"]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


class StageTimer:
    """A poisonguard Progress that timestamps every stage message of a scan.

    Besides the wall-clock time, each mark keeps the process's CPU seconds and its
    peak resident memory so far (``peak_marks``: which stage raised the peak).
    """

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []
        self.cpu_marks: list[float] = []
        self.peak_marks: list[float] = []

    def update(self, stage: str, *, done: int, total: int) -> None:
        self.marks.append((time.perf_counter(), stage))
        self.cpu_marks.append(cpu_seconds())
        self.peak_marks.append(peak_mib())

    def breakdown(self, start: float, end: float, *, cpu: bool = False) -> dict[str, float]:
        """Seconds per part: representation, each ``detector NAME``, fusion + findings.

        Everything before the first "detector ..." message is the representation;
        "fusing" until ``end`` is fusion plus building the findings. ``cpu=True``:
        CPU seconds (``start``/``end`` from :func:`cpu_seconds`) instead of wall time.
        """
        values = self.cpu_marks if cpu else [t for t, _ in self.marks]
        points = list(zip(values, [s for _, s in self.marks], strict=True))
        first = next((i for i, (_, s) in enumerate(points) if s.startswith("detector ")), None)
        if first is None:
            return {"total (no stage messages)": round(end - start, 3)}
        out: dict[str, float] = {"representation": points[first][0] - start}
        timeline = points[first:]
        for (t, stage), nxt in zip(timeline, [*timeline[1:], (end, "")], strict=True):
            name = stage if stage.startswith("detector ") else (
                "fusion + findings" if stage == "fusing" else stage)
            out[name] = out.get(name, 0.0) + nxt[0] - t
        return {k: round(v, 3) for k, v in out.items()}

    def peaks(self) -> dict[str, float]:
        """Peak resident MiB reached by the start of each stage message (first seen)."""
        out: dict[str, float] = {}
        for (_, stage), peak in zip(self.marks, self.peak_marks, strict=True):
            out.setdefault(stage, round(peak, 1))
        return out


def _scan(folder: Path, threads: int = 1) -> dict[str, Any]:
    from poisonguard.data import Dataset
    from poisonguard.scan import scan_dataset

    baseline = peak_mib()
    x = np.load(folder / "features.npy")
    y = np.load(folder / "labels.npy")
    data_bytes = int(x.nbytes + y.nbytes)
    t0 = time.perf_counter()
    dataset = Dataset(labels=y, classes=tuple(str(c) for c in range(int(y.max()) + 1)),
                      features=x, source=f"synthetic-{len(y)}")
    dataset_seconds = time.perf_counter() - t0
    timer = StageTimer()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    findings, results, rep = scan_dataset(dataset, progress=timer, threads=threads)
    end, cpu_end = time.perf_counter(), cpu_seconds()
    peak = peak_mib()
    np.save(folder / "proba.npy", rep.proba)
    np.save(folder / "rep_features.npy", rep.features)
    return {
        "seconds": round(end - t0, 3), "dataset_seconds": round(dataset_seconds, 3),
        "cpu_seconds": round(cpu_end - cpu0, 3),
        "stages": timer.breakdown(t0, end),
        "cpu_stages": timer.breakdown(cpu0, cpu_end, cpu=True),
        "peaks_by_stage": {k: round(v - baseline, 1) for k, v in timer.peaks().items()},
        "marks": [[round(t - t0, 3), s] for t, s in timer.marks],
        "detectors": [r.detector for r in results], "flagged": int(findings.summary["flagged"]),
        "f1": _f1(np.asarray(findings.rows.flagged, dtype=bool), folder),
        "data_mib": round(data_bytes / 2**20, 2), "baseline_mib": round(baseline, 1),
        "peak_mib": round(peak, 1), "over_baseline_mib": round(peak - baseline, 1),
        "ratio_to_data": round((peak - baseline) * 2**20 / data_bytes, 2),
        "representation": rep.model, "threads": threads,
    }


def _f1(flags: np.ndarray, folder: Path) -> float | None:
    """F1 of ``flags`` against ``poisoned.npy`` (row numbers), None without it."""
    path = folder / "poisoned.npy"
    if not path.exists():
        return None
    poisoned = np.load(path)
    tp = int(flags[poisoned].sum())
    return round(2 * tp / max(int(flags.sum()) + len(poisoned), 1), 3)


def _datalab(folder: Path) -> dict[str, Any]:
    from cleanlab import Datalab  # noqa: F401  (imported before the baseline is taken)

    from benchmarks._references import datalab

    baseline = peak_mib()
    y = np.load(folder / "labels.npy")
    proba = np.load(folder / "proba.npy")
    feats = np.load(folder / "rep_features.npy")
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    flags, _ = datalab(y, proba, feats)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    peak = peak_mib()
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
            "flagged": int(flags.sum()), "f1": _f1(np.asarray(flags, dtype=bool), folder),
            "baseline_mib": round(baseline, 1), "peak_mib": round(peak, 1),
            "over_baseline_mib": round(peak - baseline, 1)}


def run_child(kind: str, folder: Path, *, threads: int = 1) -> dict[str, Any]:
    """Measure ``kind`` ("scan" or "datalab") on the .npy files in ``folder``; the scan
    runs with ``threads`` threads."""
    return _scan(folder, threads) if kind == "scan" else _datalab(folder)
