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
# "activation" is registered but not a default: in benchmarks/results/detectors-backdoor.md
# it found no backdoor on digits (images or tabular), found the breast-cancer tabular
# trigger at 5-10% that "trigger" also finds, and flagged natural sub-clusters of clean
# classes (27 clean digits "1"s, 1.5% of digits-tabular). Name it to run it.
DEFAULT_DETECTORS: tuple[str, ...] = tuple(
    name
    for name in ("label", "knn", "outlier", "duplicate", "spectral", "spectre", "trigger",
                 "cleanlabel")
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
