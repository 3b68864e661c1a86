"""Pixel-reading detectors (trigger, cleanlabel) alone: flags, peak memory, CPU seconds.

Runs ``TriggerDetector`` and ``CleanLabelDetector`` on one image case with a fixed
representation (the standardised pixels: the only part of it these detectors read),
and records per detector the flags and scores (rounded), the peak memory allocated
during ``score`` (tracemalloc, numpy's buffers included; the images and the
representation exist before it starts) and the CPU seconds. Run once with the old
code on the path and ``--save``, then with the new code and ``--compare``: every
flag must be equal. Cases: ``digits`` (builtin, BadNets 5%), ``digits-blend`` (blend
5%), ``textures20k`` (20,000 synthetic 32 x 32 x 3 uint8 images, 3 x 3 patch on 1%),
``mnist10k`` (10,000 uint8 28 x 28 digits, BadNets 5%: ``device_images.py``'s case).

    PYTHONPATH=/tmp/old python benchmarks/trigger_pixels.py --save /tmp/px-old
    PYTHONPATH=$PWD     python benchmarks/trigger_pixels.py --save /tmp/px-new \\
        --compare /tmp/px-old
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CASES = ("digits", "digits-blend", "textures20k", "mnist10k")


def _case(name: str) -> Any:
    from poisonguard.attack import badnets, blend
    from poisonguard.data import Dataset
    from poisonguard.datasets import builtin_dataset

    if name.startswith("digits"):
        attack = blend if name == "digits-blend" else badnets
        return attack(builtin_dataset("digits"), rate=0.05, target=0, seed=0).dataset
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:  # the device script's data, without importing `benchmarks`
        sys.path.append(here)
    import device_images

    if name == "textures20k":
        images, labels, _ = device_images.textures_badnets(20_000, seed=0)
    else:
        images, labels, _ = device_images.mnist10k_badnets(seed=0)
    classes = tuple(str(c) for c in range(int(labels.max()) + 1))
    return Dataset(labels=labels, classes=classes, images=images, source=name)


def run_case(name: str) -> dict[str, Any]:
    """Both detectors on one case: flags, rounded scores, peak MiB and CPU seconds each."""
    from poisonguard.detect.cleanlabel import CleanLabelDetector
    from poisonguard.detect.trigger import TriggerDetector
    from poisonguard.represent import Representation
    from poisonguard.represent.pixels import standardised_pixels

    ds = _case(name)
    n = len(ds)
    rep = Representation(features=standardised_pixels(ds.images), embedding=np.zeros((n, 0)),
                         proba=np.full((n, ds.n_classes), 1.0 / ds.n_classes), model="pixels")
    out: dict[str, Any] = {"rows": n, "dtype": str(ds.images.dtype),
                           "image_mib": round(ds.images.nbytes / 2**20, 1)}
    try:  # as in a scan, cleanlabel reuses trigger's mining (older code: a global memo)
        from poisonguard.memo import scan_memo
    except ImportError:
        scan_memo = contextlib.nullcontext
    with scan_memo():
        for det in (TriggerDetector(seed=0), CleanLabelDetector(seed=0)):
            out[det.name] = _measured(det, ds, rep)
    return out


def _measured(det: Any, ds: Any, rep: Any) -> dict[str, Any]:
    """One detector's flags, rounded scores, hypotheses, peak MiB and CPU seconds."""
    tracemalloc.start()
    cpu0 = time.process_time()
    res = det.score(ds, rep)
    cpu = time.process_time() - cpu0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"flags": np.flatnonzero(res.flags).tolist(),
            "scores": np.round(res.scores, 6).tolist(), "hypotheses": list(res.hypotheses),
            "peak_mib": round(peak / 2**20, 1), "cpu_s": round(cpu, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--save", type=Path, required=True, help="folder for one JSON per case")
    p.add_argument("--compare", type=Path, default=None, help="folder of an earlier --save")
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = p.parse_args(argv)
    args.save.mkdir(parents=True, exist_ok=True)
    differ = 0
    for name in args.cases:
        rec = run_case(name)
        (args.save / f"{name}.json").write_text(json.dumps(rec))
        line = {"case": name, "rows": rec["rows"], "dtype": rec["dtype"],
                "image_mib": rec["image_mib"], "load": round(os.getloadavg()[0], 1)}
        for det in ("trigger", "cleanlabel"):
            line[det] = {"flags": len(rec[det]["flags"]), "peak_mib": rec[det]["peak_mib"],
                         "cpu_s": rec[det]["cpu_s"]}
            if args.compare is not None:
                old = json.loads((args.compare / f"{name}.json").read_text())[det]
                same = all(old[k] == rec[det][k] for k in ("flags", "scores", "hypotheses"))
                line[det]["identical"] = same
                line[det]["old_peak_mib"] = old["peak_mib"]
                line[det]["old_cpu_s"] = old["cpu_s"]
                differ += not same
        print(json.dumps(line), flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
