"""Reputation across rounds: persistent offenders are flagged, one bad round is not."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.errors import UsageError
from poisonguard.federated import Reputation


def test_persistent_offender_flagged_after_min_rounds_not_before() -> None:
    rep = Reputation(min_rounds=4)
    clients = ["a", "b", "c", "d"]
    for r in range(1, 5):
        newly = rep.update(clients, [0.0, 0.1, 0.05, 0.9])
        assert newly == ([] if r < 4 else ["d"])
    assert rep.flagged() == ["d"]
    assert rep.records()[0].client == "d" and rep.records()[0].flagged


def test_one_bad_round_is_forgiven() -> None:
    rep = Reputation(min_rounds=3)
    rng = np.random.default_rng(0)
    for r in range(20):
        scores = rng.uniform(0, 0.2, size=5)
        if r == 7:
            scores[2] = 1.0  # a single outlier round (e.g. an unlucky non-IID batch)
        rep.update(list("abcde"), scores)
    assert rep.flagged() == []
    assert rep.suspicion("c") < 0.5


def test_exclusion_is_opt_in_and_sticky() -> None:
    keep = Reputation(min_rounds=1)
    shut = Reputation(min_rounds=1, exclude=True)
    for rep in (keep, shut):
        rep.update(["a", "b"], [0.0, 1.0])
        rep.update(["a", "b"], [0.0, 0.0])  # behaving now does not unflag
    assert keep.allowed(["a", "b"]).tolist() == [True, True]
    assert shut.allowed(["a", "b", "new"]).tolist() == [True, False, True]
    assert shut.flagged() == ["b"]


def test_decay_lets_old_evidence_fade() -> None:
    rep = Reputation(min_rounds=1, decay=0.5, threshold=0.9)
    rep.update(["a"], [0.0])
    rep.update(["a"], [1.0])
    assert rep.suspicion("a") > Reputation(min_rounds=1).suspicion("never-seen") - 1e-12


@pytest.mark.parametrize(("kwargs", "scores", "message"), [
    ({}, [0.1, 1.5], "score in"),
    ({}, [0.1, float("nan")], "score in"),
    ({}, [0.1], "score in"),
])
def test_bad_scores_are_refused(kwargs: dict, scores: list, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UsageError, match=message):
        Reputation(**kwargs).update(["a", "b"], scores)


def test_parameters_are_validated() -> None:
    for kwargs in ({"min_rounds": 0}, {"threshold": 1.0}, {"decay": 0.0}):
        with pytest.raises(UsageError):
            Reputation(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="twice"):
        Reputation().update(["a", "a"], [0.1, 0.1])
