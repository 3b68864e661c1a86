"""Every example in poisonguard's docstrings runs as written (doctest, one test each).

The examples of every module are collected (public names and helpers alike), run in a
fresh temporary folder with a temporary HOME and ledger, and compared with their shown
output under ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``; a detector an example registers
is forgotten afterwards. Two more tests make sure every public function and class (the
``__all__`` of ``PUBLIC_PACKAGES``) is among them, and that no example is skipped.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import poisonguard
from poisonguard.detect import base as detect_base
from tests.test_public_api import public_objects

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    """Every module of the package (``__main__`` runs the CLI when imported: left out)."""
    return sorted(m.name for m in pkgutil.walk_packages(poisonguard.__path__, "poisonguard.")
                  if not m.name.endswith(".__main__"))


def _collect() -> dict[str, doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found: dict[str, doctest.DocTest] = {}
    for name in ["poisonguard", *_module_names()]:
        module = importlib.import_module(name)
        found.update((t.name, t) for t in finder.find(module, name) if t.examples)
    return found


EXAMPLES = _collect()
NAMES = sorted(EXAMPLES)


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("POISONGUARD_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setattr(detect_base, "_REGISTRY", dict(detect_base._REGISTRY))
    report: list[str] = []
    result = doctest.DocTestRunner(optionflags=FLAGS).run(EXAMPLES[name], out=report.append)
    assert not result.failed, "".join(report)


#: ``--dist loadscope`` gives each class to one worker: the examples are dealt into
#: SHARDS classes so that xdist spreads them.
SHARDS = 4


def _shard(k: int) -> type:
    class Shard:
        @pytest.mark.parametrize("name", NAMES[k::SHARDS])
        def test_example_runs(self, name: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
            _run(name, tmp_path, monkeypatch)

    Shard.__name__ = Shard.__qualname__ = f"TestExamples{k}"
    return Shard


TestExamples0, TestExamples1, TestExamples2, TestExamples3 = (_shard(k) for k in range(SHARDS))


def test_every_public_function_and_class_has_an_example_that_runs_here() -> None:
    missing = [f"{package}.{name}" for package, name, obj in public_objects()
               if f"{obj.__module__}.{obj.__qualname__}" not in EXAMPLES]
    assert not missing, f"public names without a runnable example: {missing}"


def test_no_docstring_skips_an_example() -> None:
    """A ``+SKIP`` example shows output nobody checks: write one that runs instead."""
    offenders = [f"{path.relative_to(Path(poisonguard.__file__).parent)}:{n}"
                 for path in sorted(Path(poisonguard.__file__).parent.rglob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if "doctest:" in line and "+SKIP" in line]
    assert not offenders, f"'+SKIP' in: {offenders}"
