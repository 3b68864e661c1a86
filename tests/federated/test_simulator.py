"""The simulator: robust rules keep accuracy and cut backdoor success where FedAvg fails.

Fixed seed 0; the margins on more seeds are in benchmarks/RESULTS.md (federated).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from poisonguard.errors import UsageError
from poisonguard.federated import SimulationConfig, SimulationResult, simulate
from poisonguard.federated.partition import dirichlet_split, make_federated_data

ROUNDS = 20


@functools.cache
def run(attack: str, aggregator: str, **extra: object) -> SimulationResult:
    params: dict[str, object] = {"clients": 20, "malicious": 4, "rounds": ROUNDS, "seed": 0}
    params.update(extra)
    config = SimulationConfig(attack=attack, aggregator=aggregator, **params)  # type: ignore[arg-type]
    return simulate(config)


def test_fedavg_is_backdoored_by_scaled_updates() -> None:
    result = run("scaling", "fedavg")
    assert result.final_attack_success is not None and result.final_attack_success >= 0.9


@pytest.mark.parametrize("aggregator", ["median", "trimmed-mean", "krum", "multi-krum",
                                        "bulyan", "fltrust"])
def test_robust_rules_cut_the_backdoor_and_keep_accuracy(aggregator: str) -> None:
    result = run("scaling", aggregator)
    clean = run("none", "fedavg", malicious=0)
    assert result.final_attack_success is not None and result.final_attack_success <= 0.15
    assert result.final_accuracy >= clean.final_accuracy - 0.08


def test_fedavg_collapses_under_boosted_sign_flipping() -> None:
    assert run("sign-flip", "fedavg").final_accuracy <= 0.3


@pytest.mark.parametrize("aggregator", ["clip", "median", "krum", "geomed", "fltrust"])
def test_robust_rules_keep_accuracy_under_sign_flipping(aggregator: str) -> None:
    assert run("sign-flip", aggregator).final_accuracy >= 0.8


def test_reputation_names_exactly_the_scaling_attackers() -> None:
    result = run("scaling", "median")
    assert result.flag_precision == 1.0 and result.flag_recall == 1.0
    assert sorted(result.history[-1].flagged) == result.malicious_clients


def test_no_attack_flags_nobody() -> None:
    result = run("none", "fedavg", malicious=0)
    assert result.history[-1].flagged == [] and result.flag_recall is None


def test_excluding_flagged_clients_shuts_them_out() -> None:
    result = run("scaling", "fedavg", exclude_flagged=True)
    flagged_at = next(r.round for r in result.history if r.flagged)
    later = [r for r in result.history if r.round > flagged_at]
    assert later and all(r.excluded == 4 and r.malicious_selected == 0 for r in later)
    # once the attackers are out, FedAvg unlearns most of the backdoor
    assert result.final_attack_success is not None and result.final_attack_success < 0.5


def test_history_is_reproducible_and_json_ready() -> None:
    config = SimulationConfig(clients=6, malicious=1, attack="noise", aggregator="geomed",
                              rounds=2, seed=3, hidden=0)
    a, b = simulate(config).to_dict(), simulate(config).to_dict()
    assert a == b
    assert a["config"]["aggregator"] == "geomed" and len(a["rounds"]) == 2
    assert a["rounds"][0]["attack_success"] is None


def test_dirichlet_shards_are_skewed_and_cover_every_row() -> None:
    y = np.repeat(np.arange(10), 100)
    shards = dirichlet_split(y, 10, 0.5, np.random.default_rng(0))
    assert sorted(np.concatenate(shards).tolist()) == list(range(1000))
    top_share = [np.bincount(y[s], minlength=10).max() / len(s) for s in shards]
    assert np.median(top_share) > 0.3  # IID would give ~0.1 per class
    data = make_federated_data("synthetic", n_clients=5, split="dirichlet", alpha=0.5, seed=1)
    assert len(data.shards) == 5 and len(data.x_root) == 100


@pytest.mark.parametrize(("params", "message"), [
    ({"attack": "nope"}, "unknown attack"),
    ({"aggregator": "nope"}, "unknown aggregator"),
    ({"malicious": 20}, "malicious"),
    ({"clients": 10, "aggregator": "bulyan", "byzantine": 3}, "tolerates at most 1"),
    ({"dataset": "mnist"}, "unknown federated dataset"),
    ({"split": "pathological"}, "split"),
    ({"malicious": 0}, "needs at least one malicious"),
])
def test_config_is_validated(params: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UsageError, match=message):
        SimulationConfig(**params)
