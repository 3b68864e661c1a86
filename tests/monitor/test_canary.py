"""Trigger canaries: the BadNets model collapses onto its target, the clean one does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poisonguard.attack import save_truth
from poisonguard.errors import DataError
from poisonguard.monitor import (
    findings_triggers,
    library_triggers,
    run_canaries,
    truth_triggers,
)
from tests.monitor.conftest import TARGET, Digits


def test_badnets_model_fires_on_the_library_trigger_clean_model_stays_quiet(
        digits: Digits) -> None:
    triggers = library_triggers(digits.golden.images)
    bad = run_canaries(digits.badnets_model, digits.golden, triggers)
    fired = {r.trigger: r for r in bad if r.fired}
    assert "badnets-2x2-bottom-right" in fired
    assert {r.target for r in fired.values()} == {str(TARGET)}
    assert fired["badnets-2x2-bottom-right"].asr > 0.9  # measured 0.98-0.99 on 3 seeds
    clean = run_canaries(digits.clean_model, digits.golden, triggers)
    assert not any(r.fired for r in clean)
    assert max(r.asr for r in clean) < 0.35  # measured at most 0.27 on 3 seeds


def test_triggers_from_a_truth_file_and_from_findings(digits: Digits, tmp_path: Path) -> None:
    truth = tmp_path / "truth.json"
    save_truth(digits.attack.truth, truth)
    (trig,) = truth_triggers(truth)
    assert trig.spec["type"] == "patch"
    (res,) = run_canaries(digits.badnets_model, digits.golden, [trig])
    assert res.fired and res.target == str(TARGET)
    spec = digits.attack.truth.params["trigger"]
    r, c, s = spec["row"], spec["col"], spec["size"]
    pixels = [(r + i) * 8 + (c + j) for i in range(s) for j in range(s)]
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"detector_results": {"trigger": {"meta": {"triggers": [
        {"class": TARGET, "features": pixels, "values": [16.0] * len(pixels)}]}}}}))
    (found,) = findings_triggers(findings)
    (res,) = run_canaries(digits.badnets_model, digits.golden, [found])
    assert res.fired and res.target == str(TARGET)
    findings.write_text('{"detector_results": {"trigger": {"meta": {"triggers": [{}]}}}}')
    with pytest.raises(DataError, match="no readable features"):
        findings_triggers(findings)
