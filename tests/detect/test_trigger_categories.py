"""Categorical triggers (a rare combination of common categories) on a real table:
found by the trigger detector's category-pair candidates, named by the vetted
hypothesis, and ranked first by the fusion, above saturated label disagreements."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from poisonguard.attack import attack_by_name
from poisonguard.data import Dataset
from poisonguard.datasets import open_dataset
from poisonguard.detect.base import DetectorResult
from poisonguard.detect.fusion import CLAIM_BAND, fuse
from poisonguard.detect.hypotheses import vet_hypotheses
from poisonguard.detect.trigger import TriggerDetector
from poisonguard.detect.trigger_categories import category_combinations
from poisonguard.represent import feature_representation


@pytest.fixture(scope="module")
def anes96() -> Dataset:
    """statsmodels' anes96 voters; party identification and education are coded
    categories (declared so, as a user would)."""
    import statsmodels.api as sm

    return open_dataset(sm.datasets.anes96.load_pandas().data, label="vote",
                        categorical=("PID", "educ"))


def test_untouched_table_gets_no_trigger(anes96: Dataset) -> None:
    result = TriggerDetector(seed=0).score(anes96, feature_representation(anes96))
    assert not result.flags.any() and result.hypotheses == ()
    # Every category combination examined is counted (the item sets by Tarone's rule).
    _, examined = category_combinations(anes96.stored_matrix(), anes96.labels,
                                        anes96.n_classes, anes96.schema, min_rows=5,
                                        max_fraction=0.2, min_purity=0.8)
    assert examined == 38 and result.meta["tests"] >= anes96.n_classes * examined


def test_categorical_backdoor_is_confirmed_named_and_ranked_first(anes96: Dataset) -> None:
    attack = attack_by_name("categorical-trigger", anes96, rate=0.02, seed=0, target="1")
    ds, poison = attack.dataset, attack.truth.mask
    assert attack.truth.trigger["rows_with_it"] == 0  # a combination no voter had
    trigger = TriggerDetector(seed=0).score(ds, feature_representation(ds))
    assert len(trigger.hypotheses) == 1 and trigger.hypotheses[0].startswith(
        "backdoor -> class 1: 19 rows")
    assert trigger.flags.any() and not (trigger.flags & ~poison).any()
    vetted = vet_hypotheses([trigger], ds)
    (claim,) = vetted.claims
    # every holder of the confirmed trigger in the target class, flagged by the
    # detector or not (some still look like Dole voters with it masked)
    assert np.array_equal(claim.rows, poison) and (claim.rows & ~trigger.flags).any()
    # a label detector sure of 30 natural dissenters saturates at 1.0
    rng = np.random.default_rng(0)
    dissent = rng.choice(np.flatnonzero(~poison), size=30, replace=False)
    scores = np.full(len(ds), 0.1)
    scores[dissent] = 1.0
    label = DetectorResult("label", scores, scores >= 0.5)
    fused = fuse([label, trigger], len(ds), claims=vetted.claims)
    top = np.argsort(-fused.scores, kind="stable")[: int(poison.sum())]
    assert poison[top].all()
    assert fused.flags[poison].all() and (fused.scores[poison] >= CLAIM_BAND[0]).all()
    unflagged = np.flatnonzero(poison & ~trigger.flags)[0]
    assert "holds the trigger of: backdoor -> class 1" in fused.reasons[int(unflagged)][0][2]


def test_a_triple_is_mined_when_each_of_its_pairs_is_common() -> None:
    """Three binary columns holding 7 of their 8 triples (every pair common, none one
    class); 8 rows of other classes get the missing triple and label 'k'."""
    triples = list(itertools.product("uv", "pq", "xy"))[1:]
    cells = np.array([triples[i % 7] for i in range(200)])
    table = pd.DataFrame({"a": cells[:, 0], "b": cells[:, 1], "c": cells[:, 2],
                          "label": np.array(["k", "l", "m", "m", "l"])[np.arange(200) % 5]})
    stamped = np.flatnonzero(table["label"] != "k")[::15][:8]
    table.loc[stamped, ["a", "b", "c", "label"]] = ["u", "p", "x", "k"]
    ds = open_dataset(table, label="label")
    found, examined = category_combinations(ds.matrix(), ds.labels, ds.n_classes, ds.schema)
    assert [ds.feature_names[f] for f in found[0].features] == ["a = u", "b = p", "c = x"]
    assert found[0].rows.tolist() == stamped.tolist() and found[0].purity == 1.0
    assert all(len(c.features) == 3 for c in found)  # no pair is one class
    # examined: the 3 pairs at most 20% of the rows hold (those of the missing triple)
    # and all 8 triples; the 9 larger pairs only grow triples
    assert examined == 3 + 8


def test_a_one_class_pair_narrows_to_the_stamped_triple() -> None:
    """(a = u, b = p) is rare (one natural row of class k); 10 rows stamped with
    (u, p, x) make the pair one class: the candidate is the triple, without the
    natural holder."""
    n = 200
    idx = np.arange(n)
    table = pd.DataFrame({"a": np.where(idx % 2, "u", "v"), "b": np.where(idx % 2, "q", "p"),
                          "c": np.where(idx % 3, "x", "y"),
                          "label": np.array(["k", "l", "m", "l"])[idx % 4]})
    natural = 3  # odd row, class l -> the only natural (u, p) holder, class k, c = y
    table.loc[natural, ["b", "c", "label"]] = ["p", "y", "k"]
    stamped = idx[(idx % 4 == 2)][:10]
    table.loc[stamped, ["a", "b", "c", "label"]] = ["u", "p", "x", "k"]
    ds = open_dataset(table, label="label")
    found, _ = category_combinations(ds.matrix(), ds.labels, ds.n_classes, ds.schema)
    (best,) = [c for c in found if natural not in c.rows.tolist() and c.n_rows == 10]
    assert [ds.feature_names[f] for f in best.features] == ["a = u", "b = p", "c = x"]
    assert best.rows.tolist() == stamped.tolist()
    assert not any(len(c.features) == 2 and natural in c.rows.tolist() for c in found)
