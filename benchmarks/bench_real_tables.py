"""Real tables, as published (NaN, strings, dates): poisonguard side by side with Datalab.

Tables that ship offline in PyPI packages: palmerpenguins' penguins (label
``species``), vega_datasets' cars (``Origin``) and seattle-weather (``weather``),
read through the typed encoder (poisonguard.datasets.open_dataset). For each table:

- ``clean``: the untouched data; every flag is a row the tool asks a person to look
  at (there is no ground truth of real label noise here);
- ``flip 5%``: 5% of the rows get a random other label (poisonguard.attack "flip");
- ``conflicting duplicates 2%``: 2% more rows that are exact copies of real rows
  with another label ("near-duplicates" with noise 0).

poisonguard: the default detectors, fused. Datalab: cleanlab's Datalab (label,
outlier, near_duplicate issues) on the scan's own out-of-fold probabilities and
robust-scaled features (benchmarks/_references.py), flagged if any issue type
flags the row. Seeds 0..S-1 for the attacks; the scan's seed is 0.

    .venv/bin/python benchmarks/bench_real_tables.py --seeds 3

Writes benchmarks/results/real-tables.md and real-tables.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks._common import command_line, machine, md_table, versions, write_results  # noqa: E402,E501
from benchmarks._real_tables import TABLES  # noqa: E402
from benchmarks._references import run_reference  # noqa: E402
from poisonguard.attack import run_attack  # noqa: E402
from poisonguard.bench.metrics import detection_metrics  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import open_dataset  # noqa: E402
from poisonguard.findings import as_table  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

CASES = {"clean": None, "flip 5%": ("flip", 0.05, {}),
         "conflicting duplicates 2%": ("near-duplicates", 0.02, {"noise": 0.0})}


def _one(ds: Dataset, truth_mask: np.ndarray | None) -> list[dict[str, Any]]:
    started = time.perf_counter()
    findings, _, rep = scan_dataset(ds, seed=0)
    seconds = time.perf_counter() - started
    table = as_table(findings)
    ours = np.zeros(len(ds), dtype=bool)
    ours[table.row_index[table.flagged]] = True
    ours_scores = np.zeros(len(ds))
    ours_scores[table.row_index] = table.score
    dl_flags, dl_scores = run_reference("datalab", labels=ds.labels, n_classes=ds.n_classes,
                                        proba=rep.proba, features=rep.features,
                                        embedding=rep.embedding, true_rate=None)
    out = []
    for tool, flags, scores in (("poisonguard", ours, ours_scores),
                                ("datalab", dl_flags, dl_scores)):
        row: dict[str, Any] = {"tool": tool, "flagged": int(flags.sum()),
                               "flagged_pct": 100 * float(flags.mean())}
        if truth_mask is not None:
            m = detection_metrics(flags, truth_mask, scores)
            row.update(precision=m["precision"], recall=m["recall"], auroc=m.get("auroc"))
        if tool == "poisonguard":
            row["seconds"] = seconds
        out.append(row)
    return out


def run(seeds: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, (load, label) in TABLES.items():
        base = open_dataset(load(), label=label)
        for case, spec in CASES.items():
            for seed in range(1 if spec is None else seeds):
                if spec is None:
                    ds, mask = base, None
                else:
                    kind, rate, params = spec
                    res = run_attack(kind, base, rate=rate, seed=seed, **params)
                    ds, mask = res.dataset, res.truth.mask
                for r in _one(ds, mask):
                    rows.append({"table": name, "rows": len(ds), "case": case, "seed": seed,
                                 **r})
                    print(rows[-1], flush=True)
    return rows


def _mean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    frame = pd.DataFrame(rows)
    keys = ["table", "case", "tool"]
    num = [c for c in ("rows", "flagged", "flagged_pct", "precision", "recall", "auroc",
                       "seconds") if c in frame]
    agg = frame.groupby(keys, sort=False)[num].mean().reset_index()
    agg["seeds"] = frame.groupby(keys, sort=False).size().to_numpy()
    return agg.to_dict("records")


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    cols = ["table", "case", "tool", "rows", "flagged", "flagged_pct", "precision", "recall",
            "auroc", "seeds"]
    heads = ["table", "case", "tool", "rows", "flagged", "flagged %", "precision", "recall",
             "AUROC", "seeds"]
    lines = ["# Real tables: poisonguard vs Datalab", "", f"Command: `{meta['command']}`",
             f"Machine: {meta['machine']}", "", *md_table(cols, summary, heads), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = run(args.seeds)
    meta = {"command": command_line(__file__, argv), "machine": machine(),
            "versions": versions(("palmerpenguins", "vega_datasets"))}
    summary = _mean(rows)
    md, js = write_results("real-tables", markdown(summary, meta),
                           {"meta": meta, "rows": rows, "summary": summary}, args.out)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
