"""Detector ``knn``: k-nearest-neighbour label disagreement (deep k-NN).

Each row's ``k`` nearest other rows vote with their labels in a representation
space: the scaled input features by default, or the out-of-fold activations
(``embedding_oof``, deep k-NN: no row is embedded by a model that saw it). The
features won on every built-in dataset (docs/detectors-classic.md): the out-of-fold
activations come from one model per fold, and rows of different folds live in
different hidden spaces, so their distances are not comparable.

A row is flagged when three things hold: the neighbours outvote its label
overwhelmingly (the best other class holds a majority and beats the row's own label
by ``min_margin`` of the votes: 9 against 1 at the default); the neighbours that
outvote it agree with their own neighbours at least as much as the 30th percentile
of all rows do (``purity_quantile``: a flipped row sits inside a settled region of
another class, a clean boundary row among other boundary rows); and natural class
overlap does not explain the label: the out-of-fold model is sure (``certain``) of
another class (:func:`poisonguard.detect.overlap.natural_label_proba` gives the label
no chance; the model's probability of the label is then at most ``1 - certain``).
On hard data, where classes mix, a 9-to-1 vote happens to clean rows too; there such
rows are left for review. The ``label`` detector already weighs the neighbour votes
together with the model; this detector is the strict second opinion for rows where
the neighbours leave no doubt, and adds few clean flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.licence import DEFAULT_K, neighbour_licence
from poisonguard.detect.neighbours import nearest_neighbours, neighbour_votes
from poisonguard.detect.overlap import DEFAULT_CERTAIN, DEFAULT_PAIR_ALPHA, SUPPORT_K
from poisonguard.detect.thresholds import FLAG_SCORE
from poisonguard.params import Interval, OneOf
from poisonguard.represent.base import Representation

__all__ = ["KnnDetector"]

Space = Literal["embedding_oof", "features"]

@register_detector
class KnnDetector(Detector):
    """Label disagreement with the k nearest neighbours.

    Parameters
    ----------
    k:
        neighbours per row.
    space:
        ``features`` or ``embedding_oof`` (deep k-NN; falls back to ``features``
        when the representation has none).
    min_margin:
        flag when (votes for the best other class) - (votes for the row's label)
        reaches this fraction of ``k`` and the other class holds a majority.
    purity_quantile:
        the outvoting neighbours' own label agreement must reach this quantile of
        the agreement over all rows (data-driven: keeps class boundaries unflagged).
    certain:
        out-of-fold confidence from which the model is sure of a class: only rows
        whose label contradicts a sure model are flagged; the others that the
        neighbours outvote are left for review.
    pair_alpha:
        level of the tests that license flags in a class pair
        (:func:`poisonguard.detect.overlap.pair_excess`).
    """

    name = "knn"
    finds_label_flips = True
    searches_neighbours = True
    needs = frozenset({"embedding_oof", "features", "proba"})
    parameter_constraints = {
        "k": Interval(int, 1, None),
        "space": OneOf("features", "embedding_oof"),
        "min_margin": Interval(float, 0, 1),
        "purity_quantile": Interval(float, 0, 1),
        "certain": Interval(float, 0, 1, closed="right"),
        "pair_alpha": Interval(float, 0, 1, closed="neither"),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, k: int = DEFAULT_K, space: Space = "features",
                 min_margin: float = 0.8, purity_quantile: float = 0.3,
                 certain: float = DEFAULT_CERTAIN, pair_alpha: float = DEFAULT_PAIR_ALPHA,
                 seed: int = 0) -> None:
        self.k = k
        self.space = space
        self.min_margin = min_margin
        self.purity_quantile = purity_quantile
        self.certain = certain
        self.pair_alpha = pair_alpha
        self.seed = seed

    def requires(self) -> frozenset[str]:
        return self.needs if self.space == "embedding_oof" else frozenset({"features", "proba"})

    def _space(self, representation: Representation) -> tuple[np.ndarray, str]:
        if self.space == "embedding_oof" and representation.embedding_oof is not None:
            return representation.embedding_oof, "embedding_oof"
        return representation.features, "features"

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        labels = np.asarray(dataset.labels)
        x, space = self._space(representation)
        # one search for the votes (first k) and the support (first SUPPORT_K): in a
        # scan, label's search of the same features
        dist, idx = nearest_neighbours(x, max(self.k, SUPPORT_K), seed=self.seed)
        proba = np.asarray(representation.proba, dtype=np.float64)
        excess = neighbour_licence(labels, proba, x, dist, idx, k=self.k, certain=self.certain,
                                   alpha=self.pair_alpha)
        idx = idx[:, :self.k]
        vote = self._votes(labels, idx, proba)
        unexplained = excess.unexplained(labels, proba, self.certain)
        outvoted = (vote.margin >= self.min_margin) & (vote.passing > -1.0)
        # In the pairs of a flip target (a label that passes both licence rules with
        # two or more classes, overlap.PairExcess.target_pairs) natural overlap explains
        # none of the disagreement, and the model hedges around the flips: there the
        # vote needs no sure model (sklearn digits, 10% targeted flips: 3-5 more flips
        # per seed, no clean row; RESULTS.md, session 20).
        flags = outvoted & (unexplained | excess.target_pairs()[labels, vote.best])
        scores = _scores(vote.margin, self.min_margin)
        names = dataset.classes
        k = idx.shape[1]
        reasons = {
            int(i): (f"label {names[labels[i]]} but {round(vote.best_share[i] * k)} of {k} "
                     f"neighbours are {names[vote.best[i]]} ({round(vote.own[i] * k)} share its "
                     f"label; out-of-fold p(label)={vote.support[i]:.2f})")
            for i in np.flatnonzero(flags)
        }
        suggested = {int(i): int(vote.best[i]) for i in np.flatnonzero(flags)}
        sure = proba.max(axis=1) >= self.certain
        review = {int(i): (f"{round(vote.best_share[i] * k)} of {k} neighbours are "
                           f"{names[vote.best[i]]}, but "
                           + ("disagreement between these classes thins out with the "
                              "model's confidence like natural overlap" if sure[i] else
                              "the out-of-fold model is unsure here")
                           + f" (natural overlap of {names[labels[i]]} and "
                             f"{names[vote.best[i]]})")
                  for i in np.flatnonzero(outvoted & ~flags)}
        return DetectorResult(
            detector=self.name, scores=scores, flags=flags, reasons=reasons,
            suggested_labels=suggested, review=review, dataset=dataset,
            meta={"space": space, "k": k, "purity_floor": round(vote.floor, 4),
                  "certain": self.certain,
                  "licensed_pairs": excess.licensed_names(names),
                  "licensed_flags": int(flags.sum()),
                  "licensed_bands": excess.licensed_bands(),
                  "refused_pairs": excess.refused_names(names),
                  "neighbour_agreement": round(float(vote.own.mean()), 4)},
        )

    def _votes(self, labels: np.ndarray, idx: np.ndarray, proba: np.ndarray) -> _Votes:
        votes = neighbour_votes(labels, idx, proba.shape[1])
        rows = np.arange(len(labels))
        own = votes[rows, labels]
        others = votes.copy()
        others[rows, labels] = -1.0
        best = others.argmax(axis=1)
        best_share = others[rows, best]
        margin = best_share - own  # in [-1, 1]
        # The neighbours that outvote the row must sit in a settled region: their own
        # agreement reaches the 30th percentile of the data's. On a class boundary the
        # outvoting neighbours are themselves outvoted half the time; around a flipped
        # row they are not.
        backers = labels[idx] == best[:, None]
        purity = (own[idx] * backers).sum(axis=1) / np.maximum(backers.sum(axis=1), 1)
        floor = float(np.quantile(own, self.purity_quantile))
        support = proba[rows, labels]
        eligible = (best_share > 0.5) & (purity >= floor)
        return _Votes(own=own, best=best, best_share=best_share, margin=margin,
                      support=support, floor=floor, passing=np.where(eligible, margin, -1.0))


@dataclass(frozen=True)
class _Votes:
    """The neighbour vote of every row; ``passing`` is the margin where the rule's other
    conditions hold, -1 elsewhere."""

    own: np.ndarray
    best: np.ndarray
    best_share: np.ndarray
    margin: np.ndarray
    support: np.ndarray
    floor: float
    passing: np.ndarray


def _scores(margin: np.ndarray, min_margin: float) -> np.ndarray:
    """Piecewise-linear in the vote margin with ``min_margin`` at 0.5."""
    low = FLAG_SCORE * (margin + 1.0) / (min_margin + 1.0)
    high = FLAG_SCORE + FLAG_SCORE * (margin - min_margin) / max(1.0 - min_margin, 1e-9)
    return np.clip(np.where(margin >= min_margin, high, low), 0.0, 1.0)
