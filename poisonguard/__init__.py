"""poisonguard: find, explain and remove poisoned rows in machine-learning training data.

The public names below load on first use, so that ``import poisonguard`` (and every
CLI command) does not pay for the detectors' heavy imports until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DataError": "poisonguard.errors",
    "Dataset": "poisonguard.data",
    "Detector": "poisonguard.detect",
    "DetectorResult": "poisonguard.detect",
    "Findings": "poisonguard.findings",
    "IntegrityError": "poisonguard.errors",
    "MissingDependencyError": "poisonguard.errors",
    "PoisonguardError": "poisonguard.errors",
    "UsageError": "poisonguard.errors",
    "available_detectors": "poisonguard.detect",
    "get_detector": "poisonguard.detect",
    "load_dataset": "poisonguard.data",
    "load_findings": "poisonguard.findings",
    "save_dataset": "poisonguard.data",
    "save_findings": "poisonguard.findings",
    "scan": "poisonguard.scan",
}

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'poisonguard' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
