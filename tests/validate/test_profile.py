"""Profiles: merge(profile(A), profile(B)) == profile(A + B); JSON; streamed Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.data import save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.errors import DataError, UsageError
from poisonguard.validate import (
    Profile,
    load_profile,
    merge_profiles,
    open_source,
    profile_data,
    save_profile,
)


def _same(a: Profile, b: Profile) -> None:
    assert a.classes == b.classes and a.rows == b.rows
    np.testing.assert_array_equal(a.label_counts, b.label_counts)
    for ma, mb in zip(a.moments, b.moments, strict=True):
        for f in ("count", "missing", "min", "max", "integer"):
            np.testing.assert_array_equal(getattr(ma, f), getattr(mb, f))
        np.testing.assert_allclose(ma.mean, mb.mean, rtol=1e-9)
        np.testing.assert_allclose(ma.m2, mb.m2, rtol=1e-9)
    for sa, sb in zip(a.samples, b.samples, strict=True):
        np.testing.assert_array_equal(sa.keys, sb.keys)
        np.testing.assert_array_equal(sa.numeric, sb.numeric)
        np.testing.assert_array_equal(sa.categorical, sb.categorical)
    np.testing.assert_array_equal(a.fingerprints.hashes, b.fingerprints.hashes)
    np.testing.assert_array_equal(a.fingerprints.labels, b.fingerprints.labels)
    assert a.categories == b.categories
    np.testing.assert_array_equal(a.cat_missing, b.cat_missing)


def test_merge_of_partitions_equals_profile_of_union() -> None:
    d = builtin_dataset("digits-tabular")
    opts = {"sample_per_class": 40, "max_fingerprints": 500}  # both sketches saturated
    whole = profile_data(d, **opts)  # type: ignore[arg-type]
    cuts = [0, 500, 1100, len(d)]
    parts = [profile_data(d.subset(np.arange(a, b)), **opts)  # type: ignore[arg-type]
             for a, b in zip(cuts, cuts[1:], strict=False)]
    merged = merge_profiles(parts[::-1])  # order does not matter
    _same(merged, whole)
    assert len(whole.fingerprints.hashes) == 500 and whole.fingerprints.coverage < 1
    assert all(len(s) == 40 for s in whole.samples)
    ms, ws = merged.to_dict()["summary"], whole.to_dict()["summary"]
    assert ms["columns"][10]["quantiles"] == ws["columns"][10]["quantiles"]
    assert ms["label_distribution"] == ws["label_distribution"]


def test_sample_is_uniform_within_class() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 1))
    from poisonguard.data import Dataset

    d = Dataset(labels=np.zeros(len(x), dtype=int), classes=("a",), features=x)
    prof = profile_data(d, sample_per_class=2000)
    s = prof.samples[0].numeric[:, 0]
    qs = np.quantile(s, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(qs, np.quantile(x, [0.1, 0.5, 0.9]), atol=0.08)


def test_json_roundtrip(tmp_path: Path) -> None:
    prof = profile_data(builtin_dataset("wine"))
    path = tmp_path / "p.json"
    save_profile(prof, path)
    back = load_profile(path)
    _same(back, prof)
    doc = json.loads(path.read_text())
    col = doc["summary"]["columns"][0]
    assert doc["format"] == "poisonguard-profile" and col["name"] == "alcohol"
    assert col["type"] == "float" and col["missing_rate"] == 0.0
    assert set(col["quantiles"]) >= {"0.5", "0.99"} and len(col["histogram"]["counts"]) == 10
    assert doc["summary"]["labels"] == {"0": 59, "1": 71, "2": 48}


def test_bad_profile_files(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{\"format\": \"something\"}")
    with pytest.raises(DataError, match="not a poisonguard profile"):
        load_profile(p)
    p.write_text("not json")
    with pytest.raises(DataError, match="not JSON"):
        load_profile(p)
    p.write_text(json.dumps({"format": "poisonguard-profile", "version": 1, "columns": []}))
    with pytest.raises(DataError, match="malformed profile"):
        load_profile(p)


def test_merge_refuses_different_columns() -> None:
    a = profile_data(builtin_dataset("wine"))
    b = profile_data(builtin_dataset("breast_cancer"))
    with pytest.raises(UsageError, match="different columns"):
        merge_profiles([a, b])


def test_streamed_parquet_equals_in_memory(tmp_path: Path) -> None:
    d = builtin_dataset("breast_cancer")
    path = tmp_path / "bc.parquet"
    save_dataset(d, path)
    src = open_source(path, batch_rows=50)
    assert sum(1 for _ in src) == int(np.ceil(len(d) / 50))  # really streamed
    streamed = profile_data(path, batch_rows=50, sample_per_class=100)
    _same(streamed, profile_data(d, sample_per_class=100))


def test_tables_keep_categories_and_missing(tmp_path: Path) -> None:
    table = pd.DataFrame({
        "size": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
        "color": ["red", "blue", "red", None, "red", "blue"],
        "label": ["a", "b", "a", "b", "a", "b"],
    })
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    prof = profile_data(path)
    assert prof.kinds == {"size": "numeric", "color": "categorical"}
    summary = {c["name"]: c for c in prof.to_dict()["summary"]["columns"]}
    assert summary["size"]["missing_rate"] == pytest.approx(1 / 6)
    assert summary["size"]["type"] == "float"  # written as 1.0, 2.0: a float column
    assert summary["color"]["frequencies"] == {"red": 0.5, "blue": pytest.approx(1 / 3)}
    assert prof.category_totals(0) == {"red": 3, "blue": 2}


def test_missing_label_column_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no label column 'label'"):
        profile_data(path)
    pd.DataFrame({"x": [1, 2], "label": [1, None]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="row 1"):
        profile_data(path)
