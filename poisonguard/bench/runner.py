"""The detector benchmark: every attack x rate x detector, scored against the truth.

The clean data is split into train and test *before* any poisoning. Each attack
poisons the train split; one representation is built per poisoned dataset and every
detector (and the fused scan) is scored from that one run. Detectors never see the
truth: it is only used afterwards, to score their flags.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from poisonguard.attack import ATTACK_INFO, attack_applies, run_attack
from poisonguard.attack.truth import Truth, check_rate
from poisonguard.bench.downstream import (
    attack_success_rate,
    downstream_effect,
    train_victim,
    victim_inputs,
)
from poisonguard.bench.metrics import clean_flag_rate, filter_bias, score_flags
from poisonguard.data import Dataset
from poisonguard.detect import DetectorSpec, get_detector, resolve_detectors
from poisonguard.detect.base import DetectorResult
from poisonguard.errors import PoisonguardError, UsageError
from poisonguard.findings import Findings
from poisonguard.memo import scan_memo
from poisonguard.progress import NullProgress, Progress
from poisonguard.represent import Representation, build_representation
from poisonguard.scan import DEFAULT_THREADS, scan_dataset

__all__ = ["FUSED", "BenchResult", "machine_info", "run_bench"]

FUSED = "fused"
#: ``observe(where, dataset, representation, truth)``: see :func:`run_bench`.
Observer = Callable[[str, Dataset, Representation, Truth | None], None]


@dataclass
class BenchResult:
    """Everything the benchmark measured; ``to_dict()`` is what ``bench`` writes as JSON.

    Examples
    --------
    >>> result = BenchResult(meta={"dataset": "builtin:wine"})
    >>> sorted(result.to_dict())
    ['clean', 'errors', 'meta', 'runs', 'skipped']
    """

    meta: dict[str, Any]
    clean: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "clean": self.clean, "runs": self.runs,
                "skipped": self.skipped, "errors": self.errors}


def machine_info() -> dict[str, Any]:
    """CPU count and model, Python and platform: printed next to every number.

    Examples
    --------
    >>> sorted(machine_info())
    ['cpu', 'nproc', 'platform', 'python']
    """
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform()}


def _representation(dataset: Dataset, seed: int, folds: int, threads: int | None,
                    names: list[str], reads: Collection[str] = ()) -> Representation:
    """Only the parts the detectors ``names`` read (and ``reads``), as in scan.
    ``threads`` means what it means in scan: BLAS/OpenMP and torch threads."""
    needs = frozenset(reads).union(*(get_detector(n).requires() for n in names))
    with threadpool_limits(limits=threads or DEFAULT_THREADS):
        return build_representation(dataset, folds=folds, seed=seed, threads=threads,
                                    needs=needs)


def _scan(dataset: Dataset, names: list[str], seed: int, errors: list[dict[str, Any]],
          where: str, folds: int = 5, threads: int | None = None,
          observe: Observer | None = None, truth: Truth | None = None,
          reads: Collection[str] = ()) -> tuple[Findings, list[DetectorResult]]:
    """Scan with one representation; a detector that crashes is recorded and left out."""
    rep = _representation(dataset, seed, folds, threads, names, reads)
    if observe is not None:
        observe(where, dataset, rep, truth)
    try:
        findings, results, _ = scan_dataset(dataset, detectors=names, representation=rep,
                                            seed=seed, threads=threads)
        return findings, results
    except PoisonguardError:
        raise
    except Exception:  # noqa: BLE001 - a detector crashed: find it, record it, go on
        working = []
    for name in names:
        try:
            get_detector(name).score(dataset, rep)
            working.append(name)
        except Exception as exc:  # noqa: BLE001 - a crash is a recorded, visible result
            errors.append({"where": where, "detector": name,
                           "error": f"{type(exc).__name__}: {exc}"[:300]})
    if not working:
        raise UsageError(f"every detector failed on {where}")
    findings, results, _ = scan_dataset(dataset, detectors=working, representation=rep, seed=seed)
    return findings, results


def _fused(findings: Findings) -> tuple[np.ndarray, np.ndarray]:
    flags = np.zeros(len(findings.rows), dtype=bool)
    scores = np.zeros(len(findings.rows))
    for row in findings.rows:
        flags[row.index], scores[row.index] = row.flagged, row.score
    return flags, scores


def run_bench(
    dataset: Dataset,
    *,
    attacks: Sequence[str],
    rates: Sequence[float],
    detectors: DetectorSpec = "all",
    target: int = 0,
    seed: int = 0,
    test_size: float = 0.2,
    folds: int = 5,
    threads: int | None = None,
    progress: Progress | None = None,
    observe: Observer | None = None,
    reads: Collection[str] = (),
) -> BenchResult:
    """Run every attack x rate, scan each poisoned train split, score against the truth.

    ``folds`` is the cross-validation of the representation (the scan's default is 5);
    ``threads`` caps the CNN's torch threads for image data (default: the scan's).
    ``observe(where, dataset, representation, truth)`` is called with each scanned
    dataset ("clean data" or "KIND@RATE"; truth None when clean) and the representation
    its detectors read, built with the extra parts ``reads`` ("proba", "embedding_oof",
    ...): benchmarks run other tools on that same representation.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = run_bench(builtin_dataset("wine"), attacks=["outliers"], rates=[0.05],
    ...                    detectors="outlier")
    >>> run = result.runs[0]
    >>> run["poisoned"], run["detectors"]["outlier"]["flagged"], run["detectors"]["outlier"]["tp"]
    (7, 7, 7)
    >>> round(run["downstream"]["poisoned_accuracy"], 2), run["downstream"]["cleaned_accuracy"]
    (0.94, 1.0)
    """
    progress = progress or NullProgress()
    for kind in attacks:
        if kind not in ATTACK_INFO:
            raise UsageError(f"unknown attack '{kind}' (known: {', '.join(ATTACK_INFO)})")
    for rate in rates:
        check_rate(rate)
    if not 0 <= target < dataset.n_classes:
        raise UsageError(f"target {target} is not a class code (0..{dataset.n_classes - 1})")
    names = [d.name for d in resolve_detectors(detectors, dataset.modality)]
    started, cpu_started = time.perf_counter(), time.process_time()
    train_idx, test_idx = train_test_split(np.arange(len(dataset)), test_size=test_size,
                                           random_state=seed, stratify=dataset.labels)
    train, test = dataset.subset(np.sort(train_idx)), dataset.subset(np.sort(test_idx))
    result = BenchResult(meta={
        "dataset": dataset.source, "modality": dataset.modality, "rows": len(dataset),
        "train_rows": len(train), "test_rows": len(test), "detectors": names,
        "attacks": list(attacks), "rates": [float(r) for r in rates], "target": target,
        "seed": seed, "folds": folds, "threads": threads,
        "victim_model": ("logistic regression on TF-IDF of word 1-2-grams"
                         if dataset.texts is not None else
                         "logistic regression on standardised flattened features"),
        "machine": machine_info(), "started": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    plan = [(k, r) for k in attacks if attack_applies(k, dataset) for r in rates]
    for kind in attacks:
        if not attack_applies(kind, dataset):
            result.skipped.append({"attack": kind, "rate": None,
                                   "reason": f"does not apply to {dataset.modality} data"})
    total = len(plan) + 1
    # one memo over the clean and poisoned copies: each copy re-encodes only the texts
    # its attack changed (sentence vectors, poisonguard.memo); emptied at the end
    with scan_memo():
        progress.update("clean data", done=0, total=total)
        findings, results = _scan(train, names, seed, result.errors, "clean data", folds, threads,
                                  observe, None, reads)
        for res in results:
            result.clean[res.detector] = {
                "clean_fpr": clean_flag_rate(res.flags),
                "filter_bias": filter_bias(res.flags, train.labels, train.n_classes)}
        flags, _ = _fused(findings)
        result.clean[FUSED] = {"clean_fpr": clean_flag_rate(flags),
                               "filter_bias": filter_bias(flags, train.labels, train.n_classes)}
        clean_model = train_victim(train, seed=seed)
        result.meta["clean_accuracy"] = float((clean_model.predict(victim_inputs(test))
                                               == test.labels).mean())
        for k, (kind, rate) in enumerate(plan, start=1):
            progress.update(f"{kind} at rate {rate:g}", done=k, total=total)
            t0 = time.perf_counter()
            try:
                attacked = run_attack(kind, train, rate=rate, seed=seed, target=target)
            except UsageError as exc:
                result.skipped.append({"attack": kind, "rate": rate, "reason": str(exc)})
                continue
            poisoned, truth = attacked.dataset, attacked.truth
            findings, results = _scan(poisoned, names, seed, result.errors, f"{kind}@{rate:g}",
                                      folds, threads, observe, truth, reads)
            per_detector = {
                res.detector: score_flags(res.flags, truth, scores=res.scores,
                                          labels=poisoned.labels, n_classes=poisoned.n_classes)
                for res in results}
            flags, scores = _fused(findings)
            per_detector[FUSED] = score_flags(flags, truth, scores=scores, labels=poisoned.labels,
                                              n_classes=poisoned.n_classes)
            downstream = downstream_effect(poisoned, flags, test, truth, seed=seed)
            downstream["clean_model_asr"] = attack_success_rate(clean_model, test, truth)
            result.runs.append({
                "attack": kind, "rate": rate, "rows": len(poisoned),
                "poisoned": int(len(truth.poisoned)), "description": truth.description,
                "detectors": per_detector, "downstream": downstream,
                "seconds": round(time.perf_counter() - t0, 2),
            })
    progress.update("done", done=total, total=total)
    result.meta["seconds"] = round(time.perf_counter() - started, 1)
    # CPU time of this process (all threads): on a shared machine, wall time overstates
    result.meta["cpu_seconds"] = round(time.process_time() - cpu_started, 1)
    return result
