"""Attack hypotheses of a scan: tested claims, one attack type per class.

Detectors state dataset-level hypotheses ("backdoor -> class X: ..."). Before a scan
reports them as suspected attacks, these rules apply:

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
- **A backdoor is learnt from the other rows.** A trigger is a shortcut: a model
  trained without a poisoned row still predicts the target class for it from the
  other poisoned rows (measured: the out-of-fold model agrees with the target on
  every poisoned row of the built-in tabular triggers at 2% and 5%). A subpopulation
  claim stands only when the out-of-fold model (``proba``) predicts the claimed class
  for more than half of its rows; a cluster the held-out model calls another class
  (untouched seattle-weather: 7 dry summer days of 2015 labelled drizzle, 0 of 7
  predicted drizzle) is a natural sub-type or mislabelled rows, not a backdoor.
- **A trigger marks its class.** On a table, a subpopulation claim whose rows are every
  row of their class holding the cells they all share is withdrawn when other classes
  hold those cells too, so that they do not mark the class (:data:`REGION_PURITY`):
  it is a region of the table where the classes meet (untouched MASS shuttle, a
  decision table: 17 `auto` and 7 `noauto` rows in its exception region, "backdoor ->
  class auto" on every seed), not a trigger, which marks the rows it was stamped on.
- **Attack types are exclusive.** A "clean-label backdoor?" on class X is withdrawn
  when a dirty-label backdoor on X is reported from half or more of the same rows.
- **One attack, one line.** Two detectors reporting a backdoor on the same class from
  half or more of the same rows (``trigger`` and ``cleanlabel`` on a dirty-label
  BadNets) give one hypothesis that names both detectors and their evidence.

Withdrawn hypotheses are kept in the summary with the reason; the rows a withdrawn
subpopulation hypothesis flagged are left for review instead (:func:`demote`).

The rows a kept hypothesis names (``Hypotheses.claims``) are those its detector flagged
in the claimed class and, for a confirmed fixed trigger of at most
``MAX_HOLDER_FEATURES`` features, every row of the claimed class holding it (the
``trigger`` detector flags only the holders that look like another class once the
trigger is masked; the others carry the same stamped values and the same label). The
scan's fusion ranks them above rows only single-detector evidence flags
(:func:`~poisonguard.detect.fusion.fuse`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from poisonguard.data import Dataset
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.trigger_search import marking_purity, rows_matching

__all__ = ["HYPOTHESIS_ALPHA", "MAX_HOLDER_FEATURES", "REGION_PURITY", "Claim", "Hypotheses",
           "demote", "vet_hypotheses"]

#: A confirmed trigger of at most this many fixed features names every holder of its
#: class (a blend's shared blank pixels do not identify rows).
MAX_HOLDER_FEATURES = 16

#: The share of a region's rows a claimed class needs for the values that define the
#: region to mark the class (at least; halfway from the class's base rate to all of
#: them too): the ``trigger`` detector's ``min_purity``.
REGION_PURITY = 0.8

#: Family-wise error rate of the scan's backdoor claims.
HYPOTHESIS_ALPHA = 0.01
_SUBPOPULATION = frozenset({"spectral", "spectre", "activation"})
#: The label detector's score at a zero margin (its scores map margin -1..1 to 0..0.5).
_DISAGREES = 0.25
_CLASS = re.compile(r"^(?:backdoor -> class|clean-label backdoor\? class) (.+?):")


@dataclass(frozen=True, eq=False)
class Claim:
    """A kept hypothesis, the detector that stated it and the rows it names (N bools)."""

    detector: str
    hypothesis: str
    rows: np.ndarray


@dataclass(frozen=True)
class Hypotheses:
    """The hypotheses a scan reports, and those it withdrew (with the reason)."""

    kept: tuple[str, ...]
    withdrawn: tuple[dict[str, str], ...]
    #: detector -> rows flagged only for a withdrawn hypothesis
    unfounded: dict[str, np.ndarray]
    #: every kept hypothesis (before merging into one line per backdoor) and its rows
    claims: tuple[Claim, ...] = ()


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
                   proba: np.ndarray | None = None,
                   alpha: float = HYPOTHESIS_ALPHA) -> Hypotheses:
    """Apply the rules of this module to every result's hypotheses.

    ``proba`` (N x classes, the out-of-fold probabilities of the representation)
    enables the learnt-shortcut rule; without it that rule is not applied.

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
        for n_h, h in enumerate(r.hypotheses):
            code = _class_code(h, dataset)
            rows = r.flags & (labels == code) if code is not None else r.flags
            unfounded_why = (_unlearnt(h, rows, code, proba, dataset)
                             or _meeting_region(rows, code, dataset)) \
                if r.detector in _SUBPOPULATION else ""
            if unfounded_why:
                withdrawn.append({"hypothesis": h, "detector": r.detector, "why": unfounded_why})
                unfounded[r.detector] = unfounded.get(r.detector, np.zeros_like(rows)) | rows
                continue
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
            kept.append((h, r.detector, rows | _holders(r, n_h, code, dataset)))
    out: list[tuple[str, str, np.ndarray]] = []
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
        out.append((h, det, rows))
    return Hypotheses(kept=_merged(out, dataset), withdrawn=tuple(withdrawn),
                      unfounded=unfounded,
                      claims=tuple(Claim(det, h, rows) for h, det, rows in out))


def _holders(result: DetectorResult, n_h: int, code: int | None,
             dataset: Dataset) -> np.ndarray:
    """Rows of class ``code`` holding the fixed trigger of ``result``'s hypothesis
    ``n_h`` (its ``meta['triggers']`` entry), or none."""
    found = np.zeros(len(dataset), dtype=bool)
    triggers = result.meta.get("triggers") or []
    if code is None or len(triggers) != len(result.hypotheses):
        return found
    t = triggers[n_h]
    features = tuple(int(f) for f in t.get("features") or ())
    if t.get("location", "fixed") != "fixed" or not 0 < len(features) <= MAX_HOLDER_FEATURES \
            or int(t.get("class", -1)) != code:
        return found
    if dataset.features is not None:
        cells = dataset.features[:, list(features)]
    elif dataset.images is not None:
        cells = dataset.images.reshape(len(dataset), -1)[:, list(features)]
    else:
        return found
    found[rows_matching(np.asarray(cells, dtype=np.float32), tuple(range(len(features))),
                        tuple(float(v) for v in t["values"]))] = True
    return found & (np.asarray(dataset.labels) == code)


def _unlearnt(hypothesis: str, rows: np.ndarray, code: int | None, proba: np.ndarray | None,
              dataset: Dataset) -> str:
    """Why a backdoor claim on ``rows`` is not learnt by the held-out model ('' if it is)."""
    if proba is None or code is None or not rows.any() or len(proba) != len(rows):
        return ""
    if not hypothesis.startswith("backdoor -> class"):
        return ""
    learnt = int((np.asarray(proba)[rows].argmax(axis=1) == code).sum())
    n = int(rows.sum())
    if 2 * learnt > n:
        return ""
    return (f"the out-of-fold model predicts {dataset.classes[code]} for only {learnt} of "
            f"{n} rows: no shortcut learnt from the other rows, so a natural sub-type or "
            "mislabelled rows, not a backdoor")


def _meeting_region(rows: np.ndarray, code: int | None, dataset: Dataset) -> str:
    """Why a subpopulation claim on the table rows ``rows`` is a region where classes
    meet ('' if it is not, or if the rows do not define a region).

    The region is the cells every claimed row holds. When the claimed rows are every
    row of their class in it, and other classes hold it too, so that it does not mark
    the class at :data:`REGION_PURITY` (and halfway from the class's base rate to all
    of its rows), the claim is a region of the table, not a trigger: a stamped trigger
    marks the rows it was put on, which no natural row holds alongside them.
    """
    x = dataset.features
    if x is None or code is None or int(rows.sum()) < 2:
        return ""
    y = np.asarray(dataset.labels)
    first = np.asarray(x[int(np.flatnonzero(rows)[0])])
    shared = np.flatnonzero(np.all(np.asarray(x[rows]) == first, axis=0))
    if not len(shared):
        return ""
    holders = np.all(np.asarray(x[:, shared]) == first[shared], axis=1)
    mine = holders & (y == code)
    if int(mine.sum()) != int(rows.sum()):
        return ""
    if int(mine.sum()) >= marking_purity(y == code, REGION_PURITY) * int(holders.sum()):
        return ""
    names = dataset.feature_names
    cells = [f"{names[j]}={first[j]:g}" for j in shared if first[j] != 0][:4]
    return (f"its {int(rows.sum())} rows are every row of class {dataset.classes[code]} "
            f"holding the values they share ({', '.join(cells) or 'zeros'}), which "
            f"{int(holders.sum() - mine.sum())} rows of other classes hold too ("
            f"{int(mine.sum())} of {int(holders.sum())} in the class): a region where the "
            "classes meet, not a trigger")


def _merged(kept: Sequence[tuple[str, str, np.ndarray]], dataset: Dataset) -> tuple[str, ...]:
    """One line per backdoor: same class, half or more of the same rows."""
    lines: list[str] = []
    groups: list[tuple[int | None, np.ndarray, list[tuple[str, str]]]] = []
    for h, det, rows in kept:
        code = _class_code(h, dataset) if h.startswith("backdoor -> class") else None
        same = next((g for g in groups if code is not None and g[0] == code
                     and (g[1] & rows).sum() >= 0.5 * max(min(int(g[1].sum()),
                                                               int(rows.sum())), 1)), None)
        if same is None:
            groups.append((code, rows, [(h, det)]))
        else:
            same[2].append((h, det))
    for _, _, members in groups:
        if len(members) == 1:
            lines.append(members[0][0])
            continue
        head, _, detail = members[0][0].partition(": ")
        parts = [f"{d.partition(': ')[2] or d} ({det})" for d, det in members]
        lines.append(f"{head}: " + "; ".join(parts) if detail else members[0][0])
    return tuple(lines)
