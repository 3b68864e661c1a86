"""Shared fixtures: real data split into a trusted baseline and a new batch."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.validate import Profile, profile_data


def split(d: Dataset, frac: float = 0.5, seed: int = 0) -> tuple[Dataset, Dataset]:
    perm = np.random.default_rng(seed).permutation(len(d))
    k = int(len(d) * frac)
    return d.subset(np.sort(perm[:k])), d.subset(np.sort(perm[k:]))


@pytest.fixture(scope="session")
def cancer_split() -> tuple[Profile, Dataset]:
    base, new = split(builtin_dataset("breast_cancer"))
    return profile_data(base), new


@pytest.fixture(scope="session")
def digits_split() -> tuple[Profile, Dataset]:
    base, new = split(builtin_dataset("digits-tabular"))
    return profile_data(base), new
