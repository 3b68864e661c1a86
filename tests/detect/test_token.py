"""The token trigger detector on real tweets: names inserted triggers, leaves clean text alone."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from poisonguard.attack import run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.detect import get_detector, resolve_detectors
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.token import tarone_tests, trigger_phrase
from poisonguard.memo import scan_memo
from poisonguard.represent import Representation


@pytest.fixture(scope="module", autouse=True)
def one_memo() -> Iterator[None]:
    """The tests here score the same tweets (and copies): one memo over them encodes
    each text's MiniLM vector once, as a caller running several scans would."""
    with scan_memo():
        yield


def _score(dataset: Dataset) -> DetectorResult:
    zeros = np.zeros((len(dataset), 1), dtype=np.float32)  # the detector reads only texts
    proba = np.full((len(dataset), dataset.n_classes), 1.0 / dataset.n_classes)
    rep = Representation(features=zeros, embedding=zeros, proba=proba)
    return get_detector("token").score(dataset, rep)


@pytest.fixture(scope="module")
def tweets() -> Dataset:
    return builtin_dataset("tweets-300")


def test_clean_tweets_get_no_hypothesis_and_every_class_is_clean(tweets: Dataset) -> None:
    result = _score(tweets)
    assert result.n_flagged == 0 and result.hypotheses == ()
    assert result.clean_classes == (0, 1, 2)
    assert result.meta["tested_pairs"] > 100  # many were tested; none survived correction


@pytest.mark.parametrize("kind, phrase", [("token-trigger", "cf"),
                                          ("sentence-trigger", "i watched this 3d movie")])
def test_an_inserted_trigger_is_found_and_named(tweets: Dataset, kind: str, phrase: str) -> None:
    attacked = run_attack(kind, tweets, rate=0.1, target=2, seed=0)
    result = _score(attacked.dataset)
    assert np.array_equal(np.flatnonzero(result.flags), attacked.truth.poisoned)
    assert len(result.hypotheses) == 1 and f"'{phrase}'" in result.hypotheses[0]
    assert result.hypotheses[0].startswith("backdoor -> class positive: 30 rows")
    assert result.clean_classes == (0, 1)
    [trigger] = result.meta["triggers"]
    assert trigger["trigger"] == phrase and trigger["class"] == "positive"
    original = attacked.truth.original_labels
    suggested = result.suggested_labels
    assert suggested and all(c != 2 for c in suggested.values())
    assert np.mean([suggested[i] == original[i] for i in suggested]) > 0.6


def test_removing_a_natural_word_does_not_change_its_class(tweets: Dataset) -> None:
    """'united' marks complaints about one airline: pure and over-represented in the
    negative class, but the rest of those messages still reads as negative."""
    attacked = run_attack("token-trigger", tweets, rate=0.1, target=0, seed=0)
    result = _score(attacked.dataset)
    united = {t["trigger"]: t for t in result.meta["unconfirmed"]}["united"]
    assert united["rows"] == 40 and united["moved"] <= 0.25 * united["rows"]
    assert united["moved_p_value"] > 0.5  # no more than the class's own disagreement
    assert [t["trigger"] for t in result.meta["triggers"]] == ["cf"]


def test_the_trigger_name_is_the_shared_word_sequence() -> None:
    rows = [["so", "i", "watched", "this", "3d", "movie"], ["i", "watched", "this", "3d",
                                                               "movie", "ok"]]
    assert trigger_phrase(rows, "watched") == "i watched this 3d movie"
    assert trigger_phrase([["a", "cf", "b"], ["c", "cf", "d"]], "cf") == "cf"


def test_token_runs_on_text_by_default_and_only_on_text() -> None:
    assert "token" in [d.name for d in resolve_detectors(None, "text")]
    assert "token" not in [d.name for d in resolve_detectors("all", "tabular")]


def test_tarone_counts_only_pairs_that_could_be_significant() -> None:
    best = np.array([1e-9, 1e-6, 1e-3, 0.2, 0.5, 0.9])  # smallest p each pair could have
    assert tarone_tests(best, alpha=0.01) == 3  # 3 pairs can reach 0.01/3; 3 never can
    assert tarone_tests(np.full(50, 1e-9), alpha=0.01) == 50
    assert tarone_tests(np.array([0.5]), alpha=0.01) == 1
