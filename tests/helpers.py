"""Test-only helpers shared across test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect import base
from poisonguard.detect.base import Detector, DetectorResult
from poisonguard.represent import Representation


class FlagRowsDetector(Detector):
    """Flags fixed row indices; suggests label 0 for them. For pipeline tests only."""

    name = "test-flag-rows"

    def __init__(self, *, rows: tuple[int, ...] = (0,), suggest: bool = False) -> None:
        self.rows = rows
        self.suggest = suggest

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        scores = np.full(len(dataset), 0.1)
        flags = np.zeros(len(dataset), dtype=bool)
        idx = np.asarray(self.rows, dtype=np.int64)
        scores[idx] = 0.9
        flags[idx] = True
        return DetectorResult(
            self.name, scores, flags, reasons={int(i): "listed by the test" for i in idx},
            suggested_labels={int(i): 0 for i in idx} if self.suggest else {},
        )


@contextmanager
def registered(cls: type[Detector]) -> Iterator[None]:
    """Register a detector class for the duration of a test."""
    base.register_detector(cls)
    try:
        yield
    finally:
        base._REGISTRY.pop(cls.name, None)


def tiny_representation(dataset: Dataset) -> Representation:
    x = dataset.matrix()
    proba = np.eye(dataset.n_classes)[dataset.labels]
    return Representation(features=x, embedding=x, proba=proba)


def f1(flags: np.ndarray, poisoned: np.ndarray) -> float:
    """F1 of boolean ``flags`` against the ``poisoned`` row indices."""
    truth = np.zeros(len(flags), dtype=bool)
    truth[poisoned] = True
    return 2 * int((flags & truth).sum()) / (int(flags.sum()) + int(truth.sum()))
