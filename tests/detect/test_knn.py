"""Detector ``knn``: neighbour label disagreement."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.detect.knn import KnnDetector
from poisonguard.errors import UsageError
from tests.helpers import f1 as _f1


def test_clean_data_is_mostly_left_alone(clean) -> None:  # type: ignore[no-untyped-def]
    for name in ("digits", "breast_cancer", "wine"):
        ds, rep = clean(name)
        result = KnnDetector().score(ds, rep)
        assert result.flags.mean() <= 0.01, name
        assert result.meta["space"] == "features"


def test_random_flips_are_found(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, rep = poisoned("digits-tabular", "flip", rate=0.1, seed=1)
    result = KnnDetector().score(attack.dataset, rep)
    # Measured 0.626 (precision 0.98): knn is the strict second opinion (9 of 10
    # neighbours against the label, the out-of-fold model sure of another class in a
    # pair or confidence band whose sure disagreement natural overlap does not
    # explain); precision is what it owes. 0.24 with the pair licences alone
    # (session 6), 0.65 before them (detect/overlap.pair_excess, band_excess).
    flags = result.flags
    assert _f1(flags, attack.truth.poisoned) >= 0.5
    assert attack.truth.mask[flags].mean() >= 0.9
    assert result.meta["licensed_bands"]
    i = int(np.flatnonzero(result.flags)[0])
    assert "of 10 neighbours are" in result.reasons[i]
    assert "out-of-fold p(label)=" in result.reasons[i]
    lenient = KnnDetector(min_margin=0.6).score(attack.dataset, rep)
    assert lenient.n_flagged > result.n_flagged  # 91 and 85
    deep = KnnDetector(space="embedding_oof").score(attack.dataset, rep)
    assert deep.meta["space"] == "embedding_oof" and deep.n_flagged > 0


def test_the_vote_needs_no_sure_model_in_the_pairs_of_a_flip_target(
        poisoned) -> None:  # type: ignore[no-untyped-def]
    # sklearn digits, 10% targeted flips into class 0: six pairs "0 -> c" pass both
    # licence rules (an excess of sure contradictions, and more of them than unsure
    # disagreements), so label 0 is a flip target. The model, trained on the flips, is
    # unsure of 43 of the 180; there a 9-of-10 vote against the label in such a pair
    # is a flip too: 72 -> 84 flags, the 12 new ones all flips where the model is
    # unsure (RESULTS.md, session 20).
    attack, rep = poisoned("digits", "flip", rate=0.1, seed=2, mode="targeted", target=0)
    result = KnnDetector().score(attack.dataset, rep)
    truth = np.zeros(len(result.flags), dtype=bool)
    truth[attack.truth.poisoned] = True
    unsure = rep.proba.max(axis=1) < 0.8
    assert (result.flags & unsure & truth).sum() >= 8
    assert (result.flags & ~truth).sum() == 0


def test_bad_parameters_are_usage_errors(clean) -> None:  # type: ignore[no-untyped-def]
    ds, rep = clean("wine")
    with pytest.raises(UsageError):
        KnnDetector(k=0).score(ds, rep)
    with pytest.raises(UsageError):
        KnnDetector(space="pixels").score(ds, rep)  # type: ignore[arg-type]


def test_label_and_knn_read_one_support_of_20_neighbours(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A clump of 12 rows far from the other 400: with 10 neighbours each row sees only
    # its clump (inside the support), with 20 it reaches the rest (outside). knn
    # (k=10) must read the support of label's 20 neighbours, the same array in a scan.
    import poisonguard.detect.label as label_module
    import poisonguard.detect.licence as licence_module
    from poisonguard.data import Dataset
    from poisonguard.detect.label import LabelDetector
    from poisonguard.detect.overlap import pair_excess
    from poisonguard.memo import scan_memo
    from poisonguard.represent.base import Representation

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (400, 2)), rng.normal(40, 0.01, (12, 2))])
    labels = (x[:, 0] > 0).astype(np.int64)
    proba = np.column_stack([1 - labels, labels]) * 0.9 + 0.05
    ds = Dataset(labels=labels, classes=("a", "b"), features=x.astype(np.float32), source="t")
    rep = Representation(features=x, embedding=x, proba=proba)
    seen: dict[str, np.ndarray] = {}

    def spy(name: str):  # type: ignore[no-untyped-def]
        def wrapped(*args, support=None, **kwargs):  # type: ignore[no-untyped-def]
            seen[name] = support
            return pair_excess(*args, support=support, **kwargs)
        return wrapped

    monkeypatch.setattr(label_module, "pair_excess", spy("label"))
    monkeypatch.setattr(licence_module, "pair_excess", spy("knn"))
    with scan_memo():
        LabelDetector().score(ds, rep)
        KnnDetector().score(ds, rep)
    assert seen["knn"] is seen["label"]
    assert not seen["knn"][400:].any() and seen["knn"][:400].mean() >= 0.99
    KnnDetector().score(ds, rep)  # outside a scan: computed again, the same rows
    np.testing.assert_array_equal(seen["knn"], seen["label"])
