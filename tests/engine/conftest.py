"""A small multi-file Parquet dataset with typed columns, row groups and missing cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.datasets import builtin_dataset


def write_parquet_folder(folder: Path, frame: pd.DataFrame, *, files: int = 3,
                         row_group_size: int = 40) -> Path:
    """``frame`` split into ``files`` Parquet parts (several row groups each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[part].reset_index(drop=True).to_parquet(
            folder / f"part-{k:05d}.parquet", row_group_size=row_group_size)
    (folder / "_SUCCESS").write_text("")  # Spark's marker is skipped
    return folder


def typed_frame(seed: int = 0) -> pd.DataFrame:
    """Wine (178 rows) with a category, an integer column and missing cells."""
    wine = builtin_dataset("wine")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(wine.features[:, :6], columns=[f"f{j}" for j in range(6)])
    frame.loc[rng.choice(len(frame), 9, replace=False), "f2"] = np.nan
    frame["region"] = rng.choice(["north", "south", "east"], len(frame))
    frame["count"] = rng.integers(0, 50, len(frame))
    frame["label"] = np.asarray(wine.classes)[wine.labels]
    return frame


@pytest.fixture(scope="session")
def parquet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parquet_folder(tmp_path_factory.mktemp("engine") / "wine-parts", typed_frame())


def flipped_blobs(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Three overlapping 8-d classes with 4% of the labels flipped: enough rows for an
    IVF search that probes only some of its lists, and rows a neighbour search flags."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, rows)
    x = rng.normal(size=(rows, 8)) + 1.5 * np.eye(3, 8)[label]
    flipped = rng.choice(rows, rows // 25, replace=False)
    label[flipped] = (label[flipped] + 1) % 3
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"x{j}" for j in range(8)])
    frame["label"] = np.array(["a", "b", "c"])[label]
    return frame


@pytest.fixture(scope="session")
def ivf_parquet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 rows in 3 Parquet files: ``--knn ivf`` is approximate there (8 of 37 lists)."""
    return write_parquet_folder(tmp_path_factory.mktemp("engine") / "blobs-parts",
                                flipped_blobs(), row_group_size=200)
