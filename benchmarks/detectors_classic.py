"""Benchmark the classic detectors (label, knn, outlier, duplicate).

Quality: for each built-in dataset, the clean false-positive rate of every detector,
then for each attack x rate the precision, recall, F1 and AUROC against the attack's
truth. Scale: the detectors alone on synthetic N x 50 data with a representation
built from the features (no model training), wall time and peak memory.

    .venv/bin/python benchmarks/detectors_classic.py                 # quality grid
    .venv/bin/python benchmarks/detectors_classic.py --scale 100000 1000000

Representations are cached as .npz under --cache so reruns only re-score.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from poisonguard.attack import run_attack
from poisonguard.data import Dataset, atomic_write_text
from poisonguard.datasets import builtin_dataset, synthetic
from poisonguard.detect import get_detector
from poisonguard.memo import scan_memo
from poisonguard.represent import Representation, build_representation

DETECTORS = ("label", "knn", "outlier", "duplicate")
DATASETS = ("digits", "digits-tabular", "breast_cancer", "wine", "synthetic")
ATTACKS = {  # name -> (attack kind, extra parameters)
    "flip-random": ("flip", {}),
    "flip-targeted": ("flip", {"mode": "targeted", "target": 0}),
    "outliers": ("outliers", {}),
    "near-duplicates": ("near-duplicates", {}),
}
# Which detectors an attack is meant for (the row "label|knn" is the OR of both).
MEANT_FOR = {"flip-random": ("label", "knn", "label|knn"),
             "flip-targeted": ("label", "knn", "label|knn"),
             "outliers": ("outlier",), "near-duplicates": ("duplicate",)}


def _representation(ds: Dataset, key: str, cache: Path) -> Representation:
    path = cache / f"{key}.npz"
    if path.is_file():
        z = np.load(path)
        return Representation(features=z["features"], embedding=z["embedding"],
                              proba=z["proba"], embedding_oof=z["oof"], model="cached")
    rep = build_representation(ds, seed=0)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, features=rep.features, embedding=rep.embedding, proba=rep.proba,
             oof=rep.embedding_oof if rep.embedding_oof is not None else rep.embedding)
    os.replace(tmp, path)
    return rep


def _metrics(flags: np.ndarray, scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((flags & truth).sum())
    fp = int((flags & ~truth).sum())
    fn = int((~flags & truth).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    auroc = float(roc_auc_score(truth, scores)) if 0 < truth.sum() < len(truth) else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "auroc": auroc,
            "fpr": fp / max(int((~truth).sum()), 1)}


def _load(name: str) -> Dataset:
    return synthetic(3000) if name == "synthetic-3k" else builtin_dataset(name)


def quality(datasets: list[str], rates: list[float], cache: Path,
            clean_only: list[str]) -> list[str]:
    lines = ["## Clean data: false-positive rate (share of rows flagged)", "",
             "| dataset | rows | " + " | ".join(DETECTORS) + " |",
             "|---|---:|" + "---:|" * len(DETECTORS)]
    grid = ["## Poisoned data", "",
            "| dataset | attack | rate | detector | precision | recall | F1 | AUROC "
            "| clean-row FPR |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for name in datasets + clean_only:
        ds = _load(name)
        rep = _representation(ds, f"{name}-clean", cache)
        fprs = [get_detector(d).score(ds, rep).flags.mean() for d in DETECTORS]
        lines.append(f"| {name} | {len(ds)} | " + " | ".join(f"{f:.2%}" for f in fprs) + " |")
        print(lines[-1], flush=True)
        if name in clean_only:
            continue
        for attack, (kind, params) in ATTACKS.items():
            for rate in rates:
                res = run_attack(kind, ds, rate=rate, seed=1, **params)
                prep = _representation(res.dataset, f"{name}-{attack}-{rate}", cache)
                truth = np.zeros(len(res.dataset), dtype=bool)
                truth[res.truth.poisoned] = True
                results = {d: get_detector(d).score(res.dataset, prep) for d in DETECTORS}
                for det in MEANT_FOR[attack]:
                    if det == "label|knn":
                        flags = results["label"].flags | results["knn"].flags
                        scores = np.maximum(results["label"].scores, results["knn"].scores)
                    else:
                        flags, scores = results[det].flags, results[det].scores
                    m = _metrics(flags, scores, truth)
                    grid.append(f"| {name} | {attack} | {rate:g} | {det} | {m['precision']:.3f} | "
                                f"{m['recall']:.3f} | {m['f1']:.3f} | {m['auroc']:.3f} | "
                                f"{m['fpr']:.2%} |")
                    print(grid[-1], flush=True)
    return lines + [""] + grid


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale(sizes: list[int]) -> list[str]:
    lines = ["## Scale: detectors alone, synthetic N x 50, representation = the features", "",
             "| rows | detector | seconds | peak RSS of the process (MB) |", "|---:|---|---:|---:|"]
    for n in sizes:
        rng = np.random.default_rng(0)
        centers = rng.normal(0, 3, size=(5, 50)).astype(np.float32)
        labels = rng.integers(0, 5, size=n)
        x = centers[labels] + rng.standard_normal((n, 50), dtype=np.float32)
        ds = Dataset(labels=labels, classes=tuple("abcde"), features=x, ids=np.arange(n))
        logits = -((x[:, None, :] - centers[None]) ** 2).sum(axis=2) / 50
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        rep = Representation(features=x, embedding=x, proba=proba, embedding_oof=x)
        with scan_memo():  # the detectors share one neighbour search, as in a scan
            for det in DETECTORS:
                t0 = time.perf_counter()
                get_detector(det).score(ds, rep)
                lines.append(f"| {n} | {det} | {time.perf_counter() - t0:.1f} | "
                             f"{_peak_mb():.0f} |")
                print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--clean-only", nargs="*", default=[],
                    help="datasets measured on clean data only (no attack grid)")
    ap.add_argument("--rates", nargs="*", type=float, default=[0.01, 0.05, 0.1])
    ap.add_argument("--scale", nargs="*", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/detectors-classic.md"))
    args = ap.parse_args(argv)
    started = time.time()
    body = scale(args.scale) if args.scale else quality(args.datasets, args.rates, args.cache,
                                                          args.clean_only)
    header = [
        "# Classic detectors benchmark", "",
        f"- command: `.venv/bin/python benchmarks/detectors_classic.py {' '.join(sys.argv[1:])}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}",
        f"- wall time: {time.time() - started:.0f} s (the machine was shared with other jobs)",
        "",
    ]
    out = args.out
    if args.scale:
        out = out.with_name(out.stem + "-scale.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(header + body) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
