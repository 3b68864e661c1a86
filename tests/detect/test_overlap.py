"""Natural class overlap, the FPR budget and vetted hypotheses (detect/overlap.py,
detect/hypotheses.py, scan.with_fpr_budget)."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.data import Dataset
from poisonguard.detect import resolve_detectors
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.hypotheses import demote, vet_hypotheses
from poisonguard.detect.knn import KnnDetector
from poisonguard.detect.label import LabelDetector
from poisonguard.detect.neighbours import nearest_neighbours, neighbour_votes
from poisonguard.detect.overlap import (
    DEFAULT_PAIR_ALPHA,
    band_excess,
    lone_excess,
    natural_label_proba,
    null_labels,
    pair_excess,
    uninformed,
)
from poisonguard.errors import UsageError
from poisonguard.represent.base import Representation
from poisonguard.scan import with_fpr_budget


def _overlapping(n: int = 1500, seed: int = 0) -> tuple[Dataset, Representation]:
    """Two overlapping classes whose labels are drawn from the null of natural overlap
    itself: a clean dataset of exactly the difficulty the detector assumes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 2))
    p1 = 1 / (1 + np.exp(-2.5 * x[:, 0]))
    proba = np.column_stack([1 - p1, p1])
    labels = null_labels(proba, draws=1, seed=seed + 1)[0]
    ds = Dataset(labels=labels, classes=("a", "b"), features=x.astype(np.float32), source="t")
    return ds, Representation(features=x, embedding=x, proba=proba)


def test_natural_overlap_is_the_model_where_unsure_and_its_class_where_sure() -> None:
    p = natural_label_proba(np.array([[0.85, 0.15], [0.55, 0.45]]), certain=0.8)
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.55, 0.45]])
    drawn = null_labels(np.array([[0.9, 0.1]] * 50), draws=3)
    assert drawn.shape == (3, 50) and not drawn.any()


@pytest.mark.parametrize("max_fpr", [0.005, 0.05])
def test_max_fpr_is_honoured_on_clean_data_of_the_assumed_difficulty(max_fpr: float) -> None:
    ds, rep = _overlapping()
    result = LabelDetector(max_fpr=max_fpr).score(ds, rep)
    assert result.meta["expected_clean_flags"] <= 1.5 * max_fpr * len(ds)
    assert result.flags.mean() <= 2 * max_fpr  # measured, not only promised
    assert result.meta["max_fpr"] == max_fpr


def test_flips_in_sure_regions_are_flagged_and_boundary_doubts_reviewed() -> None:
    ds, rep = _overlapping()
    labels = ds.labels.copy()
    sure = np.flatnonzero(ds.features[:, 0] > 2.0)[:20]  # p(b) >= 0.993, relabelled a
    labels[sure] = 0
    flipped = ds.replace(labels=labels)
    result = LabelDetector().score(flipped, rep)
    assert result.meta["licensed_pairs"] == ["a -> b"]
    # measured 9 of 20 (0.45) and 12 flags: the pair's natural sure contradictions are
    # flagged with it; flips on the boundary itself are indistinguishable from overlap
    assert result.flags[sure].mean() >= 0.4
    assert result.flags.sum() <= 2 * len(sure)
    assert all(i not in result.review for i in np.flatnonzero(result.flags))
    # every flag lies in the licensed pair (label a, model b); the margin doubts the
    # other way (label b, measured 4 where the null expects 7.5) claim no excess and are
    # reviewed with the margin reason; every other review is natural overlap
    assert (flipped.labels[result.flags] == 0).all()
    doubts = [i for i, text in result.review.items() if "margin doubts" in text]
    assert len(doubts) == result.meta["margin_flags_reviewed"] > 0
    assert (flipped.labels[doubts] == 1).all() and not np.isin(doubts, sure).any()
    assert all("natural overlap" in text for i, text in result.review.items()
               if i not in doubts)


def test_the_fpr_budget_is_shared_and_instances_are_not_modified() -> None:
    chosen = resolve_detectors("label,knn,outlier", "tabular")
    shared = with_fpr_budget(chosen, 0.01)
    assert [d.get_params().get("max_fpr") for d in shared] == [0.01, None, None]
    assert chosen[0].get_params()["max_fpr"] == 0.005
    with pytest.raises(UsageError):
        with_fpr_budget(chosen, 1.5)


def _result(name: str, n: int, flagged: np.ndarray, hypotheses: tuple[str, ...],
            ds: Dataset, scores: np.ndarray | None = None) -> DetectorResult:
    flags = np.zeros(n, dtype=bool)
    flags[flagged] = True
    base = np.where(flags, 0.9, 0.1) if scores is None else scores
    return DetectorResult(name, base, flags, reasons={int(i): "x" for i in flagged},
                          hypotheses=hypotheses, dataset=ds,
                          meta={"classes": {"a": {}, "b": {}}})


def test_a_dirty_label_backdoor_is_not_also_clean_label() -> None:
    n = 100
    ds = Dataset(labels=np.repeat([0, 1], n // 2), classes=("a", "b"),
                 features=np.zeros((n, 2), np.float32), source="t")
    rows = np.arange(60, 70)
    trigger = _result("trigger", n, rows, ("backdoor -> class b: 10 rows share a patch",), ds)
    clean = _result("cleanlabel", n, rows, ("clean-label backdoor? class b: 10 rows share",), ds)
    vetted = vet_hypotheses([trigger, clean], ds)
    assert vetted.kept == ("backdoor -> class b: 10 rows share a patch",)
    assert "dirty-label backdoor" in vetted.withdrawn[0]["why"]


def test_a_cluster_of_rows_with_trusted_labels_is_no_backdoor() -> None:
    n = 200
    ds = Dataset(labels=np.repeat([0, 1], n // 2), classes=("a", "b"),
                 features=np.zeros((n, 2), np.float32), source="t")
    cluster = np.arange(120, 130)
    label = _result("label", n, np.array([], dtype=int), (), ds, scores=np.full(n, 0.05))
    spectre = _result("spectre", n, cluster, ("backdoor -> class b: 10 rows form ...",), ds)
    vetted = vet_hypotheses([label, spectre], ds)
    assert vetted.kept == () and "natural sub-type" in vetted.withdrawn[0]["why"]
    demoted = demote(spectre, vetted.unfounded["spectre"], "not a backdoor", ds)
    assert demoted.n_flagged == 0 and set(demoted.review) == set(cluster.tolist())
    doubted = np.full(n, 0.05)
    doubted[cluster] = 0.4  # the held-out models doubt these labels: relabelled rows
    label = _result("label", n, np.array([], dtype=int), (), ds, scores=doubted)
    assert vet_hypotheses([label, spectre], ds).kept == spectre.hypotheses


def test_a_subpopulation_claim_is_corrected_for_every_class_tested() -> None:
    """A backdoor claim of a subpopulation detector holds at HYPOTHESIS_ALPHA divided
    by the number of classes it examined (Bonferroni over every candidate, issue 12)."""
    classes = tuple("abcdefghij")
    n = 400
    ds = Dataset(labels=np.repeat(np.arange(10), n // 10), classes=classes,
                 features=np.zeros((n, 2), np.float32), source="t")
    cluster = np.arange(40, 50)  # ten rows of class b
    doubted = np.full(n, 0.05)
    others = np.setdiff1d(np.arange(n), cluster)
    doubted[others[::10]] = 0.4  # 39 of the other 390 rows doubted: a base rate of 0.1
    doubted[cluster[:5]] = 0.4  # 5 of 10: binomial tail 0.0016, between 0.01 / 10 and 0.01
    label = _result("label", n, np.array([], dtype=int), (), ds, scores=doubted)
    claim = ("backdoor -> class b: 10 rows form ...",)
    flags = np.zeros(n, dtype=bool)
    flags[cluster] = True

    def spectre(examined: tuple[str, ...]) -> DetectorResult:
        return DetectorResult("spectre", np.where(flags, 0.9, 0.1), flags,
                              reasons={int(i): "x" for i in cluster}, hypotheses=claim,
                              dataset=ds, meta={"classes": {c: {} for c in examined}})

    assert vet_hypotheses([label, spectre(("b",))], ds).kept == claim  # one test: holds
    vetted = vet_hypotheses([label, spectre(classes)], ds)  # ten tests: does not
    assert vetted.kept == () and "after 10 class tests" in vetted.withdrawn[0]["why"]


def test_a_cluster_the_held_out_model_calls_another_class_is_no_backdoor() -> None:
    n = 200
    ds = Dataset(labels=np.repeat([0, 1], n // 2), classes=("a", "b"),
                 features=np.zeros((n, 2), np.float32), source="t")
    cluster = np.arange(120, 130)
    doubted = np.full(n, 0.05)
    doubted[cluster] = 0.4  # labels doubted: passes the relabelled-rows test alone
    label = _result("label", n, np.array([], dtype=int), (), ds, scores=doubted)
    spectre = _result("spectre", n, cluster, ("backdoor -> class b: 10 rows form ...",), ds)
    proba = np.tile([[0.1, 0.9]], (n, 1))
    proba[:100] = [0.9, 0.1]
    proba[cluster] = [0.9, 0.1]  # the held-out model never learnt them as b (4 of 10 below)
    proba[cluster[:4]] = [0.2, 0.8]
    vetted = vet_hypotheses([label, spectre], ds, proba=proba)
    assert vetted.kept == () and "predicts b for only 4 of 10" in vetted.withdrawn[0]["why"]
    proba[cluster[:6]] = [0.2, 0.8]  # learnt from the other rows: a shortcut
    assert vet_hypotheses([label, spectre], ds, proba=proba).kept == spectre.hypotheses


def test_a_region_where_the_classes_meet_is_no_backdoor() -> None:
    """A subpopulation claim on every row of its class holding the values they share is
    withdrawn when other classes hold those values too, so that they do not mark the
    class (untouched MASS shuttle: a decision table's exception region, 17 of 24)."""
    n = 200
    labels = np.repeat([0, 1], n // 2)
    x = np.c_[np.arange(n) % 5, np.arange(n) % 7, np.arange(n)].astype(np.float32)
    cluster = np.arange(120, 130)  # ten rows of class b
    doubted = np.full(n, 0.05)
    doubted[cluster] = 0.4  # labels doubted: passes the relabelled-rows test alone

    def vetted(also: np.ndarray, claimed: np.ndarray = cluster) -> tuple[tuple[str, ...], str]:
        cells = x.copy()
        cells[np.r_[cluster, also], :2] = 9  # the region: columns 0 and 1 at 9
        ds = Dataset(labels=labels, classes=("a", "b"), features=cells, source="t")
        label = _result("label", n, np.array([], dtype=int), (), ds, scores=doubted)
        spectre = _result("spectre", n, claimed, ("backdoor -> class b: 10 rows form ...",),
                          ds)
        found = vet_hypotheses([label, spectre], ds)
        return found.kept, (found.withdrawn[0]["why"] if found.withdrawn else "")

    kept, why = vetted(np.arange(10, 15))  # 5 rows of class a hold it too: 10 of 15
    assert kept == () and "a region where the classes meet" in why
    assert "5 rows of other classes" in why
    kept, _ = vetted(np.arange(10, 12))  # 10 of 12 (83%) mark class b: a trigger's purity
    assert kept == ("backdoor -> class b: 10 rows form ...",)
    kept, _ = vetted(np.r_[np.arange(10, 15), np.arange(130, 140)],
                     cluster)  # ten more rows of b hold it: the claim is not the region
    assert kept == ("backdoor -> class b: 10 rows form ...",)


def test_two_detectors_on_one_backdoor_give_one_line_naming_both() -> None:
    n = 100
    ds = Dataset(labels=np.repeat([0, 1], n // 2), classes=("a", "b"),
                 features=np.zeros((n, 2), np.float32), source="t")
    rows = np.arange(60, 70)
    trigger = _result("trigger", n, rows, ("backdoor -> class b: 10 rows share a patch",), ds)
    dirty = _result("cleanlabel", n, rows[:8], ("backdoor -> class b: 8 rows relabelled",), ds)
    other = _result("spectre", n, np.arange(5), ("backdoor -> class a: 5 rows form",), ds)
    kept = vet_hypotheses([trigger, dirty, other], ds).kept
    assert kept == ("backdoor -> class b: 10 rows share a patch (trigger); 8 rows relabelled "
                    "(cleanlabel)", "backdoor -> class a: 5 rows form")


def _boundary(seed: int, n: int = 1000) -> tuple[Dataset, Representation]:
    """Two classes with natural boundary noise, scored by a calibrated model: about 45
    rows are contradicted by a sure model (top >= 0.8) without any poisoning."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 2))
    p1 = 1 / (1 + np.exp(-3.0 * x[:, 0]))
    labels = (rng.random(n) < p1).astype(np.int64)
    ds = Dataset(labels=labels, classes=("a", "b"), features=x.astype(np.float32), source="t")
    return ds, Representation(features=x, embedding=x, proba=np.column_stack([1 - p1, p1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sure_contradictions_that_thin_out_like_the_boundary_are_reviewed(seed: int) -> None:
    ds, rep = _boundary(seed)
    sure_contradicted = ((rep.proba.max(axis=1) >= 0.8)
                         & (rep.proba.argmax(axis=1) != ds.labels)).sum()
    assert sure_contradicted >= 30  # measured 40-50: the old rule flagged most of them
    label = LabelDetector(seed=seed).score(ds, rep)
    knn = KnnDetector(seed=seed).score(ds, rep)
    assert (label.flags | knn.flags).mean() <= 0.01  # measured 1-3 rows of 1000
    assert label.meta["sure_contradictions_reviewed"] >= 20
    assert label.meta["licensed_pairs"] == [] and knn.meta["licensed_pairs"] == []


def _separated(seed: int, n: int = 600) -> tuple[Dataset, Representation]:
    """Three well-separated classes (a sure model everywhere) with a thin boundary."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.normal(0, 1, (n, 2)) + 6.0 * np.eye(3)[labels, :2] - 3.0 * (labels == 2)[:, None]
    logits = -0.5 * ((x[:, None, :] - np.array([[6.0, 0.0], [0.0, 6.0], [-3.0, -3.0]])) ** 2
                     ).sum(axis=2)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba = 0.94 * proba / proba.sum(axis=1, keepdims=True) + 0.02
    ds = Dataset(labels=labels, classes=("a", "b", "c"), features=x.astype(np.float32),
                 source="t")
    return ds, Representation(features=x, embedding=x, proba=proba)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_targeted_flips_license_their_pair_and_are_flagged(seed: int) -> None:
    ds, rep = _separated(seed)
    flipped = np.flatnonzero(ds.labels == 0)[:30]  # 5% of the rows: a -> b
    labels = ds.labels.copy()
    labels[flipped] = 1
    poisoned = ds.replace(labels=labels)
    label = LabelDetector(seed=seed).score(poisoned, rep)
    knn = KnnDetector(seed=seed).score(poisoned, rep)
    assert label.meta["licensed_pairs"] == ["b -> a"]
    found = label.flags | knn.flags
    # measured 13-22 of 30 (seeds 0-2), no clean row: every row is sure here, so only
    # the missing boundary licenses the pair, and the null's margin still applies
    assert found[flipped].mean() >= 0.35
    assert found.sum() == found[flipped].sum()


def _ten_classes(seed: int, n: int = 2000, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Ten classes scored by a model sure of most rows (1 - top = 0.5 u^3, u uniform:
    a quarter of the rows at top >= 0.99): the true classes and the probabilities."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % k
    top = 1.0 - 0.5 * rng.random(n) ** 3
    proba = np.repeat(((1 - top) / (k - 1))[:, None], k, axis=1)
    proba[np.arange(n), truth] = top
    return truth, proba


def _relabel(truth: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
    labels = truth.copy()
    labels[rows] = (truth[rows] + np.random.default_rng(seed).integers(1, 10, len(rows))) % 10
    return labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_twice_overconfident_licenses_no_band(seed: int) -> None:
    truth, proba = _ten_classes(seed)
    wrong = np.random.default_rng(seed + 10).random(len(truth)) < 2 * (1 - proba.max(axis=1))
    bands = band_excess(_relabel(truth, np.flatnonzero(wrong), seed), proba)
    assert not any(b.licensed for b in bands)
    # measured 140-155 natural errors at top >= 0.8 against 73 the model expects
    assert bands[0].contradicted > 1.5 * bands[0].expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_flips_over_every_pair_license_the_sure_bands(seed: int) -> None:
    truth, proba = _ten_classes(seed)
    flipped = np.flatnonzero(np.random.default_rng(seed + 10).random(len(truth)) < 0.05)
    labels = _relabel(truth, flipped, seed)
    excess = pair_excess(labels, proba)
    bands = {b.lower: b for b in excess.bands}
    # about one flip per pair: the pair tests license little; the bands pool them
    # (measured: 0.97 and 0.99 licensed, 24-30 contradicted against 1.4 expected at
    # 0.99, p 7.7e-10 to 8.3e-13; 0.97 at p 3e-5 to 4e-3, level 0.0125)
    assert bands[0.99].licensed and bands[0.97].licensed and not bands[0.8].licensed
    found = excess.unexplained(labels, proba)
    assert found[flipped].mean() >= 0.4  # measured 0.50-0.60
    assert found.sum() == found[flipped].sum()  # no natural error in this data


def test_lone_sure_contradictions_in_untestable_pairs_do_not_dilute_the_pair_tests() -> None:
    # Six classes the model is sure of (0.995), a boundary of 80 unsure rows between
    # 0 and 1, 6 sure rows of class 0 labelled 1 (a targeted flip), and one sure
    # contradiction in each of 20 other pairs (natural singletons). The flipped pair's
    # p-value is 0.003: counted against the 21 pairs with any sure contradiction
    # (alpha 0.05 / 2 splits / 21 = 0.0012) it would not be licensed. Classes 2-5 have
    # no unsure rows, so none of their pairs could ever show more sure disagreement
    # than the model expects (natural share 1), and the singletons labelled 2-5 that
    # the model puts in class 0 could reach 0.03 at best: Tarone's family is 1 -> 0.
    k, rows, labels = 6, [], []
    for c in range(k):
        sure = np.full(k, 0.001)
        sure[c] = 0.995
        rows += [sure] * 200 + [sure] * (6 if c == 0 else 0)
        labels += [c] * 200 + [1] * (6 if c == 0 else 0)
        if c >= 2:
            rows += [sure] * (k - 1)
            labels += [d for d in range(k) if d != c]
    unsure = np.zeros(k)
    unsure[:2] = (0.6, 0.4)
    rows += [unsure] * 80
    labels += [0, 1] * 40
    excess = pair_excess(np.array(labels), np.array(rows))
    assert int((excess.sure > 0).sum()) == 21
    assert excess.tested is not None and np.argwhere(excess.tested).tolist() == [[1, 0]]
    assert np.argwhere(excess.licensed).tolist() == [[1, 0]]
    assert excess.p_values[1, 0] < 0.005


def _boundaries_and_one_pair(sure_flips: int, k: int = 5,
                             spread: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``k`` classes the model is sure of (0.995, 200 rows each), an unsure boundary
    (0.6 / 0.4, 20 rows each way, labels split evenly) between every two classes, and
    ``sure_flips`` sure rows of class 0 labelled 1; ``spread``: one sure contradiction
    in every other ordered pair too (natural sure errors in every pair)."""
    rows, labels = [], []
    for c in range(k):
        sure = np.full(k, 0.005 / (k - 1))
        sure[c] = 0.995
        rows += [sure] * (200 + (sure_flips if c == 0 else 0))
        labels += [c] * 200 + [1] * (sure_flips if c == 0 else 0)
        if spread:
            others = [j for j in range(k) if j != c and (j, c) != (1, 0)]
            rows += [sure] * len(others)
            labels += others
    for a in range(k):
        for b in range(a + 1, k):
            for top, other in ((a, b), (b, a)):
                edge = np.zeros(k)
                edge[top], edge[other] = 0.6, 0.4
                rows += [edge] * 20
                labels += [a] * 10 + [b] * 10
    return np.array(labels), np.array(rows)


def test_the_pair_family_comes_from_the_margins_not_the_sure_counts() -> None:
    # Three sure contradictions in 1 -> 0 (calibration p 0.0069) and one in every other
    # pair. A family of the pairs with 2 or more sure contradictions (session 8's
    # MIN_PATTERN) holds this pair alone and licenses it (level 0.025), yet each of the
    # 20 ordered pairs has a boundary of 10 disagreements that could have put sure rows
    # anywhere: Tarone's family counts all 20 (level 0.05 / 2 / 20 = 0.00125). Against
    # the other pairs (which hold sure contradictions too) it is no outlier (p 0.13).
    excess = pair_excess(*_boundaries_and_one_pair(3, spread=True))
    assert excess.tested is not None and int(excess.tested.sum()) == 20
    assert int((excess.sure >= 2).sum()) == 1
    assert excess.p_calibration is not None and excess.p_relative is not None
    assert 0.00125 < excess.p_calibration[1, 0] < 0.025
    assert excess.p_relative[1, 0] > 0.025
    assert not excess.licensed.any()
    # four (calibration p 0.0007) pass at Tarone's level
    assert np.argwhere(pair_excess(*_boundaries_and_one_pair(4, spread=True)).licensed
                       ).tolist() == [[1, 0]]


def test_sure_contradictions_only_in_one_pair_are_licensed_against_the_other_pairs() -> None:
    # The same three, but no other pair has any sure contradiction: against the other
    # pairs at the same confidence levels the pair stands out (relative p 0.0002, every
    # sure disagreement of the table is in it), though the model's calibration allows
    # them (p 0.0066). Two such are not enough (relative p 0.0033 > 0.00125).
    excess = pair_excess(*_boundaries_and_one_pair(3))
    assert excess.p_calibration is not None and excess.p_relative is not None
    assert excess.p_calibration[1, 0] > 0.00125 > 0.0005 > excess.p_relative[1, 0]
    assert np.argwhere(excess.licensed).tolist() == [[1, 0]]
    assert not pair_excess(*_boundaries_and_one_pair(2)).licensed.any()


def _easy_and_hard(seed: int, flips: int = 0, n: int = 4000,
                   sure_rate: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four classes of unequal difficulty (1 - top = 0.3 u^2 for classes 0 and 1, 0.6 u^2
    for 2 and 3, u uniform), natural errors at the model's own rate below 0.8 and
    ``sure_rate`` times it at 0.8 and up (every pair alike; 0.25: a model too careful
    where it is sure), and ``flips`` correct rows of class 0 relabelled 1:
    (labels, probabilities, flipped rows)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    top = 1.0 - np.where(truth >= 2, 0.6, 0.3) * rng.random(n) ** 2
    proba = np.repeat(((1 - top) / 3)[:, None], 4, axis=1)
    proba[np.arange(n), truth] = top
    labels = truth.copy()
    wrong = rng.random(n) < np.where(top >= 0.8, sure_rate, 1.0) * (1 - top)
    labels[wrong] = (truth[wrong] + rng.integers(1, 4, int(wrong.sum()))) % 4
    flipped = rng.choice(np.flatnonzero((truth == 0) & ~wrong), flips, replace=False)
    labels[flipped] = 1
    return labels, proba, flipped


@pytest.mark.parametrize("seed", [2, 9])
def test_one_pair_raised_among_classes_of_unequal_difficulty_is_licensed(seed: int) -> None:
    # 30 flips (0.75%) into one pair: the model's 1 - top overstates its natural errors
    # where it is sure, so the pair's share of sure disagreement is no more than the
    # calibration null allows (p 1.6x and 23x the level on these seeds), but the pair
    # falls off with confidence much more slowly than every other pair (p 5e-4 and
    # 1e-5 of the level). Both nulls test one count per split, so the union is tested
    # at the full level alpha / 2 / m, not halved between them (cars, RESULTS.md
    # session 13).
    labels, proba, flipped = _easy_and_hard(seed, flips=30)
    excess = pair_excess(labels, proba)
    assert excess.tested is not None and int(excess.tested.sum()) == 12
    level = DEFAULT_PAIR_ALPHA / 2 / 12
    assert excess.p_calibration is not None and excess.p_relative is not None
    assert excess.p_calibration[1, 0] > level  # the calibration null alone misses it
    assert excess.p_relative[1, 0] < 0.01 * level
    assert excess.p_values[1, 0] == excess.p_relative[1, 0]
    assert np.argwhere(excess.licensed).tolist() == [[1, 0]]
    found = excess.unexplained(labels, proba)
    assert found[flipped].mean() >= 0.7  # measured 25 and 22 of 30


def test_the_two_nulls_share_the_full_level() -> None:
    # 12 flips, relative p 0.55x the level, calibration p 350x: one count per split is
    # tested, the union's rejection region is the larger of two nested tails, so the
    # level is not halved between the nulls (pair11's halved level missed this pair,
    # as it missed cars' "Japan -> USA" at 0.64x on seed 1).
    labels, proba, flipped = _easy_and_hard(10, flips=12)
    excess = pair_excess(labels, proba)
    level = DEFAULT_PAIR_ALPHA / 2 / 12
    assert excess.tested is not None and int(excess.tested.sum()) == 12
    assert excess.p_calibration is not None and excess.p_relative is not None
    assert excess.p_calibration[1, 0] > 100 * level
    assert level / 2 < excess.p_relative[1, 0] <= level
    assert np.argwhere(excess.licensed).tolist() == [[1, 0]]
    assert int(excess.unexplained(labels, proba)[flipped].sum()) >= 10  # measured 11 of 12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_clean_table_of_unequal_difficulty_licenses_nothing(seed: int) -> None:
    # the same classes without flips, the model careful or calibrated where it is sure
    # (the closest pair measured 3x to 70x its level)
    for sure_rate in (0.25, 1.0):
        labels, proba, _ = _easy_and_hard(seed, sure_rate=sure_rate)
        excess = pair_excess(labels, proba)
        assert not excess.licensed.any() and not excess.licensed_bands()
        assert not excess.unexplained(labels, proba).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uniform_random_flips_still_license_their_pairs(seed: int) -> None:
    # 5% of 5,000 rows relabelled uniformly (natural errors at the model's own rate):
    # every pair is raised alike, so against the other pairs few stand out (session
    # 10's relative null alone lost 100k random flips, F1 0.840 -> 0.495), but the
    # model's calibration licenses several of the 20 pairs; the union keeps them.
    rng = np.random.default_rng(seed)
    n, k = 5000, 5
    truth = rng.integers(0, k, n)
    top = 1.0 - 0.6 * rng.random(n) ** 2
    proba = np.repeat(((1 - top) / (k - 1))[:, None], k, axis=1)
    proba[np.arange(n), truth] = top
    labels = truth.copy()
    wrong = rng.random(n) < 1 - top
    labels[wrong] = (truth[wrong] + rng.integers(1, k, int(wrong.sum()))) % k
    flipped = rng.choice(np.flatnonzero(~wrong), n // 20, replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, k, len(flipped))) % k
    excess = pair_excess(labels, proba)
    assert excess.tested is not None and excess.p_relative is not None
    assert excess.p_calibration is not None
    level = DEFAULT_PAIR_ALPHA / 2 / int(excess.tested.sum())
    relative = excess.tested & (excess.p_relative <= level)
    calibration = excess.tested & (excess.p_calibration <= level)
    assert int(relative.sum()) < int(calibration.sum())
    assert (excess.licensed >= calibration).all() and int(excess.licensed.sum()) >= 4
    assert excess.unexplained(labels, proba)[flipped].mean() >= 0.3


def test_rows_off_the_support_license_nothing() -> None:
    # Injected outliers carry random labels and get sure out-of-fold probabilities far
    # from the data: their contradictions alone licensed bands and pairs on real tables
    # (anes96, cars, seattle-weather at 3%), which then flagged natural label noise.
    from poisonguard.detect.overlap import in_support

    # (200 rows of class 1 the model recognises: a model that never names class 1
    # would be no better than the largest class and license nothing anyway)
    proba = np.vstack([np.tile([[0.995, 0.005]], (1000, 1)), np.tile([[0.005, 0.995]], (200, 1))])
    labels = np.r_[np.zeros(1000, dtype=int), np.ones(200, dtype=int)]
    labels[:40] = 1  # 40 contradicted sure rows: a licence (band_excess's doctest)
    assert pair_excess(labels, proba).licensed.any()
    dist = np.ones((1200, 5)) + np.linspace(0.0, 0.1, 1200)[:, None]
    dist[:40] = 40.0  # ... all of them far from every other row
    support = in_support(dist)
    assert support.sum() == 1160
    excess = pair_excess(labels, proba, support=support)
    assert not excess.licensed.any() and not excess.licensed_bands()
    assert excess.confident is not None and len(excess.confident) == 1200


def _pairs(seed: int, n: int = 2000) -> tuple[Dataset, Representation]:
    """Ten classes in five pairs far apart; the two classes of pair ``q`` overlap, their
    centres ``1.5 + q`` apart (hard to easy). Clean labels drawn from the calibrated
    posterior (natural confusion within each pair); the model: the posterior, hedged a
    little towards every class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 10, n)
    centres = np.zeros((10, 2))
    centres[:, 0] = 12.0 * (np.arange(10) // 2)
    centres[:, 1] = np.where(np.arange(10) % 2, 1, -1) * (1.5 + np.arange(10) // 2) / 2
    x = centres[truth] + rng.normal(0, 1, (n, 2))
    logit = -0.5 * ((x[:, None, :] - centres[None]) ** 2).sum(axis=2)
    post = np.exp(logit - logit.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(post, axis=1)
    cumulative[:, -1] = 1.0
    labels = (rng.random((n, 1)) >= cumulative).sum(axis=1)
    ds = Dataset(labels=labels, classes=tuple("abcdefghij"), features=x.astype(np.float32),
                 source="t")
    return ds, Representation(features=x, embedding=x, proba=0.998 * post + 0.0002)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_classes_of_unequal_difficulty_license_no_lone_label(seed: int) -> None:
    # Natural errors sit where a pair's classes meet, and there the neighbours carry
    # both labels: of 31-43 sure contradictions 3-4 are carried by no neighbour (the
    # model's share 0.15-0.24 at top >= 0.8); the lone-label tests stay far from their
    # level (measured smallest p 0.67-0.96 against 0.0025).
    ds, rep = _pairs(seed)
    _, idx = nearest_neighbours(rep.features, 20, seed=seed)
    tests = lone_excess(ds.labels, rep.proba, neighbour_votes(ds.labels, idx, 10))
    assert tests[0].lone >= 3 and tests[0].lone + tests[0].carried >= 30
    assert min(t.p_value for t in tests) > 0.1
    label = LabelDetector(seed=seed).score(ds, rep)
    knn = KnnDetector(seed=seed).score(ds, rep)
    assert not any("carried by no neighbour" in band for band in
                   label.meta["licensed_bands"] + knn.meta["licensed_bands"])
    assert (label.flags | knn.flags).mean() <= 0.005  # measured 5, 8, 5 rows of 2000


def test_lone_rows_are_the_licensed_lone_labels_inside_the_support() -> None:
    # 45 sure rows of class 0 labelled 2, a label none of their neighbours carries,
    # against 10 natural errors labelled 1 that their neighbours carry; the model puts
    # as much probability on 2 as on 1 (p 1e-5 inside the support, level 0.0025). Five
    # of the lone rows lie off the support.
    # (and 100 rows of class 1 the model recognises: see uninformed)
    proba = np.vstack([np.tile([[0.96, 0.02, 0.02]], (1000, 1)),
                       np.tile([[0.02, 0.96, 0.02]], (100, 1))])
    votes = np.vstack([np.tile([[0.9, 0.1, 0.0]], (1000, 1)), np.tile([[0.1, 0.9, 0.0]], (100, 1))])
    labels = np.r_[np.zeros(1000, dtype=int), np.ones(100, dtype=int)]
    labels[:45], labels[45:55] = 2, 1
    support = np.ones(1100, dtype=bool)
    support[:5] = False
    excess = pair_excess(labels, proba, votes=votes, support=support)
    assert excess.lone_rows is not None and len(excess.lone_rows) == 1100
    assert np.flatnonzero(excess.lone_rows).tolist() == list(range(5, 45))
    assert any("40 of 50 contradicted labels carried by no neighbour" in band
               for band in excess.licensed_bands())
    votes[:, 2] = 0.05  # a neighbour carries 2 as well: nothing is lone
    assert not pair_excess(labels, proba, votes=votes).lone_rows.any()


def test_a_pair_with_an_excess_and_no_boundary_passes_both_rules_short_of_strong() -> None:
    # 30 sure rows of class 0 labelled 1 against 20 unsure disagreements: an excess of
    # sure disagreement (the pair tests) and no boundary (30 > 20), but not twice the
    # boundary: both rules, not strong (label flags its issues at min_margin, not all
    # its clear doubts).
    # (and 100 sure rows of class 1 the model recognises: see uninformed)
    proba = np.vstack([np.tile([[0.99, 0.01]], (200, 1)), np.tile([[0.6, 0.4]], (50, 1)),
                       np.tile([[0.01, 0.99]], (100, 1))])
    labels = np.r_[np.ones(30, dtype=int), np.zeros(200, dtype=int), np.ones(120, dtype=int)]
    excess = pair_excess(labels, proba)
    assert excess.both_rules is not None
    assert excess.both_rules.tolist() == [[False, False], [True, False]]
    assert not excess.strong.any() and excess.licensed[1, 0]
    labels[200:215] = 1  # 35 unsure disagreements: a boundary
    excess = pair_excess(labels, proba)
    assert excess.both_rules is not None and not excess.both_rules.any()


def test_a_model_no_better_than_the_largest_class_licenses_nothing() -> None:
    # The same 40 sure contradictions that license a pair and bands above, from a model
    # that names class 0 for every row: 96% accurate where class 0 is 96% of the rows, it
    # has learned nothing the class sizes do not say (untouched Ecdat OFP: 8% flagged
    # through such licences; RESULTS.md, session 23).
    votes = np.tile([[1.0, 0.0]], (1000, 1))
    proba = np.tile([[0.995, 0.005]], (1000, 1))
    labels = np.zeros(1000, dtype=int)
    labels[:40] = 1
    assert uninformed(labels, proba)
    excess = pair_excess(labels, proba, votes=votes)
    assert not excess.licensed.any() and not excess.licensed_bands()
    assert excess.confident is not None and not excess.confident.any()
    assert excess.lone_rows is not None and not excess.lone_rows.any()
    # one row of class 1 the model names is not: 96.0% against 95.9% is chance
    proba[999], labels[999] = [0.005, 0.995], 1
    assert uninformed(labels, proba)
    # 100 rows of class 1 it names are: then the 40 contradictions license
    proba = np.vstack([proba, np.tile([[0.005, 0.995]], (100, 1))])
    labels = np.r_[labels, np.ones(100, dtype=int)]
    votes = np.vstack([votes, np.tile([[0.0, 1.0]], (100, 1))])
    assert not uninformed(labels, proba)
    assert pair_excess(labels, proba, votes=votes).licensed.any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_a_hair_above_the_largest_class_is_uninformed(seed: int) -> None:
    # Zelig turnout: 85.5% where the largest class is 85.4% of 2,000 rows (p 0.47)
    # licensed 147-150 flags; "no better" was a strict <= before. Here a model that
    # names the largest class and by chance 3 rows of the other more than it misses.
    rng = np.random.default_rng(seed)
    labels = (rng.random(2000) < 0.146).astype(int)
    proba = np.tile([[0.95, 0.05]], (2000, 1))
    ones = np.flatnonzero(labels == 1)
    proba[ones[:3]] = [0.05, 0.95]
    accuracy = float(np.mean(proba.argmax(axis=1) == labels))
    assert accuracy > np.bincount(labels).max() / len(labels)
    assert uninformed(labels, proba)
    proba[ones[:60]] = [0.05, 0.95]  # 60 of them: 3 points above, p < 1e-6
    assert not uninformed(labels, proba)
