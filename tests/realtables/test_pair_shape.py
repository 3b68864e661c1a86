"""Uniform-flip consistency on real tables (issue 12): the untouched statsmodels fair
table's pair "label 6, model 4" is a model-shape pattern and is refused; a targeted flip
on cars stays licensed."""

from __future__ import annotations

import numpy as np

from benchmarks._real_tables import HELD_OUT
from poisonguard.attack import run_attack
from poisonguard.datasets import open_dataset
from poisonguard.detect.label import LabelDetector
from poisonguard.detect.reliability import reliability
from poisonguard.represent import build_representation
from tests.realtables.conftest import TABLES


def test_untouched_fair_refuses_the_pair_whose_share_rises_with_confidence() -> None:
    # Among the rows the out-of-fold model puts in occupation 4, the share labelled 6
    # is 0.034 below top 0.8 and 0.143 above (30 of 210, p 2.6e-9): the pair passed
    # both licence tests (p 2e-22 / 2e-15) and flagged 69 clean rows in all with the
    # label detector; refused, 50 (seed 0)
    load, label = HELD_OUT["fair"]
    ds = open_dataset(load(), label=label)
    rep = build_representation(ds, seed=0)
    result = LabelDetector(seed=0).score(ds, rep)
    assert "6 -> 4" not in result.meta["licensed_pairs"]
    [why] = [r for r in result.meta["refused_pairs"] if r.startswith("6 -> 4 ")]
    assert "share labelled 6 rises with confidence" in why and "not a flip" in why
    proba = np.asarray(rep.proba)
    six, four = ds.classes.index("6"), ds.classes.index("4")
    in_pair = ((ds.labels == six) & (proba.argmax(axis=1) == four)
               & (proba.max(axis=1) >= 0.8))
    assert in_pair.sum() >= 20 and not result.flags[in_pair].any()
    assert result.flags.sum() <= 60  # measured 50 (69 with the pair licensed)
    section = reliability(ds.labels, proba, ds.classes, [result], max_fpr=0.005)
    assert why in section["refused_pairs"] and "6 -> 4" not in section["licensed_pairs"]


def test_a_targeted_flip_on_cars_keeps_its_licence() -> None:
    # 5% of the rows of USA relabelled Japan (the real-table grid's targeted flip, seed
    # 1): the share falls with confidence (0.31 below top 0.8, 0.085 above)
    load, label = TABLES["cars"]
    base = open_dataset(load(), label=label)
    order = np.argsort(-np.bincount(base.labels), kind="stable")
    res = run_attack("flip-targeted", base, rate=0.05, seed=1, source=int(order[0]),
                     target=int(order[1]))
    ds = res.dataset
    result = LabelDetector(seed=1).score(ds, build_representation(ds, seed=1))
    assert result.meta["licensed_pairs"] == ["Japan -> USA"]
    assert result.meta["refused_pairs"] == []
    assert result.flags[res.truth.mask].sum() >= 12  # measured 15 of 20, no clean row
