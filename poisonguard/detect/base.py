"""The detector interface, its result type and the registry.

A detector is a small estimator-like object: parameters in ``__init__`` (keyword
only), then ``score(dataset, representation) -> DetectorResult``. It never sees the
truth of an attack and never needs the poison rate: thresholds come from the data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from poisonguard.data import Dataset, Modality
from poisonguard.errors import UsageError
from poisonguard.represent.base import Representation

__all__ = [
    "Detector",
    "DetectorResult",
    "available_detectors",
    "get_detector",
    "register_detector",
]


@dataclass(frozen=True, eq=False)
class DetectorResult:
    """Per-row scores in [0, 1] (higher = more suspicious), flags and reasons.

    ``reasons`` maps a flagged row index to one short human sentence.
    ``suggested_labels`` maps a row index to the label code the detector believes.
    ``hypotheses`` are dataset-level sentences ("backdoor -> class 0: 54 rows share
    a 2x2 patch at the image corner"); ``clean_classes`` lists the class codes the
    detector examined and found clean.
    """

    detector: str
    scores: np.ndarray
    flags: np.ndarray
    reasons: Mapping[int, str] = field(default_factory=dict)
    suggested_labels: Mapping[int, int] = field(default_factory=dict)
    hypotheses: tuple[str, ...] = ()
    clean_classes: tuple[int, ...] = ()
    threshold: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        flags = np.asarray(self.flags, dtype=bool)
        if scores.ndim != 1 or flags.shape != scores.shape:
            raise ValueError(f"{self.detector}: scores and flags must be 1-D and the same length")
        if not np.isfinite(scores).all() or scores.min(initial=0) < 0 or scores.max(initial=0) > 1:
            raise ValueError(f"{self.detector}: scores must be finite and in [0, 1]")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "reasons", {int(k): str(v) for k, v in self.reasons.items()})
        object.__setattr__(
            self, "suggested_labels", {int(k): int(v) for k, v in self.suggested_labels.items()}
        )

    @property
    def n_flagged(self) -> int:
        return int(self.flags.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "flagged": self.n_flagged,
            "threshold": self.threshold,
            "hypotheses": list(self.hypotheses),
            "clean_classes": list(self.clean_classes),
            "meta": dict(self.meta),
        }


class Detector(ABC):
    """Base class of every detector. Subclasses set ``name`` and implement ``score``.

    ``needs`` names the parts of the representation used ("features", "embedding",
    "proba", "embedding_oof") so that the scan builds only what is needed;
    ``modalities`` lists the data kinds the detector supports.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset({"features"})
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def requires(self) -> frozenset[str]:
        """The parts of the representation this instance reads (``needs`` by default)."""
        return self.needs

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @abstractmethod
    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        """Score every row of ``dataset``; must not modify its inputs."""


_REGISTRY: dict[str, type[Detector]] = {}
D = TypeVar("D", bound=type[Detector])


def register_detector(cls: D) -> D:
    """Class decorator: make a detector findable by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name '{cls.name}' is taken by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def available_detectors() -> dict[str, type[Detector]]:
    """Registered detectors by name (importing ``poisonguard.detect`` registers the built-ins)."""
    return dict(sorted(_REGISTRY.items()))


def get_detector(name: str, **params: Any) -> Detector:
    """A new detector instance by registered name."""
    factory: Callable[..., Detector] | None = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UsageError(f"unknown detector '{name}' (known: {known})")
    return factory(**params)
