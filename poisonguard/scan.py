"""The scan: load, represent once, run the detectors, fuse, return Findings."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from poisonguard.data import Dataset, dataset_digest
from poisonguard.datasets import DataInput, open_dataset
from poisonguard.detect import Detector, DetectorResult, DetectorSpec, resolve_detectors
from poisonguard.detect.fusion import fuse
from poisonguard.detect.hypotheses import Hypotheses, demote, vet_hypotheses
from poisonguard.detect.neighbours import MEMO_NAME
from poisonguard.detect.overlap import DEFAULT_MAX_FPR
from poisonguard.detect.reliability import reliability
from poisonguard.engine import Engine
from poisonguard.engine.neighbours import KnnMode, engine_neighbours
from poisonguard.engine.reduce import using_engine
from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings, Reason, RowTable
from poisonguard.memo import scan_memo
from poisonguard.progress import NullProgress, Progress
from poisonguard.represent import Representation, build_representation

__all__ = ["DEFAULT_THREADS", "scan", "scan_dataset", "with_fpr_budget"]

#: BLAS/OpenMP threads of a scan unless told otherwise. The scan's linear algebra is
#: many small per-class problems: on 2 cores, one thread was as fast as two on a quiet
#: machine and 2-20x faster on a busy one, where idle threads spin (docs/design.md).
DEFAULT_THREADS = 1


def _check_scannable(dataset: Dataset) -> None:
    counts = dataset.class_counts()
    if dataset.n_classes < 2:
        raise DataError("a scan needs at least two classes", path=dataset.source)
    for code, count in enumerate(counts):
        if count == 1:
            row = int(np.flatnonzero(dataset.labels == code)[0])
            raise DataError(
                f"class '{dataset.classes[code]}' has a single row; cross-validation needs two",
                path=dataset.source, row=row,
            )


def scan_dataset(
    dataset: Dataset,
    *,
    detectors: DetectorSpec = None,
    representation: Representation | None = None,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    threads: int | None = None,
    max_fpr: float = DEFAULT_MAX_FPR,
    reproducible: bool = False,
) -> tuple[Findings, list[DetectorResult], Representation]:
    """Scan and also return the raw detector results and the representation.

    ``threads`` caps the CPU threads of the whole scan: BLAS and OpenMP (default
    :data:`DEFAULT_THREADS`) and, when given, torch's threads for images.
    ``reproducible``: images on the CPU get the CNN of :func:`scan`'s ``reproducible``.
    ``max_fpr`` is the clean false-positive rate of the label-based flags together:
    it is split evenly among the chosen detectors that take a ``max_fpr``
    (:func:`with_fpr_budget`).

    ``seed`` reaches the representation and every detector chosen by name
    (:func:`~poisonguard.detect.resolve_detectors`); only the parts of the
    representation the chosen detectors read are built (``Detector.requires``): a
    scan whose detectors read only the input features trains no model. An MLP's
    embedding is computed once, when the first detector that reads it runs: it does
    not exist before (``Representation.with_embedding``, memoised for the scan). When
    no chosen detector reads it, it is never computed by the scan: the representation
    returned still defers it (``embedding`` N x 0) and ``rep.with_embedding()``
    computes it when the caller asks (each call computes: keep the result).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> findings, results, rep = scan_dataset(builtin_dataset("wine"), detectors="label,knn")
    >>> [r.detector for r in results], rep.proba.shape
    (['label', 'knn'], (178, 3))
    >>> rep.embedding.shape, rep.with_embedding().embedding.shape  # no reader: on demand
    ((178, 0), (178, 64))
    """
    progress = progress or NullProgress()
    torch_threads = threads
    threads = DEFAULT_THREADS if threads is None else threads
    if threads < 1:
        raise UsageError("threads must be at least 1")
    _check_scannable(dataset)
    chosen = with_fpr_budget(resolve_detectors(detectors, dataset.modality, seed=seed),
                             max_fpr)
    # One memo for the scan (shared neighbour searches, trigger mining), emptied at its end.
    with threadpool_limits(limits=threads), scan_memo() as memo:
        if representation is None:
            reads = frozenset[str]().union(*(det.requires() for det in chosen))
            # the MLP's embedding exists only while a detector that reads it runs
            representation = build_representation(dataset, embeddings=embeddings, seed=seed,
                                                  progress=progress, needs=reads,
                                                  threads=torch_threads, defer_embedding=True,
                                                  reproducible=reproducible)
        results: list[DetectorResult] = []
        for k, det in enumerate(chosen):
            progress.update(f"detector {det.name}", done=k, total=len(chosen))
            results.append(det.score(dataset, representation.with_embedding()
                                     if "embedding" in det.requires() else representation))
            if not any(later.searches_neighbours for later in chosen[k + 1:]):
                memo.forget(MEMO_NAME)  # the N x k lists, once their last reader is done
        if any("embedding" in det.requires() for det in chosen):
            representation = representation.with_embedding()  # the detectors' one, kept
        elif representation.embed is not None:  # no detector read it: the caller may ask
            representation = dataclasses.replace(
                representation, embed=functools.partial(_embed_with, representation.embed,
                                                        threads))
    progress.update("fusing", done=len(chosen), total=len(chosen))
    vetted = vet_hypotheses(results, dataset, proba=_model_proba(representation, dataset))
    results = [demote(r, vetted.unfounded[r.detector], "a separate cluster, but not a "
                      "backdoor by the scan's tests (summary: withdrawn_hypotheses)", dataset)
               if r.detector in vetted.unfounded else r for r in results]
    findings = _findings(dataset, results, representation, max_fpr=max_fpr, hypotheses=vetted,
                         untested=untested_attacks(chosen))
    return findings, results, representation


def _embed_with(embed: Callable[[], np.ndarray], threads: int) -> np.ndarray:
    """``embed()`` under the scan's thread limit (a caller asking after the scan)."""
    with threadpool_limits(limits=threads):
        return embed()


def _model_proba(representation: Representation, dataset: Dataset) -> np.ndarray | None:
    """The out-of-fold probabilities, or None when no model was trained."""
    proba = np.asarray(representation.proba)
    return proba if proba.shape == (len(dataset), dataset.n_classes) else None


def with_fpr_budget(detectors: Sequence[Detector], max_fpr: float) -> list[Detector]:
    """Copies of ``detectors`` whose ``max_fpr`` parameters share ``max_fpr`` evenly.

    The detectors without that parameter are returned as they are; the instances
    passed in are never modified.

    Examples
    --------
    >>> from poisonguard.detect import resolve_detectors
    >>> [d.get_params().get("max_fpr") for d in
    ...  with_fpr_budget(resolve_detectors("label,knn,outlier", "tabular"), 0.01)]
    [0.01, None, None]
    """
    if not 0 < max_fpr < 1:
        raise UsageError("max_fpr must be between 0 and 1 (exclusive)")
    takers = [d for d in detectors if "max_fpr" in d.get_params()]
    out: list[Detector] = []
    for det in detectors:
        if det in takers:
            det = copy.copy(det)
            det.max_fpr = max_fpr / len(takers)  # type: ignore[attr-defined]
        out.append(det)
    return out


def scan(
    data: DataInput,
    y: np.ndarray | Sequence[Any] | None = None,
    *,
    label: str = "label",
    id_column: str | None = None,
    categorical: Collection[str] = (),
    ignore: Collection[str] = (),
    detectors: DetectorSpec = None,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    threads: int | None = None,
    max_fpr: float = DEFAULT_MAX_FPR,
    engine: Engine | None = None,
    knn: KnnMode = "auto",
    reproducible: bool = False,
) -> Findings:
    """Scan training data for poisoned rows; every row gets a score, flags say why.

    Parameters
    ----------
    data
        What to scan: a NumPy array ``X`` with labels ``y``; a pandas DataFrame
        (with a ``label`` column, or with ``y``); a path to a CSV, Parquet, NPZ or
        JSONL file or an image folder; ``"builtin:NAME"`` (digits, wine, ...); or a
        :class:`~poisonguard.data.Dataset`. Tables keep their types: categories are
        one-hot encoded, dates split, missing cells imputed with an indicator.
    y
        Labels, for arrays and DataFrames without a label column.
    label, id_column
        The label column and an optional id column (ids are not features).
    categorical, ignore
        Table columns to treat as categories, or to leave out.
    detectors
        ``None``/``"default"``, ``"all"``, names (a list or a comma-separated string)
        or detector instances (:func:`poisonguard.detect.resolve_detectors`).
    embeddings
        Optional N x K embeddings to use as the representation.
    seed
        Seed of the cross-validated models and of every detector named (by
        default all of them); the same seed gives the same findings.
    progress
        Receives stage updates (:class:`~poisonguard.progress.PlainProgress` prints
        them).
    threads
        CPU threads for the numeric work (default 1).
    max_fpr
        Target clean false-positive rate of the margin flags of the detectors that
        take a ``max_fpr`` (today ``label``), shared evenly among them
        (:func:`with_fpr_budget`): each holds its flags to the label disagreement
        that the data's natural class overlap produces
        (:mod:`poisonguard.detect.overlap`). ``knn`` and ``duplicate`` flag only
        labels a sure out-of-fold model contradicts, inside a class pair or band
        (``duplicate``: or among the copies) with more of them than natural overlap
        explains, and take no share: those flags are claims of an excess.
        ``summary["reliability"]`` reports the expected clean flags, how many rows
        are such claims (``licensed_flags``) and the out-of-fold accuracy.
    engine
        Where to load a Parquet file or folder and hash its rows, and where the
        detectors' neighbour search runs, per shard (:mod:`poisonguard.engine`, e.g. a
        Ray cluster). The representation and the rest of the detectors run here: the
        same findings as without an engine (docs/distributed.md).
    knn
        The neighbour search, here or on ``engine``: "exact", "ivf" (approximate, the
        same neighbours on every engine) or "auto" (exact up to 50,000 rows, IVF beyond;
        :func:`poisonguard.engine.neighbours.engine_neighbours`).
    reproducible
        Images on the CPU: train the CNN with kernels that round the same on every
        x86-64 CPU with AVX2 or AVX-512, so the same seed and threads give the same
        findings on any such machine, for about twice the CNN's CPU time
        (docs/reproducibility.md). ``summary["representation"]["cpu_reproducible"]``
        says whether it held. Tables and text are not affected.

    Returns
    -------
    Findings
        One row per input row (``findings.to_frame()`` gives a pandas DataFrame),
        a summary, and each detector's result.

    Examples
    --------
    >>> import poisonguard
    >>> findings = poisonguard.scan("builtin:wine")
    >>> findings.summary["rows"]
    178
    >>> frame = findings.to_frame()  # one row per data row: score, flagged, reasons
    >>> list(frame.columns[:4])
    ['index', 'id', 'score', 'flagged']

    With arrays or a DataFrame::

        poisonguard.scan(X, y)
        poisonguard.scan(df, label="species")
        poisonguard.scan("penguins.parquet", label="species")
    """
    dataset = open_dataset(data, y, label=label, id_column=id_column, categorical=categorical,
                           ignore=ignore, engine=engine, progress=progress)
    with engine_neighbours(engine, mode=knn, progress=progress), using_engine(engine):
        findings, _, _ = scan_dataset(dataset, detectors=detectors, embeddings=embeddings,
                                      seed=seed, progress=progress, threads=threads,
                                      max_fpr=max_fpr, reproducible=reproducible)
    return findings


def untested_attacks(detectors: Sequence[Detector]) -> list[str]:
    """Attack families no detector of the scan tests (today: label flips).

    Examples
    --------
    >>> from poisonguard.detect import resolve_detectors
    >>> untested_attacks(resolve_detectors("duplicate,outlier", "tabular"))
    ['label flips']
    >>> untested_attacks(resolve_detectors("label,outlier", "tabular"))
    []
    """
    return [] if any(d.finds_label_flips for d in detectors) else ["label flips"]


def _findings(dataset: Dataset, results: list[DetectorResult], rep: Representation, *,
              max_fpr: float, hypotheses: Hypotheses, untested: list[str]) -> Findings:
    fused = fuse(results, len(dataset), claims=hypotheses.claims)
    rows = RowTable(
        row_index=np.arange(len(dataset)), ids=dataset.ids, score=np.round(fused.scores, 6),
        evidence=np.round(fused.evidence, 6),
        flagged=fused.flags, action=fused.actions, suggested=fused.suggested,
        reasons={i: tuple(Reason(d, round(s, 6), detail) for d, s, detail in rs)
                 for i, rs in fused.reasons.items()},
        detector_names=[r.detector for r in results],
        detector_scores=np.round(np.column_stack([r.scores for r in results]), 6)
        if results else np.zeros((len(dataset), 0)),
        classes=dataset.classes,
    )
    review = int((fused.actions == "review").sum())
    flagged_labels = dataset.labels[fused.flags]
    by_class = {dataset.classes[c]: int(n) for c, n in
                enumerate(np.bincount(flagged_labels, minlength=dataset.n_classes)) if n}
    per_detector = {r.detector: int(r.n_flagged) for r in results}
    summary = {
        "rows": len(dataset),
        "flagged": int(fused.flags.sum()),
        "by_class": by_class,
        "by_detector": per_detector,
        "suspected_attacks": list(hypotheses.kept),
        "withdrawn_hypotheses": list(hypotheses.withdrawn),
        "clean_classes": [name for name in dataset.classes if name not in by_class],
        "untested": untested,
        "classes": list(dataset.classes),
        "representation": {"model": rep.model, "layer": rep.layer,
                           **({"cpu_reproducible": rep.meta["cpu_reproducible"]}
                              if "cpu_reproducible" in rep.meta else {})},
        "review": review,
    }
    proba = np.asarray(rep.proba) if rep.proba is not None else np.zeros((0, 0))
    if proba.shape == (len(dataset), dataset.n_classes):  # absent when nothing needed it
        summary["reliability"] = reliability(dataset.labels, proba, dataset.classes, results,
                                             max_fpr=max_fpr, review=review)
    return Findings(
        dataset={"path": dataset.source, "rows": len(dataset), "modality": dataset.modality,
                 "sha256": dataset_digest(dataset), "classes": list(dataset.classes),
                 **({"options": json.loads(dataset.meta["options"])}
                    if "options" in dataset.meta else {}),
                 **({"notes": list(dataset.schema.notes)}
                    if dataset.schema is not None and dataset.schema.notes else {}),
                 **({"shape": list(dataset.images.shape[1:])} if dataset.images is not None
                    else {})},
        detectors=tuple(r.detector for r in results),
        rows=rows,
        summary=summary,
        detector_results={r.detector: r.to_dict() for r in results},
    )
