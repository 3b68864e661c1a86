"""Session-wide fixtures: clean built-in datasets and poisoned variants, each with its
real representation, built once per test session (training the models takes seconds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from poisonguard.attack import AttackResult, run_attack
from poisonguard.datasets import builtin_dataset
from poisonguard.detect.checks import Case, clean_case
from poisonguard.represent import Representation, build_representation

CaseFactory = Callable[[str], Case]
PoisonFactory = Callable[..., tuple[AttackResult, Representation]]


@pytest.fixture(scope="session")
def clean() -> CaseFactory:
    """``clean("wine")`` -> (dataset, representation), cached for the session."""
    cache: dict[str, Case] = {}

    def get(name: str) -> Case:
        if name not in cache:
            cache[name] = clean_case(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def poisoned() -> PoisonFactory:
    """``poisoned("digits", "flip", rate=0.1)`` -> (AttackResult, representation), cached."""
    cache: dict[tuple[Any, ...], tuple[AttackResult, Representation]] = {}

    def get(name: str, kind: str, **params: Any) -> tuple[AttackResult, Representation]:
        key = (name, kind, tuple(sorted(params.items())))
        if key not in cache:
            result = run_attack(kind, builtin_dataset(name), **params)
            cache[key] = (result, build_representation(result.dataset, seed=0))
        return cache[key]

    return get
