"""Lineage through the ledger, and the ledger commands."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.data import load_dataset, save_dataset
from poisonguard.provenance.ledger import Ledger
from poisonguard.provenance.lineage import dataset_root, lineage, record_derivation

runner = CliRunner()


def _run(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def test_lineage_walks_back_to_the_source(tmp_path: Path, wine_csv: Path,
                                          keys: tuple[Path, Path], ledger_url: str) -> None:
    assert _run("snapshot", wine_csv, "--out", tmp_path / "raw.json", "--key", keys[0],
                "--ledger", ledger_url)[0] == 0
    raw = load_dataset(wine_csv)
    kept = raw.subset([i for i in range(len(raw)) if i % 10])
    clean, final = tmp_path / "clean.csv", tmp_path / "final.csv"
    save_dataset(kept, clean)
    record_derivation("clean", [(wine_csv, raw)], [(clean, kept)],
                      details={"dropped": len(raw) - len(kept)}, ledger=ledger_url)
    small = kept.subset(range(50))
    save_dataset(small, final)
    record_derivation("clean", [(clean, kept)], [(final, small)], ledger=ledger_url)

    node = lineage(root=dataset_root(small), path=final, ledger=ledger_url)
    assert node.produced_by is not None and node.produced_by.seq == 3
    (parent,) = node.parents
    assert parent.root == dataset_root(kept) and parent.produced_by.seq == 2  # type: ignore[union-attr]
    (source,) = node.sources()
    assert source.path == str(wine_csv.absolute()) and source.root == dataset_root(raw)
    assert [s.seq for s in source.snapshots] == [1] and source.produced_by is None

    code, text = _run("ledger", "lineage", final, "--ledger", ledger_url)
    assert code == 0
    assert "clean #3" in text and "clean #2" in text and "(source)" in text
    assert "wine.csv" in text and "snapshots: #1" in text


def test_ledger_commands(tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path],
                         ledger_url: str) -> None:
    for i in range(3):
        assert _run("snapshot", wine_csv, "--out", tmp_path / f"m{i}.json", "--key", keys[0],
                    "--ledger", ledger_url)[0] == 0
    code, text = _run("ledger", "show", "--ledger", ledger_url, "--json")
    assert code == 0 and [e["seq"] for e in json.loads(text)] == [1, 2, 3]
    code, text = _run("ledger", "show", "--ledger", ledger_url)
    assert code == 0 and "snapshot" in text and "wine.csv" in text
    code, text = _run("ledger", "verify", "--ledger", ledger_url)
    assert code == 0 and "OK: 3 entries, chain intact" in text
    led = Ledger(ledger_url)
    with led.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("UPDATE poisonguard_ledger SET actor = 'mallory' WHERE seq = 2")
    code, text = _run("ledger", "verify", "--ledger", ledger_url)
    assert code == 1 and "entry 2: edited" in text
    with led.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("DELETE FROM poisonguard_ledger WHERE seq = 2")
    code, text = _run("ledger", "verify", "--ledger", ledger_url, "--json")
    report = json.loads(text)
    missing = {"seq": 2, "message": "missing: the entry was deleted"}
    assert code == 1 and missing in report["problems"]


def test_unreachable_ledger_is_a_clear_error(tmp_path: Path, wine_csv: Path) -> None:
    code, text = _run("ledger", "show", "--ledger", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 2 and "error: ledger postgresql+psycopg://nobody@127.0.0.1:1" in text
    code, text = _run("ledger", "show", "--ledger", "nosuchdriver://x")
    assert code == 2 and "error" in text
