"""Real public tables that ship offline in PyPI packages, as published (NaN included).

- penguins (palmerpenguins): 344 rows, label ``species``; NaN in four measurements
  and in ``sex``; ``island`` and ``sex`` are strings.
- cars (vega_datasets, local): 406 rows, label ``Origin``; NaN in
  ``Miles_per_Gallon`` and ``Horsepower``; ``Name`` is free text; ``Year`` a date.
- seattle-weather (vega_datasets, local): 1,461 rows, label ``weather``; a ``date``
  column unique per row.

Each table gets a string id column ``row_id`` (P0000, P0001, ...) like many real
exports, so that ``--id`` is exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _cars() -> pd.DataFrame:
    from vega_datasets import local_data

    return local_data.cars()


def _weather() -> pd.DataFrame:
    from vega_datasets import local_data

    return local_data.seattle_weather()


#: name -> (loader, label column)
TABLES: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "penguins": (_penguins, "species"),
    "cars": (_cars, "Origin"),
    "seattle-weather": (_weather, "weather"),
}


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
