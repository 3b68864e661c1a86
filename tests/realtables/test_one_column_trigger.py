"""One-column triggers on real tables: values piled at a column's end (issue 12, "on
real categorical tables a 2% backdoor ranked at the top")."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks._real_tables import HELD_OUT
from poisonguard.attack import run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import open_dataset
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.trigger import TriggerDetector
from poisonguard.detect.trigger_search import single_values
from poisonguard.represent import Representation, scale_features
from tests.realtables.conftest import TABLES

ALL_TABLES = {**TABLES, **HELD_OUT}


def features_only(features: np.ndarray, n_classes: int) -> Representation:
    f = scale_features(features)
    proba = np.full((len(f), n_classes), 1.0 / n_classes)
    return Representation(features=f, embedding=f, proba=proba, model="input-features")


def cars_backdoor(seed: int) -> tuple[Dataset, DetectorResult, int]:
    """The grid's 2% backdoor on vega cars at ``seed`` (2 number columns, 8 rows to Japan),
    the trigger detector's result at that seed (its flags: the 8 rows, no other), and
    Japan."""
    load, label = TABLES["cars"]
    base = open_dataset(load(), label=label)
    japan = base.classes.index("Japan")
    res = run_attack("tabular-trigger", base, rate=0.02, seed=seed, target=japan, n_features=2)
    ds = res.dataset
    result = TriggerDetector(seed=seed).score(ds, features_only(ds.matrix(), ds.n_classes))
    assert res.truth.mask.sum() == 8
    assert np.array_equal(result.flags, res.truth.mask)  # measured: 8 of 8, no other row
    return ds, result, japan


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
def test_untouched_tables_have_no_piled_value(name: str) -> None:
    # No column of an untouched table holds more rows at its smallest or largest value
    # than at the next three values inward together: nothing is examined, so the
    # single values add no test and no candidate (the five tables of the real-table
    # grid, statsmodels' anes96 and fair included; the old rule examined 64-1,026).
    load, label = ALL_TABLES[name]
    ds = open_dataset(load(), label=label)
    cands, sizes = single_values(ds.matrix(), ds.labels, ds.n_classes, min_rows=5,
                                 max_fraction=0.2)
    assert cands == [] and len(sizes) == 0


def test_a_two_column_trigger_at_the_max_of_cars_is_found_through_one_column() -> None:
    # vega cars (406 rows), 2% backdoor as in the real-table grid's seed 1: Horsepower and
    # Weight_in_lbs set to their max (230, 5140; one real USA car held each before),
    # 8 rows relabelled to Japan. Masking both columns, the masked model calls 4 of the
    # 8 another class while it errs on 35% of Japan's own held-out rows (binomial p
    # 0.30): rows from Europe look like Japan to it. Horsepower 230 alone is piled at
    # the column's max (9 rows; the next three values hold 7), 8 of 9 in Japan: label p
    # 3.2e-5 in a family of 4 (the two piles, Europe and Japan) at half the level.
    # Masked, its 8 rows sit
    # at p(Japan) <= 0.01, below every held-out Japan row (rank-sum p 9e-7); the old
    # family of every value of every number column (190 tests) never reached it.
    ds, result, japan = cars_backdoor(1)
    assert result.hypotheses == ("backdoor -> class Japan: 8 rows share a fixed value in "
                                 "1 column",)
    trig = result.meta["triggers"][0]
    assert [ds.feature_names[f] for f in trig["features"]] == ["Horsepower"]
    # its family: the 4 ends examined at half the level (the other half tests the
    # values inside the columns' ranges, 348 there)
    assert trig["tests"] == result.meta["single_value_tests"]["ends"] == 8
    assert trig["label_test"] and trig["p_label_corrected"] < 1e-3
    # the one-split test confirms it, but its model calls 59% of Japan's own held-out
    # rows other classes with Horsepower masked: it cannot speak for Japan alone, and
    # the trees decide (rank-sum p 2.3e-5). Both confirm; the one-split test's rows
    # (8 of 8) stay the flags and its p the trigger's.
    assert trig["base_error"] > 0.5 and trig["crossfit"]
    assert trig["p_mask"] * result.meta["mask_tests"] < 1e-3
    assert all(result.suggested_labels[int(i)] != japan for i in np.flatnonzero(result.flags))


def test_a_one_column_trigger_on_cars_the_one_split_test_misses_is_cross_fitted() -> None:
    # The grid's seed 0: Acceleration set to its max and Year.weekday to 6 (a value 1
    # row in 7 holds anyway), 8 rows relabelled to Japan. Acceleration's max (8 of its
    # 9 holders in Japan) passes its label test, but with it masked the one-split
    # model (linear, a quarter of the rows held out) leaves 3 of the 8 looking like
    # Japan (rank-sum p 0.0066, x 2 tests: not confirmed; before, with 1 test, neither:
    # no trigger, the grid's scan F1 0). Cross-fitted, trees call all 8 another class
    # (rank-sum p 6.5e-5 x 2 = 1.3e-4 < 1e-3; 3.7e-7 to 1.2e-4 over fold seeds 0-9).
    ds, result, japan = cars_backdoor(0)
    (trig,) = result.meta["triggers"]
    assert [ds.feature_names[f] for f in trig["features"]] == ["Acceleration"]
    assert trig["crossfit"] and trig["kind"] == "dirty-label"
    # Bonferroni over both masking tests of the one candidate tested
    assert result.meta["mask_tests"] == 2 and trig["p_mask"] * 2 < 1e-3
    assert all(result.suggested_labels[int(i)] != japan for i in np.flatnonzero(result.flags))
