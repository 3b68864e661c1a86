"""Record every detector's flags and scores on a fixed grid, to prove a refactor changes nothing.

Representations are built once and cached (``--cache DIR``), so a second run after a
code change re-runs only the detectors and the fusion on the very same inputs:

    python benchmarks/flag_grid.py --cache /tmp/grid --out before.npz   # before a change
    python benchmarks/flag_grid.py --cache /tmp/grid --out after.npz    # after it
    python benchmarks/flag_grid.py --compare before.npz after.npz

The grid: breast cancer and wine (tabular) clean and under flip, flip-targeted,
outliers, tabular-trigger and clean-label at 1% and 10%; digits images clean and
under flip, badnets and blend at 10%; digits-tabular (ten classes: the class-calibrated
separation threshold) clean and under the tabular attacks at 10%. Every registered
detector that supports the modality runs on each case ("all").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `poisonguard` importable from here
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from poisonguard.attack import attack_applies, run_attack  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import builtin_dataset  # noqa: E402
from poisonguard.errors import UsageError  # noqa: E402
from poisonguard.represent import Representation, build_representation  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

TABULAR_ATTACKS = ("flip", "flip-targeted", "outliers", "tabular-trigger", "clean-label")
IMAGE_ATTACKS = ("flip", "badnets", "blend")


def cases(datasets: list[str]) -> list[tuple[str, Dataset]]:
    out: list[tuple[str, Dataset]] = []
    for name, attacks, rates in (("breast_cancer", TABULAR_ATTACKS, (0.01, 0.1)),
                                 ("wine", TABULAR_ATTACKS, (0.01, 0.1)),
                                 ("digits-tabular", TABULAR_ATTACKS, (0.1,)),
                                 ("digits", IMAGE_ATTACKS, (0.1,))):
        if name not in datasets:
            continue
        clean = builtin_dataset(name)
        out.append((f"{name}/clean", clean))
        for kind in attacks:
            if not attack_applies(kind, clean):
                continue
            for rate in rates:
                try:
                    attacked = run_attack(kind, clean, rate=rate, seed=0, target=0).dataset
                except UsageError:  # e.g. not enough target-class rows: not a case
                    continue
                out.append((f"{name}/{kind}@{rate:g}", attacked))
    return out


def representation(key: str, dataset: Dataset, cache: Path) -> Representation:
    path = cache / (key.replace("/", "__") + ".npz")
    if path.exists():
        z = np.load(path)
        oof = z["embedding_oof"] if "embedding_oof" in z.files else None
        return Representation(features=z["features"], embedding=z["embedding"],
                              proba=z["proba"], embedding_oof=oof, model=str(z["model"]),
                              layer=str(z["layer"]))
    rep = build_representation(dataset, seed=0, keep_oof_embedding=True)
    arrays = {"features": rep.features, "embedding": rep.embedding, "proba": rep.proba,
              "model": np.array(rep.model), "layer": np.array(rep.layer)}
    if rep.embedding_oof is not None:
        arrays["embedding_oof"] = rep.embedding_oof
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return rep


def record(cache: Path, out: Path, datasets: list[str]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for key, dataset in cases(datasets):
        rep = representation(key, dataset, cache)
        findings, results, _ = scan_dataset(dataset, detectors="all", representation=rep)
        for res in results:
            arrays[f"{key}|{res.detector}|flags"] = res.flags
            arrays[f"{key}|{res.detector}|scores"] = res.scores
            arrays[f"{key}|{res.detector}|clean"] = np.array(sorted(res.clean_classes))
        fused = findings.rows
        arrays[f"{key}|fused|flags"] = np.array([r.flagged for r in fused])
        arrays[f"{key}|fused|scores"] = np.array([r.score for r in fused])
        print(key, {r.detector: r.n_flagged for r in results}, flush=True)
    np.savez(out, **arrays)


def compare(a_path: Path, b_path: Path) -> int:
    a, b = np.load(a_path), np.load(b_path)
    bad = 0
    if set(a.files) != set(b.files):
        print("keys differ:", sorted(set(a.files) ^ set(b.files)))
        bad += 1
    worst = 0.0
    for key in sorted(set(a.files) & set(b.files)):
        x, y = a[key], b[key]
        if key.endswith("|scores"):
            diff = float(np.max(np.abs(x - y))) if len(x) else 0.0
            worst = max(worst, diff)
            if diff > 1e-3:
                print(f"{key}: scores differ by up to {diff:.2e}")
                bad += 1
        elif x.shape != y.shape or not np.array_equal(x, y):
            print(f"{key}: DIFFERENT ({int(np.sum(x != y)) if x.shape == y.shape else 'shape'})")
            bad += 1
    flags = sum(k.endswith("|flags") for k in a.files)
    print(f"{flags} flag arrays compared, {bad} differences; largest score change {worst:.2e}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/poisonguard-flag-grid"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path)
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "wine", "digits"])
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    record(args.cache, args.out or Path("flag-grid.npz"), args.datasets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
