"""Detector ``trigger``: dirty-label backdoors found in input space.

A dirty-label backdoor stamps one trigger (a BadNets patch, fixed values in a few
columns) on rows of other classes and relabels them to a target class. The detector

1. mines item sets: two or more features whose shared exact values mark a subset
   far beyond independence (:func:`~poisonguard.detect.trigger_search.mine_triggers`);
2. keeps subsets whose label is concentrated on one class far beyond its base rate
   (binomial test, Bonferroni over the candidates);
3. applies the decisive test: with the trigger features neutralised, a model trained
   on the other rows assigns most of the subset to *other* classes
   (:func:`~poisonguard.detect.trigger_mask.mask_test`), while naturally predictive
   features leave their rows looking like their own class.

Rows of a confirmed trigger that look like another class are flagged; the class
they look like is the suggested label. Classes with no confirmed trigger are
reported clean. Blended (whole-image) triggers have no sparse feature set and are
left to the representation-space detectors (spectral, activation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.thresholds import FLAG_SCORE
from poisonguard.detect.trigger_mask import mask_test
from poisonguard.detect.trigger_search import (
    MINING_CONSTRAINTS,
    describe_features,
    mine_triggers,
)
from poisonguard.params import Interval
from poisonguard.represent.base import Representation

__all__ = ["TriggerDetector"]

#: Scores of partial evidence, as a share of the flag level and times (1 - p(label)):
#: a concentrated subset whose masking test failed, and a row of a confirmed trigger
#: that still looks like its own class once masked (ranked above the former).
_UNCONFIRMED = 0.8
_UNMOVED = 0.9


@register_detector
class TriggerDetector(Detector):
    """Find few-feature triggers whose removal makes a label-concentrated subset change class.

    ``alpha`` is the family-wise significance level of both tests (Bonferroni over
    the candidates tested); ``max_candidates`` bounds how many candidates get the
    (model-fitting) masking test; ``min_other`` is the smallest fraction of a
    subset that must look like another class once masked; ``min_purity`` the
    smallest share of the subset in its majority class (a stamped trigger is rare
    in clean rows; a natural pattern such as the blank centre of a zero is not, and
    masking it while poisoned rows crowd the class misleads the masked model). The
    mining parameters (``min_rows``, ``max_fraction``, ``min_jaccard``, ``max_rows``) are those of
    :func:`~poisonguard.detect.trigger_search.mine_triggers`.
    """

    name = "trigger"
    needs = frozenset({"features"})
    modalities = frozenset({"tabular", "image"})
    parameter_constraints = {**MINING_CONSTRAINTS,
                             "min_other": Interval(float, 0, 1, closed="right"),
                             "max_candidates": Interval(int, 1, None)}

    def __init__(self, *, alpha: float = 1e-3, min_other: float = 0.5, min_purity: float = 0.8,
                 min_rows: int = 5, max_fraction: float = 0.2, min_jaccard: float = 0.5,
                 max_candidates: int = 20, max_rows: int = 50_000, seed: int = 0) -> None:
        self.alpha = alpha
        self.min_other = min_other
        self.min_purity = min_purity
        self.min_rows = min_rows
        self.max_fraction = max_fraction
        self.min_jaccard = min_jaccard
        self.max_candidates = max_candidates
        self.max_rows = max_rows
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        x = dataset.matrix()
        y = dataset.labels
        n = len(y)
        image_shape = None if dataset.images is None else tuple(dataset.images.shape[1:])
        candidates = mine_triggers(x, y, dataset.n_classes, min_rows=self.min_rows,
                                   max_fraction=self.max_fraction, min_jaccard=self.min_jaccard,
                                   max_rows=self.max_rows, seed=self.seed)
        n_tests = max(len(candidates), 1)
        concentrated = [c for c in candidates
                        if c.label_p * n_tests < self.alpha and c.n_label >= self.min_rows
                        and c.purity >= self.min_purity]
        concentrated = concentrated[: self.max_candidates]
        scores = np.zeros(n)
        flags = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        suggested: dict[int, int] = {}
        hypotheses: list[str] = []
        triggers: list[dict[str, Any]] = []
        n_mask = max(len(concentrated), 1)
        for cand in concentrated:
            test = mask_test(representation.features, y, dataset.n_classes, candidate=cand.rows,
                             label=cand.label, masked=cand.features, seed=self.seed)
            confirmed = (test.p_value * n_mask < self.alpha
                         and test.fraction_other >= self.min_other
                         and test.n_other >= self.min_rows)
            if not confirmed:
                # Partial evidence only: below the flag level.
                weak = _UNCONFIRMED * FLAG_SCORE * (1 - test.p_label)
                scores[test.rows] = np.maximum(scores[test.rows], weak)
                continue
            items, shape, pixels = describe_features(cand.features, cand.values, image_shape,
                                                     dataset.feature_names)
            cls = dataset.classes[cand.label]
            reason = (f"class {cls}: {cand.n_rows} rows share {items}, which few other rows "
                      f"have; with those features masked, {test.n_other} of {len(test.rows)} "
                      f"look like other classes")
            hypotheses.append(f"backdoor -> class {cls}: {cand.n_rows} rows share {shape}")
            triggers.append({"class": cand.label, "features": list(cand.features),
                             "values": list(cand.values), "rows": cand.n_rows,
                             "looks_other": test.n_other, "pixels": pixels,
                             "p_label": cand.label_p, "p_mask": test.p_value})
            row_scores = np.where(test.other, FLAG_SCORE + FLAG_SCORE * (1 - test.p_label),
                                  _UNMOVED * FLAG_SCORE * (1 - test.p_label))
            scores[test.rows] = np.maximum(scores[test.rows], row_scores)
            for i, is_other, pred in zip(test.rows, test.other, test.predicted, strict=True):
                if is_other:
                    flags[i] = True
                    reasons.setdefault(int(i), reason)
                    suggested.setdefault(int(i), int(pred))
        return DetectorResult(
            detector=self.name, scores=np.clip(scores, 0.0, 1.0), flags=flags, reasons=reasons,
            suggested_labels=suggested, hypotheses=tuple(hypotheses), dataset=dataset,
            meta={"triggers": triggers, "candidates": len(candidates),
                  "tested": len(concentrated)},
        )
