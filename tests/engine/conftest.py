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
