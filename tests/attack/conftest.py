"""Shared real datasets for the attack tests (loaded once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits

from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return builtin_dataset("digits")


@pytest.fixture(scope="session")
def wine() -> Dataset:
    return builtin_dataset("wine")


@pytest.fixture(scope="session")
def cancer() -> Dataset:
    return builtin_dataset("breast_cancer")


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread() -> Iterator[None]:
    """Small models: one BLAS/OpenMP thread is faster than two spinning on a busy box."""
    with threadpool_limits(limits=1):
        yield
