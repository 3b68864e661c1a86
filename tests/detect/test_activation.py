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


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_clean_data_every_class_reported_clean(clean, name: str) -> None:  # type: ignore[no-untyped-def]
    data, rep = clean(name)
    result = get_detector("activation").score(data, rep)
    assert result.n_flagged <= 0.01 * len(data)  # measured: 0 on both
    assert len(result.clean_classes) >= data.n_classes - 1


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
