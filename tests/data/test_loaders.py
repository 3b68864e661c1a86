"""Strict loading: every bad input is one DataError naming the file and the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from poisonguard.data import Dataset, load_dataset, load_embeddings, save_dataset
from poisonguard.errors import DataError


def _csv(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_tabular_roundtrip_and_ids(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,b,label\n1,2,x\n3,4,y\n1,2,x\n")
    ds = load_dataset(p)
    assert ds.modality == "tabular"
    assert ds.classes == ("x", "y")
    assert ds.labels.tolist() == [0, 1, 0]
    assert ds.features.shape == (3, 2)
    assert ds.ids[0] == ds.ids[2] != ds.ids[1]  # content ids: duplicates share one


def test_same_values_same_ids_across_formats(tmp_path: Path) -> None:
    table = pd.DataFrame({"a": [0.5, 1.25], "b": [3, 4], "label": [0, 1]})
    table.to_csv(tmp_path / "d.csv", index=False)
    table.to_parquet(tmp_path / "d.parquet", index=False)
    np.savez(tmp_path / "d.npz", X=table[["a", "b"]].to_numpy(), y=table["label"].to_numpy())
    ids = [load_dataset(tmp_path / f"d.{ext}").ids.tolist() for ext in ("csv", "parquet", "npz")]
    assert ids[0] == ids[1] == ids[2]


def test_string_columns_are_one_hot_never_ranks(tmp_path: Path) -> None:
    ds = load_dataset(_csv(tmp_path, "colour,v,label\nred,1,0\nblue,2,1\nred,3,0\n"))
    assert ds.feature_names == ("colour = blue", "colour = red", "v")
    assert ds.features[:, :2].tolist() == [[0, 1], [1, 0], [0, 1]]
    assert ds.describe(1, 1.0) == "colour = red"


def test_missing_cells_are_imputed_with_indicators(tmp_path: Path) -> None:
    ds = load_dataset(_csv(tmp_path, "a,c,label\n1,x,0\n,y,1\n3,,0\n"))
    assert ds.feature_names == ("a", "a (missing)", "c = x", "c = y", "c (missing)")
    assert ds.features[1, :2].tolist() == [2.0, 1.0]  # the median, flagged missing
    assert ds.features[2, 2:].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("text", "needle", "row"),
    [
        ("a,b\n1,2\n", "no label column 'label'", None),
        ("a,label\n1,0\n2\n3,1,5\n", "expected 2 fields, saw 3", 2),
        # a short record: pandas would fill its missing cells as if empty
        ("label,a,b\n0,1,2\n1,3\n0,5,6\n", "line 3: expected 3 fields, saw 2", 1),
        ("a,b,label\n1,2,0\n\n3,4\n", "line 4: expected 3 fields, saw 2", 1),
        ("a,label\n1,0\ninf,1\n", "column 'a' has inf", 1),
        ("a,label\n1,0\n2,\n", "the label ('label') is empty; every row needs a label", 1),
        ("a,label\n", "no rows", None),
        ("label\n1\n2\n", "no feature columns", None),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, needle: str, row: int | None) -> None:
    p = _csv(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_dataset(p)
    assert needle in str(info.value)
    assert str(p) in str(info.value)
    assert info.value.row == row
    assert "\n" not in str(info.value)


def test_empty_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file is empty"):
        load_dataset(_csv(tmp_path, ""))
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        load_dataset(_csv(tmp_path, "x", "d.xlsx"))
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing.csv")


def test_npz_images_and_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", X=np.zeros((4, 5, 5)), y=np.array([0, 1, 0, 1]))
    ds = load_dataset(tmp_path / "ok.npz")
    assert ds.modality == "image" and ds.images.shape == (4, 5, 5, 1)
    np.savez(tmp_path / "bad.npz", X=np.zeros((4, 3)), y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="'X' has 4 rows but 'y' has 3"):
        load_dataset(tmp_path / "bad.npz")
    x = np.zeros((3, 2))
    x[2, 1] = np.inf
    np.savez(tmp_path / "inf.npz", X=x, y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="'X' has inf") as info:
        load_dataset(tmp_path / "inf.npz")
    assert info.value.row == 2
    images = np.zeros((3, 4, 4))
    images[1, 2, 2] = np.nan
    np.savez(tmp_path / "nan-images.npz", X=images, y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="NaN pixels") as info:
        load_dataset(tmp_path / "nan-images.npz")
    assert info.value.row == 1
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match="without pickle"):
        load_dataset(tmp_path / "obj.npz")
    np.savez(tmp_path / "nox.npz", y=np.array([0]))
    with pytest.raises(DataError, match="needs arrays 'X' and 'y'"):
        load_dataset(tmp_path / "nox.npz")


def test_image_folder(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((6, 6), 40 * k, dtype=np.uint8)).save(
                tmp_path / "imgs" / cls / f"{k}.png")
    ds = load_dataset(tmp_path / "imgs")
    assert ds.classes == ("cat", "dog") and ds.images.shape == (4, 6, 6, 1)
    (tmp_path / "imgs" / "dog" / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="not a readable image") as info:
        load_dataset(tmp_path / "imgs")
    assert "notes.png" in str(info.value)


def test_jsonl_text(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    ds = load_dataset(p)
    assert ds.modality == "text" and ds.texts == ("good", "bad")
    p.write_text('{"text": "good", "label": "pos"}\n{"text": 3}\n')
    with pytest.raises(DataError) as info:
        load_dataset(p)
    assert info.value.row == 1


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_save_roundtrip(tmp_path: Path, suffix: str) -> None:
    ds = Dataset(labels=np.array([0, 1, 1]), classes=("3", "7"),
                 features=np.arange(6).reshape(3, 2), meta={"label_kind": "int"})
    save_dataset(ds, tmp_path / f"out{suffix}")
    back = load_dataset(tmp_path / f"out{suffix}")
    assert back.ids.tolist() == ds.ids.tolist()
    assert back.classes == ("3", "7")


def test_embeddings(tmp_path: Path) -> None:
    np.save(tmp_path / "e.npy", np.ones((3, 4)))
    assert load_embeddings(tmp_path / "e.npy", 3).shape == (3, 4)
    with pytest.raises(DataError, match="must be 5 x K"):
        load_embeddings(tmp_path / "e.npy", 5)


def test_dataset_invariants() -> None:
    with pytest.raises(ValueError):
        Dataset(labels=np.array([0, 1]), classes=("a", "b"), features=np.zeros((3, 2)))
    with pytest.raises(ValueError):
        Dataset(labels=np.array([0, 2]), classes=("a", "b"), features=np.zeros((2, 2)))
    ds = Dataset(labels=np.array([0, 1]), classes=("a", "b"), features=np.zeros((2, 2)))
    with pytest.raises(ValueError):
        ds.features[0, 0] = 1.0  # read-only: detectors cannot mutate their input


def test_npz_missing_features_are_imputed_like_tables_and_written_back(tmp_path: Path) -> None:
    """NaN in an NPZ feature matrix: median fill plus a ``(missing)`` indicator column,
    as typed tables do; writing the dataset as NPZ gives the NaN back."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    x[[3, 7], 1] = np.nan
    y = np.array([0, 1] * 20)
    np.savez(tmp_path / "nan.npz", X=x, y=y, feature_names=np.array(["a", "b", "c"]))
    ds = load_dataset(tmp_path / "nan.npz")
    assert ds.feature_names == ("a", "b", "c", "b (missing)")
    assert ds.features is not None and np.isfinite(ds.features).all()
    assert ds.features[3, 1] == pytest.approx(np.nanmedian(x[:, 1]))
    assert ds.features[:, 3].nonzero()[0].tolist() == [3, 7]
    save_dataset(ds, tmp_path / "back.npz")
    with np.load(tmp_path / "back.npz") as back:
        assert back["X"].shape == x.shape
        np.testing.assert_array_equal(np.isnan(back["X"]), np.isnan(x))
        np.testing.assert_allclose(back["X"][~np.isnan(x)], x[~np.isnan(x)], rtol=1e-6)
        assert back["feature_names"].tolist() == ["a", "b", "c"]
    np.savez(tmp_path / "empty-col.npz", X=np.full((4, 2), np.nan), y=np.array([0, 1] * 2))
    with pytest.raises(DataError, match="every cell is NaN"):
        load_dataset(tmp_path / "empty-col.npz")
