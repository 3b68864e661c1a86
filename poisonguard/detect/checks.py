"""The shared battery every registered detector must pass (like scikit-learn's
``estimator_checks``).

    from poisonguard.detect.checks import check_detector, clean_case
    check_detector(get_detector("label"), [clean_case("breast_cancer"), clean_case("wine")])

Each check raises ``AssertionError`` naming the detector and what broke:

- the result has one score per row, in [0, 1], boolean flags, and flagged rows score
  at least 0.5 (the shared threshold convention);
- reasons and suggested labels only for flagged rows, one non-empty reason per
  flagged row; clean classes are valid class codes that hold no flagged row;
- the same parameters give the same result twice (fresh instance and same instance);
- the detector modifies neither the dataset nor the representation (it gets
  read-only copies and they are compared with the originals afterwards);
- on clean data at most ``max_fpr`` of the rows are flagged (at least one row is
  tolerated on tiny data);
- two-class and multi-class data both work (give cases of both);
- a tiny dataset (a few rows per class) does not break it.

Parameters (:func:`check_parameters`):

- every constructor parameter has a declared constraint that accepts its default;
- a value the constraint refuses makes ``score`` raise ``UsageError`` worded
  ``"<detector>: <parameter> must be ..."``;
- every parameter changes some output (scores, flags, reasons, suggested labels,
  hypotheses, clean classes or meta) on a case designed for it (:class:`Design`),
  except those listed as known-dead, each with the issue that will fix it.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, available_detectors
from poisonguard.errors import UsageError
from poisonguard.params import Constraint, Interval, OneOf
from poisonguard.represent import Representation, build_representation

__all__ = [
    "Case",
    "Design",
    "check_detector",
    "check_parameters",
    "check_result",
    "clean_case",
    "tiny_case",
]

Case = tuple[Dataset, Representation]
_ARRAYS = ("features", "embedding", "proba", "embedding_oof")


def clean_case(name: str, *, seed: int = 0) -> Case:
    """A clean built-in dataset and its real representation (trains models: seconds)."""
    from poisonguard.datasets import builtin_dataset

    dataset = builtin_dataset(name)
    return dataset, build_representation(dataset, seed=seed)


def tiny_case(*, n_classes: int = 3, per_class: int = 8, seed: int = 0) -> Case:
    """A tiny clean tabular dataset (well separated classes) and its representation."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    centers = rng.normal(0, 6, size=(n_classes, 4))
    x = centers[labels] + rng.normal(0, 1, size=(len(labels), 4))
    dataset = Dataset(labels=labels, classes=tuple(f"c{c}" for c in range(n_classes)),
                      features=x, source="tiny")
    return dataset, build_representation(dataset, folds=2, seed=seed)


def _frozen_copy(rep: Representation) -> Representation:
    changes: dict[str, np.ndarray] = {}
    for name in _ARRAYS:
        arr = getattr(rep, name)
        if arr is not None:
            copy = np.array(arr, copy=True)
            copy.flags.writeable = False
            changes[name] = copy
    return dataclasses.replace(rep, **changes)  # type: ignore[arg-type]


def _same_rep(a: Representation, b: Representation) -> bool:
    for name in _ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return True


def _same_data(a: Dataset, b: Dataset) -> bool:
    return (np.array_equal(a.labels, b.labels) and a.classes == b.classes
            and np.array_equal(a.ids, b.ids)
            and (a.texts == b.texts)
            and all(np.array_equal(getattr(a, f), getattr(b, f))
                    for f in ("features", "images") if getattr(a, f) is not None))


def check_result(name: str, result: DetectorResult, dataset: Dataset) -> None:
    """The result's shape and the score convention."""
    n = len(dataset)
    assert result.detector == name, f"{name}: result names detector '{result.detector}'"
    assert result.scores.shape == (n,), f"{name}: {result.scores.shape} scores for {n} rows"
    assert result.flags.dtype == bool and result.flags.shape == (n,), f"{name}: bad flags"
    assert np.all((result.scores >= 0) & (result.scores <= 1)), f"{name}: scores outside [0, 1]"
    assert np.all(result.scores[result.flags] >= 0.5), f"{name}: a flagged row scores < 0.5"
    flagged = set(np.flatnonzero(result.flags).tolist())
    assert set(result.reasons) <= flagged, f"{name}: reasons for unflagged rows"
    assert set(result.reasons) == flagged, f"{name}: a flagged row has no reason"
    assert all(r.strip() for r in result.reasons.values()), f"{name}: empty reason"
    assert set(result.suggested_labels) <= flagged, f"{name}: suggestions for unflagged rows"
    codes = range(dataset.n_classes)
    assert all(c in codes for c in result.suggested_labels.values()), f"{name}: bad suggestion"
    assert all(c in codes for c in result.clean_classes), f"{name}: bad clean class code"
    dirty = set(dataset.labels[result.flags].tolist())
    assert not dirty & set(result.clean_classes), f"{name}: a 'clean' class holds flagged rows"


def _check_deterministic(detector: Detector, case: Case, first: DetectorResult) -> None:
    fresh = type(detector)(**detector.get_params())
    name = detector.name
    for again in (fresh.score(*case), detector.score(*case)):
        assert np.array_equal(first.scores, again.scores), f"{name}: scores differ on rerun"
        assert np.array_equal(first.flags, again.flags), f"{name}: flags differ on rerun"
        assert dict(first.reasons) == dict(again.reasons), f"{name}: reasons differ"


def _check_case(detector: Detector, case: Case, *, max_fpr: float | None) -> None:
    dataset, rep = case
    frozen = _frozen_copy(rep)
    result = detector.score(dataset, frozen)
    assert _same_rep(frozen, rep), f"{detector.name}: the representation was modified"
    assert _same_data(dataset, case[0]), f"{detector.name}: the dataset was modified"
    check_result(detector.name, result, dataset)
    _check_deterministic(detector, (dataset, frozen), result)
    if max_fpr is not None:
        allowed = max(1, int(np.floor(max_fpr * len(dataset))))
        assert result.n_flagged <= allowed, (
            f"{detector.name}: {result.n_flagged} of {len(dataset)} clean rows flagged "
            f"({dataset.source}); at most {allowed} allowed")


def check_detector(
    detector: Detector,
    cases: Sequence[Case],
    *,
    max_fpr: float = 0.01,
    tiny: Case | None = None,
) -> None:
    """Run the battery on ``detector`` over clean ``cases`` (and ``tiny``, crash-only).

    ``cases`` must include two-class and multi-class data of a modality the detector
    supports; cases of other modalities are skipped.
    """
    name = detector.name
    assert name in available_detectors(), f"{name}: not registered"
    assert "(" in repr(detector) and isinstance(detector.get_params(), dict)
    usable = [c for c in cases if c[0].modality in detector.modalities]
    assert usable, f"{name}: no case of a modality it supports ({sorted(detector.modalities)})"
    assert {c[0].n_classes == 2 for c in usable} == {True, False}, (
        f"{name}: give both two-class and multi-class cases")
    for case in usable:
        _check_case(detector, case, max_fpr=max_fpr)
    if tiny is not None and tiny[0].modality in detector.modalities:
        _check_case(detector, tiny, max_fpr=None)



@dataclasses.dataclass(frozen=True)
class Design:
    """A case on which setting one parameter to ``value`` must change the result.

    ``base`` holds other parameters for both runs (say a small ``max_rows`` so that
    ``seed`` has a sample to draw).
    """

    case: Case
    value: Any
    base: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def constructor_parameters(cls: type[Detector]) -> dict[str, Any]:
    """Keyword parameters of ``cls.__init__`` and their defaults."""
    sig = inspect.signature(cls.__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _refused(constraint: Constraint) -> Any:
    """A value ``constraint`` refuses."""
    if isinstance(constraint, OneOf):
        return "not-an-option"
    if isinstance(constraint, Interval):
        if constraint.low is not None:
            return constraint.kind(constraint.low - 1)
        if constraint.high is not None:
            return constraint.kind(constraint.high + 1)
    return object()


def _outcome(result: DetectorResult) -> tuple[Any, ...]:
    return (result.scores.tobytes(), result.flags.tobytes(), dict(result.reasons),
            dict(result.suggested_labels), result.hypotheses, result.clean_classes,
            repr(dict(result.meta)))


def check_parameters(
    cls: type[Detector],
    designs: Mapping[str, Design],
    *,
    tiny: Case,
    dead: Mapping[str, str] | None = None,
) -> None:
    """Declared constraints, refused values and live parameters of ``cls``.

    ``designs`` names a :class:`Design` per parameter; ``dead`` lists parameters
    known to change nothing, each with the issue that will fix it (an exemption
    that must be visible, and that fails once the parameter comes alive).
    """
    name = cls.name
    params = constructor_parameters(cls)
    declared = cls.constraints()
    assert set(params) == set(declared), (
        f"{name}: parameters {sorted(params)} but constraints for {sorted(declared)}")
    for param, default in params.items():
        assert declared[param].accepts(default), f"{name}: default {param}={default!r} refused"
        bad = _refused(declared[param])
        try:
            cls(**{param: bad}).score(*tiny)
        except UsageError as exc:
            assert re.match(rf"{re.escape(name)}: {param} must be ", str(exc)), (
                f"{name}: {param}={bad!r} refused with {str(exc)!r}")
        else:
            raise AssertionError(f"{name}: {param}={bad!r} was accepted")
    dead = dict(dead or {})
    missing = set(params) - set(designs)
    assert not missing, f"{name}: no designed case for {sorted(missing)}"
    for param in params:
        design = designs[param]
        before = cls(**design.base).score(*design.case)
        after = cls(**{**design.base, param: design.value}).score(*design.case)
        changed = _outcome(before) != _outcome(after)
        if param in dead:
            assert not changed, (f"{name}: {param} is listed as dead ({dead[param]}) but now "
                                 "changes the result: remove it from the exemptions")
        else:
            assert changed, (f"{name}: {param}={design.value!r} changes nothing on its "
                             "designed case")
