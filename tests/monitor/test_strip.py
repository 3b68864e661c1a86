"""STRIP: triggered inputs are rejected; clean rejections match the target rate."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attack.trigger import stamp
from poisonguard.errors import UsageError
from poisonguard.monitor import StripScreener
from tests.monitor.conftest import TARGET, Digits


def test_triggered_inputs_rejected_clean_rate_within_a_point_of_the_target(
        digits: Digits) -> None:
    g = digits.golden
    spec = digits.attack.truth.params["trigger"]
    rng = np.random.default_rng(0)
    frr, tpr = [], []
    for rep in range(20):  # clean rejection rate: calibrate on one half, measure on the other
        perm = rng.permutation(len(g))
        cal, held = perm[: len(g) // 2], perm[len(g) // 2:]
        screener = StripScreener(target_frr=0.05, seed=rep).fit(digits.badnets_model,
                                                                g.images[cal])
        frr.append(screener.screen(g.images[held]).rejected.mean())
        others = held[g.labels[held] != TARGET]
        tpr.append(screener.screen(stamp(g.images[others], spec)).rejected.mean())
    assert abs(np.mean(frr) - 0.05) <= 0.01
    assert np.mean(tpr) > 0.9  # measured 0.98-1.0 on 3 seeds


def test_too_few_clean_inputs_for_the_target_rate(digits: Digits) -> None:
    with pytest.raises(UsageError, match="too few"):
        StripScreener(target_frr=0.01).fit(digits.clean_model, digits.golden.images[:50])


def test_fastapi_dependency_passes_clean_and_refuses_triggered_inputs(digits: Digits) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from poisonguard.monitor import strip_dependency

    g = digits.golden
    screener = StripScreener(target_frr=0.05).fit(digits.badnets_model, g.images)
    guard = strip_dependency(screener)
    app = FastAPI()

    @app.post("/predict")
    def predict(images: np.ndarray = Depends(guard)) -> dict[str, list[int]]:  # noqa: B008
        return {"labels": [int(v) for v in digits.badnets_model.predict(images)]}

    client = TestClient(app)
    others = np.flatnonzero(g.labels != TARGET)
    keep = others[~screener.screen(g.images[others]).rejected][:4]
    ok = client.post("/predict", json={"inputs": g.images[keep, :, :, 0].tolist()})
    assert ok.status_code == 200 and len(ok.json()["labels"]) == 4
    triggered = stamp(g.images[keep], digits.attack.truth.params["trigger"])
    mixed = np.concatenate([g.images[keep[:2]], triggered[:2]])
    refused = client.post("/predict", json={"inputs": mixed.tolist()})
    assert refused.status_code == 422
    assert refused.json()["detail"]["rejected_rows"] == [2, 3]
    bad = client.post("/predict", json={"inputs": [[1, 2], [3, 4]]})
    assert bad.status_code == 400
