"""The public API is exactly ``__all__``, and every name in it resolves."""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Iterator
from typing import Any

import poisonguard
from poisonguard.datasets import builtin_dataset


def test_public_api_is_all() -> None:
    public = {n for n in dir(poisonguard) if not n.startswith("_")
              and not isinstance(getattr(poisonguard, n), types.ModuleType)}
    assert public == {n for n in poisonguard.__all__ if not n.startswith("_")}
    assert callable(poisonguard.scan)


def test_scan_via_public_api_on_clean_wine() -> None:
    findings = poisonguard.scan(builtin_dataset("wine"))
    assert len(findings.rows) == 178
    assert findings.summary["flagged"] <= 3  # clean data: at most ~1% of rows flagged


def test_every_public_function_and_class_has_a_numpydoc_docstring_with_an_example() -> None:
    missing = []
    for name in poisonguard.__all__:
        obj = getattr(poisonguard, name)
        if name.startswith("_") or isinstance(obj, str):
            continue
        if isinstance(obj, type) and issubclass(obj, Exception):
            continue  # the exception tree is documented in poisonguard/errors.py
        doc = obj.__doc__ or ""
        if "Examples\n" not in doc or ">>> " not in doc:
            missing.append(name)
    assert not missing, f"no numpydoc Examples section: {missing}"


#: The packages whose ``__all__`` is public API (cli and service are entry points).
PUBLIC_PACKAGES = (
    "poisonguard", "poisonguard.attack", "poisonguard.bench", "poisonguard.clean",
    "poisonguard.data", "poisonguard.datasets", "poisonguard.detect", "poisonguard.engine",
    "poisonguard.federated", "poisonguard.findings", "poisonguard.influence",
    "poisonguard.monitor", "poisonguard.params", "poisonguard.progress",
    "poisonguard.provenance", "poisonguard.report", "poisonguard.represent",
    "poisonguard.scan", "poisonguard.train", "poisonguard.validate",
)

def _has_example(obj: object) -> bool:
    doc = obj.__doc__ or ""
    return "Examples\n" in doc and ">>> " in doc


def public_objects() -> Iterator[tuple[str, str, Any]]:
    """(package, name, object) for every public function and class of PUBLIC_PACKAGES."""
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # the exception tree is documented in poisonguard/errors.py
            yield package, name, obj


def test_every_public_function_and_class_of_every_package_has_an_example() -> None:
    missing = [f"{package}.{name}" for package, name, obj in public_objects()
               if not _has_example(obj)]
    assert not missing, f"public names without a numpydoc Examples section: {missing}"
