"""The engine seam in-process: the sharded paths give what the classic paths give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.datasets import open_dataset
from poisonguard.detect.neighbours import nearest_neighbours
from poisonguard.engine import InProcessEngine, open_engine
from poisonguard.engine.neighbours import engine_neighbours, sharded_neighbours
from poisonguard.errors import UsageError
from poisonguard.provenance.snapshot import build_manifest
from poisonguard.validate import profile_data


def test_in_process_engine_maps_in_order() -> None:
    assert list(InProcessEngine().map(lambda v: v * 2, [3, 1, 2])) == [6, 2, 4]


def test_unknown_engine_and_address_without_ray_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown engine"):
        open_engine("spark")
    with pytest.raises(UsageError, match="--address"):
        open_engine("local", address="ray://x:1")


def test_sharded_loading_gives_the_same_dataset(parquet_folder: Path) -> None:
    classic = open_dataset(parquet_folder)
    sharded = open_dataset(parquet_folder, engine=InProcessEngine())
    assert list(sharded.ids) == list(classic.ids)
    np.testing.assert_array_equal(sharded.features, classic.features)
    np.testing.assert_array_equal(sharded.labels, classic.labels)
    assert len(set(classic.ids)) == len(classic)


def test_sharded_snapshot_has_the_same_root_and_row_hashes(parquet_folder: Path) -> None:
    classic = build_manifest(parquet_folder)
    sharded = build_manifest(parquet_folder, engine=InProcessEngine())
    assert sharded.root == classic.root
    assert sharded.body_bytes() == classic.body_bytes()
    assert sharded.rows == 178


def test_sharded_profile_is_identical(parquet_folder: Path) -> None:
    classic = profile_data(parquet_folder, batch_rows=16)
    sharded = profile_data(parquet_folder, batch_rows=16, engine=InProcessEngine())
    assert json.dumps(sharded.to_dict()) == json.dumps(classic.to_dict())
    assert classic.rows == 178


def test_an_engine_refuses_inputs_it_cannot_shard(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": ["a", "b", "a", "b"]}).to_csv(csv)
    with pytest.raises(UsageError, match="Parquet"):
        open_dataset(csv, engine=InProcessEngine())
    with pytest.raises(UsageError, match="Parquet"):
        build_manifest(csv, engine=InProcessEngine())
    with pytest.raises(UsageError, match="Parquet"):
        profile_data(csv, engine=InProcessEngine())
    with pytest.raises(UsageError, match="built-in"):
        open_dataset("builtin:wine", engine=InProcessEngine())


def test_cli_local_engine_refuses_an_address(parquet_folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["snapshot", str(parquet_folder), "--out",
                                      str(tmp_path / "m.pgm"), "--no-ledger",
                                      "--address", "ray://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--address is for --engine ray" in result.output


def test_sharded_neighbours_are_the_in_process_exact_neighbours() -> None:
    x = np.random.default_rng(1).normal(size=(400, 6)).astype(np.float32)
    exact = nearest_neighbours(x, 9, cache=False)
    with engine_neighbours(InProcessEngine(), mode="exact", shard_rows=70, block_rows=130):
        merged = nearest_neighbours(x, 9, cache=False)
    np.testing.assert_array_equal(merged[1], exact[1])
    np.testing.assert_array_equal(merged[0], exact[0])  # the same distances, bit for bit
    x[7] = x[3]  # an exact copy: each finds the other first, never itself
    with engine_neighbours(InProcessEngine(), mode="exact", shard_rows=70, block_rows=130):
        _, idx = nearest_neighbours(x, 9, cache=False)
    assert idx[3, 0] == 7 and idx[7, 0] == 3
    assert not (idx == np.arange(len(x))[:, None]).any()


def test_ivf_on_an_engine_is_the_in_process_ivf() -> None:
    x = np.random.default_rng(2).normal(size=(3000, 4)).astype(np.float32)
    x[9] = x[4]
    with engine_neighbours(None, mode="ivf"):  # in-process, forced below 50,000 rows
        here = nearest_neighbours(x, 5, seed=1, cache=False)
    with engine_neighbours(InProcessEngine(), mode="ivf", shard_rows=700, block_rows=450):
        sharded = nearest_neighbours(x, 5, seed=1, cache=False)
    np.testing.assert_array_equal(sharded[1], here[1])
    np.testing.assert_array_equal(sharded[0], here[0])
    np.testing.assert_array_equal(here[1], nearest_neighbours(  # = auto beyond the exact size
        x, 5, seed=1, exact_max_rows=1000, cache=False)[1])
    _, exact = nearest_neighbours(x, 5, cache=False)
    assert (here[1] != exact).any()  # approximate: the forced mode did change the search
    assert here[1][4, 0] == 9 and here[1][9, 0] == 4
    with engine_neighbours(None, mode="exact"):  # scikit-learn orders equal distances its way
        np.testing.assert_array_equal(np.sort(nearest_neighbours(x, 5, cache=False)[1]),
                                      np.sort(exact))
    with pytest.raises(UsageError, match="unknown neighbour search"):
        sharded_neighbours(x, 3, engine=InProcessEngine(), mode="hnsw")  # type: ignore[arg-type]
