"""Attack hypotheses of a scan: tested claims, one attack type per class.

Detectors state dataset-level hypotheses ("backdoor -> class X: ..."). Before a scan
reports them as suspected attacks, two rules apply:

- **A subpopulation is a backdoor only if its labels look changed.** The
  representation-space detectors (``spectral``, ``spectre``, ``activation``) find a
  small separate cluster inside a class; natural sub-types form such clusters too
  (measured: 5-18 rows on each untouched real table). A dirty-label backdoor's rows
  were relabelled to the target class, so their labels disagree with the held-out
  ensemble of the ``label`` detector (its score above 0.25: the ensemble prefers
  another class) more often than the data's other rows do. The claim stands when a
  one-sided binomial test of that excess holds at ``alpha`` divided by the number of
  class tests the subpopulation detectors ran (Bonferroni over every candidate
  examined). Without the ``label`` detector the test cannot be run, and the
  hypothesis is kept as stated.
- **Attack types are exclusive.** A "clean-label backdoor?" on class X is withdrawn
  when a dirty-label backdoor on X is reported from half or more of the same rows.

Withdrawn hypotheses are kept in the summary with the reason; the rows a withdrawn
subpopulation hypothesis flagged are left for review instead (:func:`demote`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from poisonguard.data import Dataset
from poisonguard.detect.base import DetectorResult

__all__ = ["HYPOTHESIS_ALPHA", "Hypotheses", "demote", "vet_hypotheses"]

#: Family-wise error rate of the scan's backdoor claims.
HYPOTHESIS_ALPHA = 0.01
_SUBPOPULATION = frozenset({"spectral", "spectre", "activation"})
#: The label detector's score at a zero margin (its scores map margin -1..1 to 0..0.5).
_DISAGREES = 0.25
_CLASS = re.compile(r"^(?:backdoor -> class|clean-label backdoor\? class) (.+?):")


@dataclass(frozen=True)
class Hypotheses:
    """The hypotheses a scan reports, and those it withdrew (with the reason)."""

    kept: tuple[str, ...]
    withdrawn: tuple[dict[str, str], ...]
    #: detector -> rows flagged only for a withdrawn hypothesis
    unfounded: dict[str, np.ndarray]


def demote(result: DetectorResult, rows: np.ndarray, why: str,
           dataset: Dataset) -> DetectorResult:
    """``result`` with ``rows`` unflagged and put up for review with ``why``."""
    flags = result.flags & ~rows
    review = {**result.review, **{int(i): why for i in np.flatnonzero(rows & result.flags)}}
    return DetectorResult(
        detector=result.detector, scores=result.scores, flags=flags,
        reasons={i: t for i, t in result.reasons.items() if flags[i]},
        suggested_labels={i: c for i, c in result.suggested_labels.items() if flags[i]},
        review=review, hypotheses=result.hypotheses, meta=result.meta, dataset=dataset)


def _class_code(hypothesis: str, dataset: Dataset) -> int | None:
    match = _CLASS.match(hypothesis)
    if match is None or match.group(1) not in dataset.classes:
        return None
    return dataset.classes.index(match.group(1))


def vet_hypotheses(results: Sequence[DetectorResult], dataset: Dataset, *,
                    alpha: float = HYPOTHESIS_ALPHA) -> Hypotheses:
    """Apply the two rules of this module to every result's hypotheses.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> vet_hypotheses([], builtin_dataset("wine")).kept
    ()
    """
    labels = np.asarray(dataset.labels)
    label = next((r for r in results if r.detector == "label"), None)
    disagrees = None if label is None else label.scores > _DISAGREES
    tests = sum(len(r.meta.get("classes", {}) or {}) for r in results
                if r.detector in _SUBPOPULATION) or 1
    kept: list[tuple[str, str, np.ndarray]] = []
    withdrawn: list[dict[str, str]] = []
    unfounded: dict[str, np.ndarray] = {}
    for r in results:
        for h in r.hypotheses:
            code = _class_code(h, dataset)
            rows = r.flags & (labels == code) if code is not None else r.flags
            if r.detector in _SUBPOPULATION and disagrees is not None and rows.any():
                k, n = int(disagrees[rows].sum()), int(rows.sum())
                base = float(disagrees[~rows].mean()) if (~rows).any() else 0.0
                p = float(binom.sf(k - 1, n, min(max(base, 1e-6), 1.0)))
                if p > alpha / tests:
                    withdrawn.append({"hypothesis": h, "detector": r.detector, "why": (
                        f"{k} of {n} rows have labels the held-out models doubt, against "
                        f"{base:.1%} of the other rows (p={p:.2g}, needed "
                        f"{alpha / tests:.2g} after {tests} class tests): a natural "
                        "sub-type, not relabelled rows")})
                    unfounded[r.detector] = unfounded.get(r.detector, np.zeros_like(rows)) | rows
                    continue
            kept.append((h, r.detector, rows))
    out: list[str] = []
    for h, det, rows in kept:
        if h.startswith("clean-label backdoor?"):
            dirty = [other for other, d, o in kept
                     if d != det and other.startswith("backdoor -> class")
                     and _class_code(other, dataset) == _class_code(h, dataset)
                     and (o & rows).sum() >= 0.5 * max(int(rows.sum()), 1)]
            if dirty:
                withdrawn.append({"hypothesis": h, "detector": det, "why": (
                    "the same rows are reported as a dirty-label backdoor: "
                    f"{dirty[0]}")})
                continue
        out.append(h)
    return Hypotheses(kept=tuple(out), withdrawn=tuple(withdrawn), unfounded=unfounded)
