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

``--full`` (issue 12): every table of ``TABLES`` and ``HELD_OUT`` (statsmodels'
anes96, label ``vote``, and fair, label ``occupation``: only measured, never tuned
on) under four cases: clean; 5% random flips plus 2% exact copies of real rows with
another label; a targeted flip (5% of the rows, taken from the largest class,
relabelled to the second largest); 3% injected outliers (random labels); a 2% backdoor
relabelled to the second largest class: on a table with categorical columns
(penguins' island and sex; anes96 and fair with their coded answers declared
categorical, ``CATEGORICAL``) the ``categorical-trigger`` (2 categorical cells set to
the rarest combination of real categories), otherwise ``tabular-trigger`` (2 number
columns set to their max). P@k = poisoned share of the k top-scored rows, k = rows
poisoned. Seed s is both the attack's and the scan's (untouched tables
too). Side by side: poisonguard, Datalab, a k-NN disagreement baseline (k=10, the
majority label of the neighbours differs), IsolationForest (scikit-learn defaults), and
IBM ART's activation clustering and spectral signatures (``bench`` extra; defaults, on
the scan's own hidden-layer activations, benchmarks/_references.py), all on the scan's
own robust-scaled features. "poisonguard flagged or review" (``--full``) counts the rows
the scan flags together with those it leaves for review (natural confusion it will not
call poisoning): the list a person is asked to look at, set beside the k-NN baseline,
which flags every disagreement. Writes results/real-tables-full.md/.json.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks._common import command_line, machine, md_table, versions, write_results  # noqa: E402,E501
from benchmarks._real_tables import HELD_OUT, TABLES  # noqa: E402
from benchmarks._references import (  # noqa: E402
    Flags,
    missing_references,
    run_reference,
)
from benchmarks._references import isolation_forest as _isolation_forest  # noqa: E402
from benchmarks._references import knn_disagreement as _knn_disagreement  # noqa: E402
from poisonguard.attack import attack_applies, run_attack  # noqa: E402
from poisonguard.bench.metrics import detection_metrics  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import open_dataset  # noqa: E402
from poisonguard.errors import UsageError  # noqa: E402
from poisonguard.findings import as_table  # noqa: E402
from poisonguard.represent import Representation  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

CASES = {"clean": None, "flip 5%": ("flip", 0.05, {}),
         "conflicting duplicates 2%": ("near-duplicates", 0.02, {"noise": 0.0})}
#: --full: the cases of issue 12 (see the module docstring).
FULL_CASES = ("clean", "flip 5% + duplicates 2%", "targeted flip 5%", "outliers 3%",
              "backdoor 2%")
#: Coded answers declared categorical for the backdoor case (party identification,
#: education; husband's occupation, religiousness, marriage rating; penguins' study year).
CATEGORICAL = {"anes96": ("PID", "educ"),
               "fair": ("occupation_husb", "religious", "rate_marriage"),
               "penguins": ("year",)}


def _attacked(base: Dataset, case: str, seed: int) -> tuple[Dataset, np.ndarray | None]:
    """The table under ``case`` and its poisoned-row mask (None when untouched)."""
    ds, mask, _ = _attacked_and_said(base, case, seed)
    return ds, mask


def _attacked_and_said(base: Dataset, case: str,
                       seed: int) -> tuple[Dataset, np.ndarray | None, str]:
    """:func:`_attacked` and what the attack did (its description; for the backdoor, why
    a table that cannot host a categorical trigger no row has got the number one)."""
    if case == "backdoor 2%":  # categorical cells, or 2 number columns at their max
        order = np.argsort(-np.bincount(base.labels), kind="stable")
        refused = ""
        if attack_applies("categorical-trigger", base):
            try:
                res = run_attack("categorical-trigger", base, rate=0.02, seed=seed,
                                 target=int(order[1]))
                return res.dataset, res.truth.mask, res.truth.description
            except UsageError as exc:  # every combination has natural holders
                refused = f"{exc}; instead: "
        res = run_attack("tabular-trigger", base, rate=0.02, seed=seed, target=int(order[1]),
                         n_features=2)
        return res.dataset, res.truth.mask, refused + res.truth.description
    ds, mask = _attacked_other(base, case, seed)
    return ds, mask, ""


def _attacked_other(base: Dataset, case: str, seed: int) -> tuple[Dataset, np.ndarray | None]:
    if case == "clean":
        return base, None
    if case in CASES:
        kind, rate, params = CASES[case]  # type: ignore[misc]
        res = run_attack(kind, base, rate=rate, seed=seed, **params)
        return res.dataset, res.truth.mask
    if case == "flip 5% + duplicates 2%":
        flipped = run_attack("flip", base, rate=0.05, seed=seed)
        dup = run_attack("near-duplicates", flipped.dataset, rate=0.02, seed=seed, noise=0.0)
        mask = dup.truth.mask.copy()
        mask[:len(base)] |= flipped.truth.mask
        return dup.dataset, mask
    if case == "targeted flip 5%":  # rows of the largest class relabelled to the second
        order = np.argsort(-np.bincount(base.labels), kind="stable")
        res = run_attack("flip-targeted", base, rate=0.05, seed=seed, source=int(order[0]),
                         target=int(order[1]))
        return res.dataset, res.truth.mask
    if case == "outliers 3%":
        res = run_attack("outliers", base, rate=0.03, seed=seed)
        return res.dataset, res.truth.mask
    raise ValueError(case)


def _precision_at_k(scores: np.ndarray, truth_mask: np.ndarray) -> float:
    """Share of poisoned rows among the k top-scored rows, k = the number poisoned."""
    k = int(truth_mask.sum())
    top = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return float(truth_mask[top].mean()) if k else 0.0


def _digest(ds: Dataset) -> str:
    return hashlib.sha256(np.ascontiguousarray(ds.labels).tobytes()
                          + np.ascontiguousarray(ds.matrix()).tobytes()).hexdigest()


def _load_cache(path: Path, ds: Dataset) -> tuple[Representation, dict[str, Flags]] | None:
    """The representation and reference results cached for exactly this data, or None."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["digest"]) != _digest(ds):
            return None
        rep = Representation(
            features=z["features"], embedding=z["embedding"], proba=z["proba"],
            embedding_oof=z["embedding_oof"] if "embedding_oof" in z else None,
            model=str(z["model"]), layer=str(z["layer"]), meta=json.loads(str(z["meta"])))
        refs = {str(name): (z[f"ref_flags:{name}"],
                            z[f"ref_scores:{name}"] if f"ref_scores:{name}" in z else None)
                for name in z["refs"].tolist()}
    return rep, refs


def _save_cache(path: Path, ds: Dataset, rep: Representation, refs: dict[str, Flags]) -> None:
    arrays: dict[str, Any] = {
        "digest": np.array(_digest(ds)), "features": rep.features, "embedding": rep.embedding,
        "proba": rep.proba, "model": np.array(rep.model), "layer": np.array(rep.layer),
        "meta": np.array(json.dumps(rep.meta)), "refs": np.array(sorted(refs), dtype=str)}
    if rep.embedding_oof is not None:
        arrays["embedding_oof"] = rep.embedding_oof
    for name, (flags, scores) in refs.items():
        arrays[f"ref_flags:{name}"] = np.asarray(flags, dtype=bool)
        if scores is not None:
            arrays[f"ref_scores:{name}"] = np.asarray(scores, dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _one(ds: Dataset, truth_mask: np.ndarray | None, *, baselines: bool = False,
         seed: int = 0, art: bool = True, cache: Path | None = None) -> list[dict[str, Any]]:
    """One scan and the references on ``ds``; with ``cache`` (a file), the representation
    and the reference results of exactly this data (digest checked) are read from it
    when there and written to it otherwise: a detector change re-runs only the detectors."""
    cached = _load_cache(cache, ds) if cache is not None else None
    started = time.perf_counter()
    if cached is None:
        findings, results, rep = scan_dataset(ds, seed=seed)
        refs: dict[str, Flags] = {}
    else:
        rep, refs = cached
        findings, results, _ = scan_dataset(ds, seed=seed, representation=rep)
    seconds = time.perf_counter() - started
    fresh = len(refs)

    def ref(name: str, run: Callable[[], Flags]) -> Flags:
        if name not in refs:
            refs[name] = run()
        return refs[name]

    table = as_table(findings)
    ours = np.zeros(len(ds), dtype=bool)
    ours[table.row_index[table.flagged]] = True
    ours_scores = np.zeros(len(ds))
    ours_scores[table.row_index] = table.score
    dl_flags, dl_scores = ref("datalab", lambda: run_reference(
        "datalab", labels=ds.labels, n_classes=ds.n_classes, proba=rep.proba,
        features=rep.features, embedding=rep.embedding, true_rate=None))
    surfaced = ours.copy()  # what the scan puts in front of a person: flagged or review
    surfaced[table.row_index[table.action == "review"]] = True
    tools = [("poisonguard", ours, ours_scores), ("datalab", dl_flags, dl_scores)]
    if baselines:
        tools.append(("poisonguard flagged or review", surfaced, ours_scores))
    tools += [(f"poisonguard {r.detector} alone", r.flags, r.scores) for r in results
              if r.detector == "outlier" and baselines]
    if baselines:
        tools += [("knn-disagreement", *ref("knn-disagreement", lambda: _knn_disagreement(
                      ds.labels, rep.features))),
                  ("isolation-forest", *ref("isolation-forest", lambda: _isolation_forest(
                      rep.features, seed)))]
        for name in ("art_activation", "art_spectral") if art else ():
            if name not in missing_references([name]):
                tools.append((name, *ref(name, functools.partial(
                    run_reference, name, labels=ds.labels, n_classes=ds.n_classes,
                    proba=rep.proba, features=rep.features, embedding=rep.embedding,
                    true_rate=None, seed=seed))))
    if cache is not None and (cached is None or len(refs) > fresh):
        _save_cache(cache, ds, rep, refs)
    reliability = findings.summary.get("reliability") or {}
    out = []
    for tool, flags, scores in tools:
        row: dict[str, Any] = {"tool": tool, "flagged": int(flags.sum()),
                               "flagged_pct": 100 * float(flags.mean())}
        if truth_mask is not None:
            m = detection_metrics(flags, truth_mask, scores)
            p, r = m["precision"] or 0.0, m["recall"] or 0.0
            row.update(precision=p, recall=r, f1=2 * p * r / (p + r) if p + r else 0.0,
                       auroc=m.get("auroc"),
                       p_at_k=_precision_at_k(scores, truth_mask) if scores is not None
                       else None)
        if tool == "poisonguard":
            row["seconds"] = seconds
            row["oof_accuracy"] = reliability.get("out_of_fold_accuracy")
            row["expected_clean_flags"] = reliability.get("expected_clean_flags")
            row["review"] = findings.summary.get("review", 0)
            row["hypotheses"] = len(findings.summary["suspected_attacks"])
        out.append(row)
    return out


def run_full(seeds: int, tables: Sequence[str] | None = None,
             cases: Sequence[str] | None = None, art: bool | Sequence[str] = True,
             cache: Path | None = None) -> list[dict[str, Any]]:
    """Issue 12's cases on every table (held-out ones included), with the baselines;
    case by case (every table of a case before the next case). ``art``: a bool, or the
    tables to run IBM ART's references on. ``cache``: a folder of per-case caches
    (:func:`_one`)."""
    every = {**TABLES, **HELD_OUT}
    rows: list[dict[str, Any]] = []
    opened: dict[tuple[str, bool], Dataset] = {}
    for case in cases or FULL_CASES:
        for name in tables or list(every):
            load, label = every[name]
            coded = case == "backdoor 2%"
            if (name, coded) not in opened:
                opened[name, coded] = open_dataset(
                    load(), label=label, categorical=CATEGORICAL.get(name, ()) if coded else ())
            for seed in range(seeds):  # attack seed = scan seed (clean: the scan's)
                ds, mask, said = _attacked_and_said(opened[name, coded], case, seed)
                with_art = art if isinstance(art, bool) else name in art
                where = None if cache is None else \
                    cache / f"{name}-{case.replace(' ', '_').replace('%', 'pct')}-{seed}.npz"
                for r in _one(ds, mask, baselines=True, seed=seed, art=with_art, cache=where):
                    rows.append({"table": name, "held_out": name in HELD_OUT, "rows": len(ds),
                                 "case": case, "seed": seed, **r,
                                 **({"attack": said} if said and r["tool"] == "poisonguard"
                                    else {})})
                    print(rows[-1], flush=True)
    return rows


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
    num = [c for c in ("rows", "flagged", "flagged_pct", "precision", "recall", "f1", "auroc",
                       "p_at_k", "seconds", "oof_accuracy", "expected_clean_flags", "review",
                       "hypotheses") if c in frame]
    agg = frame.groupby(keys, sort=False)[num].mean().reset_index()
    agg["seeds"] = frame.groupby(keys, sort=False).size().to_numpy()
    return agg.to_dict("records")


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    cols = ["table", "case", "tool", "rows", "flagged", "flagged_pct", "precision", "recall",
            "f1", "auroc", "p_at_k", "oof_accuracy", "expected_clean_flags", "review", "hypotheses",
            "seeds"]
    heads = ["table", "case", "tool", "rows", "flagged", "flagged %", "precision", "recall",
             "F1", "AUROC", "P@k", "OOF acc.", "expected clean", "review", "hypotheses", "seeds"]
    lines = ["# Real tables: poisonguard vs Datalab", "", f"Command: `{meta['command']}`",
             f"Machine: {meta['machine']}", "", *md_table(cols, summary, heads), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--full", action="store_true",
                        help="issue 12's cases on all tables (anes96 and fair held out), "
                             "with the k-NN and IsolationForest baselines")
    parser.add_argument("--tables", default=None, help="comma-separated subset (--full)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated subset of "  # argparse reads % as a format
                        + ", ".join(FULL_CASES).replace("%", "%%") + " (--full)")
    parser.add_argument("--no-art", action="store_true",
                        help="skip IBM ART's references (the slowest part of --full)")
    parser.add_argument("--art-tables", default=None,
                        help="comma-separated tables to run IBM ART on (--full; default all)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder caching each case's representation and reference "
                             "results (--full): a rerun after a detector change re-runs "
                             "only the detectors")
    args = parser.parse_args(argv)
    art: bool | list[str] = not args.no_art
    if args.art_tables and art:
        art = args.art_tables.split(",")
    rows = (run_full(args.seeds, args.tables.split(",") if args.tables else None,
                     args.cases.split(",") if args.cases else None, art=art, cache=args.cache)
            if args.full else run(args.seeds))
    meta = {"command": command_line(__file__, argv), "machine": machine(),
            "versions": versions(("palmerpenguins", "vega_datasets", "statsmodels"))}
    summary = _mean(rows)
    md, js = write_results("real-tables-full" if args.full else "real-tables",
                           markdown(summary, meta),
                           {"meta": meta, "rows": rows, "summary": summary}, args.out)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
