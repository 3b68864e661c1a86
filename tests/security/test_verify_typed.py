"""Issue 10 item 1, 3 (manifest leaks, terminals) and 4: ``verify`` must see every typed cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.provenance.manifest import read_manifest
from poisonguard.provenance.snapshot import build_manifest
from tests.security.conftest import run_cli


def _table(tmp_path: Path, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "user": [f"user{i:05d}" for i in range(n)],
        "amount": np.round(rng.uniform(1000, 50000, n), 2),
        "count": np.arange(20_000_000, 20_000_000 + n),
        "url": [f"https://example.org/{i}" for i in range(n)],
        "label": np.arange(n) % 2,
    })


def _snap_verify(tmp_path: Path, keys: tuple[Path, Path], before: pd.DataFrame,
                 after: pd.DataFrame, *extra: str, suffix: str = "csv") -> tuple[int, str]:
    a, b = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
    for frame, path in ((before, a), (after, b)):
        frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    code, text = run_cli("snapshot", a, "--out", tmp_path / "m.pgm", "--key", keys[0], *extra)
    assert code == 0, text
    return run_cli("verify", b, "--manifest", tmp_path / "m.pgm", "--pubkey", keys[1],
                   "--key", keys[0])


@pytest.mark.parametrize("column,old,new", [
    ("user", "user00012", "user00012-EVIL"),   # strings were ranked, not hashed
    ("amount", None, 0.001),                   # float64 was hashed as float32
    ("count", None, 1),                        # integers above 2**24 collapsed
])
def test_a_changed_cell_is_never_identical(tmp_path: Path, keys: tuple[Path, Path],
                                           column: str, old: object, new: object) -> None:
    before = _table(tmp_path)
    after = before.copy()
    if old is not None:
        after.loc[after[column] == old, column] = new
        assert (after[column] == new).any()
    else:
        after.loc[7, column] = after.loc[7, column] + new  # type: ignore[operator]
    code, text = _snap_verify(tmp_path, keys, before, after)
    assert code == 1 and "CHANGED" in text and f"columns {column}" in text


def test_every_value_of_a_string_column_changed(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    before = _table(tmp_path)
    after = before.assign(user=[u + "x" for u in before.user])  # same ranks as before
    code, text = _snap_verify(tmp_path, keys, before, after)
    assert code == 1 and "40 modified" in text


def test_extra_columns_count_with_a_text_column(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    before = _table(tmp_path).assign(text=[f"review {i}" for i in range(40)])
    after = before.copy()
    after.loc[3, "url"] = "https://evil.example/"
    code, text = _snap_verify(tmp_path, keys, before, after)
    assert code == 1 and "row 3 modified: columns url" in text


def test_id_values_are_hashed_and_swapped_ids_are_caught(tmp_path: Path,
                                                         keys: tuple[Path, Path]) -> None:
    before = _table(tmp_path)
    after = before.copy()
    after.loc[[4, 5], "user"] = after.loc[[5, 4], "user"].to_numpy()
    code, text = _snap_verify(tmp_path, keys, before, after, "--id-column", "user")
    assert code == 1 and "2 modified" in text and "columns user" in text


def test_reordered_rows_are_named(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    before = _table(tmp_path)
    after = before.iloc[[0, 1, 2, 9, 4, 5, 6, 7, 8, 3, *range(10, 40)]]
    code, text = _snap_verify(tmp_path, keys, before, after)
    assert code == 1 and "row 3 -> 9 moved" in text and "row 9 -> 3 moved" in text


def test_dtype_change_with_equal_values_is_a_schema_change(tmp_path: Path,
                                                           keys: tuple[Path, Path]) -> None:
    before = _table(tmp_path)
    after = before.assign(count=before["count"].astype(float))
    code, text = _snap_verify(tmp_path, keys, before, after, suffix="parquet")
    assert code == 1 and "column 'count': type int -> float" in text


def test_csv_and_parquet_with_the_same_typed_values_share_a_root(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    assert build_manifest(tmp_path / "t.csv").root == build_manifest(tmp_path / "t.parquet").root


def test_negative_zero_and_nan(tmp_path: Path) -> None:
    roots = []
    for values in ([0.0, float("nan")], [-0.0, float("nan")], [0.0, -float("nan")]):
        pd.DataFrame({"x": values, "label": [0, 1]}).to_parquet(tmp_path / "z.parquet")
        roots.append(build_manifest(tmp_path / "z.parquet").root)
    assert roots[0] != roots[1] and roots[0] == roots[2]  # -0.0 distinct, one NaN


def test_a_shared_manifest_reveals_no_cell_value(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    rng = np.random.default_rng(1)
    ages = rng.integers(18, 90, 500)
    frame = pd.DataFrame({"name": [f"{rng.integers(1 << 62):x}" for _ in ages], "age": ages,
                          "label": ages % 2})
    frame.to_csv(tmp_path / "p.csv", index=False)
    m = tmp_path / "m.pgm"
    assert run_cli("snapshot", tmp_path / "p.csv", "--out", m, "--key", keys[0])[0] == 0
    manifest = read_manifest(m)
    assert "stats" not in manifest.header and "ids" not in manifest.header
    blob = manifest.cells or b""
    # the old manifest: a fingerprint per cell that depends on that cell alone. Now the
    # per-cell data is ciphertext: no two rows with the same age share any byte pattern
    assert len(blob) == 12 + 500 * 3 * 2 + 16
    cells = np.frombuffer(blob[12:12 + 3000], dtype="<u2").reshape(500, 3)
    same = ages[:, None] == ages[None, :]
    equal_fp = cells[:, 1][:, None] == cells[:, 1][None, :]
    assert (equal_fp & same).sum() - 500 < same.sum() * 0.05  # no equality leak
    wrong = run_cli("keys", "generate", "--out", tmp_path / "other")[0]
    assert wrong == 0
    code, text = run_cli("verify", tmp_path / "p.csv", "--manifest", m, "--pubkey", keys[1],
                         "--key", tmp_path / "other" / "poisonguard.key")
    assert code == 2 and "not the key that signed" in text


def test_control_characters_are_escaped(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    before = _table(tmp_path)
    after = before.copy()
    after.loc[2, "user"] = "\x1b[1A\x1b[2K\rOK: 40 rows identical\nx"
    after.loc[2, "amount"] = 1.0
    code, text = _snap_verify(tmp_path, keys, before, after, "--id-column", "user",
                              suffix="parquet")
    assert code == 1 and "\x1b" not in text and "\r" not in text and "\\x1b[1A" in text
    assert "\nOK" not in text and "\nx" not in text
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,label\n1,2,\x1b[2K\n")
    code, text = run_cli("snapshot", bad, "--out", tmp_path / "x.pgm")
    assert code == 2 and "\x1b" not in text


def test_input_limits_refuse_clearly(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    _table(tmp_path).to_parquet(tmp_path / "t.parquet")
    code, text = run_cli("snapshot", tmp_path / "t.parquet", "--out", tmp_path / "m.pgm",
                         "--max-rows", "10")
    assert code == 2 and "input limit" in text and not (tmp_path / "m.pgm").exists()
    code, text = run_cli("snapshot", tmp_path / "t.parquet", "--out", tmp_path / "m.pgm",
                         "--max-bytes", "100")
    assert code == 2 and "input limit" in text


def test_row_hashes_are_binary_and_small(tmp_path: Path) -> None:
    n = 20_000
    pd.DataFrame({"x": np.arange(n) % 7, "label": np.arange(n) % 2}).to_parquet(
        tmp_path / "tiny.parquet")
    assert run_cli("snapshot", tmp_path / "tiny.parquet", "--out", tmp_path / "m.pgm",
                   "--no-ledger")[0] == 0
    assert (tmp_path / "m.pgm").stat().st_size / n <= 40
    assert json.dumps(read_manifest(tmp_path / "m.pgm").header).count("\n") == 0
