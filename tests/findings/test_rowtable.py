"""Findings rows held as columns: same rows as objects, round trips through JSON and Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poisonguard.findings import (
    Findings,
    Reason,
    RowFinding,
    RowTable,
    as_table,
    load_findings,
    save_findings,
)


def _table(n: int = 6) -> RowTable:
    flagged = np.zeros(n, dtype=bool)
    flagged[[1, 4]] = True
    return RowTable(
        row_index=np.arange(n), ids=[f"id{i}" for i in range(n)],
        score=np.where(flagged, 0.8, 0.1), flagged=flagged,
        action=np.array(["relabel" if i == 1 else "drop" if i == 4 else "keep"
                         for i in range(n)], dtype=object),
        suggested=np.array([-1, 2, -1, -1, -1, -1]),
        reasons={1: (Reason("label", 0.8, "wrong label"),), 4: (Reason("outlier", 0.8, "far"),)},
        detector_names=["label", "outlier"],
        detector_scores=np.column_stack([np.linspace(0, 1, n), np.full(n, 0.25)]),
    )


def _findings(rows: RowTable | tuple[RowFinding, ...]) -> Findings:
    return Findings(dataset={"path": "x", "rows": len(rows)}, detectors=("label", "outlier"),
                    rows=rows, summary={"flagged": 2})


def test_rows_are_built_on_access() -> None:
    t = _table()
    assert len(t) == 6 and isinstance(t[1], RowFinding)
    assert t[1].suggested_label == "2" and t[0].suggested_label is None
    assert t[1].reasons[0].detail == "wrong label" and t[0].reasons == ()
    assert t[-1].index == 5 and [r.index for r in t[1:3]] == [1, 2]
    assert t[5].detector_scores == {"label": 1.0, "outlier": 0.25}
    with pytest.raises(IndexError):
        t[6]
    f = _findings(t)
    assert f.flagged_indices() == [1, 4] and [r.index for r in f.flagged] == [1, 4]


def test_mismatched_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per row"):
        RowTable(row_index=np.arange(3), ids=["a"], score=np.zeros(3),
                 flagged=np.zeros(3, bool), action=np.zeros(3, object),
                 suggested=np.zeros(3, int), reasons={}, detector_names=[],
                 detector_scores=np.zeros((3, 0)))


def test_as_table_of_object_rows_matches() -> None:
    objects = tuple(_table())
    t = as_table(_findings(objects))
    assert t.flagged.tolist() == [False, True, False, False, True, False]
    assert t.suggested.tolist() == [-1, 2, -1, -1, -1, -1]
    assert tuple(t) == objects


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    original = _findings(_table())
    path = tmp_path / f"findings{suffix}"
    save_findings(original, path)
    back = load_findings(path)
    assert list(back.rows) == list(original.rows)
    assert back.summary == original.summary and back.detectors == original.detectors
