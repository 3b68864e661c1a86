"""The shared detector battery (poisonguard.detect.checks) on every registered detector."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from poisonguard.attack import run_attack
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, synthetic
from poisonguard.detect import available_detectors, get_detector
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.checks import (
    Case,
    Design,
    check_detector,
    check_parameters,
    check_result,
    tiny_case,
)
from poisonguard.detect.neighbours import EXACT_MAX_ROWS
from poisonguard.errors import UsageError
from poisonguard.memo import scan_memo
from poisonguard.represent import Representation, build_representation, scale_features

DETECTORS = sorted(available_detectors())


@pytest.fixture()
def text_memo(request: pytest.FixtureRequest) -> Iterator[None]:
    """A text detector's calls in one test share one memo, as the parts of a scan do:
    each tweet's MiniLM vector (about 20 ms of CPU) is encoded once per test, not at
    every call (poisonguard.memo). The other detectors run without a memo."""
    text_only = get_detector(request.node.callspec.params["name"]).modalities == {"text"}
    with scan_memo() if text_only else contextlib.nullcontext():
        yield


@pytest.fixture(scope="module")
def cases(clean) -> list[Case]:  # type: ignore[no-untyped-def]
    """Two-class and multi-class clean data, tabular and images."""
    digits, _ = clean("digits")
    pair = digits.subset(np.flatnonzero(digits.labels < 2)).replace(classes=digits.classes[:2])
    return [clean("breast_cancer"), clean("wine"), clean("digits"),
            (pair, build_representation(pair, seed=0))]


@pytest.fixture(scope="module")
def tiny() -> Case:
    return tiny_case()


def _text_case(dataset: Dataset) -> Case:
    """Texts with a placeholder representation, for detectors that read only texts."""
    zeros = np.zeros((len(dataset), 1), dtype=np.float32)
    proba = np.full((len(dataset), dataset.n_classes), 1.0 / dataset.n_classes)
    return dataset, Representation(features=zeros, embedding=zeros, proba=proba)


@pytest.fixture(scope="module")
def text_cases() -> list[Case]:
    """Real tweets: three classes, and negative vs positive."""
    tweets = builtin_dataset("tweets-300")
    pair = tweets.subset(np.flatnonzero(tweets.labels != 1))
    pair = pair.replace(labels=np.where(pair.labels == 2, 1, 0), classes=("negative", "positive"))
    return [_text_case(tweets), _text_case(pair)]


@pytest.mark.usefixtures("text_memo")
@pytest.mark.parametrize("name", DETECTORS)
def test_detector_passes_the_battery(name: str, cases: list[Case], text_cases: list[Case],
                                     tiny: Case) -> None:
    """Text-only detectors get the tweets. The generic detectors on text embeddings are
    measured in benchmarks/RESULTS.md (text section), not held to this battery."""
    detector = get_detector(name)
    check_detector(detector, cases if detector.modalities - {"text"} else text_cases, tiny=tiny)


def test_the_battery_catches_a_broken_result(cases: list[Case]) -> None:
    ds, _ = cases[1]
    flags = np.zeros(len(ds), dtype=bool)
    flags[:3] = True
    scores = np.where(flags, 0.9, 0.1)
    three = {i: "r" for i in range(3)}
    bad = [
        (DetectorResult("x", scores, flags, reasons={0: "r"}), "no reason"),
        (DetectorResult("x", scores, flags, reasons={**three, 5: "r"}), "unflagged"),
        (DetectorResult("y", scores, flags, reasons=three), "names detector"),
    ]
    for result, message in bad:
        with pytest.raises(AssertionError, match=message):
            check_result("x", result, ds)
    check_result("x", DetectorResult("x", scores, flags, reasons=three, dataset=ds), ds)


def test_the_result_enforces_the_score_convention_and_clean_classes(cases: list[Case]) -> None:
    ds, _ = cases[1]  # wine: classes 0, 1, 2
    flags = np.zeros(len(ds), dtype=bool)
    first = int(np.flatnonzero(ds.labels == 1)[0])
    flags[first] = True
    scores = np.where(flags, 0.2, 0.8)  # both sides on the wrong side of 0.5
    result = DetectorResult("x", scores, flags, reasons={first: "r"}, dataset=ds)
    assert np.array_equal(result.scores >= 0.5, flags)
    assert result.scores[first] == 0.5 and result.scores.max(initial=0, where=~flags) < 0.5
    assert result.clean_classes == (0, 2) and result.threshold == 0.5
    examined = DetectorResult("x", scores, flags, reasons={first: "r"}, dataset=ds,
                              examined=(1, 2))
    assert examined.clean_classes == (2,)
    assert DetectorResult("x", scores, flags).clean_classes == ()


# --- Parameters: declared, refused with one message, and each one alive -------------------

#: Parameters known to change nothing, each with the issue that will make it count. The
#: battery fails once such a parameter starts to matter: then delete its line here.
DEAD_PARAMETERS: dict[str, dict[str, str]] = {}


def _features_only(dataset: Dataset) -> Case:
    f = scale_features(dataset.matrix())
    proba = np.full((len(dataset), dataset.n_classes), 1.0 / dataset.n_classes)
    return dataset, Representation(features=f, embedding=f, proba=proba, model="input-features")


def _big_case(n: int = EXACT_MAX_ROWS + 1) -> Case:
    """Two noisy blobs with 2% flipped labels, just beyond the exact neighbour search
    (so that the seed of the approximate search matters)."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, n)
    x = (rng.normal(0, 1, (n, 4)) + 2.5 * truth[:, None]).astype(np.float32)
    labels = truth.copy()
    flip = rng.random(n) < 0.02
    labels[flip] = 1 - labels[flip]
    p1 = 1 / (1 + np.exp(-(x.sum(axis=1) - 5.0)))
    data = Dataset(labels=labels, classes=("a", "b"), features=x, source="big")
    return data, Representation(features=x, embedding=x, proba=np.column_stack([1 - p1, p1]))


def _subpopulation_case() -> Case:
    """Three classes of 120 rows; class 0 holds a 12-row cluster far out in the
    embedding whose input features sit next to one row of class 1 and far from the rest
    (so that the reclassification of ``activation`` depends on its ``k``)."""
    rng = np.random.default_rng(0)
    per = 120
    labels = np.repeat(np.arange(3), per)
    emb = rng.normal(0, 1, (3 * per, 8)) + 6 * np.eye(3, 8)[labels]
    emb[:12] += 9.0 * np.eye(8)[5]
    feats = rng.normal(0, 1, (3 * per, 3)) + 10 * np.eye(3)[labels]
    feats[:12] = rng.normal(0, 0.05, (12, 3)) + np.array([0.0, 0.0, -10.0])
    feats[per] = np.array([0.0, 0.0, -10.0])
    data = Dataset(labels=labels, classes=("a", "b", "c"), features=feats, source="subpop")
    return data, Representation(features=feats, embedding=emb,
                                proba=np.eye(3)[labels] * 0.9 + 0.1 / 3)


def _two_triggers_case() -> Case:
    """Trigger A on 30 rows of class 1 relabelled 0, 10 rows of class 0 and 2 rows of
    class 1 left as they are (purity 40/42; 29 of its 40 class-0 rows look like class 1
    once masked); trigger B on 20 rows of class 0 relabelled 1."""
    data = synthetic(600, 8, 2, seed=0)
    x, y = data.matrix().copy(), data.labels.copy()
    rng = np.random.default_rng(0)
    ones = rng.permutation(np.flatnonzero(y == 1))
    zeros = rng.permutation(np.flatnonzero(y == 0))
    a, b = np.r_[ones[:30], zeros[:10]], zeros[10:30]
    x[np.ix_(np.r_[a, ones[30:32]], [0, 1])] = 9.0
    x[np.ix_(b, [2, 3])] = -9.0
    y[a], y[b] = 0, 1
    return _features_only(data.replace(features=x.astype(np.float32), labels=y))


@pytest.fixture(scope="module")
def designs(poisoned) -> dict[str, dict[str, Design]]:  # type: ignore[no-untyped-def]
    """Per detector and parameter, a case and a value on which the parameter must count."""
    flip_result, flip_rep = poisoned("breast_cancer", "flip", rate=0.1, seed=0)
    flipped: Case = (flip_result.dataset, flip_rep)
    dup_result, dup_rep = poisoned("wine", "near-duplicates", rate=0.05, seed=1)
    copies: Case = (dup_result.dataset, dup_rep)
    big, sub, two = _big_case(), _subpopulation_case(), _two_triggers_case()
    cancer = builtin_dataset("breast_cancer")
    trig = _features_only(run_attack("tabular-trigger", cancer, rate=0.05, target=0,
                                     seed=0).dataset)
    stamped = _features_only(run_attack("clean-label", cancer, rate=0.1, target=0,
                                        seed=0).dataset)
    moving = _features_only(run_attack("badnets", builtin_dataset("digits"), rate=0.05,
                                       target=0, seed=0, position="random").dataset)
    collision = run_attack("feature-collision", builtin_dataset("wine"), rate=0.05, target=0,
                           seed=0)
    aimed: Case = _features_only(collision.dataset)
    victim = ((*collision.truth.params["victim"],),)
    victim_class = (int(collision.truth.params["victim_label"]),)
    targeted = {"target": victim, "target_label": victim_class}
    split = {"min_separation": Design(sub, 40.0), "min_rows": Design(sub, 60),
             "max_share": Design(sub, 0.05), "seed": Design(sub, 1)}
    tweets = builtin_dataset("tweets-300")
    clean_text = _text_case(tweets)
    sentence = _text_case(run_attack("sentence-trigger", tweets, rate=0.1, target=2,
                                     seed=0).dataset)
    token = _text_case(run_attack("token-trigger", tweets, rate=0.1, target=2,
                                  seed=0).dataset)
    # target = the majority class: 9 of the 30 messages read as another class without 'cf'
    majority = _text_case(run_attack("token-trigger", tweets, rate=0.1, target=0,
                                     seed=0).dataset)
    return {
        "token": {"n_max": Design(sentence, 1), "min_rows": Design(sentence, 40),
                  "min_purity": Design(clean_text, 0.5), "alpha": Design(clean_text, 0.5),
                  "min_moved": Design(majority, 0.9), "folds": Design(token, 2),
                  "seed": Design(token, 1), "reader": Design(token, "words")},
        "label": {"filter_by": Design(flipped, "confident_learning"),
                  "max_fpr": Design(flipped, 0.2), "certain": Design(flipped, 0.5),
                  "min_margin": Design(flipped, 0.9), "k": Design(flipped, 5),
                  "neighbour_weight": Design(flipped, 0.0), "pair_alpha": Design(flipped, 1e-12),
                  "seed": Design(big, 1)},
        "knn": {"k": Design(flipped, 5), "space": Design(flipped, "embedding_oof"),
                "min_margin": Design(flipped, 0.5), "purity_quantile": Design(flipped, 0.9),
                "certain": Design(flipped, 0.99), "pair_alpha": Design(flipped, 1e-12),
                "seed": Design(big, 1)},
        "outlier": {"k": Design(flipped, 10), "z_flag": Design(flipped, 3.0),
                    "n_estimators": Design(flipped, 20), "max_samples": Design(flipped, 64),
                    "max_reference": Design(flipped, 50), "seed": Design(flipped, 1)},
        "duplicate": {"k": Design(copies, 1), "max_ratio": Design(copies, 0.5),
                      "tie": Design(copies, 1.0), "certain": Design(copies, 1.0),
                      "pair_alpha": Design(copies, 1e-12),
                      "seed": Design(big, 1, base={"max_ratio": 0.9, "k": 20})},
        "spectral": split,
        "spectre": {**split, "dims": Design(sub, 2), "alpha": Design(sub, 0.5)},
        "activation": {**split, "dims": Design(sub, 2), "k": Design(sub, 10)},
        "trigger": {"alpha": Design(trig, 1e-12), "min_other": Design(two, 0.9),
                    "min_purity": Design(two, 1.0), "min_rows": Design(trig, 40),
                    "max_fraction": Design(trig, 0.02), "min_jaccard": Design(trig, 1.0),
                    "max_candidates": Design(two, 1), "max_rows": Design(trig, 300),
                    "window_sizes": Design(moving, ()), "seed": Design(trig, 1)},
        "influence": {"tau": Design(flipped, 2.0), "l2": Design(flipped, 1.0),
                      "max_dims": Design(flipped, 3),
                      "target": Design(aimed, victim, base={"target_label": victim_class}),
                      "target_label": Design(aimed, (0,), base=targeted),
                      "z_flag": Design(aimed, 1e4, base=targeted),
                      "top": Design(aimed, 2, base=targeted),
                      "seed": Design(flipped, 1)},  # the held-out harm's folds
        "cleanlabel": {"alpha": Design(stamped, 1e-12), "min_purity": Design(two, 1.0),
                       "min_jaccard": Design(stamped, 1.0), "max_outside": Design(stamped, 0.0),
                       "min_rows": Design(two, 30), "max_fraction": Design(stamped, 0.02),
                       "max_rows": Design(stamped, 300),
                       "min_other": Design(two, 0.9),
                       "seed": Design(stamped, 1, base={"max_rows": 300})},
    }


@pytest.mark.usefixtures("text_memo")
@pytest.mark.parametrize("name", DETECTORS)
def test_every_parameter_is_declared_checked_and_alive(
        name: str, designs: dict[str, dict[str, Design]], tiny: Case) -> None:
    assert name in designs, f"{name}: add its designed cases to designs() above"
    check_parameters(available_detectors()[name], designs[name], tiny=tiny,
                     dead=DEAD_PARAMETERS.get(name))


def test_a_refused_parameter_reads_one_way(tiny: Case) -> None:
    with pytest.raises(UsageError, match=r"^knn: space must be one of 'features', "
                                         r"'embedding_oof', got 'pixels'$"):
        get_detector("knn", space="pixels").score(*tiny)
    with pytest.raises(UsageError, match=r"^label: k must be an integer >= 1, got 0$"):
        get_detector("label", k=0).score(*tiny)
