"""The shared detector battery (poisonguard.detect.checks) on every registered detector."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.detect import available_detectors, get_detector
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.checks import Case, check_detector, check_result, tiny_case
from poisonguard.represent import build_representation

DETECTORS = sorted(available_detectors())


@pytest.fixture(scope="module")
def cases(clean) -> list[Case]:  # type: ignore[no-untyped-def]
    """Two-class and multi-class clean data, tabular and images."""
    digits, _ = clean("digits")
    pair = digits.subset(np.flatnonzero(digits.labels < 2)).replace(classes=digits.classes[:2])
    return [clean("breast_cancer"), clean("wine"), clean("digits"),
            (pair, build_representation(pair, seed=0))]


@pytest.fixture(scope="module")
def tiny() -> Case:
    return tiny_case()


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_passes_the_battery(name: str, cases: list[Case], tiny: Case) -> None:
    check_detector(get_detector(name), cases, tiny=tiny)


def test_the_battery_catches_a_broken_result(cases: list[Case]) -> None:
    ds, _ = cases[1]
    flags = np.zeros(len(ds), dtype=bool)
    flags[:3] = True
    scores = np.where(flags, 0.9, 0.1)
    three = {i: "r" for i in range(3)}
    bad = [
        (DetectorResult("x", scores, flags, reasons={0: "r"}), "no reason"),
        (DetectorResult("x", np.full(len(ds), 0.2), flags, reasons=three), "scores < 0.5"),
        (DetectorResult("x", scores, flags, reasons=three,
                        clean_classes=(int(ds.labels[0]),)), "clean"),
        (DetectorResult("x", scores, flags, reasons={**three, 5: "r"}), "unflagged"),
        (DetectorResult("y", scores, flags, reasons=three), "names detector"),
    ]
    for result, message in bad:
        with pytest.raises(AssertionError, match=message):
            check_result("x", result, ds)
    check_result("x", DetectorResult("x", scores, flags, reasons=three), ds)
