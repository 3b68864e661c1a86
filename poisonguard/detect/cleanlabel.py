"""Detector ``cleanlabel``: clean-label backdoors found as a rare shared pattern in one class.

A clean-label backdoor stamps its trigger on rows that already belong to the target
class, so the masking test of the ``trigger`` detector cannot apply: the rows look
like their class with or without the trigger. What remains is the pattern itself:
a few features holding the same exact values on a subset of one class, values that
(almost) no other row holds. The detector mines item sets as ``trigger`` does
(:func:`~poisonguard.detect.trigger_search.mine_triggers`) and keeps only those that

- lie (almost) entirely in one class, far beyond its base rate (binomial test at the
  strict level ``alpha``, Bonferroni over the candidates);
- co-occur tightly: the core items' row sets overlap with a median pairwise Jaccard
  index >= ``min_jaccard``;
- are rare outside the subset: the core values occur on at most ``max_outside``
  times as many other rows as the subset has.

A natural sub-population sharing exact values (zeros in a measurement) can pass
these tests when it is large and pure; this is why the detector is stricter than
``trigger``. On a table, a pattern one of whose columns marks more than half of its
class (:func:`~poisonguard.detect.trigger_search.marked_share`) owes its purity to a
column that is the class, not to a stamp (untouched Ecdat Fishing: rows of one fishing
site share its four catch rates, and the catch of the chosen mode makes them pure;
``meta['class_columns']`` counts such patterns; RESULTS.md, session 23). So does a
pattern whose rows hold a category that is theirs
(:func:`~poisonguard.detect.trigger_search.named_by_category`: untouched gap fsnps,
where the 34 rows whose first allele at site 4 is G are every G/G genotype, and the
second allele is the label), since a stamped category is one its column already had,
on rows of their own.

What kind of backdoor a confirmed pattern is, is then tested, not assumed: with the
pattern masked, a model trained on the other rows classifies the subset
(:func:`~poisonguard.detect.trigger_mask.mask_test`). When most of it then looks like
*other* classes (``min_other``; significant at ``alpha``), the rows were relabelled:
a dirty-label backdoor, announced as ``backdoor -> class X`` (as ``trigger`` does),
never as clean-label. Only a subset that still looks like its own class is announced
as ``clean-label backdoor?``, and only when the evidence does not say its class is the
target of relabelled rows: a class with a dirty-label finding here, or one whose
held-out rows the masked model assigns to other classes far more often than the other
classes' rows (``MaskTest.crowding_p`` at ``CROWDING_ALPHA``). A dirty-label attack
crowds its target class, and a natural pattern of that class (the blank centre of
some zeros) then reaches the purity bar through the relabelled rows that happen to
hold it; such a pattern is withheld (``meta['withheld']``), not flagged. The price: a
genuine clean-label trigger in a class that also receives relabelled rows is withheld
too. A subset most of which looks like other classes while masking also moves the
class's own held-out rows (the test cannot tell) is announced as a backdoor of
undetermined kind. A pattern whose rows lie (nine in ten) inside one already examined
in the same class adds nothing and is merged. It runs by default (no flags on the
clean built-in sets; docs/detectors-trigger.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.trigger_mask import MaskTest, backdoor_kind, mask_test, principal_basis
from poisonguard.detect.trigger_search import (
    MINING_CONSTRAINTS,
    TriggerCandidate,
    category_blocks,
    covers_most_columns,
    describe_features,
    marked_share,
    mine_triggers,
    named_by_category,
)
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["CleanLabelDetector"]

#: Level of the guard against a clean-label claim in a class that received relabelled
#: rows (Bonferroni over the candidates): evidence against a claim, so less strict than
#: the claim's own ``alpha``. Measured on real MNIST with 250 rows relabelled into class
#: 0: corrected p 6e-5 and 2e-7; genuine clean-label patterns on digits, MNIST, wine
#: and breast cancer: p 0.36-1.0 before correction.
CROWDING_ALPHA = 0.01


@register_detector
class CleanLabelDetector(Detector):
    """Flag rows of one class that share a rare, tightly co-occurring pattern.

    ``alpha`` is the family-wise level of the label-concentration test (strict:
    there is no second test to catch a natural pattern) and of the masking test;
    ``min_purity`` the share of the subset that must belong to its class;
    ``min_other`` the share of it that must look like other classes once the pattern
    is masked for the finding to be named a dirty-label backdoor.
    """

    name = "cleanlabel"
    needs = frozenset({"features"})
    modalities = frozenset({"tabular", "image"})
    parameter_constraints = {**MINING_CONSTRAINTS, "max_outside": Interval(float, 0, None),
                             "min_other": Interval(float, 0, 1, closed="right")}

    def __init__(self, *, alpha: float = 1e-6, min_purity: float = 0.95,
                 min_jaccard: float = 0.5, max_outside: float = 1.0, min_rows: int = 5,
                 max_fraction: float = 0.2, max_rows: int = 50_000, min_other: float = 0.5,
                 seed: int = 0) -> None:
        self.alpha = alpha
        self.min_other = min_other
        self.min_purity = min_purity
        self.min_jaccard = min_jaccard
        self.max_outside = max_outside
        self.min_rows = min_rows
        self.max_fraction = max_fraction
        self.max_rows = max_rows
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        y = dataset.labels
        x = dataset.stored_matrix()  # uint8 pixels stay uint8: read in chunks, never copied
        image_shape = None if dataset.images is None else tuple(dataset.images.shape[1:])
        candidates = mine_triggers(x, y, dataset.n_classes, min_rows=self.min_rows,
                                   max_fraction=self.max_fraction,
                                   min_jaccard=min(self.min_jaccard, 0.5),
                                   max_rows=self.max_rows, seed=self.seed)
        n_tests = max(len(candidates), 1)
        scores = np.zeros(len(y))  # the strongest confirmed pattern of each flagged row
        partial = np.zeros(len(y))  # the strongest unconfirmed evidence of the others
        level = -np.log10(self.alpha)
        projection: tuple[np.ndarray, np.ndarray] | None = None
        tested: list[tuple[TriggerCandidate, np.ndarray, MaskTest, float]] = []
        merged = 0
        class_columns = 0
        categories = category_blocks(dataset)
        for cand in candidates:
            strength = -np.log10(max(cand.label_p * n_tests, 1e-300))
            # log10 evidence mapped so that the level alpha lands on 0.5.
            raw = float(1.0 / (1.0 + np.exp(-(strength - level) / 2.0)))
            members = cand.rows[y[cand.rows] == cand.label]
            passed = (strength >= level and cand.purity >= self.min_purity
                      and cand.jaccard >= self.min_jaccard
                      and cand.outside <= self.max_outside and len(members) >= self.min_rows)
            if passed and dataset.images is None and (any(
                    marked_share(x, y, cand.label, (j,), min_rows=self.min_rows,
                                 min_purity=self.min_purity) > 0.5 for j in cand.features)
                    or named_by_category(x, members, cand.features, categories,
                                         min_rows=self.min_rows, min_purity=self.min_purity)):
                passed = False  # its purity is a column that is the class (docstring)
                class_columns += 1
            if not passed:
                partial[members] = np.maximum(partial[members], raw)
                continue
            if any(c.label == cand.label and np.isin(members, m).mean() >= 0.9
                   for c, m, _, _ in tested):
                merged += 1  # a part of a pattern already examined: nothing new
                continue
            if projection is None:
                projection = principal_basis(representation.features, seed=self.seed)
            test = self._masked(cand.features, cand.values, members, cand.label, x, dataset,
                                representation, projection)
            tested.append((cand, members, test, raw))
        kinds = [self._kind(test, n_tests) for _, _, test, _ in tested]
        # Exclusive where the evidence says so: a class that is the target of relabelled
        # rows (a dirty-label finding here, or held-out rows that look like other classes
        # far more often than other classes' rows do) is not also a clean-label target.
        targets = {c.label for (c, _, _, _), k in zip(tested, kinds, strict=True)
                   if k == "dirty-label"}
        flags = np.zeros(len(y), dtype=bool)
        reasons: dict[int, str] = {}
        hypotheses: list[str] = []
        found: list[dict[str, Any]] = []
        withheld: list[dict[str, Any]] = []
        for (cand, members, test, raw), kind in zip(tested, kinds, strict=True):
            cls = dataset.classes[cand.label]
            crowded = test.crowding_p * n_tests < CROWDING_ALPHA
            if kind == "clean-label" and (cand.label in targets or crowded):
                partial[members] = np.maximum(partial[members], raw)
                withheld.append({"class": cand.label, "rows": cand.n_rows,
                                 "why": "relabelled class" if cand.label in targets
                                 else "crowded class"})
                continue
            items, shape, pixels = describe_features(cand.features, cand.values, image_shape,
                                                     dataset.feature_names)
            reason = (f"class {cls}: {cand.n_rows} rows share {items} (median pairwise "
                      f"Jaccard {cand.jaccard:.2f}), values almost no other row has; with it "
                      f"masked, {test.n_other} of {len(test.rows)} look like other classes")
            hypotheses.append(self._hypothesis(kind, cls, cand.n_rows, shape))
            found.append({"class": cand.label, "features": list(cand.features),
                          "values": list(cand.values), "rows": cand.n_rows, "pixels": pixels,
                          "p_label": cand.label_p, "jaccard": cand.jaccard,
                          "looks_other": test.n_other, "p_mask": test.p_value, "kind": kind})
            scores[members] = np.maximum(scores[members], raw)
            flags[members] = True
            for i in members:
                reasons.setdefault(int(i), reason)
        return DetectorResult(
            detector=self.name, scores=np.clip(np.where(flags, scores, partial), 0.0, 1.0),
            flags=flags, reasons=reasons, hypotheses=tuple(hypotheses), dataset=dataset,
            meta={"triggers": found, "candidates": len(candidates), "merged": merged,
                  "withheld": withheld, "class_columns": class_columns},
        )

    @staticmethod
    def _hypothesis(kind: str, cls: object, n_rows: int, shape: str) -> str:
        if kind == "dirty-label":
            return (f"backdoor -> class {cls}: {n_rows} rows share {shape} and look like "
                    "other classes without it (relabelled: dirty label)")
        if kind == "clean-label":
            return f"clean-label backdoor? class {cls}: {n_rows} rows share {shape}"
        return (f"backdoor -> class {cls}: {n_rows} rows share {shape}; most look like "
                "other classes without it, but masking it moves the class's own rows too "
                "(relabelled or not: undetermined)")

    def _kind(self, test: MaskTest, n_tests: int) -> str:
        """``dirty-label`` when most of the rows look like other classes once masked (at
        ``alpha``), ``clean-label`` when most still look like their class."""
        return backdoor_kind(test, min_other=self.min_other, alpha=self.alpha, tests=n_tests)

    def _masked(self, features: tuple[int, ...], values: tuple[float, ...], members: np.ndarray,
                label: int, x: np.ndarray, dataset: Dataset, representation: Representation,
                projection: tuple[np.ndarray, np.ndarray] | None) -> MaskTest:
        """Do the members look like their class once the pattern is masked?

        Wide patterns (a blend) are masked cell by cell, where each row holds them."""
        cells = None
        if covers_most_columns(len(features), x.shape[1], image=dataset.images is not None):
            cols = np.asarray(features, dtype=np.intp)
            cells = x[np.ix_(members, cols)] == np.asarray(values, dtype=np.float64)
        return mask_test(representation.features, dataset.labels, dataset.n_classes,
                         candidate=members, label=label, masked=features, cells=cells,
                         projection=projection, seed=self.seed)
