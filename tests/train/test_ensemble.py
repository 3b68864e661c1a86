"""DPA and FA end to end: the certificate holds against real retraining (brute force
over every attack of up to r row edits from a pool), and DPA blunts BadNets on digits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import train_test_split

from poisonguard.attack import apply_trigger, run_attack
from poisonguard.datasets import builtin_dataset
from poisonguard.train import DPAClassifier, FAClassifier, default_estimator


class NearestRow(ClassifierMixin, BaseEstimator):
    """1-nearest-neighbour in plain numpy: deterministic and cheap to refit thousands
    of times (one poisoned row next to a probe flips it for sure)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> NearestRow:
        self.x_, self.y_ = np.asarray(X, dtype=float), np.asarray(y)
        self.classes_ = np.unique(self.y_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        d = ((np.asarray(X, dtype=float)[:, None, :] - self.x_[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(self.y_[np.argmin(d, axis=1)])


def _edits(x: np.ndarray, y: np.ndarray, probe: np.ndarray) -> list[tuple[str, int, int]]:
    """Deletions and relabels of each row, and insertions of the probe point with each
    label (what flips a 1-NN base model most surely)."""
    out = [("delete", i, -1) for i in range(len(x))]
    out += [("relabel", i, 1 - int(y[i])) for i in range(len(x))]
    out += [("insert", -1, c) for c in (0, 1)]
    return out


def _apply(x: np.ndarray, y: np.ndarray, probe: np.ndarray,
           edits: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray] | None:
    rows = {i for kind, i, _ in edits if kind in ("delete", "relabel")}
    if len(rows) < sum(kind in ("delete", "relabel") for kind, _, _ in edits):
        return None  # two edits of the same row: a smaller attack, already tried
    xs, ys = x.copy(), y.copy()
    keep = np.ones(len(x), dtype=bool)
    for kind, i, c in edits:
        if kind == "delete":
            keep[i] = False
        elif kind == "relabel":
            ys[i] = c
    xs, ys = xs[keep], ys[keep]
    for kind, _, c in edits:
        if kind == "insert":
            xs, ys = np.vstack([xs, probe[None, :]]), np.append(ys, c)
    return xs, ys


@pytest.mark.parametrize("model", [DPAClassifier(NearestRow(), n_partitions=5),
                                   FAClassifier(NearestRow(), n_partitions=5, spread=2)],
                         ids=["dpa", "fa"])
def test_no_attack_of_up_to_r_rows_flips_a_certified_prediction(model: object) -> None:
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(-2.0, 0.7, (6, 2)), rng.normal(2.0, 0.7, (6, 2))]).round(3)
    y = np.array([0] * 6 + [1] * 6)
    probes = np.array([[-2.1, -1.8], [1.9, 2.2]])
    fitted = clone(model).fit(x, y)
    predicted, radius = fitted.certify(probes)
    assert (radius >= 1).all(), radius  # the test must exercise a certificate
    changed_votes = 0
    for p, probe in enumerate(probes):
        pool = _edits(x, y, probe)
        r = int(radius[p])
        before = fitted.member_votes(probe[None, :])
        for size in range(1, r + 1):
            for edits in itertools.combinations(pool, size):
                data = _apply(x, y, probe, edits)
                if data is None:
                    continue
                attacked = clone(model).fit(*data)
                changed_votes += int((attacked.member_votes(probe[None, :]) != before).any())
                assert attacked.predict(probe[None, :])[0] == predicted[p], (p, r, edits)
    assert changed_votes > 0  # the edits do move base models: the test has teeth


def test_rows_are_partitioned_by_content_not_position() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    order = rng.permutation(60)
    a = DPAClassifier(NearestRow(), n_partitions=4).fit(x, y)
    b = DPAClassifier(NearestRow(), n_partitions=4).fit(x[order], y[order])
    probe = rng.normal(size=(40, 3))
    assert np.array_equal(a.member_votes(probe), b.member_votes(probe))
    assert a.partition_sizes_.sum() == 60


def test_dpa_lowers_badnets_success_on_digits() -> None:
    # measured with split and attack seeds 0-2 (RESULTS.md has seed 0): plain ASR
    # 0.74-0.95, DPA(20) 0.28-0.56; clean accuracy 2.4-3.3 points lower
    digits = builtin_dataset("digits")
    train_rows, test_rows = train_test_split(np.arange(len(digits)), test_size=0.3,
                                             random_state=0, stratify=digits.labels)
    test = digits.subset(test_rows)
    attack = run_attack("badnets", digits.subset(train_rows), rate=0.01, target=0, seed=0)
    x, y = attack.dataset.matrix(), attack.dataset.labels
    triggered = apply_trigger(test, attack.truth).matrix()[test.labels != 0]

    def measure(model: object) -> tuple[float, float]:
        model.fit(x, y)  # type: ignore[attr-defined]
        accuracy = float((model.predict(test.matrix()) == test.labels).mean())  # type: ignore[attr-defined]
        asr = float((model.predict(triggered) == 0).mean())  # type: ignore[attr-defined]
        return accuracy, asr

    plain_acc, plain_asr = measure(default_estimator())
    dpa_acc, dpa_asr = measure(DPAClassifier(n_partitions=20))
    assert plain_asr > 0.7
    assert dpa_asr < plain_asr - 0.3
    assert dpa_acc >= plain_acc - 0.05
