"""Benchmark the federated defences (issue 17): accuracy, backdoor success, reputation, speed.

Three parts, each optional:

- ``grid``: main-task accuracy and backdoor attack success (ASR) after R rounds for
  every aggregator x attack at 0/10/20/30% malicious clients, IID and Dirichlet(0.5),
  plus the reputation's precision and recall in naming the malicious clients.
- ``seeds``: the configurations the tests assert on seed 0 (scaling and sign-flip,
  20 clients, 4 malicious, 20 rounds) on more seeds: the margins behind the tests.
- ``speed``: one aggregation of 100 clients x 1M parameters (float32 updates) per rule.

Results: benchmarks/results/federated.{md,json}.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_federated.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    RESULTS,
    command_line,
    fmt,
    machine,
    md_table,
    parse_floats,
    parse_ints,
    parse_names,
    versions,
    write_results,
)
from poisonguard.errors import UsageError  # noqa: E402
from poisonguard.federated import (  # noqa: E402
    SimulationConfig,
    aggregator_for,
    available_aggregators,
    simulate,
)

GRID_ATTACKS = ("label-flip", "scaling", "sign-flip", "noise", "lie")
TEST_CASES = {"scaling": ("fedavg", "median", "trimmed-mean", "krum", "multi-krum", "bulyan",
                          "fltrust"),
              "sign-flip": ("fedavg", "clip", "median", "krum", "geomed", "fltrust")}


def _run(**params: Any) -> dict[str, Any]:
    start = time.perf_counter()
    result = simulate(SimulationConfig(**params))
    return {**{k: params[k] for k in ("aggregator", "attack", "malicious", "split", "seed")},
            "accuracy": result.final_accuracy, "asr": result.final_attack_success,
            "precision": result.flag_precision, "recall": result.flag_recall,
            "flagged": len(result.history[-1].flagged),
            "false_flags": len(set(result.history[-1].flagged) - set(result.malicious_clients)),
            "seconds": round(time.perf_counter() - start, 2)}


def grid(aggregators: Sequence[str], attacks: Sequence[str], fractions: Sequence[float],
         splits: Sequence[str], clients: int, rounds: int, seed: int,
         runs: list[dict[str, Any]], checkpoint: Any) -> list[dict[str, Any]]:
    for split in splits:
        for fraction in fractions:
            f = int(round(fraction * clients))
            for attack in (["none"] if f == 0 else attacks):
                for agg in aggregators:
                    runs.append(_run(clients=clients, malicious=f, attack=attack,
                                     aggregator=agg, rounds=rounds, split=split, alpha=0.5,
                                     seed=seed))
                    r = runs[-1]
                    print(f"{split:9s} {f:2d} {attack:10s} {agg:12s} acc {r['accuracy']:.3f} "
                          f"asr {fmt(r['asr'])} flags {r['flagged']} ({r['false_flags']} "
                          f"false) {r['seconds']}s", flush=True)
                    checkpoint()
    return runs


def seeds(seed_list: Sequence[int], runs: list[dict[str, Any]], checkpoint: Any
          ) -> list[dict[str, Any]]:
    for seed in seed_list:  # the clean reference the accuracy test compares with
        runs.append(_run(clients=20, malicious=0, attack="none", aggregator="fedavg",
                         rounds=20, split="iid", seed=seed))
        runs[-1]["aggregator"] = "clean fedavg"
    for attack, aggs in TEST_CASES.items():
        for agg in aggs:
            for seed in seed_list:
                runs.append(_run(clients=20, malicious=4, attack=attack, aggregator=agg,
                                 rounds=20, split="iid", seed=seed))
                print(f"seed {seed} {attack:10s} {agg:12s} acc {runs[-1]['accuracy']:.3f} "
                      f"asr {fmt(runs[-1]['asr'])}", flush=True)
                checkpoint()
    return runs


def speed(aggregators: Sequence[str], n_clients: int, n_params: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    shapes = [(1000, n_params // 1000 - 1), (n_params - 1000 * (n_params // 1000 - 1),)]
    updates = [[rng.normal(0, 1, size=s).astype(np.float32) for s in shapes]
               for _ in range(n_clients)]
    trusted = [rng.normal(0, 1, size=s).astype(np.float32) for s in shapes]
    out: list[dict[str, Any]] = []
    for agg in aggregators:
        try:
            rule = aggregator_for(agg, n_clients)
        except UsageError as exc:
            out.append({"aggregator": agg, "seconds": None, "note": str(exc)})
            continue
        start = time.perf_counter()
        rule.aggregate(updates, trusted=trusted)
        seconds = round(time.perf_counter() - start, 2)
        out.append({"aggregator": repr(rule), "seconds": seconds, "note": ""})
        print(f"speed {agg:12s} {seconds}s", flush=True)
    return out


def _summary(runs: list[dict[str, Any]], clients: int) -> list[str]:
    lines = []
    for split in sorted({r["split"] for r in runs}):
        for metric, label in (("accuracy", "main-task accuracy"), ("asr", "backdoor ASR")):
            rows: dict[tuple[str, int], dict[str, Any]] = {}
            for r in runs:
                if r["split"] != split or (metric == "asr" and r["asr"] is None):
                    continue
                key = (r["attack"], r["malicious"])
                rows.setdefault(key, {"case": f"{r['attack']} {100 * r['malicious'] // clients}%"})
                rows[key][r["aggregator"]] = r[metric]
            if not rows:
                continue
            aggs = [a for a in available_aggregators() if any(a in v for v in rows.values())]
            lines += ["", f"### {label}, {split}", ""]
            lines += md_table(["case", *aggs], list(rows.values()))
    return lines


def _reputation(runs: list[dict[str, Any]]) -> list[str]:
    """Precision / recall of the final flags per attack x aggregator (fractions pooled)."""
    lines = []
    for split in sorted({r["split"] for r in runs}):
        rows = []
        for attack in GRID_ATTACKS:
            row: dict[str, Any] = {"attack": attack}
            for agg in available_aggregators():
                sel = [r for r in runs if r["aggregator"] == agg and r["attack"] == attack
                       and r["split"] == split]
                if not sel:
                    continue
                flagged = sum(r["flagged"] for r in sel)
                true = flagged - sum(r["false_flags"] for r in sel)
                malicious = sum(r["malicious"] for r in sel)
                p = f"{true / flagged:.2f}" if flagged else "-"
                row[agg] = f"{p} / {true / malicious:.2f}" if malicious else "-"
            if len(row) > 1:
                rows.append(row)
        clean = [r for r in runs if r["attack"] == "none" and r["split"] == split]
        aggs = [a for a in available_aggregators() if any(a in r for r in rows)]
        lines += ["", f"### reputation, {split}: precision / recall naming the malicious "
                  "clients (final flags; 10-30% pooled)", "",
                  f"Clean runs (0% malicious): {sum(r['flagged'] for r in clean)} honest "
                  f"clients flagged over {len(clean)} runs of 20 clients.", ""]
        lines += md_table(["attack", *aggs], rows)
    return lines


def _seed_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    clean = {r["seed"]: r["accuracy"] for r in runs if r["aggregator"] == "clean fedavg"}
    cases = [("none", "clean fedavg")] + [(attack, agg) for attack, aggs in TEST_CASES.items()
                                          for agg in aggs]
    for attack, agg in cases:
        sel = [r for r in runs if r["aggregator"] == agg and r["attack"] == attack]
        if sel:
            acc = [r["accuracy"] for r in sel]
            asr = [r["asr"] for r in sel if r["asr"] is not None]
            rows.append({"attack": attack, "aggregator": agg, "seeds": len(sel),
                         "acc_min": min(acc), "acc_max": max(acc),
                         "drop_max": max((clean[r["seed"]] - r["accuracy"] for r in sel
                                          if r["seed"] in clean), default=None),
                         "asr_min": min(asr) if asr else None,
                         "asr_max": max(asr) if asr else None})
    return ["", "### margins behind the simulator tests (20 clients, 4 malicious, 20 rounds, IID)",
            "drop_max: the largest accuracy loss against clean FedAvg on the same seed.", ""
            ] + md_table(["attack", "aggregator", "seeds", "acc_min", "acc_max", "drop_max",
                          "asr_min", "asr_max"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="grid,seeds,speed")
    parser.add_argument("--aggregators", default=",".join(available_aggregators()))
    parser.add_argument("--attacks", default=",".join(GRID_ATTACKS))
    parser.add_argument("--fractions", default="0,0.1,0.2,0.3")
    parser.add_argument("--splits", default="iid,dirichlet")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--speed-clients", type=int, default=100)
    parser.add_argument("--speed-params", type=int, default=1_000_000)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--render", default=None,
                        help="comma list of federated.json files: merge them, write the page")
    args = parser.parse_args(argv)
    parts = parse_names(args.parts)
    aggs = parse_names(args.aggregators)
    payload: dict[str, Any] = {"machine_before": machine(), "versions": versions(),
                               "command": command_line(__file__, argv), "grid": [],
                               "seeds": [], "speed": []}
    start = time.perf_counter()
    if args.render:
        loaded = [json.loads(Path(p).read_text()) for p in parse_names(args.render)]
        for key in ("grid", "seeds", "speed"):
            payload[key] = [row for one in loaded for row in one.get(key, [])]
        payload["sources"] = [{k: one.get(k) for k in ("command", "machine_before",
                                                       "machine_after", "seconds")}
                              for one in loaded]
        parts = []

    def checkpoint(final: bool = False) -> None:
        """Write what has been measured so far (a long run can be cut short)."""
        payload["machine_after"] = machine()
        payload["seconds"] = round(time.perf_counter() - start, 1)
        payload["complete"] = final
        md = ["# Federated defences (issue 17)", ""]
        for src in payload.get("sources", [payload]):
            md += [f"Command: `{src['command']}`", "",
                   f"Machine at start: {src['machine_before']}; at end: "
                   f"{src.get('machine_after')}; wall time {src.get('seconds')} s", ""]
        if payload["grid"]:
            md += [f"## Grid: {args.clients} clients, {args.rounds} rounds, digits, seed "
                   f"{args.seed}; Dirichlet alpha 0.5 for non-IID"]
            md += _summary(payload["grid"], args.clients) + _reputation(payload["grid"])
        if payload["seeds"]:
            md += _seed_table(payload["seeds"])
        if payload["speed"]:
            md += ["", f"### one aggregation: {args.speed_clients} clients x "
                   f"{args.speed_params:,} parameters (float32 updates)", ""]
            md += md_table(["aggregator", "seconds", "note"], payload["speed"])
        md += ["", "complete" if final else "(run still going)", ""]
        write_results("federated", "\n".join(md), payload, args.out_dir)

    if "grid" in parts:
        grid(aggs, parse_names(args.attacks), parse_floats(args.fractions),
             parse_names(args.splits), args.clients, args.rounds, args.seed,
             payload["grid"], checkpoint)
    if "seeds" in parts:
        seeds(parse_ints(args.seeds), payload["seeds"], checkpoint)
    if "speed" in parts:
        payload["speed"] = speed(aggs, args.speed_clients, args.speed_params)
    checkpoint(final=True)
    print(f"wrote {args.out_dir or RESULTS}/federated.md")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
