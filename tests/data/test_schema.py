"""The typed encoder fills its float32 matrix column by column: the same bits as one
float64 matrix of every column cast at the end."""

from __future__ import annotations

import numpy as np
import pandas as pd

from poisonguard.data.schema import TableSchema, _encode_column, _key


def test_encode_equals_the_whole_float64_matrix_cast_once() -> None:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "row_id": np.arange(n),  # excluded (an index): no encoded columns
        "mass": np.where(rng.random(n) < 0.1, np.nan, rng.normal(1e3, 7.0, n)),
        "island": rng.choice(["A", "B", None], n),
        "when": pd.date_range("2024-01-01", periods=n, freq="37h").strftime("%Y-%m-%d %H:%M"),
        "count": rng.integers(0, 9, n).astype(np.int16),
        "ratio": (rng.random(n) / 3).astype(np.float32),
    })
    schema = TableSchema.infer(frame)
    assert {c.kind for c in schema.columns} == {"excluded", "numeric", "categorical", "date"}
    once = np.column_stack([_encode_column(c, frame[_key(frame, c.name)])
                            for c in schema.used]).astype(np.float32)
    encoded = schema.encode(frame)
    assert encoded.dtype == np.float32 and encoded.shape == (n, schema.width)
    assert encoded.tobytes() == once.tobytes()


def test_a_number_column_with_a_stray_string_says_which_cell() -> None:
    rng = np.random.default_rng(0)
    wide = [f"{v:.3f}" for v in rng.normal(size=200)]
    wide[17] = "?"
    frame = pd.DataFrame({"few": ["5", "x"] + ["6", "7"] * 99, "wide": wide,
                          "words": ["red", "blue"] * 100, "nums": rng.normal(size=200),
                          "codes": ["1", "2", "a", "b"] * 50})
    notes = TableSchema.infer(frame).notes
    assert notes == (
        "column 'few' holds numbers but 1 cell is not (row 1: 'x'), so it is read as "
        "categories; fix or blank that cell to use the column as numbers",
        "column 'wide' holds numbers but 1 cell is not (row 17: '?'), so it is not used as "
        "a feature; fix or blank that cell to use the column as numbers")
    # named as categorical by the user: no note
    assert TableSchema.infer(frame, categorical=["few"]).notes[0].startswith("column 'wide'")


def test_an_id_that_rows_share_is_a_group_key_not_a_measurement() -> None:
    # Ecdat Yogurt's `id` is the household (100 of them, 2,412 purchases): read as a
    # number, household 70's purchases, all of one brand, became "a backdoor".
    n = 60
    frame = pd.DataFrame({
        "id": np.repeat(np.arange(1, 13), 5),  # shared by 5 rows each
        "Ketchup.id": np.repeat(np.arange(20), 3),
        "Ketchup.hid": np.repeat(np.arange(15), 4),  # the household (session 25)
        "hhid": np.repeat(np.arange(10), 6),
        "CustomerID": np.repeat(np.arange(30), 2),
        "paid": np.repeat([1, 2, 3], 20),  # a word ending in "id": a measurement
        "lipid": np.repeat([4, 5, 6], 20),
        "PID": np.repeat(np.arange(7), 9)[:n],  # anes96: party identification, 0-6
        "row_id": np.arange(n),  # unique and consecutive: a row number
        "score": np.linspace(0.0, 1.0, n),
    })
    kinds = {c.name: (c.kind, c.note) for c in TableSchema.infer(frame).columns}
    for name in ("id", "Ketchup.id", "Ketchup.hid", "hhid", "CustomerID"):
        assert kinds[name][0] == "excluded" and "group key" in kinds[name][1], name
    assert kinds["row_id"][0] == "excluded" and "row number" in kinds["row_id"][1]
    for name in ("paid", "lipid", "PID", "score"):
        assert kinds[name][0] == "numeric", name
    # named as categories, an id is used as asked
    asked = TableSchema.infer(frame, categorical=("id",)).columns
    assert next(c for c in asked if c.name == "id").kind == "categorical"
