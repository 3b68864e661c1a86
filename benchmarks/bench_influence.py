"""Influence benchmark (issue 21): targeted precision/recall of top-k influencers,
self-influence AUROC next to the scan's detectors, speed, TracIn vs influence functions.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_influence.py [--seeds 0,1,2]

Writes benchmarks/results/influence.md and .json. CPU only (the GPU path of TracIn
is not measured here).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from benchmarks._common import command_line, machine, md_table, parse_ints, versions, write_results
from poisonguard.attack import apply_trigger, run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, synthetic
from poisonguard.influence import fit_softmax, knn_shapley, standardise
from poisonguard.influence.audit import reduce

RATES = (0.01, 0.05)


def _datasets() -> dict[str, Dataset]:
    return {"digits": builtin_dataset("digits"),
            "synthetic": synthetic(n_rows=2000, n_features=20, n_classes=5, seed=0)}


def _attacked_input(kind: str, result: Any, data: Dataset, seed: int) -> np.ndarray:
    """The input under attack: the held-out victim, or another class's row + trigger."""
    if kind == "feature-collision":
        return np.asarray(result.truth.params["victim"], dtype=np.float64)[None]
    rng = np.random.default_rng(seed)
    other = int(rng.choice(np.flatnonzero(data.labels != result.truth.target)))
    return apply_trigger(data.subset([other]), result.truth).matrix().astype(np.float64)


def targeted(seeds: list[int]) -> list[dict[str, Any]]:
    rows = []
    for name, ds in _datasets().items():
        for kind in ("feature-collision", "clean-label"):
            for rate in RATES:
                for method in ("if", "knn-shapley"):
                    p20, r20, pn, secs = [], [], [], []
                    for seed in seeds:
                        result = run_attack(kind, ds, rate=rate, target=0, seed=seed)
                        data = result.dataset
                        query = _attacked_input(kind, result, data, seed)
                        poison = set(result.truth.poisoned.tolist())
                        x, q = standardise(data.matrix(), query)
                        start = time.perf_counter()
                        if method == "if":
                            model = fit_softmax(x, data.labels, n_classes=data.n_classes)
                            solver = "exact" if model.theta.size <= 3000 else "cg"
                            s = model.influence(q, np.array([0]), solver=solver)[0]
                        else:
                            s = knn_shapley(x, data.labels, q, np.array([0]), k=10)[0]
                        secs.append(time.perf_counter() - start)
                        order = np.argsort(-s, kind="stable")
                        hit20 = len(set(order[:20].tolist()) & poison)
                        hitn = len(set(order[:len(poison)].tolist()) & poison)
                        p20.append(hit20 / 20)
                        r20.append(hit20 / len(poison))
                        pn.append(hitn / len(poison))
                    rows.append({"data": name, "attack": kind, "rate": rate, "method": method,
                                 "poison": len(poison), "precision@20": np.mean(p20),
                                 "recall@20": np.mean(r20), "recall@n": np.mean(pn),
                                 "seconds": np.mean(secs)})
                    print(rows[-1], flush=True)
    return rows


def self_influence_auroc(seeds: list[int]) -> list[dict[str, Any]]:
    from poisonguard.scan import scan_dataset

    rows = []
    data_sets = {"digits-tabular": builtin_dataset("digits-tabular"),
                 "synthetic": synthetic(n_rows=2000, n_features=20, n_classes=5, seed=0)}
    for name, ds in data_sets.items():
        for kind in ("flip", "tabular-trigger"):
            aucs: dict[str, list[float]] = {}
            for seed in seeds:
                result = run_attack(kind, ds, rate=0.05, target=0, seed=seed)
                data, truth = result.dataset, result.truth.mask
                (x,) = reduce(data.matrix())
                model = fit_softmax(x, data.labels, n_classes=data.n_classes)
                n = len(x)
                own = np.maximum(model.proba(x)[np.arange(n), data.labels], 1e-300)
                loo = -np.log(own) + model.self_influence() / n
                aucs.setdefault("self-influence", []).append(roc_auc_score(truth, loo))
                findings, _, _ = scan_dataset(data, detectors="label,knn,outlier", seed=seed)
                for det in ("label", "knn", "outlier"):
                    scores = np.array([r.detector_scores.get(det, 0.0) for r in findings.rows])
                    aucs.setdefault(det, []).append(roc_auc_score(truth, scores))
            row = {"data": name, "attack": f"{kind} 5%",
                   **{k: float(np.mean(v)) for k, v in aucs.items()}}
            rows.append(row)
            print(row, flush=True)
    return rows


def speed() -> list[dict[str, Any]]:
    from poisonguard.influence.checkpoints import train_checkpoints
    from poisonguard.influence.tracin import tracin_scores

    ds = synthetic(n_rows=10_000, n_features=50, n_classes=5, seed=0)
    x, q = standardise(ds.matrix(), ds.matrix()[:10])
    out = []
    start = time.perf_counter()
    model = fit_softmax(x, ds.labels, n_classes=5)
    fit = time.perf_counter() - start
    for solver in ("exact", "cg"):
        start = time.perf_counter()
        model.influence(q, model.predict(q), solver=solver)
        out.append({"method": f"if ({solver})", "fit s": fit,
                    "per query s": (time.perf_counter() - start) / 10})
    start = time.perf_counter()
    knn_shapley(x, ds.labels, q, ds.labels[:10], k=10)
    out.append({"method": "knn-shapley", "fit s": 0.0,
                "per query s": (time.perf_counter() - start) / 10})
    start = time.perf_counter()
    ckpts = train_checkpoints(ds, n_checkpoints=4, epochs=8)
    train = time.perf_counter() - start
    raw = ds.matrix()
    for layers in ("last", "all"):
        start = time.perf_counter()
        tracin_scores(ckpts, raw, ds.labels, raw[:10], ds.labels[:10], layers=layers)
        out.append({"method": f"tracin ({layers}, 4 checkpoints)", "fit s": train,
                    "per query s": (time.perf_counter() - start) / 10})
    for row in out:
        print(row, flush=True)
    return out


def agreement() -> list[dict[str, Any]]:
    """TracIn along full-batch gradient descent of the same softmax regression vs IF."""
    rows = []
    for name in ("wine", "breast_cancer"):
        ds = builtin_dataset(name)
        (x,) = standardise(ds.matrix())
        y, k = ds.labels, ds.n_classes
        model = fit_softmax(x, y, n_classes=k)
        queries = np.arange(0, len(x), max(1, len(x) // 10))[:10]
        cls = model.predict(x[queries])
        infl = model.influence(x[queries], cls, solver="exact")
        theta = np.zeros_like(model.theta)
        lr, steps = 0.5, 400
        tracin = np.zeros_like(infl)
        for step in range(steps):
            current = type(model)(theta=theta, x=model.x, y=model.y, l2=model.l2)
            if step % 20 == 19:
                g_t = current.loss_gradients(x, y).reshape(len(x), -1)
                g_q = current.loss_gradients(x[queries], cls).reshape(len(queries), -1)
                tracin += lr * g_q @ g_t.T
            grad = current.loss_gradients(x, y).mean(axis=0) + model.l2 * theta
            theta = theta - lr * grad
        rho = [spearmanr(infl[j], tracin[j]).statistic for j in range(len(queries))]
        top = [len(set(np.argsort(-infl[j])[:20]) & set(np.argsort(-tracin[j])[:20])) / 20
               for j in range(len(queries))]
        rows.append({"data": name, "queries": len(queries), "spearman": float(np.mean(rho)),
                     "spearman min": float(np.min(rho)), "top-20 overlap": float(np.mean(top))})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    seeds = parse_ints(args.seeds)
    started = time.perf_counter()
    payload: dict[str, Any] = {"machine": machine(), "versions": versions(),
                               "command": command_line(__file__, argv), "seeds": seeds}
    payload["targeted"] = targeted(seeds)
    payload["agreement"] = agreement()
    payload["speed"] = speed()
    payload["self_influence"] = self_influence_auroc(seeds)
    payload["seconds"] = time.perf_counter() - started
    payload["machine_after"] = machine()
    md = ["# Influence benchmark (issue 21)", "",
          f"Command: `{payload['command']}`; machine: {payload['machine']}; "
          f"load after: {payload['machine_after']['load_avg']}; {payload['seconds']:.0f} s; "
          "CPU only (no GPU).", "",
          "## Given the attacked input: top-k influencers towards the target class", "",
          *md_table(["data", "attack", "rate", "method", "poison", "precision@20", "recall@20",
                     "recall@n", "seconds"], payload["targeted"]), "",
          "## TracIn along gradient descent vs influence functions (softmax regression)", "",
          *md_table(["data", "queries", "spearman", "spearman min", "top-20 overlap"],
                    payload["agreement"]), "",
          "## Speed: synthetic 10,000 x 50, 5 classes (per query = one query row)", "",
          *md_table(["method", "fit s", "per query s"], payload["speed"]), "",
          "## AUROC at 5% poison: self-influence (LOO loss) next to scan detectors", "",
          *md_table(["data", "attack", "self-influence", "label", "knn", "outlier"],
                    payload["self_influence"]), ""]
    md_path, _ = write_results("influence", "\n".join(md), payload, args.out)
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
