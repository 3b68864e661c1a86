"""Image scan at scale: synthetic 32 x 32 x 3 uint8 images, or 10,000 MNIST digits.

A device script (issue 13) for 100k / 300k / 1M images on one GPU, prepared but NOT
yet run on a GPU (no device was lent to the sessions that wrote it); the same code
measures the CPU sizes (``benchmarks/bench_scan_speed.py --images``). Textures: 10
classes of smooth random colour gradients (uint8), a 3 x 3 BadNets patch on 1% of the
rows relabelled to class 0. ``--case mnist10k``: the 5,000 ``builtin:mnist`` digits and
a copy shifted one pixel (uint8), BadNets 5% to class 0. One scan with the default
detectors; prints one JSON line: wall and CPU seconds per stage, peak host memory
(ru_maxrss) against the uint8 image array, peak GPU memory, F1 on the poisoned rows.
Run each size in its own process so that ru_maxrss is that size's peak:

    python benchmarks/device_images.py --rows 100000
    python benchmarks/device_images.py --rows 300000
    python benchmarks/device_images.py --rows 1000000
    python benchmarks/device_images.py --case mnist10k

On a CPU, ``--rows 2000`` checks that the script works (minutes, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._speed_child import StageTimer, cpu_seconds, peak_mib  # noqa: E402


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
    # Blocks of 2,048 rows keep the float32 temporaries small (they would otherwise
    # set the process's peak memory before the scan starts); the generator draws the
    # same values whatever the block size.
    for start in range(0, n_rows, 2_048):
        y = labels[start:start + 2_048]
        ramp = (np.cos(angle[y])[:, None, None] * grid[None, :, None]
                + np.sin(angle[y])[:, None, None] * grid[None, None, :])
        base = colour[y][:, None, None, :] * (0.6 + 0.4 * ramp[..., None])
        noise = rng.normal(0, 18, size=base.shape).astype(np.float32)
        images[start:start + 2_048] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return images, labels


def mnist10k_badnets(*, seed: int = 0, rate: float = 0.05) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """10,000 uint8 28 x 28 digits (``builtin:mnist`` and a copy shifted one pixel right
    and down), a BadNets patch on ``rate`` of them relabelled to class 0: images,
    labels, poisoned row numbers."""
    from poisonguard.attack import badnets
    from poisonguard.data import Dataset
    from poisonguard.datasets import builtin_dataset

    mnist = builtin_dataset("mnist")
    assert mnist.images is not None
    shifted = np.zeros_like(mnist.images)
    shifted[:, 1:, 1:] = mnist.images[:, :-1, :-1]
    both = Dataset(labels=np.concatenate([mnist.labels, mnist.labels]), classes=mnist.classes,
                   images=np.concatenate([mnist.images, shifted]), source="mnist10k")
    res = badnets(both, rate=rate, target=0, seed=seed)
    assert res.dataset.images is not None
    images = np.asarray(res.dataset.images)
    if images.dtype != np.uint8:  # the patch is drawn in the image's value range
        assert np.array_equal(images, np.round(np.clip(images, 0, 255)))
        images = images.astype(np.uint8)
    return (np.array(images), np.array(res.dataset.labels),
            np.asarray(res.truth.poisoned, dtype=np.int64))  # row numbers, not a mask


def textures_badnets(n_rows: int, *, seed: int = 0, rate: float = 0.01) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """:func:`textures` with a 3 x 3 white patch near the corner on ``rate`` of the rows
    (none of class 0), relabelled to class 0: images, labels, poisoned row numbers."""
    images, labels = textures(n_rows, seed=seed)
    rng = np.random.default_rng(seed + 1)
    poisoned = np.sort(rng.choice(np.flatnonzero(labels != 0), size=int(rate * n_rows),
                                  replace=False))
    images[poisoned, -4:-1, -4:-1, :] = 255
    labels[poisoned] = 0
    return images, labels, poisoned


def run(n_rows: int, *, seed: int = 0, case: str = "textures") -> dict[str, Any]:
    """Make the data, poison it, scan it; the measurements of one size.

    ``baseline`` is the peak memory before the images exist, so ``over_baseline_ratio``
    (peak minus baseline, over the uint8 array's bytes) counts the images themselves.
    """
    from poisonguard.data import Dataset
    from poisonguard.represent.cnn import torch_module
    from poisonguard.scan import scan_dataset

    torch = torch_module()
    baseline_mib = peak_mib()
    if case == "mnist10k":
        images, labels, poisoned = mnist10k_badnets(seed=seed)
    else:
        images, labels, poisoned = textures_badnets(n_rows, seed=seed)
    classes = tuple(str(c) for c in range(int(labels.max()) + 1))
    t0 = time.perf_counter()
    ds = Dataset(labels=labels, classes=classes, images=images, source=f"{case}-{len(labels)}")
    del images
    dataset_s = time.perf_counter() - t0
    data_peak_mib = peak_mib()  # making the data (its temporaries included)
    timer = StageTimer()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    findings, _, rep = scan_dataset(ds, seed=seed, progress=timer)
    end, cpu_end = time.perf_counter(), cpu_seconds()
    flags = np.asarray(findings.rows.flagged, dtype=bool)
    tp = int(flags[poisoned].sum())
    peak = peak_mib()
    assert ds.images is not None
    data_mib = ds.images.nbytes / 2**20
    return {
        "case": case, "rows": len(ds), "shape": list(ds.images.shape[1:]),
        "seconds": round(end - t0, 1), "cpu_seconds": round(cpu_end - cpu0, 1),
        "dataset_seconds": round(dataset_s, 1),
        "stages": timer.breakdown(t0, end),
        # ru_maxrss by the start of each stage (MiB over the baseline): a jump at a
        # stage's mark was made by the stage before it; the last step, by the end.
        "peaks_by_stage": {**{k: round(v - baseline_mib, 1) for k, v in timer.peaks().items()},
                           "end": round(peak - baseline_mib, 1)},
        "cpu_stages": timer.breakdown(cpu0, cpu_end, cpu=True),
        "f1": round(2 * tp / max(int(flags.sum()) + len(poisoned), 1), 3),
        "flagged": int(flags.sum()), "poisoned": len(poisoned),
        "uint8_mib": round(data_mib, 1), "peak_host_mib": round(peak, 1),
        "over_baseline_mib": round(peak - baseline_mib, 1),
        "data_made_over_baseline_mib": round(data_peak_mib - baseline_mib, 1),
        "over_baseline_ratio": round((peak - baseline_mib) / data_mib, 2),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if torch.cuda.is_available() else None,
        "device": rep.meta.get("device"), "epochs": rep.meta.get("epochs"),
        "folds": rep.meta.get("folds"), "plan": rep.meta.get("plan"),
        "load_avg": [round(v, 2) for v in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Scan one size and print its JSON line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="textures: how many images")
    p.add_argument("--case", choices=("textures", "mnist10k"), default="textures")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(json.dumps(run(args.rows, seed=args.seed, case=args.case)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
