"""categorical-trigger: raw categorical cells set to the smallest combination of categories
no row holds (pairs, then triples); a table that cannot host one is refused with the
rarest combination named; the encoding stays a valid table row and the written file keeps
its schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.attack import apply_trigger, attack_applies, attack_by_name, save_poisoned
from poisonguard.data import load_table
from poisonguard.datasets import builtin_dataset, open_dataset
from poisonguard.errors import UsageError


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _valid_blocks(ds, rows: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Every categorical block of ``rows`` holds one category or only its missing flag."""
    for c in ds.schema.used:
        if c.kind == "categorical":
            block = ds.features[rows, c.start:c.stop]
            assert set(np.unique(block).tolist()) <= {0.0, 1.0}, c.name
            assert (block.sum(axis=1) == 1).all(), c.name


def _no_triple() -> pd.DataFrame:
    """Three binary categorical columns: every pair of categories exists, one triple
    (a = u, b = p, c = x) does not."""
    combos = [(a, b, c) for a in "uv" for b in "pq" for c in "xy"][1:]
    rows = [combos[i % 7] for i in range(140)]
    return pd.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows],
                         "c": [r[2] for r in rows], "n": np.arange(140.0) % 13,
                         "label": ["k", "l", "m", "m"] * 35})


def test_pairs_first_then_triples_and_the_description_says_which() -> None:
    ds = open_dataset(_no_triple(), label="label")
    result = attack_by_name("categorical-trigger", ds, rate=0.05, seed=0, target="k")
    spec = result.truth.trigger
    assert spec["names"] == ["a = u", "b = p", "c = x"] and spec["rows_with_it"] == 0
    assert "with a = u and b = p and c = x (a combination no row had)" in \
        result.truth.description
    with pytest.raises(UsageError, match=r"every combination of 2 of .* by 20\)"):
        attack_by_name("categorical-trigger", ds, rate=0.05, target="k", n_features=2)


def test_a_table_where_every_combination_exists_is_refused_with_the_rarest() -> None:
    ds = open_dataset(_penguins(), label="species")
    with pytest.raises(UsageError, match=r"2 of the categorical columns island, sex .*"
                                         r"island = Torgersen, sex = male, by 23\)"):
        attack_by_name("categorical-trigger", ds, rate=0.02, target="Gentoo")
    with_year = open_dataset(_penguins(), label="species", categorical=("year",))
    with pytest.raises(UsageError, match=r"2 or 3 of .* island, sex, year .*by 7\)"):
        attack_by_name("categorical-trigger", with_year, rate=0.02, target="Gentoo")


def test_rows_get_the_rarest_real_combination_when_allowed_and_stay_valid() -> None:
    ds = open_dataset(_penguins(), label="species")
    result = attack_by_name("categorical-trigger", ds, rate=0.02, seed=0, target="Gentoo",
                            max_holders=23)
    spec, rows = result.truth.trigger, result.truth.poisoned
    assert "(a combination 23 real rows already had)" in result.truth.description
    assert spec["type"] == "categorical" and spec["columns"] == ["island", "sex"]
    # the rarest island x sex pair of the untouched table (23 rows, all Adelie)
    table = _penguins()
    pairs = table.groupby(["island", "sex"]).size()
    assert spec["rows_with_it"] == int(pairs.min())
    assert tuple(spec["values"]) == pairs.idxmin()
    assert len(rows) == 7 and (result.dataset.labels[rows] == ds.classes.index("Gentoo")).all()
    _valid_blocks(result.dataset, np.arange(len(result.dataset)))
    cells = dict(ds.schema.iter_cells(result.dataset.features[rows[0]]))
    assert [cells[c] for c in spec["columns"]] == spec["values"]
    # only the two categorical blocks (and nothing numeric) changed
    changed = np.flatnonzero((result.dataset.features[rows] != ds.features[rows]).any(axis=0))
    blocks = {j for start, stop in spec["blocks"] for j in range(start, stop)}
    assert set(changed.tolist()) <= blocks
    stamped = apply_trigger(ds, result.truth)
    _valid_blocks(stamped, np.arange(len(stamped)))


def test_written_file_keeps_the_schema_and_names_the_categories(tmp_path: Path) -> None:
    src = tmp_path / "penguins.csv"
    _penguins().to_csv(src, index=False)
    ds = open_dataset(src, label="species")
    result = attack_by_name("categorical-trigger", ds, rate=0.02, seed=1, target="Gentoo",
                            max_holders=30)
    save_poisoned(result, ds, tmp_path / "poisoned.csv")
    before, after = load_table(src), load_table(tmp_path / "poisoned.csv")
    assert list(after.columns) == list(before.columns)
    assert (after.dtypes == before.dtypes).all()
    rows = result.truth.poisoned
    spec = result.truth.trigger
    for column, value in zip(spec["columns"], spec["values"], strict=True):
        assert (after[column].iloc[rows] == value).all()
    untouched = np.setdiff1d(np.arange(len(before)), rows)
    pd.testing.assert_frame_equal(after.iloc[untouched], before.iloc[untouched])
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    pd.testing.assert_frame_equal(after[numeric], before[numeric])
    again = open_dataset(tmp_path / "poisoned.csv", label="species")
    assert again.schema.names == ds.schema.names


def test_cli_writes_it_and_a_table_without_categories_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from poisonguard.cli import app

    src = tmp_path / "t.parquet"
    _no_triple().to_parquet(src, index=False)
    res = CliRunner().invoke(app, ["attack", "categorical-trigger", str(src), "--label",
                                   "label", "--rate", "0.05", "--target", "k",
                                   "--out", str(tmp_path / "p.parquet"),
                                   "--truth", str(tmp_path / "t.json")])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())  # the console wraps long lines
    assert "c = x (a combination no row had)" in said and "class k" in said
    _penguins().to_parquet(tmp_path / "penguins.parquet", index=False)
    res = CliRunner().invoke(app, ["attack", "categorical-trigger",
                                   str(tmp_path / "penguins.parquet"), "--label", "species",
                                   "--rate", "0.02", "--target", "Gentoo",
                                   "--out", str(tmp_path / "q.parquet"),
                                   "--truth", str(tmp_path / "q.json")])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "by 23" in said and "Traceback" not in said
    assert not (tmp_path / "q.parquet").exists() and not (tmp_path / "q.json").exists()
    wine = builtin_dataset("wine")
    assert not attack_applies("categorical-trigger", wine)
    with pytest.raises(UsageError, match="categorical column"):
        attack_by_name("categorical-trigger", wine, rate=0.05, target="0")
