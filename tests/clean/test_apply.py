"""clean: drop, relabel and quarantine exactly the flagged rows, never the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.clean import CONFIDENT_SCORE, apply_findings, plan_cleaning
from poisonguard.data import load_dataset
from poisonguard.detect.base import DetectorResult
from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings, load_findings, save_findings
from poisonguard.scan import scan_dataset
from tests.helpers import FlagRowsDetector, tiny_representation


@pytest.fixture()
def csv_data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"uid": [f"r{i}" for i in range(20)], "a": rng.normal(size=20),
                          "b": rng.normal(size=20), "label": ["cat", "dog"] * 10})
    path = tmp_path / "train.csv"
    table.to_csv(path, index=False)
    return path


def _findings(path: Path, suggest: bool):
    ds = load_dataset(path, id_column="uid")
    det = FlagRowsDetector(rows=(1, 5), suggest=suggest)
    findings, _, _ = scan_dataset(ds, detectors=[det], representation=tiny_representation(ds))
    return ds, findings


def test_default_quarantines_with_reasons(csv_data: Path, tmp_path: Path) -> None:
    ds, findings = _findings(csv_data, suggest=True)
    assert findings.rows[1].action == "relabel" and findings.rows[1].suggested_label == "cat"
    result = apply_findings(ds, findings, tmp_path / "clean.csv")
    clean = pd.read_csv(tmp_path / "clean.csv")
    quarantined = pd.read_csv(tmp_path / "clean.quarantine.csv")
    assert len(clean) == 18 and list(clean.columns) == ["uid", "a", "b", "label"]
    assert clean["label"].tolist() == pd.read_csv(csv_data)["label"].drop([1, 5]).tolist()
    assert quarantined["uid"].tolist() == ["r1", "r5"]
    assert quarantined["poisonguard_reasons"].str.contains("listed by the test").all()
    assert result.plan.drop.tolist() == [1, 5] and result.plan.relabel == {}


def test_relabel_only_when_asked_and_confident(csv_data: Path, tmp_path: Path) -> None:
    ds, findings = _findings(csv_data, suggest=True)
    apply_findings(ds, findings, tmp_path / "clean.parquet", action="relabel")
    clean = pd.read_parquet(tmp_path / "clean.parquet")
    assert len(clean) == 20
    assert clean.loc[1, "label"] == "cat" and clean.loc[5, "label"] == "cat"
    assert clean.loc[3, "label"] == "dog"


class _ClaimingDetector(FlagRowsDetector):
    """Flags rows 1 and 5 (label dog) at ``strength``, suggests cat; may claim a backdoor."""

    name = "test-claim"

    def __init__(self, *, strength: float, claim: bool) -> None:
        super().__init__(rows=(1, 5), suggest=True)
        self.strength, self.claim = strength, claim

    def score(self, dataset, representation):  # type: ignore[no-untyped-def]
        r = super().score(dataset, representation)
        scores = np.where(r.flags, self.strength, r.scores)
        hypotheses = ["backdoor -> class dog: rows 1 and 5"] if self.claim else []
        return DetectorResult(r.detector, scores, r.flags, reasons=r.reasons,
                              suggested_labels=r.suggested_labels, hypotheses=hypotheses)


@pytest.mark.parametrize("claim", [False, True], ids=["evidence only", "claimed"])
@pytest.mark.parametrize("strength", [0.9, 0.7])
def test_relabel_reads_detector_evidence_whatever_the_fused_band(
        csv_data: Path, tmp_path: Path, claim: bool, strength: float) -> None:
    ds = load_dataset(csv_data, id_column="uid")
    findings, _, _ = scan_dataset(ds, detectors=[_ClaimingDetector(strength=strength, claim=claim)],
                                  representation=tiny_representation(ds))
    assert bool(findings.summary["suspected_attacks"]) == claim
    row = findings.rows[1]
    assert row.evidence == strength and (row.score >= 0.75) == claim  # band != evidence
    expected = {1: 0, 5: 0} if strength >= CONFIDENT_SCORE else {}
    assert plan_cleaning(findings, 20, action="relabel").relabel == expected
    for name in ("f.json", "f.parquet"):  # written and read back: the same decision
        save_findings(findings, tmp_path / name)
        assert plan_cleaning(load_findings(tmp_path / name), 20,
                             action="relabel").relabel == expected
    old = findings.to_dict()  # a file written before the field: evidence from detector scores
    for r in old["rows"]:
        del r["evidence"]
    assert plan_cleaning(Findings.from_dict(old), 20, action="relabel").relabel == expected


def test_review_and_drop_modes(csv_data: Path) -> None:
    ds, findings = _findings(csv_data, suggest=True)
    assert plan_cleaning(findings, 20, action="review").relabel == {}
    assert plan_cleaning(findings, 20, action="drop").drop.tolist() == [1, 5]
    assert plan_cleaning(findings, 20, action="relabel").relabel == {1: 0, 5: 0}
    with pytest.raises(UsageError, match="unknown action"):
        plan_cleaning(findings, 20, action="suggested")  # type: ignore[arg-type]


def test_conflicting_duplicates_keep_one_consistent_copy(tmp_path: Path) -> None:
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0, 1.0, 1.0, 4.0] * 2,
                          "label": ["x", "y", "x", "x", "y", "y"] * 2})
    table.loc[6:, "a"] += 10  # the second half has no duplicates
    table.to_csv(tmp_path / "d.csv", index=False)
    ds = load_dataset(tmp_path / "d.csv")
    findings, _, _ = scan_dataset(ds, detectors=[FlagRowsDetector(rows=(4,), suggest=True)],
                                  representation=tiny_representation(ds))
    plan = plan_cleaning(findings, len(ds), action="relabel", dataset=ds)
    # rows 0, 3 (x) and 4 (y) share a = 1: the majority copy (row 0) stays, none relabelled
    assert plan.drop.tolist() == [3, 4] and plan.relabel == {}


def test_refuses_to_overwrite_input_and_mismatched_data(csv_data: Path, tmp_path: Path) -> None:
    ds, findings = _findings(csv_data, suggest=False)
    with pytest.raises(UsageError, match="refusing to overwrite"):
        apply_findings(ds, findings, csv_data)
    other = pd.read_csv(csv_data)
    other.loc[3, "a"] = 99.0
    other.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataError, match="does not match the findings"):
        apply_findings(load_dataset(tmp_path / "other.csv"), findings, tmp_path / "c.csv")
    assert not (tmp_path / "c.csv").exists()


def test_npz_output(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(10, 3, 3))
    np.savez(tmp_path / "imgs.npz", X=x, y=np.array([0, 1] * 5))
    ds = load_dataset(tmp_path / "imgs.npz")
    findings, _, _ = scan_dataset(ds, detectors=[FlagRowsDetector(rows=(2,))],
                                  representation=tiny_representation(ds))
    apply_findings(ds, findings, tmp_path / "clean.npz", quarantine=tmp_path / "q.npz")
    assert len(load_dataset(tmp_path / "clean.npz")) == 9
    assert load_dataset(tmp_path / "q.npz").ids.tolist() == [ds.ids[2]]
