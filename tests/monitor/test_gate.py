"""The promotion gate: a regressing candidate is refused, a good one promoted."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.errors import IntegrityError
from poisonguard.monitor import (
    GateConfig,
    aliases,
    evaluate,
    expected_calibration_error,
    list_golden,
    promote,
    register_golden,
    register_model,
    save_model,
    train_classifier,
)
from poisonguard.provenance import Ledger
from tests.monitor.conftest import Digits


def test_regressing_candidate_is_refused_and_the_verdict_stored(digits: Digits,
                                                                tmp_path_factory) -> None:
    # The candidate never saw most of class 5 labelled as 5.
    labels = np.array(digits.train.labels)
    fives = np.flatnonzero(labels == 5)
    labels[fives[: int(0.8 * len(fives))]] = 6
    worse = train_classifier(digits.train.images, labels, digits.train.classes, arch="mlp",
                             seed=1)
    worse_path = save_model(worse, tmp_path_factory.mktemp("worse") / "worse.safetensors")
    register_golden(digits.golden_path, name="golden")
    register_model(digits.clean_path, name="digits", alias="candidate")
    verdict, move, _ = promote("digits", golden="golden")
    assert verdict.passed and move is not None and move.to_version == 1
    register_model(worse_path, name="digits", alias="candidate")
    verdict, move, cand = promote("digits", golden="golden")
    assert not verdict.passed and move is None and cand.version == 2
    assert any(r.startswith("class 5 accuracy") and "champion" in r for r in verdict.reasons)
    assert aliases("digits")["champion"] == 1
    gate = [e for e in Ledger().entries() if e.kind == "monitor-gate"]
    assert [e.details["passed"] for e in gate] == [True, False]
    assert gate[1].details["candidate"]["per_class"]["5"] < 0.5


def test_absolute_thresholds_apply_without_a_champion(digits: Digits) -> None:
    ev = evaluate(digits.clean_model, digits.golden)
    assert ev.accuracy > 0.9 and set(ev.per_class) == set(digits.golden.classes)
    from poisonguard.monitor import check_gate

    verdict = check_gate(ev, None, GateConfig(min_accuracy=0.999))
    assert not verdict.passed and verdict.reasons[0].startswith("accuracy")


def test_ece_of_a_calibrated_and_an_overconfident_predictor() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20000)
    right = rng.uniform(size=conf.size) < conf
    proba = np.stack([conf, 1 - conf], axis=1)
    labels = np.where(right, 0, 1)
    assert expected_calibration_error(proba, labels) < 0.02
    sure = np.stack([np.ones_like(conf), np.zeros_like(conf)], axis=1)
    assert expected_calibration_error(sure, labels) == pytest.approx(1 - right.mean(), abs=1e-9)


def test_golden_set_is_frozen(digits: Digits, tmp_path) -> None:
    path = tmp_path / "g.npz"
    path.write_bytes(digits.golden_path.read_bytes())
    g = register_golden(path, name="golden", manifest_out=tmp_path / "g.manifest.json")
    assert (g.version, g.rows) == (1, len(digits.golden))
    assert (tmp_path / "g.manifest.json").exists()
    assert register_golden(path, name="golden").version == 2
    from poisonguard.data import save_dataset

    save_dataset(digits.golden.subset(np.arange(10)), path)
    register_model(digits.clean_path, name="digits", alias="candidate")
    with pytest.raises(IntegrityError, match="changed since it was registered"):
        promote("digits", golden="golden")
    assert [x.version for x in list_golden("golden")] == [1, 2]
