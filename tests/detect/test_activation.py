"""Activation clustering on clean and backdoored data (measured numbers, with margin)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from poisonguard.detect import get_detector
from poisonguard.detect.activation import reclassify, two_means
from poisonguard.errors import UsageError


def _truth_mask(result, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    mask = np.zeros(n, dtype=bool)
    mask[result.truth.poisoned] = True
    return mask


@pytest.mark.parametrize(("name", "undecided"), [("digits", 2), ("breast_cancer", 1)])
def test_clean_data_every_class_reported_clean(clean, name: str, undecided: int) -> None:  # type: ignore[no-untyped-def]
    """No flag and no hypothesis on clean data; a class is either reported clean or,
    when its separation passes the threshold only as measured (bootstrap bound below
    it), put up for review: never decided poisoned.

    Digits "1" and "9" hold real sub-styles, and where they land depends on the CNN,
    which differs with torch's CPU kernels (issue 12; the detector on a saved
    embedding gives the same numbers under every kernel): 10 classes clean with AVX2
    kernels (threshold 5.86-5.99; "1" D 3.0-3.5, "9" 4.0-4.2), 8 with AVX-512 on an
    Intel Sapphire Rapids (threshold 4.34, a tight bulk of classes at 2.5-2.7 makes the
    MAD small; "1" D 4.62 bound 4.01, "9" 4.47 bound 4.03: review)."""
    data, rep = clean(name)
    result = get_detector("activation").score(data, rep)
    assert result.n_flagged == 0 and result.hypotheses == ()  # measured: 0 on both
    cut = result.meta["separation_threshold"]
    held = [c for c in range(data.n_classes) if c not in result.clean_classes]
    assert len(held) <= undecided
    assert all(result.meta["classes"][data.classes[c]]["bound"] < cut for c in held)
    assert set(result.review) <= set(np.flatnonzero(np.isin(data.labels, held)).tolist())


def test_finds_a_tabular_trigger_and_suggests_source_labels(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, rep = poisoned("breast_cancer", "tabular-trigger", rate=0.05, target=0, seed=0)
    data = attack.dataset
    truth = _truth_mask(attack, len(data))
    result = get_detector("activation").score(data, rep)
    tp = int((result.flags & truth).sum())
    # measured: precision 1.00, recall 0.96
    assert tp >= 0.8 * truth.sum() and tp >= 0.8 * result.n_flagged
    assert 1 in result.clean_classes and 0 not in result.clean_classes
    assert result.hypotheses and result.hypotheses[0].startswith("backdoor -> class 0")
    original = attack.truth.original_labels
    hits = [i for i in result.suggested_labels if i in original]
    assert hits and all(result.suggested_labels[i] == original[i] for i in hits)


def test_image_backdoor_scores_rank_the_poison_without_false_alarms(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, rep = poisoned("digits", "badnets", rate=0.05, target=0, seed=0)
    truth = _truth_mask(attack, len(attack.dataset))
    result = get_detector("activation").score(attack.dataset, rep)
    assert roc_auc_score(truth, result.scores) > 0.85  # measured 0.937
    assert int((result.flags & ~truth).sum()) <= 0.01 * len(truth)


def test_two_means_puts_a_separate_group_apart() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 12))
    emb[:30] += 8
    proj = two_means(emb, dims=6)
    assert proj[:30].min() > proj[30:].max()


def test_reclassify_uses_rows_outside_the_cluster() -> None:
    x = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    labels = np.array([0, 0, 0, 1, 1, 0])  # the last row sits among class 1
    members = np.array([False, False, False, False, False, True])
    assert reclassify(x, labels, members, n_classes=2, k=1).tolist() == [1]


def test_bad_parameters_are_usage_errors(clean) -> None:  # type: ignore[no-untyped-def]
    data, rep = clean("breast_cancer")
    with pytest.raises(UsageError):
        get_detector("activation", dims=0).score(data, rep)
