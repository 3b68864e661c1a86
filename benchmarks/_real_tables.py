"""Real public tables that ship offline in PyPI packages, as published (NaN included).

One loader for the real-tables benchmark and the tests (tests/realtables):

- penguins (palmerpenguins): 344 rows, label ``species``; NaN in four measurements
  and in ``sex``; ``island`` and ``sex`` are strings.
- cars (vega_datasets, local): 406 rows, label ``Origin``; NaN in
  ``Miles_per_Gallon`` and ``Horsepower``; ``Name`` is free text; ``Year`` a date.
- seattle-weather (vega_datasets, local): 1,461 rows, label ``weather``; a ``date``
  column unique per row.

``HELD_OUT`` (benchmarks only, never used to tune a threshold): statsmodels' anes96
(944 voters, label ``vote``: 0 Clinton / 1 Dole) and fair (6,366 women, label
``occupation``, six codes; the affairs survey).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

__all__ = ["HELD_OUT", "TABLES"]


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


def _anes96() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.anes96.load_pandas().data


def _fair() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.fair.load_pandas().data


#: Tables only measured on (name -> (loader, label column)); thresholds were tuned on
#: penguins and cars.
HELD_OUT: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "anes96": (_anes96, "vote"),
    "fair": (_fair, "occupation"),
}
