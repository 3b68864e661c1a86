"""The public API is exactly ``__all__``, and every name in it resolves."""

from __future__ import annotations

import types

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


def test_the_public_examples_run() -> None:
    import doctest

    failures = []
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(verbose=False)
    for name in ("Dataset", "load_dataset", "save_dataset", "get_detector",
                 "available_detectors", "load_findings", "save_findings"):
        for test in finder.find(getattr(poisonguard, name), name):
            result = runner.run(test)
            if result.failed:
                failures.append(name)
    assert not failures, f"examples that fail: {failures}"
