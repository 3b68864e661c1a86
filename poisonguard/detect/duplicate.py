"""Detector ``duplicate``: exact and near duplicates that carry conflicting labels.

- Exact: rows with byte-identical input values (hashed by sorting, N log N) and
  different labels.
- Near: rows whose nearest neighbour in the scaled feature space is closer than
  ``max_ratio`` times the data's own median nearest-neighbour distance and carries
  another label.

Of two conflicting copies, the one whose label has less support is flagged: support
is the out-of-fold probability of the label on both copies plus the share of the
label among their other neighbours. When the two labels are supported about equally,
both copies are flagged. The reason names the other row.

A conflicting copy is flagged only when a sure out-of-fold model contradicts its label
and natural overlap cannot explain that: either its class pair or confidence band holds
more sure disagreement than natural overlap makes (the licence ``knn`` reads,
:func:`poisonguard.detect.licence.neighbour_licence`), or the rows that have a copy, of any
label, are contradicted by a sure model more often than the other rows it is as sure
of (:func:`_copies_in_excess`: injected copies spread over every class pair still add
up there). On real tables people with the same answers differ in outcome (statsmodels
``fair``: 10-12 such rows a scan, 0.17% of the rows, with a sure model against them);
those go to review, so that the scan's clean flags stay the margin flags that
``--max-fpr`` bounds plus licensed claims of an excess (docs/reliability.md).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import poisson

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.copies import exact_duplicate_groups, shared_groups
from poisonguard.detect.licence import DEFAULT_K, neighbour_licence
from poisonguard.detect.neighbours import nearest_neighbours
from poisonguard.detect.overlap import (
    DEFAULT_CERTAIN,
    DEFAULT_PAIR_ALPHA,
    SUPPORT_K,
    band_edges,
)
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["DuplicateDetector", "exact_duplicate_groups"]


def _copies_in_excess(labels: np.ndarray, proba: np.ndarray, copied: np.ndarray, *,
                      certain: float, alpha: float) -> tuple[np.ndarray, list[str]]:
    """Contradicted rows of the copies' licensed confidence bands, and those bands.

    Rows that have a copy (``copied``, whatever the copy's label) should be
    contradicted by a sure model no more often than the other rows it is as sure of:
    natural copies with other outcomes are natural errors like any other. In each
    band ``top >= t`` (:func:`~poisonguard.detect.overlap.band_edges`) the copies'
    contradictions are tested against the model's own estimate (the sum of
    ``1 - top``) times how far the other rows of the band exceed theirs (at least 1):
    Poisson upper tail, Bonferroni over the bands, at ``alpha``. Injected conflicting
    copies, spread over any class pairs, add up there; the model's overconfidence on
    the data (up to 4x on statsmodels fair) is measured, not assumed.
    """
    top = proba.max(axis=1)
    wrong = proba.argmax(axis=1) != labels
    edges = band_edges(certain)
    rows = np.zeros(len(labels), dtype=bool)
    said: list[str] = []
    for lower in edges:
        band = top >= lower
        mine, other = band & copied, band & ~copied
        seen = int((wrong & mine).sum())
        other_expected = float((1.0 - top[other]).sum())
        overconfidence = (max(1.0, float((wrong & other).sum()) / other_expected)
                          if other_expected > 0 else 1.0)
        expected = overconfidence * float((1.0 - top[mine]).sum())
        if seen and poisson.sf(seen - 1, expected) <= alpha / len(edges):
            rows |= wrong & mine
            said.append(f"copies at top >= {lower:g}: {seen} contradicted, {expected:.1f} "
                        f"expected at the other rows' rate")
    return rows, said


@register_detector
class DuplicateDetector(Detector):
    """Exact and near duplicates with conflicting labels.

    Parameters
    ----------
    k:
        neighbours examined per row for near duplicates.
    max_ratio:
        a pair is a near duplicate when its distance is at most this fraction of the
        median nearest-neighbour distance of the data (score 0.5 at the boundary).
    tie:
        when the support of the two labels (each in [0, 1], averaged over the two
        copies' probabilities and their neighbours' labels) differs by less than this,
        both copies are flagged.
    certain:
        out-of-fold confidence from which the model is sure of a class; a conflicting
        copy is flagged only when its label contradicts a sure model, and left for
        review otherwise.
    pair_alpha:
        level of each of the two licences of a sure contradiction: knn's (class pairs
        and bands, :func:`poisonguard.detect.licence.neighbour_licence`, at knn's default
        ``k``) and the copies' (:func:`_copies_in_excess`); an unlicensed one is left
        for review.
    """

    name = "duplicate"
    searches_neighbours = True
    needs = frozenset({"features", "proba"})
    parameter_constraints = {
        "k": Interval(int, 1, None),
        "max_ratio": Interval(float, 0, 1, closed="neither"),
        "tie": Interval(float, 0, 1),
        "certain": Interval(float, 0, 1, closed="right"),
        "pair_alpha": Interval(float, 0, 1, closed="neither"),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, k: int = 5, max_ratio: float = 0.1, tie: float = 0.1,
                 certain: float = DEFAULT_CERTAIN, pair_alpha: float = DEFAULT_PAIR_ALPHA,
                 seed: int = 0) -> None:
        self.k = k
        self.max_ratio = max_ratio
        self.tie = tie
        self.certain = certain
        self.pair_alpha = pair_alpha
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        labels = np.asarray(dataset.labels)
        n = len(labels)
        proba = np.asarray(representation.proba, dtype=np.float64)
        closeness = np.zeros(n)  # 1 = exact copy, 0 = at max_ratio * typical distance or more
        partner = np.full(n, -1, dtype=np.int64)
        # Exact copies: the representative of each group with another label.
        group = (exact_duplicate_groups(dataset.matrix()) if dataset.texts is None
                 else np.unique(np.asarray(dataset.texts, dtype=str), return_inverse=True)[1])
        copied = np.zeros(n, dtype=bool)  # rows with a copy, whatever its label
        for members in shared_groups(group):
            copied[members] = True
            for i in members:
                other = members[labels[members] != labels[i]]
                if len(other):
                    closeness[i], partner[i] = 1.0, other[0]
        # Near copies: a conflicting neighbour much closer than the typical neighbour.
        # One search serves the copies (first k) and the licence (knn's, in a scan the
        # same search).
        x = representation.features
        dist, idx = nearest_neighbours(x, max(self.k, DEFAULT_K, SUPPORT_K), seed=self.seed)
        licence = neighbour_licence(labels, proba, x, dist, idx, certain=self.certain,
                                    alpha=self.pair_alpha)
        licensed = licence.unexplained(labels, proba, self.certain)
        dist, idx = dist[:, :self.k], idx[:, :self.k]
        typical = float(np.median(dist[:, 0])) if dist.size else 0.0
        if typical > 0:
            copied |= dist[:, 0] <= self.max_ratio * typical
            ratio = dist / (self.max_ratio * typical)  # 1 at the flag boundary
            conflict = labels[idx] != labels[:, None]
            near = np.where(conflict, np.clip(1.0 - ratio / 2.0, 0.0, 1.0), 0.0)
            j = near.argmax(axis=1)
            best = near[np.arange(n), j]
            better = (best > closeness) & (partner < 0)
            closeness[better] = best[better]
            partner[better] = idx[better, j[better]]
        candidates = np.flatnonzero(closeness >= 0.5)
        sure = proba.max(axis=1) >= self.certain
        in_copy_bands, copy_bands = _copies_in_excess(labels, proba, copied,
                                                      certain=self.certain,
                                                      alpha=self.pair_alpha)
        licensed |= in_copy_bands
        flags = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        review: dict[int, str] = {}
        unlicensed = 0  # sure contradictions without a licence, left for review
        for i in candidates:
            j = int(partner[i])
            around = np.setdiff1d(np.r_[idx[i], idx[j]], [i, j])
            if len(around) == 0:
                around = np.asarray([i, j])
            mine = proba[i, labels[i]] + proba[j, labels[i]] + 2 * np.mean(
                labels[around] == labels[i])
            theirs = proba[i, labels[j]] + proba[j, labels[j]] + 2 * np.mean(
                labels[around] == labels[j])
            if mine - theirs < self.tie * 4:
                what = "an exact copy" if closeness[i] >= 1.0 else "a near copy"
                sentence = (f"{what} of row {j}, which is labelled "
                            f"{dataset.classes[labels[j]]} (this row: "
                            f"{dataset.classes[labels[i]]})")
                if licensed[i]:
                    flags[i] = True
                    reasons[int(i)] = sentence
                elif not sure[i]:
                    review[int(i)] = (sentence + "; the out-of-fold model is unsure here "
                                      "(natural overlap of the two classes)")
                elif proba[i].argmax() == labels[i]:
                    review[int(i)] = (sentence + "; the out-of-fold model is sure of this "
                                      "row's label")
                else:
                    unlicensed += 1
                    review[int(i)] = (sentence + "; a sure contradiction, but neither these "
                                      "two classes nor the data's copies hold more of them "
                                      "than natural overlap explains")
        return DetectorResult(
            detector=self.name, scores=closeness, flags=flags, reasons=reasons,
            suggested_labels={int(i): int(labels[partner[i]]) for i in np.flatnonzero(flags)},
            review=review, dataset=dataset,
            meta={"typical_neighbour_distance": round(typical, 6),
                  "conflicting_pairs": int(len(candidates)),
                  "licensed_pairs": licence.licensed_names(dataset.classes),
                  "licensed_bands": [*licence.licensed_bands(), *copy_bands],
                  "licensed_flags": int(flags.sum()),
                  "sure_contradictions_reviewed": unlicensed},
        )
