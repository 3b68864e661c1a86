"""attack writes the user's own file back: same type, columns, order, dtypes and ids;
only the cells the attack changed differ (checked column by column)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.attack import load_truth
from poisonguard.attack.options import attack_by_name
from poisonguard.attack.write import save_poisoned
from poisonguard.data import load_table
from poisonguard.datasets import open_dataset
from tests.realtables.conftest import TABLES

ATTACKS = [("flip", None), ("near-duplicates", None), ("outliers", None),
           ("tabular-trigger", "first")]


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Cell-by-cell equality where two missing cells are equal."""
    both_na = a.isna().to_numpy() & b.isna().to_numpy()
    eq = (a.astype(object).to_numpy() == b.astype(object).to_numpy())
    return np.asarray(both_na | eq, dtype=bool)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("table", list(TABLES))
@pytest.mark.parametrize(("kind", "target"), ATTACKS)
def test_attack_keeps_schema_dtypes_and_ids(real_files: dict[tuple[str, str], Path],
                                            tmp_path: Path, table: str, fmt: str, kind: str,
                                            target: str | None) -> None:
    src = real_files[table, fmt]
    label = TABLES[table][1]
    ds = open_dataset(src, label=label, id_column="row_id")
    tgt = ds.classes[0] if target == "first" else None
    result = attack_by_name(kind, ds, rate=0.05, seed=1, target=tgt)
    out = tmp_path / f"poisoned.{fmt}"
    save_poisoned(result, ds, out)
    before, after = load_table(src), load_table(out)
    assert list(after.columns) == list(before.columns)
    for col in before.columns:
        assert after[col].dtype == before[col].dtype, col
    n0 = len(before)
    assert len(after) == len(result.dataset)
    assert after["row_id"].iloc[:n0].tolist() == before["row_id"].tolist()
    assert after["row_id"].is_unique
    truth = result.truth
    changed = set(truth.poisoned.tolist()) - set(truth.added.tolist())
    for col in before.columns:
        same = _same(before[col], after[col].iloc[:n0])
        moved = set(np.flatnonzero(~same).tolist())
        assert moved <= changed, (col, sorted(moved - changed)[:5])
    if kind == "flip":  # labels only: every feature cell is the input's own
        for col in before.columns:
            if col != label:
                assert _same(before[col], after[col].iloc[:n0]).all(), col
        assert (after[label].iloc[:n0] != before[label]).sum() == len(changed)
    # the poisoned file opens again, with class names as written
    again = open_dataset(out, label=label, id_column="row_id")
    assert set(again.classes) == set(ds.classes)
    assert len(again) == len(result.dataset)


def test_attack_cli_names_classes_and_keeps_npz_shape(tmp_path: Path,
                                                      real_files: dict[tuple[str, str], Path]
                                                      ) -> None:
    from typer.testing import CliRunner

    from poisonguard.cli import app

    src = real_files["penguins", "parquet"]
    res = CliRunner().invoke(app, ["attack", "flip-targeted", str(src), "--label", "species",
                                   "--id", "row_id", "--rate", "0.05", "--target", "Gentoo",
                                   "--out", str(tmp_path / "p.parquet"),
                                   "--truth", str(tmp_path / "t.json")])
    assert res.exit_code == 0, res.output
    assert "relabelled to Gentoo" in res.output and "class 2" not in res.output
    assert load_truth(tmp_path / "t.json").classes == ("Adelie", "Chinstrap", "Gentoo")
    wrong = CliRunner().invoke(app, ["attack", "flip", str(src), "--label", "species",
                                     "--rate", "0.05", "--out", str(tmp_path / "p.csv"),
                                     "--truth", str(tmp_path / "t2.json")])
    assert wrong.exit_code == 2 and "input's file type" in wrong.output
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "t2.json").exists()
    images = np.random.default_rng(0).integers(0, 255, size=(60, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "im.npz", X=images, y=np.repeat(["cat", "dog"], 30))
    res = CliRunner().invoke(app, ["attack", "badnets", str(tmp_path / "im.npz"), "--rate",
                                   "0.1", "--target", "dog", "--out", str(tmp_path / "b.npz"),
                                   "--truth", str(tmp_path / "b.json")])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "b.npz") as npz:
        assert npz["X"].shape == (60, 6, 6) and npz["X"].dtype == np.uint8
        assert set(npz["y"].tolist()) == {"cat", "dog"}
