"""Real public tables that ship offline in PyPI packages, as published (NaN included):
the tables and their label columns come from ``benchmarks/_real_tables.py``.

Each table gets a string id column ``row_id`` (P0000, P0001, ...) like many real
exports, so that ``--id`` is exercised.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks._real_tables import TABLES

__all__ = ["TABLES", "real_files", "with_ids"]


def with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    ids = pd.Series([f"P{i:04d}" for i in range(len(frame))], name="row_id")
    return pd.concat([ids, frame], axis=1)


@pytest.fixture(scope="session")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(table, 'csv' | 'parquet') -> a file with the table and its ``row_id`` column."""
    root = tmp_path_factory.mktemp("real")
    out: dict[tuple[str, str], Path] = {}
    for name, (load, _) in TABLES.items():
        frame = with_ids(load())
        out[name, "csv"] = root / f"{name}.csv"
        frame.to_csv(out[name, "csv"], index=False)
        out[name, "parquet"] = root / f"{name}.parquet"
        frame.to_parquet(out[name, "parquet"], index=False)
    return out
