"""Spectral signatures and the robust (SPECTRE-like) variant on clean and backdoored data.

Thresholds below are the measured values with a margin (docs/detectors-backdoor.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from poisonguard.data import Dataset
from poisonguard.detect import get_detector
from poisonguard.detect.spectral import que_direction, que_scores, spectral_projection
from poisonguard.detect.subpopulation import robust_whiten, separation_threshold, split_test
from poisonguard.errors import UsageError
from poisonguard.represent import Representation


def _truth_mask(result, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    mask = np.zeros(n, dtype=bool)
    mask[result.truth.poisoned] = True
    return mask


def _precision_recall(flags: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = int((flags & truth).sum())
    return tp / max(int(flags.sum()), 1), tp / max(int(truth.sum()), 1)


@pytest.mark.parametrize("name", ["spectral", "spectre"])
def test_clean_digits_every_class_reported_clean(clean, name: str) -> None:  # type: ignore[no-untyped-def]
    digits, rep = clean("digits")
    result = get_detector(name).score(digits, rep)
    assert result.n_flagged <= 0.01 * len(digits)  # measured: 0
    assert len(result.clean_classes) >= 9
    assert result.meta["separation_threshold"] >= 4.0


@pytest.mark.parametrize("name", ["spectral", "spectre"])
def test_clean_tabular_flags_nothing(clean, name: str) -> None:  # type: ignore[no-untyped-def]
    cancer, rep = clean("breast_cancer")
    result = get_detector(name).score(cancer, rep)
    assert result.n_flagged == 0 and result.clean_classes == (0, 1)


def test_spectre_ranks_a_blend_first_without_false_alarms(poisoned) -> None:  # type: ignore[no-untyped-def]
    """The 5% blend is ranked, not decided: its separation sits at the threshold 4.0
    (D 4.2 on the AMD EPYC's CNN, bootstrap bound far below: put up for review; 3.49-3.90
    on an Intel Sapphire Rapids: neither flagged nor reviewed), because the CNN differs
    with torch's CPU kernels (AVX-512: D 3.56; ``ATEN_CPU_CAPABILITY=avx2``: 3.90; MKL and
    oneDNN held to AVX2 as well: 3.49; numpy's OpenBLAS core type changes nothing, and
    the detector on a saved embedding gives the same numbers under every kernel, issue
    12). Blends are found by the ``trigger`` detector (tests/detect/test_trigger.py).

    What holds on every CNN: the blend rows rank first *within* class 0, no false
    alarms, class 0 the most separated. The dataset-wide AUROC is 1.000 when the class
    reaches review (its rows then rank above every other class's) and 0.938-0.948 when
    it does not (they rank by robust z among all classes' outliers): bounded below that."""
    attack, rep = poisoned("digits", "blend", rate=0.05, target=0, seed=0)
    truth = _truth_mask(attack, len(attack.dataset))
    result = get_detector("spectre").score(attack.dataset, rep)
    target = attack.dataset.labels == 0
    # measured 1.000 under every CPU/kernel setting above
    assert roc_auc_score(truth[target], result.scores[target]) > 0.99
    assert roc_auc_score(truth, result.scores) > 0.9  # measured 0.938-1.000 (see above)
    assert int((result.flags & ~truth).sum()) <= 0.01 * len(truth)  # measured 0-2
    seps = {c: v["separation"] for c, v in result.meta["classes"].items()}
    assert max(seps, key=seps.__getitem__) == "0"  # measured 3.5-4.2, next 1.9-2.2


def test_spectre_finds_image_backdoors(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, rep = poisoned("digits", "badnets", rate=0.05, target=0, seed=0)
    data = attack.dataset
    truth = _truth_mask(attack, len(data))
    result = get_detector("spectre").score(data, rep)
    precision, recall = _precision_recall(result.flags, truth)
    assert recall >= 0.8 and precision >= 0.8  # measured 1.00/0.99 (D = 6.1, threshold 4.0)
    assert 0 not in result.clean_classes and len(result.clean_classes) >= 8
    assert any(h.startswith("backdoor -> class 0") for h in result.hypotheses)
    flagged = int(np.flatnonzero(result.flags)[0])
    assert result.reasons[flagged].startswith("class 0:")
    assert roc_auc_score(truth, result.scores) > 0.95


def test_spectral_ranks_badnets_rows_first_and_stays_quiet(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, rep = poisoned("digits", "badnets", rate=0.05, target=0, seed=0)
    truth = _truth_mask(attack, len(attack.dataset))
    result = get_detector("spectral").score(attack.dataset, rep)
    # The plain spectral signature ranks the poison high (AUROC measured 0.975) but its
    # split is not clean enough to clear the calibrated threshold: no false alarms.
    assert roc_auc_score(truth, result.scores) > 0.9
    assert int((result.flags & ~truth).sum()) <= 0.01 * len(truth)


def test_spectre_ranks_a_tabular_trigger(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, rep = poisoned("breast_cancer", "tabular-trigger", rate=0.05, target=0, seed=0)
    truth = _truth_mask(attack, len(attack.dataset))
    result = get_detector("spectre").score(attack.dataset, rep)
    assert roc_auc_score(truth, result.scores) > 0.9  # measured 0.987
    assert int((result.flags & ~truth).sum()) <= 0.01 * len(truth)


def test_split_test_separates_two_blobs_and_not_one() -> None:
    rng = np.random.default_rng(0)
    one = rng.normal(size=400)
    two = np.concatenate([rng.normal(size=300), rng.normal(10, 1, size=40)])
    assert split_test(one, min_rows=5, max_share=0.6).separation < 3
    test = split_test(two, min_rows=5, max_share=0.6)
    assert test.poisoned and test.separation > 8 and test.members[300:].all()
    assert not test.members[:300].any()


def test_threshold_is_calibrated_on_the_classes() -> None:
    assert separation_threshold(np.array([2.0, 6.0]), min_separation=4.0) == 4.0
    many = np.array([1.8, 2.0, 2.1, 2.2, 1.9, 2.0, 9.0])
    cut = separation_threshold(many, min_separation=4.0)
    assert 4.0 <= cut < 9.0
    assert separation_threshold(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), min_separation=4.0) > 5.0


def test_projection_and_whitening_helpers() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(200, 8))
    emb[:20, 0] += 12
    p = spectral_projection(emb)
    assert np.abs(p[:20]).min() > np.median(np.abs(p[20:]))
    white = robust_whiten(emb, dims=8)
    assert white.shape == (200, 8)
    assert np.allclose(np.median(white[20:], axis=0), 0, atol=0.3)


def test_bad_parameters_are_usage_errors() -> None:
    data = Dataset(labels=np.repeat([0, 1], 10), classes=("a", "b"),
                   features=np.random.default_rng(0).normal(size=(20, 3)))
    rep = Representation(features=data.features, embedding=data.features,  # type: ignore[arg-type]
                         proba=np.full((20, 2), 0.5))
    with pytest.raises(UsageError):
        get_detector("spectre", max_share=0).score(data, rep)
    with pytest.raises(UsageError):
        get_detector("spectral", min_separation=-1).score(data, rep)


@pytest.mark.parametrize("name", ["spectral", "spectre", "activation"])
def test_class_of_two_equal_clusters_is_clean(name: str) -> None:
    """A class made of two equal, well separated clusters (make_classification's
    n_clusters_per_class=2) is natural structure, not a poisoned minority."""
    from tests.helpers import tiny_representation

    rng = np.random.default_rng(3)
    blobs = []
    for c in range(5):
        centre = rng.normal(scale=8.0, size=8)
        if c == 0:
            blobs += [rng.normal(size=(150, 8)) + centre, rng.normal(size=(150, 8)) + centre + 12]
        else:
            blobs.append(rng.normal(size=(300, 8)) + centre)
    x = np.vstack(blobs).astype(np.float32)
    y = np.repeat(np.arange(5), 300)
    data = Dataset(labels=y, classes=tuple("abcde"), features=x)
    result = get_detector(name).score(data, tiny_representation(data))
    assert result.n_flagged == 0
    assert 0 in result.clean_classes


def test_que_scores_move_from_mahalanobis_to_the_top_direction_with_alpha() -> None:
    rng = np.random.default_rng(2)
    white = rng.normal(size=(400, 6)) * np.array([2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    vals, vecs = np.linalg.eigh(white.T @ white / len(white))
    mahalanobis = (white**2).sum(axis=1) / 6
    top = (white @ vecs[:, -1]) ** 2
    low, high = que_scores(white, alpha=1e-6), que_scores(white, alpha=200.0)
    assert np.allclose(low, mahalanobis, rtol=1e-4)
    assert np.allclose(high, top, rtol=1e-6, atol=1e-9)
    middle = que_scores(white, alpha=4.0)
    assert not np.allclose(middle, low) and not np.allclose(middle, high)


def test_que_direction_points_at_the_outlying_rows_whatever_the_sign() -> None:
    rng = np.random.default_rng(4)
    white = rng.normal(size=(300, 8))
    white[:20] += 6.0 * np.eye(8)[3]
    proj = que_direction(white)
    assert proj[:20].min() > np.abs(proj[20:]).max() * 0.9
    assert np.array_equal(que_direction(-white), proj)  # the heavier tail stays positive
    # alpha changes the projection (SPECTRE's knob), not which rows stand out
    other = que_direction(white, alpha=0.5)
    assert not np.array_equal(other, proj) and other[:20].min() > np.median(other[20:]) + 4
