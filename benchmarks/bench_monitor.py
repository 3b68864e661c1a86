"""Monitor benchmark: trigger canaries, the Neural Cleanse scan and STRIP on digits.

For each seed and architecture: split scikit-learn's digits 60/40 (the 40% is the
golden set), train one model on the clean 60% and one on a BadNets-poisoned copy
(target class ``(3 * seed) % 10``), then measure

- canaries: does a library trigger fire on the backdoored model (at its target), and
  on the clean model (a false alarm)? the largest attack success rate on the clean one;
- the model scan: is exactly the target flagged, is anything flagged on the clean
  model; anomaly indices; seconds per model;
- STRIP (target false-rejection rate 5%): 20 random half splits of the golden set
  (calibrate on one half, measure on the other): clean false-rejection rate (mean,
  min, max) and the share of triggered inputs rejected.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_monitor.py --seeds 0,1,2,3,4 \\
        --archs mlp,cnn --out-dir benchmarks/results/monitor
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions  # noqa: E402
from poisonguard.attack import badnets  # noqa: E402
from poisonguard.attack.trigger import stamp  # noqa: E402
from poisonguard.datasets import digits_images  # noqa: E402
from poisonguard.monitor import (  # noqa: E402
    StripScreener,
    library_triggers,
    neural_cleanse,
    run_canaries,
    train_classifier,
)


def _strip(model: Any, golden: Any, spec: dict[str, Any], target: int, seed: int,
           repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    frr, tpr = [], []
    for rep in range(repeats):
        perm = rng.permutation(len(golden))
        cal, held = perm[: len(golden) // 2], perm[len(golden) // 2:]
        screener = StripScreener(target_frr=0.05, seed=rep).fit(model, golden.images[cal])
        frr.append(float(screener.screen(golden.images[held]).rejected.mean()))
        others = held[golden.labels[held] != target]
        tpr.append(float(screener.screen(stamp(golden.images[others], spec)).rejected.mean()))
    return {"frr_mean": float(np.mean(frr)), "frr_min": min(frr), "frr_max": max(frr),
            "triggered_rejected": float(np.mean(tpr))}


def run_case(seed: int, arch: str, *, rate: float, steps: int, repeats: int) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    ds = digits_images()
    tr, te = train_test_split(np.arange(len(ds)), test_size=0.4, stratify=ds.labels,
                              random_state=seed)
    train, golden = ds.subset(np.sort(tr)), ds.subset(np.sort(te))
    target = (3 * seed) % 10
    attack = badnets(train, rate=rate, target=target, seed=seed)
    spec = attack.truth.params["trigger"]
    triggers = library_triggers(golden.images)
    out: dict[str, Any] = {"seed": seed, "arch": arch, "target": target}
    for name, data in (("clean", train), ("badnets", attack.dataset)):
        t0 = time.perf_counter()
        model = train_classifier(data.images, data.labels, data.classes, arch=arch, seed=seed)
        train_s = time.perf_counter() - t0
        others = golden.labels != target
        asr = float((model.predict(stamp(golden.images[others], spec)) == target).mean())
        canaries = run_canaries(model, golden, triggers)
        fired = [c for c in canaries if c.fired]
        scan = neural_cleanse(model, golden.images, golden.labels, steps=steps, seed=seed)
        rest = [c.anomaly for c in scan.classes if c.label != target]
        out[name] = {
            "accuracy": float((model.predict(golden.images) == golden.labels).mean()),
            "true_asr": asr, "train_seconds": train_s,
            "canary_fired": bool(fired), "canary_targets": sorted({c.target for c in fired}),
            "canary_max_asr": max(c.asr for c in canaries),
            "scan_flagged": [scan.classes[i].name for i in scan.flagged],
            "scan_target_index": scan.classes[target].anomaly,
            "scan_max_other_index": max(rest), "scan_seconds": scan.seconds,
            "strip": _strip(model, golden, spec, target, seed, repeats),
        }
    return out


def _page(cases: list[dict[str, Any]], argv: list[str]) -> str:
    lines = ["# Monitor benchmark", "", f"Command: `python benchmarks/bench_monitor.py "
             f"{' '.join(argv)}`", "", f"Machine: {json.dumps(machine())}", "",
             "| arch | seed | target | model | acc | true ASR | canary fired | canary max ASR "
             "| scan flagged | target idx | max other idx | scan s | STRIP FRR mean (min-max) "
             "| triggered rejected |", "|" + "---|" * 14]
    for c in cases:
        for name in ("clean", "badnets"):
            m = c[name]
            s = m["strip"]
            lines.append(
                f"| {c['arch']} | {c['seed']} | {c['target']} | {name} | {m['accuracy']:.3f} | "
                f"{m['true_asr']:.3f} | {','.join(m['canary_targets']) or '-'} | "
                f"{m['canary_max_asr']:.3f} | {','.join(m['scan_flagged']) or '-'} | "
                f"{m['scan_target_index']:.2f} | {m['scan_max_other_index']:.2f} | "
                f"{m['scan_seconds']:.1f} | {s['frr_mean']:.3f} ({s['frr_min']:.3f}-"
                f"{s['frr_max']:.3f}) | {s['triggered_rejected']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--archs", default="mlp,cnn")
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/monitor"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cases = []
    for arch in args.archs.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            cases.append(run_case(seed, arch, rate=args.rate, steps=args.steps,
                                  repeats=args.repeats))
            print(json.dumps(cases[-1]), flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "versions": versions(), "cases": cases}
    (args.out_dir / "monitor.json").write_text(json.dumps(payload, indent=2) + "\n")
    page = _page(cases, sys.argv[1:] if argv is None else argv)
    (args.out_dir / "monitor.md").write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
