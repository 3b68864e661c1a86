"""Image scan at scale on one GPU: 100k / 300k / 1M synthetic 32 x 32 x 3 uint8 images.

A device script (issue 13), prepared but NOT yet run on a GPU (no device was lent to
the session that wrote it). Each size: 10 classes of smooth random colour textures
(uint8), a 3 x 3 BadNets patch on 1% of the rows relabelled to class 0, one scan with
the default detectors. Prints one JSON line per size: seconds per stage, peak host
memory (ru_maxrss) against the uint8 image array, peak GPU memory, F1 on the BadNets
rows. Run each size in its own process so that ru_maxrss is that size's peak:

    python benchmarks/device_images.py --rows 100000
    python benchmarks/device_images.py --rows 300000
    python benchmarks/device_images.py --rows 1000000

On a CPU, ``--rows 2000`` checks that the script works (minutes, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._speed_child import StageTimer  # noqa: E402


def textures(n_rows: int, *, classes: int = 10, side: int = 32, seed: int = 0) -> tuple[
        np.ndarray, np.ndarray]:
    """``n_rows`` uint8 images (N x side x side x 3) and labels: each class a colour
    gradient with its own orientation, plus per-image noise; made a block at a time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n_rows)
    grid = np.linspace(0.0, 1.0, side, dtype=np.float32)
    angle = np.linspace(0, np.pi, classes, endpoint=False)
    colour = rng.uniform(60, 200, size=(classes, 3)).astype(np.float32)
    images = np.empty((n_rows, side, side, 3), dtype=np.uint8)
    for start in range(0, n_rows, 50_000):
        y = labels[start:start + 50_000]
        ramp = (np.cos(angle[y])[:, None, None] * grid[None, :, None]
                + np.sin(angle[y])[:, None, None] * grid[None, None, :])
        base = colour[y][:, None, None, :] * (0.6 + 0.4 * ramp[..., None])
        noise = rng.normal(0, 18, size=base.shape).astype(np.float32)
        images[start:start + 50_000] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return images, labels


def run(n_rows: int, *, seed: int = 0, rate: float = 0.01) -> dict[str, Any]:
    """Make the data, poison it, scan it; the measurements of one size."""
    import torch

    from poisonguard.data import Dataset
    from poisonguard.scan import scan_dataset

    images, labels = textures(n_rows, seed=seed)
    rng = np.random.default_rng(seed + 1)
    poisoned = np.sort(rng.choice(np.flatnonzero(labels != 0), size=int(rate * n_rows),
                                  replace=False))
    images[poisoned, -4:-1, -4:-1, :] = 255  # 3 x 3 white patch near the corner
    labels[poisoned] = 0
    baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    ds = Dataset(labels=labels, classes=tuple(str(c) for c in range(10)), images=images,
                 source=f"textures-{n_rows}")
    del images
    dataset_s = time.perf_counter() - t0
    timer = StageTimer()
    t0 = time.perf_counter()
    findings, _, rep = scan_dataset(ds, seed=seed, progress=timer)
    end = time.perf_counter()
    flags = np.asarray(findings.rows.flagged, dtype=bool)
    tp = int(flags[poisoned].sum())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert ds.images is not None
    data_mib = ds.images.nbytes / 2**20
    return {
        "rows": n_rows, "seconds": round(end - t0, 1), "dataset_seconds": round(dataset_s, 1),
        "stages": timer.breakdown(t0, end),
        "f1": round(2 * tp / max(int(flags.sum()) + len(poisoned), 1), 3),
        "flagged": int(flags.sum()), "poisoned": len(poisoned),
        "uint8_mib": round(data_mib, 1), "peak_host_mib": round(peak_mib, 1),
        "over_baseline_ratio": round((peak_mib - baseline_mib) / data_mib, 2),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if torch.cuda.is_available() else None,
        "device": rep.meta.get("device"), "epochs": rep.meta.get("epochs"),
        "folds": rep.meta.get("folds"), "load_avg": list(os.getloadavg()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Scan one size and print its JSON line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(json.dumps(run(args.rows, seed=args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
