"""The order of flagged rows across detectors on a table with weak label evidence
(issue 12, "outliers never below IsolationForest")."""

from __future__ import annotations

import numpy as np

import poisonguard
from poisonguard.attack import run_attack
from poisonguard.datasets import open_dataset
from poisonguard.findings import as_table
from tests.realtables.conftest import TABLES


def test_injected_outliers_rank_above_label_flags_clean_data_would_give() -> None:
    # seattle-weather, 3% injected outliers (seed 0): the outlier detector flags exactly
    # the 45 injected rows. The label detector once flagged 8 natural rows, where its
    # null expects 7.6 on clean data of this difficulty; with the plain maximum those
    # saturated label flags ranked above the injected rows (P@k 0.82). Since session 16
    # its 6 margin doubts, fewer than the null expects, are reviewed, and 2 flags
    # remain, in the licensed pair snow -> rain: the injected rows still rank above them.
    load, label = TABLES["seattle-weather"]
    attack = run_attack("outliers", open_dataset(load(), label=label), rate=0.03, seed=0)
    findings = poisonguard.scan(attack.dataset, detectors="label,knn,outlier,duplicate",
                                seed=0)
    table = as_table(findings)
    mask = attack.truth.mask
    by_detector = findings.summary["by_detector"]
    assert by_detector["outlier"] == mask.sum() and by_detector["label"] >= 1
    assert (table.flagged[mask]).all() and table.flagged[~mask].sum() >= 1
    reliability = findings.summary["reliability"]
    assert reliability["margin_flags_reviewed"] == reliability["margin_flags"] > 0
    top = np.argsort(-table.score, kind="stable")[:mask.sum()]
    assert mask[top].all()  # precision at k = 1.0
    assert findings.summary["reliability"]["expected_clean_flags"] > 5
