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
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.neighbours import nearest_neighbours
from poisonguard.detect.overlap import DEFAULT_CERTAIN, natural_label_proba
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["DuplicateDetector", "exact_duplicate_groups"]


def _row_hashes(flat: np.ndarray, *, chunk: int = 65_536) -> np.ndarray:
    """A 64-bit hash per row, computed in chunks (a few MiB of scratch at any N)."""
    width = flat.dtype.itemsize * (flat.shape[1] if flat.ndim > 1 else 1)
    pad = (-width) % 8
    weights = np.random.default_rng(0x9E3779B9).integers(
        1, 2**63, size=(width + pad) // 8, dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(flat), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(flat), chunk):
            values = flat[start:start + chunk]
            if values.dtype.kind == "f":
                values = values + 0.0  # -0.0 and 0.0 are the same value
            part = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), -1)
            if pad:
                part = np.pad(part, ((0, 0), (0, pad)))
            w = np.ascontiguousarray(part).view(np.uint64)
            mixed = (w * weights) ^ (w >> np.uint64(29))
            out[start:start + chunk] = (mixed * weights).sum(axis=1, dtype=np.uint64)
    return out


def shared_groups(group: np.ndarray) -> Iterator[np.ndarray]:
    """The row indices of each group id that two or more rows share."""
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    sizes = np.diff(np.r_[starts, len(group)])
    for s, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        yield order[s:s + size]


def exact_duplicate_groups(x: np.ndarray) -> np.ndarray:
    """A group id per row: rows with identical values share it.

    Rows are hashed to 64 bits in chunks and grouped by sorting the hashes (N log N,
    about 24 bytes per row); rows that share a hash are then compared value by value,
    so a hash collision never merges different rows.
    """
    flat = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    _, group = np.unique(_row_hashes(flat), return_inverse=True)
    group = np.asarray(group, dtype=np.int64).ravel()
    next_id = int(group.max()) + 1 if len(group) else 0
    for members in shared_groups(group):
        rest = members
        while len(rest):  # split a shared hash into groups of truly equal rows
            same = (flat[rest] == flat[rest[0]]).all(axis=1)
            if not same.all():
                group[rest[~same]] = next_id
                next_id += 1
            rest = rest[~same]
    return group


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
    """

    name = "duplicate"
    searches_neighbours = True
    needs = frozenset({"features", "proba"})
    parameter_constraints = {
        "k": Interval(int, 1, None),
        "max_ratio": Interval(float, 0, 1, closed="neither"),
        "tie": Interval(float, 0, 1),
        "certain": Interval(float, 0, 1, closed="right"),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, k: int = 5, max_ratio: float = 0.1, tie: float = 0.1,
                 certain: float = DEFAULT_CERTAIN, seed: int = 0) -> None:
        self.k = k
        self.max_ratio = max_ratio
        self.tie = tie
        self.certain = certain
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
        for members in shared_groups(group):
            for i in members:
                other = members[labels[members] != labels[i]]
                if len(other):
                    closeness[i], partner[i] = 1.0, other[0]
        # Near copies: a conflicting neighbour much closer than the typical neighbour.
        dist, idx = nearest_neighbours(representation.features, self.k, seed=self.seed)
        typical = float(np.median(dist[:, 0])) if dist.size else 0.0
        if typical > 0:
            ratio = dist / (self.max_ratio * typical)  # 1 at the flag boundary
            conflict = labels[idx] != labels[:, None]
            near = np.where(conflict, np.clip(1.0 - ratio / 2.0, 0.0, 1.0), 0.0)
            j = near.argmax(axis=1)
            best = near[np.arange(n), j]
            better = (best > closeness) & (partner < 0)
            closeness[better] = best[better]
            partner[better] = idx[better, j[better]]
        candidates = np.flatnonzero(closeness >= 0.5)
        natural = natural_label_proba(proba, certain=self.certain)[np.arange(n), labels] > 0
        flags = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        review: dict[int, str] = {}
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
                if natural[i]:
                    review[int(i)] = (sentence + "; the out-of-fold model is unsure here "
                                      "(natural overlap of the two classes)")
                else:
                    flags[i] = True
                    reasons[int(i)] = sentence
        return DetectorResult(
            detector=self.name, scores=closeness, flags=flags, reasons=reasons,
            suggested_labels={int(i): int(labels[partner[i]]) for i in np.flatnonzero(flags)},
            review=review, dataset=dataset,
            meta={"typical_neighbour_distance": round(typical, 6),
                  "conflicting_pairs": int(len(candidates))},
        )
