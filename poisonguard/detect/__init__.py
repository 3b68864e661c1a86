"""Detectors: each scores every row; importing this package registers the built-ins."""

from poisonguard.detect import (  # noqa: F401  (each module registers its detectors)
    activation,
    cleanlabel,
    duplicate,
    knn,
    label,
    outlier,
    spectral,
    trigger,
)
from poisonguard.detect.base import (
    Detector,
    DetectorResult,
    available_detectors,
    get_detector,
    register_detector,
)

# What a scan runs when no detectors are named (those registered, in this order).
DEFAULT_DETECTORS: tuple[str, ...] = tuple(
    name
    for name in ("label", "knn", "outlier", "duplicate", "spectral", "spectre", "activation",
                 "trigger", "cleanlabel")
    if name in available_detectors()
)

__all__ = [
    "DEFAULT_DETECTORS",
    "Detector",
    "DetectorResult",
    "available_detectors",
    "get_detector",
    "register_detector",
]
