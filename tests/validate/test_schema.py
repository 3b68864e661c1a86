"""Schema and rule violations in table batches, with the rows to blame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from poisonguard.validate import CheckConfig, check, profile_data


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, size=n)
    return pd.DataFrame({
        "count": rng.poisson(5 + 3 * label),
        "score": rng.normal(label, 1.0),
        "color": rng.choice(["red", "green", "blue"], size=n),
        "label": np.where(label == 1, "yes", "no"),
    })


def _base(tmp_path: Path):
    path = tmp_path / "base.csv"
    _table(400, 0).to_csv(path, index=False)
    return profile_data(path)


def test_clean_table_batch_passes(tmp_path: Path) -> None:
    base = _base(tmp_path)
    new = tmp_path / "new.parquet"
    _table(300, 1).to_parquet(new)
    report = check(base, new, batch_rows=64)
    assert report.passed, [f.message for f in report.failures]


def test_schema_violations_name_columns_and_rows(tmp_path: Path) -> None:
    base = _base(tmp_path)
    t = _table(200, 2)
    t["count"] = t["count"].astype(object)
    t.loc[[3, 50], "count"] = "lots"  # not numbers
    t.loc[7, "count"] = 2.5  # not an integer
    t.loc[[10, 11, 12], "color"] = "purple"  # unseen category
    t.loc[20, "label"] = "maybe"  # unseen class
    t.loc[30:79, "score"] = np.nan  # many missing values
    t["extra"] = 1.0
    path = tmp_path / "new.csv"
    t.to_csv(path, index=False)
    report = check(base, path)
    assert not report.passed
    got = {(f.check, f.test, f.feature): f for f in report.failures}
    rows_type = {r for f in report.failures if f.feature == "count" and f.check == "schema"
                 for r in f.rows}
    assert rows_type == {3, 7, 50}
    assert got[("schema", "category", "color")].rows == (10, 11, 12)
    assert got[("schema", "label", None)].rows == (20,)
    assert got[("schema", "column", "extra")].message == "unexpected column 'extra'"
    miss = got[("missing", "fisher", "score")]
    assert miss.n_rows == 50 and miss.rows == tuple(range(30, 80))


def test_missing_column_and_allowed_extras(tmp_path: Path) -> None:
    base = _base(tmp_path)
    t = _table(200, 3).drop(columns=["score"])
    t["note"] = "x"
    path = tmp_path / "new.csv"
    t.to_csv(path, index=False)
    report = check(base, path, config=CheckConfig(allow_extra_columns=True))
    fails = {(f.check, f.feature) for f in report.failures}
    assert ("schema", "score") in fails and ("schema", "note") not in fails
    infos = [f for f in report.findings if f.severity == "info" and f.feature == "note"]
    assert infos and report.summary["notes"]  # duplicate check skipped: columns differ


def test_categorical_drift_and_class_shift(tmp_path: Path) -> None:
    base = _base(tmp_path)
    t = _table(400, 4)
    yes = np.flatnonzero(t["label"] == "yes")
    t.loc[yes, "color"] = "red"  # only inside class "yes"
    path = tmp_path / "new.csv"
    t.to_csv(path, index=False)
    report = check(base, path)
    shift = [f for f in report.failures if f.check == "class_shift" and f.feature == "color"]
    assert [f.cls for f in shift] == ["yes"] and shift[0].test == "chi2"


def test_text_data_profiles_lengths_and_hashes(tmp_path: Path) -> None:
    import json

    rng = np.random.default_rng(0)
    words = ["good", "bad", "plot", "actor", "great", "awful"]
    path = tmp_path / "t.jsonl"
    with path.open("w") as fh:
        for i in range(300):
            n = 4 + 3 * (i % 2)
            fh.write(json.dumps({"text": " ".join(rng.choice(words, n)), "label": i % 2}) + "\n")
    base = profile_data(path)
    assert base.numeric == ["text.chars", "text.words"] and base.hashed == ["text"]
    report = check(base, path)  # the same rows again: they pass, as known duplicates
    assert report.passed
    [dup] = [f for f in report.findings if f.test == "exact"]
    assert dup.severity == "info" and dup.n_rows == 300


def test_public_api_is_all() -> None:
    import types

    import poisonguard.validate as v

    public = {n for n in dir(v) if not n.startswith("_")
              and not isinstance(getattr(v, n), types.ModuleType)}
    assert public == set(v.__all__)


def test_integer_rule_only_for_integer_columns(tmp_path: Path) -> None:
    """vega cars: Displacement is a float column whose values are whole but one (row 0
    of the held-back part); only integer-typed columns (Weight_in_lbs) get the rule."""
    from vega_datasets import local_data

    cars = local_data.cars().drop(columns=["Name", "Year"])
    whole = (cars["Displacement"] % 1 == 0).to_numpy()
    assert (~whole).sum() == 1  # the one 'not whole' displacement of the published table
    base, new = tmp_path / "base.parquet", tmp_path / "new.parquet"
    cars[whole].to_parquet(base)
    batch = cars[~whole | (np.arange(len(cars)) % 7 == 0)].reset_index(drop=True)
    batch["Weight_in_lbs"] = batch["Weight_in_lbs"].astype(float)
    batch.loc[1, "Weight_in_lbs"] = 3000.5  # an integer column gets a fraction: a finding
    batch.to_parquet(new)
    profile = profile_data(base, label="Origin")
    types = {c["name"]: c["type"] for c in profile.to_dict()["summary"]["columns"]}
    assert types["Displacement"] == "float" and types["Weight_in_lbs"] == "integer"
    report = check(profile, new, label="Origin")
    not_integers = {f.feature: f.rows for f in report.findings
                    if f.check == "schema" and "not integers" in f.message}
    assert not_integers == {"Weight_in_lbs": (1,)}
