"""Every docstring Example in poisonguard.federated runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["base", "mean", "coordinate", "krum", "geomed", "fltrust", "reputation", "model",
           "partition", "registry", "simulator"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"poisonguard.federated.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
