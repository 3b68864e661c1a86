"""The gate on real data: clean splits pass; shifted, flipped, triggered batches fail
and the findings name the cause and the rows."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack import (
    badnets,
    inject_near_duplicates,
    inject_outliers,
    label_flip,
    tabular_trigger,
)
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, digits_images
from poisonguard.validate import CheckReport, Profile, check, profile_data
from tests.validate.conftest import split


def _failing(report: CheckReport, check_name: str) -> list:
    return [f for f in report.failures if f.check == check_name]


def test_false_alarm_rate_over_100_random_clean_splits(record_property) -> None:
    d = builtin_dataset("wine")
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(d))
        k = int(len(d) * rng.uniform(0.4, 0.7))
        report = check(profile_data(d.subset(perm[:k])), d.subset(perm[k:]))
        alarms += not report.passed
    record_property("false_alarm_rate", alarms / 100)
    assert alarms / 100 <= 0.05


def test_clean_split_passes_with_all_checks(cancer_split: tuple[Profile, Dataset]) -> None:
    base, new = cancer_split
    report = check(base, new)
    assert report.passed, [f.message for f in report.failures]
    fams = set(report.summary["families"])
    assert fams >= {"drift", "class_shift", "label_shift", "multivariate", "range", "missing",
                    "label_consistency", "duplicates"}
    assert report.summary["tests"] > 100


def test_shifted_feature_fails_and_blames_rows(cancer_split: tuple[Profile, Dataset]) -> None:
    base, new = cancer_split
    x = np.array(new.features)
    j = new.feature_names.index("mean radius")
    moved = np.arange(0, len(new), 3)
    x[moved, j] += 10 * x[:, j].std()
    report = check(base, new.replace(features=x))
    assert not report.passed
    drift = _failing(report, "drift")
    assert [f.feature for f in drift] == ["mean radius"]
    rng = [f for f in _failing(report, "range") if f.feature == "mean radius"][0]
    assert set(rng.rows) <= set(moved.tolist()) and rng.n_rows > len(moved) // 2
    assert any(f.check == "multivariate" for f in report.failures)


def test_flipped_labels_fail_and_name_the_rows(cancer_split: tuple[Profile, Dataset]) -> None:
    base, new = cancer_split
    res = label_flip(new, rate=0.1, seed=3)
    report = check(base, res.dataset)
    assert not report.passed
    [cons] = _failing(report, "label_consistency")
    truth = set(res.truth.poisoned.tolist())
    blamed = set(cons.rows)
    assert len(blamed & truth) / len(blamed) >= 0.6  # most blamed rows were flipped
    assert len(blamed & truth) / len(truth) >= 0.6  # most flipped rows are blamed
    suggested = cons.detail["suggested_label"]
    orig = res.truth.original_labels
    right = [suggested[r] == str(orig[r]) for r in blamed & truth]
    assert np.mean(right) == 1.0


def test_tabular_trigger_fails_and_names_pattern_and_rows(
        cancer_split: tuple[Profile, Dataset]) -> None:
    base, new = cancer_split
    res = tabular_trigger(new, rate=0.1, target=0, seed=1)
    report = check(base, res.dataset)
    [trig] = _failing(report, "trigger")
    spec = res.truth.params["trigger"]
    assert trig.feature is not None and set(trig.feature.split(",")) == set(spec["names"])
    assert trig.cls == "0"
    assert set(trig.rows) == set(res.truth.poisoned.tolist())
    assert "constant pattern" in trig.message


def test_badnets_images_fail_with_the_patch_pixels() -> None:
    base, new = split(digits_images(), seed=2)
    res = badnets(new, rate=0.05, target=3, seed=0)
    report = check(profile_data(base), res.dataset)
    [trig] = _failing(report, "trigger")
    assert trig.cls == "3"
    assert trig.feature is not None and set(trig.feature.split(",")) == {
        "px6_6", "px6_7", "px7_6", "px7_7"}
    assert set(trig.rows) == set(res.truth.poisoned.tolist())


def test_clean_split_of_images_passes() -> None:
    base, new = split(digits_images(), seed=4)
    report = check(profile_data(base), new)
    assert report.passed, [f.message for f in report.failures]


def test_shift_inside_one_class(digits_split: tuple[Profile, Dataset]) -> None:
    base, new = digits_split
    x = np.array(new.features)
    rows = np.flatnonzero(new.labels == 4)
    j = new.feature_names.index("pixel_3_3")
    x[rows, j] = np.minimum(x[rows, j] + 6, 16)
    report = check(base, new.replace(features=x))
    shifts = _failing(report, "class_shift")
    assert {(f.feature, f.cls) for f in shifts} == {("pixel_3_3", "4")}
    assert set(shifts[0].rows) <= set(rows.tolist())
    assert not [f for f in _failing(report, "drift") if f.feature == "pixel_3_3"] or \
        "only" not in shifts[0].message


def test_outliers_fail_with_the_injected_rows(
        cancer_split: tuple[Profile, Dataset]) -> None:
    base, new = cancer_split
    res = inject_outliers(new, rate=0.05, seed=0)
    report = check(base, res.dataset)
    [far] = _failing(report, "outliers")
    truth = set(res.truth.poisoned.tolist())
    assert truth <= set(far.rows) and len(far.rows) <= len(truth) + 2  # ~1 natural extreme
    assert any(f.check == "range" for f in report.failures)


def test_duplicates_of_baseline_rows_with_other_labels() -> None:
    d = builtin_dataset("breast_cancer")
    base_ds, new = split(d, seed=5)
    base = profile_data(base_ds)
    copies = base_ds.subset(np.arange(8))
    flipped = copies.replace(labels=1 - copies.labels)
    x = np.concatenate([new.features, flipped.features, copies.features[:3]])
    y = np.concatenate([new.labels, flipped.labels, copies.labels[:3]])
    batch = Dataset(labels=y, classes=d.classes, features=x, feature_names=d.feature_names)
    report = check(base, batch)
    [conf] = [f for f in report.failures if f.test == "exact-conflict"]
    n = len(new)
    assert list(conf.rows) == list(range(n, n + 8))
    [same] = [f for f in report.findings if f.test == "exact"]
    assert same.severity == "info" and list(same.rows) == list(range(n + 8, n + 11))


def test_near_duplicates_with_flipped_labels(cancer_split: tuple[Profile, Dataset]) -> None:
    base, new = cancer_split
    res = inject_near_duplicates(new, rate=0.1, seed=2)
    report = check(base, res.dataset)
    [cons] = _failing(report, "label_consistency")
    truth = set(res.truth.poisoned.tolist())
    assert len(set(cons.rows) & truth) >= 0.8 * len(truth)


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_corrections_both_gate(cancer_split: tuple[Profile, Dataset], correction: str) -> None:
    from poisonguard.validate import CheckConfig

    base, new = cancer_split
    cfg = CheckConfig(correction=correction)  # type: ignore[arg-type]
    assert check(base, new, config=cfg).passed
    res = label_flip(new, rate=0.15, seed=0)
    assert not check(base, res.dataset, config=cfg).passed
