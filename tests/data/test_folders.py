"""A folder of Parquet files is one dataset for every command."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.data import load_dataset
from poisonguard.data.folders import parquet_files, parquet_shards
from poisonguard.errors import DataError
from poisonguard.provenance.snapshot import build_manifest
from poisonguard.validate import profile_data
from tests.engine.conftest import typed_frame, write_parquet_folder


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("folders")
    frame = typed_frame()
    whole = root / "whole.parquet"
    frame.to_parquet(whole)
    return write_parquet_folder(root / "parts", frame), whole


def test_a_folder_is_its_files_rows_in_name_order(parts: tuple[Path, Path]) -> None:
    folder, whole = parts
    a, b = load_dataset(folder), load_dataset(whole)
    assert list(a.ids) == list(b.ids)
    assert a.feature_names == b.feature_names
    assert a.meta["format"] == "parquet"
    assert [p.name for p in parquet_files(folder) or []] == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    shards = parquet_shards(folder)
    assert sum(s.rows for s in shards) == 178 and shards[-1].offset + shards[-1].rows == 178


def test_snapshot_and_profile_of_a_folder_equal_the_single_file(parts: tuple[Path,
                                                                             Path]) -> None:
    folder, whole = parts
    assert build_manifest(folder).root == build_manifest(whole).root
    assert profile_data(folder).rows == profile_data(whole).rows == 178


def test_cli_scan_reads_a_folder(parts: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = parts
    result = CliRunner().invoke(app, ["scan", str(folder), "--out", str(tmp_path / "s"),
                                      "--no-ledger", "--quiet"])
    assert result.exit_code in (0, 1), result.output
    assert (tmp_path / "s" / "findings.json").exists()


def test_files_that_disagree_on_columns_are_refused(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"x": ["1", "2"], "label": ["a", "b"]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match="b.parquet.*columns differ"):
        load_dataset(tmp_path)


def test_a_folder_mixing_parquet_with_other_files_is_refused(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]}).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="only .parquet files.*notes.txt"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="only .parquet files"):
        build_manifest(tmp_path)
