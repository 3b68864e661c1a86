"""poisonguard: find, explain and remove poisoned rows in machine-learning training data.

Names are imported on first use (PEP 562), so that ``import poisonguard`` and the
command line's ``--help`` do not pay for scikit-learn, pandas or torch.

Examples
--------
>>> import poisonguard
>>> findings = poisonguard.scan("builtin:wine")  # the default detectors
>>> findings.summary["rows"], findings.summary["flagged"], findings.summary["clean_classes"]
(178, 0, ['0', '1', '2'])
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from poisonguard._version import __version__

#: public name -> the module that defines it
_WHERE = {
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
    "open_dataset": "poisonguard.datasets",
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
    "open_dataset",
    "save_dataset",
    "save_findings",
    "scan",
]

if TYPE_CHECKING:
    from poisonguard.data import Dataset, load_dataset, save_dataset
    from poisonguard.datasets import open_dataset
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


class _Package(types.ModuleType):
    """The package module: a submodule named like a public function (``poisonguard.scan``
    the module vs ``poisonguard.scan()`` the function) never hides the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'poisonguard' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("_"))})
