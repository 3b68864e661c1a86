"""Fixtures: digits split into training data and a golden set, and two small MLPs
trained once per session (one on clean digits, one on BadNets-poisoned digits)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from poisonguard.attack import AttackResult, badnets
from poisonguard.data import Dataset, save_dataset
from poisonguard.datasets import digits_images
from poisonguard.monitor import ImageClassifier, save_model, train_classifier
from tests.provenance.conftest import pg_server  # noqa: F401  (fixture, shared)

TARGET = 3  # the backdoor's target class


@dataclass(frozen=True)
class Digits:
    train: Dataset
    golden: Dataset
    golden_path: Path
    attack: AttackResult
    clean_model: ImageClassifier
    badnets_model: ImageClassifier
    clean_path: Path
    badnets_path: Path


@pytest.fixture(autouse=True)
def _isolated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POISONGUARD_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.delenv("POISONGUARD_WEBHOOK", raising=False)


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    import torch

    torch.set_num_threads(1)
    ds = digits_images()
    train_idx, golden_idx = train_test_split(np.arange(len(ds)), test_size=0.4,
                                             stratify=ds.labels, random_state=0)
    train, golden = ds.subset(np.sort(train_idx)), ds.subset(np.sort(golden_idx))
    attack = badnets(train, rate=0.05, target=TARGET, seed=0)
    root = tmp_path_factory.mktemp("monitor")
    golden_path = root / "golden.npz"
    save_dataset(golden, golden_path)
    clean = train_classifier(train.images, train.labels, train.classes, arch="mlp", seed=0)
    poisoned = train_classifier(attack.dataset.images, attack.dataset.labels, train.classes,
                                arch="mlp", seed=0)
    return Digits(train, golden, golden_path, attack, clean, poisoned,
                  save_model(clean, root / "clean.safetensors"),
                  save_model(poisoned, root / "badnets.safetensors"))


@pytest.fixture
def pg_ledger(pg_server: str) -> str:  # noqa: F811
    """A fresh PostgreSQL schema on the loopback server, as a ledger URL."""
    import os

    import psycopg

    name = f"monitor_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{pg_server}/postgres?options=-csearch_path%3D{name}"


_counter = itertools.count()
