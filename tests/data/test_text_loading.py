"""Text files (JSONL, CSV, Parquet): loaded exactly, or refused with the file and the row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.data import load_dataset, save_dataset
from poisonguard.errors import DataError

GOOD = '{"text": "good", "label": "pos"}\n'


@pytest.mark.parametrize("body, needle, row", [
    (GOOD + '{"text": "bad", "label": "neg"\n', "invalid JSON", 1),
    (GOOD + '{"text": "bad"}\n', "needs 'text' and 'label'", 1),
    (GOOD + '["bad", "neg"]\n', "needs 'text' and 'label'", 1),
    (GOOD + '\n{"text": 7, "label": "neg"}\n', "'text' must be a string", 2),
    (GOOD + '{"text": "  ", "label": "neg"}\n', "'text' is empty", 1),
    (GOOD + '{"text": "bad", "label": {"a": 1}}\n', "must be a string or a number", 1),
    (GOOD + '{"text": "bad", "label": null}\n', "must be a string or a number", 1),
    (GOOD + '{"text": "bad", "label": 3}\n', "mixes strings and numbers", 1),
])
def test_bad_jsonl_names_the_row(tmp_path: Path, body: str, needle: str, row: int) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text(body)
    with pytest.raises(DataError, match=needle) as info:
        load_dataset(p)
    assert info.value.row == row and info.value.path == str(p)


def test_jsonl_that_is_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(GOOD.encode() + b'{"text": "caf\xe9", "label": "pos"}\n')
    with pytest.raises(DataError, match="not UTF-8") as info:
        load_dataset(p)
    assert info.value.row == 1


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_text_tables_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"text": ["a fine day, really", "rain, \"again\"\nand again", "ok"],
                          "label": ["pos", "neg", "pos"]})
    first = load_dataset(_write(frame, tmp_path / "in.csv"))
    save_dataset(first, tmp_path / f"out{suffix}")
    again = load_dataset(tmp_path / f"out{suffix}")
    assert again.modality == "text" and again.texts == first.texts
    assert again.classes == ("neg", "pos") and again.ids.tolist() == first.ids.tolist()


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_or_blank_text_in_a_table(tmp_path: Path, suffix: str) -> None:
    for cell, needle in ((None, "'text' is missing"), (" ", "'text' is empty")):
        frame = pd.DataFrame({"text": ["fine", cell, "ok"], "label": ["a", "b", "a"]})
        p = tmp_path / f"t{suffix}"
        frame.to_csv(p, index=False) if suffix == ".csv" else frame.to_parquet(p)
        with pytest.raises(DataError, match=needle) as info:
            load_dataset(p)
        assert info.value.row == 1


def test_bad_labels_in_a_text_table(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame({"text": ["fine", "ok"], "label": [["a"], ["b"]]}).to_parquet(p)
    with pytest.raises(DataError, match="must be a string or a number, got a list") as info:
        load_dataset(p)
    assert info.value.row == 0 and info.value.path == str(p)
    pd.DataFrame({"text": ["fine", "ok"], "y": ["a", "b"]}).to_parquet(p)
    with pytest.raises(DataError, match="no label column 'label'"):
        load_dataset(p)
    pd.DataFrame({"text": ["fine", "ok", "so so"], "label": ["a", None, "b"]}).to_csv(
        tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="the label \\('label'\\) is empty") as info:
        load_dataset(tmp_path / "t.csv")
    assert info.value.row == 1


@pytest.mark.parametrize("name, body", [
    ("t.jsonl", GOOD + '{"text": "", "label": "neg"}\n'),
    ("t.csv", 'text,label\ngood,pos\n" ",neg\n'),
])
def test_cli_refuses_a_bad_text_file_in_one_line(tmp_path: Path, name: str, body: str) -> None:
    p = tmp_path / name
    p.write_text(body)
    res = CliRunner().invoke(app, ["scan", str(p), "--out", str(tmp_path / "scan")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(p) in lines[0] and "row 1" in lines[0]
    assert not (tmp_path / "scan").exists()
