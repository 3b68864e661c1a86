"""Scan quality against the references: every attack x poison rate x dataset.

For each case the data is poisoned (poisonguard.attack), scanned once with the
default detectors (poisonguard.scan.scan_dataset) and the fused flags and scores
are scored against the attack's truth; the references (cleanlab Datalab, ART's
activation clustering and spectral signatures; see benchmarks/_references.py) run
on the same out-of-fold probabilities, features and activations. The clean
(unpoisoned) datasets are scanned too: every flag there is a false positive.

    .venv/bin/python benchmarks/bench_scan_quality.py            # the full grid
    .venv/bin/python benchmarks/bench_scan_quality.py --quick    # digits + breast cancer, 2 rates
    .venv/bin/python benchmarks/bench_scan_quality.py --seeds 0,1,2   # every case under 3 seeds

Seed s is the attack's, the scan's and the references' seed (and the synthetic data's).
Writes benchmarks/results/scan-quality.md and scan-quality.json, rewritten after every
case (a run stopped early keeps the cases it finished).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks._common import (  # noqa: E402
    command_line,
    machine,
    parse_floats,
    parse_ints,
    parse_names,
    versions,
    write_results,
)
from benchmarks._quality_report import quality_markdown  # noqa: E402
from benchmarks._references import REFERENCES, missing_references, run_reference  # noqa: E402
from poisonguard.attack import ATTACK_INFO, run_attack  # noqa: E402
from poisonguard.bench.metrics import detection_metrics  # noqa: E402
from poisonguard.data import Dataset  # noqa: E402
from poisonguard.datasets import builtin_dataset, synthetic  # noqa: E402
from poisonguard.scan import scan_dataset  # noqa: E402

__all__ = ["ATTACKS", "DATASETS", "main", "run"]

DATASETS = ("digits", "breast_cancer", "wine", "synthetic")
QUICK_DATASETS = ("digits", "breast_cancer")
RATES = (0.005, 0.01, 0.05, 0.1)
QUICK_RATES = (0.01, 0.1)
#: Attack kinds (poisonguard.attack names); those that do not fit a modality are skipped.
ATTACKS = ("flip", "flip-targeted", "outliers", "badnets", "blend", "tabular-trigger",
           "clean-label")
TARGET = 0
KEYS = ("flagged", "poisoned", "tp", "fp", "fn", "precision", "recall", "f1", "auroc", "ap",
        "fpr")


def load(name: str, *, synthetic_rows: int, seed: int) -> Dataset:
    """A benchmark dataset by name ('synthetic' = make_classification, 50 features)."""
    if name == "synthetic":
        return synthetic(n_rows=synthetic_rows, n_features=50, seed=seed)
    return builtin_dataset(name)


def _metrics(flags: np.ndarray, mask: np.ndarray, scores: np.ndarray | None,
             seconds: float) -> dict[str, Any]:
    m = detection_metrics(flags, mask, scores)
    return {**{k: m[k] for k in KEYS}, "seconds": round(seconds, 3)}


def evaluate(dataset: Dataset, mask: np.ndarray, *, references: Sequence[str], seed: int,
             true_rate: float | None) -> dict[str, Any]:
    """Scan ``dataset``, run the references on the scan's representation, score them all."""
    t0 = time.perf_counter()
    findings, results, rep = scan_dataset(dataset, seed=seed)
    seconds = time.perf_counter() - t0
    flags = np.array([r.flagged for r in findings.rows], dtype=bool)
    scores = np.array([r.score for r in findings.rows], dtype=np.float64)
    methods: dict[str, Any] = {"scan": _metrics(flags, mask, scores, seconds)}
    detectors = {r.detector: {k: v for k, v in detection_metrics(r.flags, mask, r.scores).items()
                              if k in ("flagged", "precision", "recall", "f1", "auroc")}
                 for r in results}
    errors: dict[str, str] = {}
    for name in references:
        t0 = time.perf_counter()
        try:
            ref_flags, ref_scores = run_reference(
                name, labels=dataset.labels, n_classes=dataset.n_classes, proba=rep.proba,
                features=rep.features, embedding=rep.embedding, true_rate=true_rate, seed=seed)
        except Exception as exc:  # a failing reference is a recorded, visible skip
            errors[name] = _brief(exc)
            continue
        methods[name] = _metrics(ref_flags, mask, ref_scores, time.perf_counter() - t0)
    reliability = findings.summary.get("reliability") or {}
    return {"methods": methods, "detectors": detectors, "reference_errors": errors,
            "representation": {"model": rep.model, "layer": rep.layer},
            "oof_accuracy": reliability.get("out_of_fold_accuracy"),
            "hypotheses": [str(h) for h in findings.summary.get("suspected_attacks", [])]}


def _brief(exc: BaseException) -> str:
    """An exception as one short line (no array dumps)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:240]


def _case_list(dataset: Dataset, attacks: Sequence[str]) -> list[str]:
    return [a for a in attacks if dataset.modality in ATTACK_INFO[a].modalities]


def run(*, datasets: Sequence[str], attacks: Sequence[str], rates: Sequence[float],
        references: Sequence[str], synthetic_rows: int, seeds: Sequence[int],
        log: Any = print, checkpoint: Callable[[dict[str, Any]], object] | None = None,
        clean: bool = True) -> dict[str, Any]:
    """Run the whole grid under every seed; returns the JSON payload (cases, clean runs,
    skips, errors; each case and clean run carries its ``seed``). ``checkpoint`` gets
    the payload so far after every case; ``clean=False`` leaves out the untouched sets
    (a grid that adds cases to one already run)."""
    missing = missing_references(list(references))
    refs = [r for r in references if r not in missing]
    for name, pkg in missing.items():
        log(f"note: reference {name} skipped: {pkg} is not installed")
    payload: dict[str, Any] = {"cases": [], "clean": [], "errors": [], "references": refs,
                               "references_missing": missing}
    for ds_name in datasets:
        bases = {seed: load(ds_name, synthetic_rows=synthetic_rows, seed=seed)
                 for seed in seeds}
        for seed, base in bases.items() if clean else ():
            _clean_case(base, ds_name, seed, refs, payload, log)
            if checkpoint is not None:
                checkpoint(payload)
        for attack in _case_list(bases[seeds[0]], attacks):
            for rate in rates:
                for seed, base in bases.items():
                    _attack_case(base, ds_name, attack, rate, seed, refs, payload, log)
                    if checkpoint is not None:
                        checkpoint(payload)
    return payload


def _where(base: Dataset, ds_name: str, seed: int) -> dict[str, Any]:
    return {"dataset": ds_name, "seed": seed, "rows": len(base), "modality": base.modality}


def _clean_case(base: Dataset, ds_name: str, seed: int, refs: Sequence[str],
                payload: dict[str, Any], log: Any) -> None:
    """Scan the untouched ``base``: every flag is a false positive."""
    where = _where(base, ds_name, seed)
    try:
        out = evaluate(base, np.zeros(len(base), dtype=bool), references=refs, seed=seed,
                       true_rate=None)
    except Exception as exc:  # record and go on: one broken case must not lose the run
        payload["errors"].append({**where, "attack": "none", "error": _brief(exc)})
        log(f"{ds_name} clean s{seed}: ERROR {_brief(exc)}")
        return
    payload["clean"].append({**where, **out})
    log(f"{ds_name} clean s{seed}: scan FPR {out['methods']['scan']['fpr']:.4f} "
        f"({out['methods']['scan']['seconds']:.1f} s)")


def _attack_case(base: Dataset, ds_name: str, attack: str, rate: float, seed: int,
                 refs: Sequence[str], payload: dict[str, Any], log: Any) -> None:
    """Poison ``base`` with ``attack`` at ``rate`` (seed ``seed``), scan and score it."""
    case = {**_where(base, ds_name, seed), "attack": attack, "rate": rate}
    try:
        res = run_attack(attack, base, rate=rate, seed=seed, target=(
            TARGET if ATTACK_INFO[attack].needs_target else None))
        mask = res.truth.mask
        out = evaluate(res.dataset, mask, references=refs, seed=seed,
                       true_rate=float(mask.mean()))
    except Exception as exc:
        payload["errors"].append({**case, "error": _brief(exc)})
        log(f"{ds_name} {attack} {rate:g} s{seed}: ERROR {_brief(exc)}")
        return
    case.update(rows=len(res.dataset), poisoned=int(mask.sum()), **out)
    payload["cases"].append(case)
    s = out["methods"]["scan"]
    log(f"{ds_name} {attack} {rate:g} s{seed}: scan F1 {s['f1'] or 0:.3f} "
        f"P {s['precision'] or 0:.3f} R {s['recall'] or 0:.3f} ({s['seconds']:.1f} s)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small subset: digits + breast_cancer at rates 0.01 and 0.1")
    p.add_argument("--datasets", help=f"comma list (default: {','.join(DATASETS)})")
    p.add_argument("--attacks", default=",".join(ATTACKS), help="comma list of attack kinds")
    p.add_argument("--rates", help="comma list of poison rates (default: 0.005,0.01,0.05,0.1)")
    p.add_argument("--references", default=",".join(REFERENCES),
                   help="comma list of references, or 'none'")
    p.add_argument("--synthetic-rows", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0, help="the one seed (without --seeds)")
    p.add_argument("--seeds", help="comma list of seeds, e.g. 0,1,2 (default: --seed)")
    p.add_argument("--no-clean", action="store_true",
                   help="leave out the untouched sets (cases added to a grid already run)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where scan-quality.md/.json go (default: benchmarks/results)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write the pages; exit status 1 if any case errored."""
    args = _parser().parse_args(argv)
    datasets = parse_names(args.datasets) if args.datasets else list(
        QUICK_DATASETS if args.quick else DATASETS)
    rates = parse_floats(args.rates) if args.rates else list(QUICK_RATES if args.quick else RATES)
    attacks = parse_names(args.attacks)
    references = [] if args.references == "none" else parse_names(args.references)
    bad = [a for a in attacks if a not in ATTACK_INFO] + [
        r for r in references if r not in REFERENCES]
    if bad:
        raise SystemExit(f"unknown attack or reference: {', '.join(bad)}")
    seeds = parse_ints(args.seeds) if args.seeds else [args.seed]
    started = time.perf_counter()
    meta = {"command": command_line(__file__, argv), "machine": machine(),
            "versions": versions(), "datasets": datasets, "attacks": attacks, "rates": rates,
            "target": TARGET, "seeds": seeds, "synthetic_rows": args.synthetic_rows,
            "quick": args.quick}

    def write(payload: dict[str, Any], *, finished: bool = False) -> Path:
        payload["meta"] = {**meta, "machine": machine(), "finished": finished,
                           "seconds": round(time.perf_counter() - started, 1)}
        return write_results("scan-quality", quality_markdown(payload), payload,
                             args.out_dir)[0]

    payload = run(datasets=datasets, attacks=attacks, rates=rates, references=references,
                  synthetic_rows=args.synthetic_rows, seeds=seeds, checkpoint=write,
                  clean=not args.no_clean)
    md_path = write(payload, finished=True)
    print(f"wrote {md_path}")
    return 1 if payload["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
