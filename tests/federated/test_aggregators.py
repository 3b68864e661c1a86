"""Each aggregator's known robustness property, plus the contract every aggregator keeps."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.errors import UsageError
from poisonguard.federated import (
    Bulyan,
    CoordinateMedian,
    FedAvg,
    FLTrust,
    GeometricMedian,
    Krum,
    MultiKrum,
    NormClipping,
    TrimmedMean,
    available_aggregators,
    get_aggregator,
)
from poisonguard.federated.base import flatten_updates

D = 40


def honest(n: int, rng: np.random.Generator, spread: float = 0.1) -> np.ndarray:
    """n honest flat updates around a shared direction."""
    center = rng.normal(0.0, 1.0, size=D)
    return center + rng.normal(0.0, spread, size=(n, D))


def arbitrary(f: int, rng: np.random.Generator, how: str, good: np.ndarray) -> np.ndarray:
    """f Byzantine updates of several shapes: huge, colluding, opposite, one-coordinate."""
    if how == "huge":
        return rng.normal(0.0, 1e6, size=(f, D))
    if how == "colluding":
        return np.repeat(rng.normal(0.0, 50.0, size=(1, D)), f, axis=0)
    if how == "reversed":
        return np.repeat(-20.0 * good.mean(axis=0, keepdims=True), f, axis=0)
    spike = np.zeros((f, D))
    spike[:, 3] = 1e9  # all attackers push one coordinate as far as they can
    return good.mean(axis=0) + spike


def as_updates(matrix: np.ndarray) -> list[list[np.ndarray]]:
    """Flat rows as two-tensor updates (a 5 x 4 weight and a 20-vector bias)."""
    return [[row[:20].reshape(5, 4), row[20:]] for row in matrix]


def flat(update: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in update])


HOWS = ["huge", "colluding", "reversed", "spike"]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("rule", "n", "f"), [
    (CoordinateMedian(), 11, 5),           # any f < n / 2
    (TrimmedMean(trim=0.2), 20, 4),        # any f <= floor(trim * n)
    (Bulyan(f=3), 15, 3),                  # n >= 4f + 3
])
def test_coordinatewise_rules_stay_inside_the_honest_range(rule, n, f, how, seed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    good = honest(n - f, rng)
    bad = arbitrary(f, rng, how, good)
    order = rng.permutation(n)
    out = flat(rule.aggregate(as_updates(np.vstack([good, bad])[order])).update)
    lo, hi = good.min(axis=0), good.max(axis=0)
    assert np.all(out >= lo - 1e-9) and np.all(out <= hi + 1e-9)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("seed", range(3))
def test_bulyan_is_close_to_the_honest_mean(how, seed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n, f = 19, 4
    good = honest(n - f, rng)
    bad = arbitrary(f, rng, how, good)
    out = flat(Bulyan(f=f).aggregate(as_updates(np.vstack([bad, good]))).update)
    radius = np.linalg.norm(good - good.mean(axis=0), axis=1).max()
    assert np.linalg.norm(out - good.mean(axis=0)) <= radius


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("n", "f"), [(5, 1), (10, 3), (20, 8)])
def test_krum_picks_an_honest_update_when_n_exceeds_2f_plus_2(n, f, how, seed) -> None:  # type: ignore[no-untyped-def]
    assert n > 2 * f + 2
    rng = np.random.default_rng(seed)
    good = honest(n - f, rng)
    bad = arbitrary(f, rng, how, good)
    order = rng.permutation(n)
    result = Krum(f=f).aggregate(as_updates(np.vstack([good, bad])[order]))
    chosen = int(order[result.details["chosen"]])
    assert chosen < n - f  # rows 0..n-f-1 of the stack are the honest ones
    assert np.allclose(flat(result.update), good[chosen])
    kept = MultiKrum(f=f).aggregate(as_updates(np.vstack([good, bad])[order])).selected
    assert not kept[order >= n - f].any()


@pytest.mark.parametrize("rule", [Krum(f=2), MultiKrum(f=2), Bulyan(f=1)])
def test_krum_family_refuses_too_few_clients(rule) -> None:  # type: ignore[no-untyped-def]
    too_few = rule.min_clients() - 1
    with pytest.raises(UsageError, match="needs at least"):
        rule.aggregate(as_updates(np.zeros((too_few, D))))


@pytest.mark.parametrize("scale", [1.0, 0.01, 1000.0])
def test_fltrust_gives_a_reversed_update_zero_weight(scale: float) -> None:
    rng = np.random.default_rng(0)
    good = honest(6, rng)
    trusted = good.mean(axis=0) + rng.normal(0, 0.05, D)
    reversed_ = -scale * good[0]
    rule = FLTrust()
    with_bad = rule.aggregate(as_updates(np.vstack([good, reversed_])),
                              trusted=as_updates(trusted[None])[0])
    without = rule.aggregate(as_updates(good), trusted=as_updates(trusted[None])[0])
    assert not with_bad.selected[-1] and with_bad.selected[:-1].all()
    assert with_bad.details["trust"][-1] == 0.0 and with_bad.scores[-1] == 1.0
    assert np.allclose(flat(with_bad.update), flat(without.update))


def test_fltrust_bounds_the_norm_by_the_trusted_update() -> None:
    rng = np.random.default_rng(1)
    good = honest(5, rng)
    trusted = good.mean(axis=0)
    boosted = 1e6 * good[1]  # same direction, huge norm (model replacement)
    out = FLTrust().aggregate(as_updates(np.vstack([good, boosted])),
                              trusted=as_updates(trusted[None])[0]).update
    assert np.linalg.norm(flat(out)) <= np.linalg.norm(trusted) * (1 + 1e-9)


def test_fltrust_with_every_update_reversed_learns_nothing() -> None:
    rng = np.random.default_rng(2)
    good = honest(4, rng)
    out = FLTrust().aggregate(as_updates(-good), trusted=as_updates(good.mean(axis=0)[None])[0])
    assert not out.selected.any() and np.all(flat(out.update) == 0)


def test_fltrust_needs_the_trusted_update() -> None:
    with pytest.raises(UsageError, match="trusted"):
        FLTrust().aggregate(as_updates(np.ones((3, D))))


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("f", [1, 4, 9])
def test_geometric_median_stays_near_the_honest_cluster(how: str, f: int) -> None:
    rng = np.random.default_rng(f)
    n = 20
    good = honest(n - f, rng)
    bad = arbitrary(f, rng, how, good)
    out = flat(GeometricMedian().aggregate(as_updates(np.vstack([good, bad]))).update)
    center = good.mean(axis=0)
    radius = np.linalg.norm(good - center, axis=1).max()
    alpha = f / n
    # the geometric median moves at most C_alpha times the honest radius, alpha < 1/2
    assert np.linalg.norm(out - center) <= (2 * (1 - alpha) / (1 - 2 * alpha)) * radius


def test_fedavg_is_moved_arbitrarily_by_one_client() -> None:
    rng = np.random.default_rng(0)
    good = honest(9, rng)
    bad = np.full((1, D), 1e6)
    out = flat(FedAvg().aggregate(as_updates(np.vstack([good, bad]))).update)
    assert np.linalg.norm(out - good.mean(axis=0)) > 1e4


def test_norm_clipping_bounds_each_contribution() -> None:
    rng = np.random.default_rng(0)
    good = honest(9, rng)
    bad = np.full((1, D), 1e6)
    result = NormClipping().aggregate(as_updates(np.vstack([good, bad])))
    bound = result.details["clip_bound"]
    assert bound <= np.linalg.norm(good, axis=1).max()  # the median norm: an honest one
    assert np.linalg.norm(flat(result.update)) <= bound + 1e-9
    fixed = NormClipping(max_norm=0.5).aggregate(as_updates(np.vstack([good, bad])))
    assert np.linalg.norm(flat(fixed.update)) <= 0.5 + 1e-9


def test_norm_clipping_noise_is_seeded() -> None:
    ups = as_updates(np.ones((4, D)))
    a = NormClipping(noise_multiplier=1.0, seed=3).aggregate(ups).update
    b = NormClipping(noise_multiplier=1.0, seed=3).aggregate(ups).update
    plain = NormClipping().aggregate(ups).update
    assert np.array_equal(flat(a), flat(b)) and not np.allclose(flat(a), flat(plain))


def test_weights_weigh_fedavg() -> None:
    out = FedAvg().aggregate([[np.zeros(2)], [np.ones(2)]], weights=[3, 1]).update[0]
    assert out.tolist() == [0.25, 0.25]


# ---- the contract every registered aggregator keeps -------------------------------------

NAMES = available_aggregators()


def make(name: str):  # type: ignore[no-untyped-def]
    return get_aggregator(name, f=2) if name in ("krum", "multi-krum", "bulyan") \
        else get_aggregator(name)


@pytest.mark.parametrize("name", NAMES)
def test_contract_shapes_scores_determinism_no_mutation(name: str) -> None:
    rng = np.random.default_rng(5)
    good = honest(9, rng)
    bad = np.vstack([good[:2].mean(axis=0) + 30.0, -5.0 * good[0]])
    ups = as_updates(np.vstack([good, bad]))
    before = [[a.copy() for a in u] for u in ups]
    trusted = as_updates(good.mean(axis=0)[None])[0]
    first = make(name).aggregate(ups, trusted=trusted)
    again = make(name).aggregate(ups, trusted=trusted)
    assert [a.shape for a in first.update] == [(5, 4), (20,)]
    assert np.array_equal(flat(first.update), flat(again.update))
    assert first.scores.shape == (11,) and first.selected.shape == (11,)
    assert np.all((first.scores >= 0) & (first.scores <= 1))
    assert first.selected.dtype == bool
    assert all(np.array_equal(a, b) for u, v in zip(ups, before, strict=True)
               for a, b in zip(u, v, strict=True))
    if name not in ("fedavg", "clip"):
        # robust rules: the two attackers score as outliers, most honest clients do not
        assert (first.scores[-2:] > 0.5).all()
        assert (first.scores[:9] <= 0.5).sum() >= 7
    assert first.to_dict()["scores"][0] == round(float(first.scores[0]), 6)


@pytest.mark.parametrize("name", NAMES)
def test_contract_fails_closed_on_bad_input(name: str) -> None:
    rule = make(name)
    ups = as_updates(np.ones((11, D)))
    trusted = ups[0]
    nan = [list(u) for u in ups]
    nan[4] = [nan[4][0], np.full(20, np.nan)]
    with pytest.raises(UsageError, match="client 4 sent a non-finite"):
        rule.aggregate(nan, trusted=trusted)
    ragged = [list(u) for u in ups]
    ragged[2] = [np.ones((4, 5)), np.ones(20)]
    with pytest.raises(UsageError, match="client 2 sent tensors of shapes"):
        rule.aggregate(ragged, trusted=trusted)
    with pytest.raises(UsageError, match="no client updates"):
        rule.aggregate([], trusted=trusted)
    with pytest.raises(UsageError, match="weights"):
        rule.aggregate(ups, weights=[1.0] * 10, trusted=trusted)


def test_flatten_keeps_order_and_dtype() -> None:
    matrix, shapes = flatten_updates([[np.arange(6, dtype=np.float32).reshape(2, 3),
                                       np.array([7.0])]])
    assert shapes == [(2, 3), (1,)] and matrix.dtype == np.float64
    assert matrix[0].tolist() == [0, 1, 2, 3, 4, 5, 7]


@pytest.mark.parametrize(("name", "params", "message"), [
    ("trimmed-mean", {"trim": 0.5}, "trim"),
    ("krum", {"f": -1}, "Byzantine"),
    ("multi-krum", {"m": 0}, "m must"),
    ("clip", {"max_norm": 0.0}, "max_norm"),
    ("clip", {"noise_multiplier": -1.0}, "noise_multiplier"),
    ("geomed", {"max_iter": 0}, "max_iter"),
    ("median", {"nonsense": 1}, "median"),
    ("nope", {}, "unknown aggregator"),
])
def test_parameters_are_validated(name: str, params: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UsageError, match=message):
        get_aggregator(name, **params)
