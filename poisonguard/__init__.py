"""poisonguard: find, explain and remove poisoned rows in machine-learning training data."""

from poisonguard._version import __version__
from poisonguard.data import Dataset, load_dataset, save_dataset
from poisonguard.detect import Detector, DetectorResult, available_detectors, get_detector
from poisonguard.errors import (
    DataError,
    IntegrityError,
    MissingDependencyError,
    PoisonguardError,
    UsageError,
)
from poisonguard.findings import Findings, load_findings, save_findings
from poisonguard.scan import scan

__all__ = [
    "DataError",
    "Dataset",
    "Detector",
    "DetectorResult",
    "Findings",
    "IntegrityError",
    "MissingDependencyError",
    "PoisonguardError",
    "UsageError",
    "__version__",
    "available_detectors",
    "get_detector",
    "load_dataset",
    "load_findings",
    "save_dataset",
    "save_findings",
    "scan",
]
