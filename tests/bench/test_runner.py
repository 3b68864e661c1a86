"""The benchmark runner with a stub detector (test-only) and one real end-to-end run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from poisonguard.bench import run_bench, write_outputs
from poisonguard.cli import app
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.detect.base import _REGISTRY, Detector, DetectorResult, register_detector
from poisonguard.errors import UsageError
from poisonguard.represent import Representation

SEEN: list[Dataset] = []


class _FarRows(Detector):
    """Flags rows whose typical |robust z| across features exceeds 4 (data-driven)."""

    name: ClassVar[str] = "stub-far-rows"

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        SEEN.append(dataset)
        x = representation.features
        med = np.median(x, axis=0)
        mad = np.median(np.abs(x - med), axis=0) * 1.4826 + 1e-9
        dist = np.median(np.abs(x - med) / mad, axis=1)
        scores = np.clip(dist / 8.0, 0, 1)
        return DetectorResult(detector=self.name, scores=scores, flags=dist > 4.0)


class _Crash(Detector):
    name: ClassVar[str] = "stub-crash"

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def stubs() -> Iterator[None]:
    register_detector(_FarRows)
    register_detector(_Crash)
    SEEN.clear()
    with threadpool_limits(limits=1):
        yield
    _REGISTRY.pop(_FarRows.name, None)
    _REGISTRY.pop(_Crash.name, None)


@pytest.fixture(scope="module")
def wine() -> Dataset:
    return builtin_dataset("wine")


def test_bench_scores_the_stub_against_the_truth(wine: Dataset, tmp_path: Path) -> None:
    res = run_bench(wine, attacks=["outliers", "badnets", "tabular-trigger"], rates=[0.1],
                    detectors=[_FarRows.name], seed=0)
    assert res.meta["train_rows"] + res.meta["test_rows"] == len(wine)
    assert [s["attack"] for s in res.skipped] == ["badnets"]
    assert "does not apply to tabular data" in res.skipped[0]["reason"]
    runs = {r["attack"]: r for r in res.runs}
    out = runs["outliers"]["detectors"]
    assert out[_FarRows.name]["recall"] == 1.0 and out["fused"]["recall"] == 1.0
    assert out[_FarRows.name]["auroc"] > 0.99
    down = runs["tabular-trigger"]["downstream"]
    assert down["poisoned_asr"] is not None and 0 <= down["cleaned_asr"] <= 1
    assert res.clean[_FarRows.name]["clean_fpr"] < 0.05
    # detectors see only the data: the clean split, then each poisoned dataset, no truth
    assert [len(d) for d in SEEN] == [res.meta["train_rows"]] + [r["rows"] for r in res.runs]
    assert all("truth" not in json.dumps(d.meta) for d in SEEN)
    files = write_outputs(res, tmp_path)
    assert {p.name for p in files} == {"results.json", "results.md", "detection.png",
                                       "downstream.png", "clean_fpr.png"}
    assert (tmp_path / "detection.png").read_bytes()[:4] == b"\x89PNG"
    assert "| outliers | 0.100 |" in (tmp_path / "results.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["attack"] == "outliers"


def test_a_crashing_detector_is_recorded_not_fatal(wine: Dataset) -> None:
    res = run_bench(wine, attacks=["flip"], rates=[0.05],
                    detectors=[_FarRows.name, _Crash.name])
    assert {e["detector"] for e in res.errors} == {_Crash.name}
    assert "boom" in res.errors[0]["error"]
    assert set(res.runs[0]["detectors"]) == {_FarRows.name, "fused"}


def test_observe_sees_each_scan_with_its_representation(wine: Dataset) -> None:
    seen: list[tuple[str, int, tuple[int, ...], bool]] = []

    def observe(where: str, ds: Dataset, rep: Representation, truth: object) -> None:
        seen.append((where, len(ds), rep.proba.shape, truth is None))

    run_bench(wine, attacks=["flip"], rates=[0.05], detectors=[_FarRows.name],
              observe=observe, reads=("proba",))
    assert [(w, clean) for w, _, _, clean in seen] == [("clean data", True),
                                                      ("flip@0.05", False)]
    assert all(shape == (n, 3) for _, n, shape, _ in seen)  # proba built though unread


def test_too_high_rate_for_clean_label_is_a_visible_skip(wine: Dataset) -> None:
    res = run_bench(wine, attacks=["clean-label"], rates=[0.5], detectors=[_FarRows.name],
                    target=2)
    assert res.runs == [] and "only" in res.skipped[0]["reason"]


@pytest.mark.parametrize("kwargs, message", [
    ({"attacks": ["zap"]}, "unknown attack"), ({"rates": [0.7]}, "rate"),
    ({"detectors": ["nope"]}, "unknown detector"), ({"target": 5}, "not a class"),
])
def test_bad_options(wine: Dataset, kwargs: dict, message: str) -> None:
    args = {"attacks": ["flip"], "rates": [0.1], "detectors": [_FarRows.name], **kwargs}
    with pytest.raises(UsageError, match=message):
        run_bench(wine, **args)


def test_bench_cli(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["bench", "builtin:wine", "--attacks", "outliers,blend",
                                   "--rates", "0.1", "--detectors", _FarRows.name,
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipped blend: does not apply to tabular data" in res.output
    assert (out / "results.md").exists() and (out / "results.json").exists()
    bad = CliRunner().invoke(app, ["bench", "builtin:wine", "--rates", "0.1,x",
                                   "--out", str(tmp_path / "b2")])
    assert bad.exit_code == 2 and "--rates" in bad.output
    assert not (tmp_path / "b2").exists()


def test_real_detectors_end_to_end_on_small_data() -> None:
    data = builtin_dataset("wine")
    res = run_bench(data, attacks=["outliers"], rates=[0.1], detectors=["outlier"])
    m = res.runs[0]["detectors"]
    assert m["outlier"]["recall"] >= 0.8 and m["outlier"]["precision"] >= 0.8
    assert res.clean["outlier"]["clean_fpr"] < 0.05
