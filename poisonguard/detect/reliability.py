"""How much the scan's label evidence can be trusted on this data.

A scan's label-based flags (``label``, ``knn``, ``duplicate``) are only as good as
the held-out model behind them: on a table where the out-of-fold model is 60%
accurate, classes overlap and labels disagree with it naturally. The reliability
section says so in numbers, from the data alone:

- the out-of-fold accuracy and, per class, recall and precision; the confusion of
  given against predicted labels;
- the class pairs that overlap: cleanlab's estimated joint of given and true labels
  (:func:`cleanlab.count.estimate_joint`), off-diagonal cells above half a percent;
- how many rows the label-based detectors would flag on clean data of this
  difficulty at the scan's ``max_fpr`` (their ``expected_clean_flags``, measured on
  labels drawn from the natural overlap, :mod:`poisonguard.detect.overlap`), and how
  many rows they put up for review instead of flagging;
- the class pairs where the label detectors found more sure disagreement than
  natural overlap explains (``licensed_pairs``, :func:`poisonguard.detect.overlap.
  pair_excess`), the confidence bands holding more contradicted labels than the
  model's calibration allows (``licensed_bands``, :func:`poisonguard.detect.overlap.
  band_excess`), and how many rows the label-based detectors flag there
  (``licensed_flags``, each row once; every ``knn`` and ``duplicate`` flag is one): those
  flags are claims of an excess, not covered by ``expected_clean_flags``;
- the label detector's margin doubts (``margin_flags``: no sure contradiction, no
  licence) and how many of them went to review because they did not outnumber
  ``expected_clean_flags`` beyond chance (``margin_flags_reviewed``; the margin rule
  flags only as an excess, ``poisonguard.detect.label``);
- the pairs refused a licence because their disagreement rises with the model's
  confidence, unlike a flip (``refused_pairs``, each with its reason,
  :func:`poisonguard.detect.flip_shape.rising_share`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from poisonguard.detect.base import DetectorResult
from poisonguard.detect.overlap import uninformed

__all__ = ["STRONG_ACCURACY", "reliability"]

#: Out-of-fold accuracy from which label evidence is called strong.
STRONG_ACCURACY = 0.9
#: Estimated joint cells (share of all rows) listed as class overlap.
_MIN_OVERLAP = 0.005


def _overlap(labels: np.ndarray, proba: np.ndarray, classes: Sequence[str]
             ) -> list[dict[str, Any]]:
    counts = np.bincount(labels, minlength=proba.shape[1])
    if (counts < 2).any():
        return []
    from cleanlab.count import estimate_joint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = np.asarray(estimate_joint(labels, proba), dtype=np.float64)
    n = len(labels)
    pairs = [{"given": classes[a], "true": classes[b], "share": round(float(joint[a, b]), 4),
              "rows": int(round(float(joint[a, b]) * n))}
             for a in range(len(classes)) for b in range(len(classes))
             if a != b and joint[a, b] >= _MIN_OVERLAP]
    return sorted(pairs, key=lambda p: -float(p["share"]))


def _licensed_rows(results: Sequence[DetectorResult]) -> int:
    """Distinct rows flagged as claims of an excess (``meta["licensed_flags"]``).

    ``label``'s other flags are its margin doubts (no sure contradiction; the null's
    margin reached); every ``knn`` and ``duplicate`` flag lies in a licence (a sure
    contradiction, or knn's vote in a flip target's pair). So the rows flagged by any of
    them, less label's margin doubts, are the licensed rows, each counted once (a row
    that is both a margin doubt and a knn flag counts as a margin doubt).
    """
    claiming = [r for r in results if "licensed_flags" in r.meta]
    if not claiming:
        return 0
    flagged = np.logical_or.reduce([np.asarray(r.flags, dtype=bool) for r in claiming])
    margin = sum(int(r.n_flagged) - int(r.meta["licensed_flags"]) for r in claiming)
    return int(flagged.sum()) - margin


def reliability(labels: np.ndarray, proba: np.ndarray, classes: Sequence[str],
                results: Sequence[DetectorResult], *, max_fpr: float,
                review: int = 0) -> dict[str, Any]:
    """The reliability section of a scan summary (plain JSON types).

    Parameters
    ----------
    labels, proba
        Given label codes and the out-of-fold probabilities of the representation.
    classes
        Class names, in code order.
    results
        The scan's detector results; those with ``expected_clean_flags`` in their
        meta (the label-based detectors) give the expected clean flags.
    max_fpr
        The scan's target clean false-positive rate of its label-based flags.
    review
        Rows the fused scan put up for review (action ``review``).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.repeat([0, 0, 0, 1, 1, 1], 10)
    >>> proba = np.repeat([[.9, .1], [.8, .2], [.3, .7], [.2, .8], [.1, .9], [.6, .4]], 10,
    ...                   axis=0)
    >>> r = reliability(labels, proba, ("a", "b"), [], max_fpr=0.005)
    >>> r["out_of_fold_accuracy"], r["evidence"]
    (0.6667, 'weak')
    >>> r = reliability(labels[::10], proba[::10], ("a", "b"), [], max_fpr=0.005)
    >>> r["evidence"]  # 4 of 6 where always "a" gets 3: chance (p 0.34)
    'none'
    """
    labels = np.asarray(labels)
    k = len(classes)
    pred = np.asarray(proba).argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    accuracy = float(np.trace(confusion)) / max(len(labels), 1)
    per_class = {
        classes[c]: {"rows": int(confusion[c].sum()),
                     "recall": round(float(confusion[c, c]) / max(int(confusion[c].sum()), 1), 4),
                     "precision": round(float(confusion[c, c])
                                        / max(int(confusion[:, c].sum()), 1), 4)}
        for c in range(k)}
    label_based = [r for r in results if "expected_clean_flags" in r.meta]
    expected = float(sum(float(r.meta["expected_clean_flags"]) for r in label_based))
    claiming = [r for r in results if "licensed_flags" in r.meta]
    licensed = sorted({p for r in claiming for p in r.meta.get("licensed_pairs", [])})
    bands = sorted({b for r in claiming for b in r.meta.get("licensed_bands", [])})
    refused = sorted({p for r in label_based for p in r.meta.get("refused_pairs", [])})
    licensed_flags = _licensed_rows(results)
    doubts = int(sum(int(r.meta.get("margin_flags", 0)) for r in label_based))
    reviewed = int(sum(int(r.meta.get("margin_flags_reviewed", 0)) for r in label_based))
    strong = accuracy >= STRONG_ACCURACY
    n = max(len(labels), 1)
    largest = float(confusion.sum(axis=1).max()) / n
    blind = uninformed(labels, np.asarray(proba))
    note = (f"out-of-fold accuracy {accuracy:.1%}: "
            + (f"no better than always naming the largest class ({largest:.1%}) beyond "
               "chance: the "
               "model has learned nothing the class sizes do not say, so no label a sure "
               "model contradicts is flagged for it" if blind else
               "label evidence is strong" if strong else
               "label evidence is weak, classes overlap; label flags are held to the "
               "natural overlap and many label doubts are left for review")
            + (f"; on clean data this hard, the label detectors could flag about "
               f"{expected:.1f} rows ({expected / n:.2%})" if label_based else "")
            + (f"; {licensed_flags} flags lie in class pairs or confidence bands with more "
               f"sure disagreement than natural overlap explains "
               f"({'; '.join([*licensed, *bands])})"
               if licensed_flags else "")
            + (f"; {reviewed} label doubts, about as many as clean data this hard gives, "
               f"are left for review" if reviewed else ""))
    return {
        "out_of_fold_accuracy": round(accuracy, 4),
        "evidence": "none" if blind else "strong" if strong else "weak",
        "largest_class_share": round(largest, 4),
        "per_class": per_class,
        "confusion": {"classes": list(classes), "given_by_predicted": confusion.tolist()},
        "overlap": _overlap(labels, np.asarray(proba, dtype=np.float64), classes),
        "max_fpr": max_fpr,
        "label_detectors": [r.detector for r in label_based],
        "expected_clean_flags": round(expected, 2),
        "expected_clean_share": round(expected / n, 4),
        "licensed_pairs": licensed,
        "licensed_bands": bands,
        "refused_pairs": refused,
        "licensed_flags": licensed_flags,
        "margin_flags": doubts,
        "margin_flags_reviewed": reviewed,
        "review": int(review),
        "note": note,
    }
