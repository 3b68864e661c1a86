"""Typed cells and their canonical row bytes: what the file holds, exactly."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from poisonguard.provenance.canonical import cell_fingerprints, encode_rows, hash_rows
from poisonguard.provenance.snapshot import build_manifest
from poisonguard.provenance.typed import open_typed


def test_a_leading_zero_keeps_a_csv_column_as_text(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,x,label\n007,1.50,a\n8,-0.5,b\n")
    assert [(c.name, c.type) for c in open_typed(path).columns] == [
        ("id", "string"), ("x", "float"), ("label", "string")]
    batch = next(open_typed(path).batches())
    assert batch[0].to_pylist() == ["007", "8"]


def test_id_007_does_not_hash_like_the_number_7(tmp_path: Path) -> None:
    roots = []
    for ident in ("007", "7.0"):
        path = tmp_path / f"{ident}.csv"
        path.write_text(f"id,label\n{ident},a\n12.5,b\n")
        roots.append(build_manifest(path).root)
    assert roots[0] != roots[1]


def test_small_and_large_string_arrays_encode_the_same_bytes() -> None:
    for values in (["a"], ["ab", "", None, "xyz"]):
        small, large = pa.array(values, pa.string()), pa.array(values, pa.large_string())
        buf_s, off_s = encode_rows([small], ["string"])
        buf_l, off_l = encode_rows([large], ["string"])
        assert bytes(buf_s) == bytes(buf_l) and off_s.tolist() == off_l.tolist()
        assert (hash_rows(buf_s, off_s) == hash_rows(buf_l, off_l)).all()
        assert (cell_fingerprints([small], ["string"])
                == cell_fingerprints([large], ["string"])).all()
    buf, off = encode_rows([pa.array(["a"])], ["string"])
    assert bytes(buf) == b"s" + (1).to_bytes(8, "little") + b"a"
