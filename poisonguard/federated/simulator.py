"""A federated-learning simulator: honest and malicious clients, one aggregator, rounds.

Everything runs in one process on numpy (no framework, no network). Each round every
client trains the global model on its shard; malicious clients poison their data or
craft their update (:mod:`poisonguard.federated.attacks`); the server aggregates with
the chosen rule, updates the reputation, applies the aggregate, and measures
main-task accuracy and backdoor attack success on its held-out test set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.federated.attacks import (
    BACKDOOR_ATTACKS,
    check_attack,
    craft_updates,
    default_scale,
    poison_local_data,
)
from poisonguard.federated.base import flatten_updates, unflatten
from poisonguard.federated.model import NumpyClassifier
from poisonguard.federated.partition import (
    FEDERATED_DATASETS,
    FederatedData,
    make_federated_data,
)
from poisonguard.federated.registry import aggregator_for
from poisonguard.federated.reputation import Reputation
from poisonguard.progress import NullProgress, Progress

__all__ = ["RoundRecord", "SimulationConfig", "SimulationResult", "simulate"]


@dataclass(frozen=True)
class SimulationConfig:
    """Everything a simulation run depends on (validated here, once).

    ``byzantine`` is the tolerance the robust rules are built for (default 30% of
    the clients; see :func:`~poisonguard.federated.aggregator_for`), independent of
    ``malicious``, the number of attackers actually present. ``attack_scale`` of
    ``None`` uses the attack's default (:func:`~poisonguard.federated.attacks.default_scale`).

    Examples
    --------
    >>> config = SimulationConfig(clients=4, malicious=1, rounds=2)
    >>> config.aggregator, config.attack
    ('fedavg', 'scaling')
    """

    clients: int = 20
    malicious: int = 4
    attack: str = "scaling"
    aggregator: str = "fedavg"
    rounds: int = 30
    dataset: str = "digits"
    split: str = "iid"
    alpha: float = 0.5
    hidden: int = 32
    local_epochs: int = 2
    lr: float = 0.1
    batch_size: int = 16
    target: int = 0
    poison_fraction: float = 0.5
    attack_scale: float | None = None
    byzantine: int | None = None
    root_size: int = 100
    reputation_min_rounds: int = 5
    exclude_flagged: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_attack(self.attack)
        checks = [
            (self.clients >= 3, f"clients must be >= 3, got {self.clients}"),
            (0 <= self.malicious < self.clients,
             f"malicious must be in [0, clients), got {self.malicious}"),
            (self.rounds >= 1, f"rounds must be >= 1, got {self.rounds}"),
            (self.local_epochs >= 1 and self.batch_size >= 1 and self.lr > 0,
             "local_epochs, batch_size and lr must be positive"),
            (0 < self.poison_fraction <= 1,
             f"poison_fraction must be in (0, 1], got {self.poison_fraction}"),
            (self.attack_scale is None or self.attack_scale > 0,
             f"attack_scale must be positive, got {self.attack_scale}"),
            (self.hidden >= 0, f"hidden must be >= 0, got {self.hidden}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.attack != "none" and self.malicious == 0:
            raise UsageError(f"attack '{self.attack}' needs at least one malicious client")
        if self.dataset not in FEDERATED_DATASETS:
            raise UsageError(f"unknown federated dataset '{self.dataset}' "
                             f"(known: {', '.join(FEDERATED_DATASETS)})")
        if self.split not in ("iid", "dirichlet") or not self.alpha > 0:
            raise UsageError("split must be 'iid' or 'dirichlet', with alpha > 0")
        rule = aggregator_for(self.aggregator, self.clients, byzantine=self.byzantine)
        if rule.min_clients() > self.clients:
            raise UsageError(f"{rule!r} needs at least {rule.min_clients()} clients")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


@dataclass(frozen=True)
class RoundRecord:
    """What one round measured.

    Examples
    --------
    >>> first = simulate(SimulationConfig(clients=4, malicious=1, rounds=1)).history[0]
    >>> first.round, first.malicious_selected
    (1, 1)
    """

    round: int
    accuracy: float
    attack_success: float | None
    newly_flagged: list[str]
    flagged: list[str]
    excluded: int
    malicious_selected: int
    mean_score_honest: float
    mean_score_malicious: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


@dataclass(frozen=True)
class SimulationResult:
    """A run's configuration, per-round history, the final reputation and its quality.

    Examples
    --------
    >>> result = simulate(SimulationConfig(clients=4, malicious=1, rounds=2))
    >>> len(result.history), result.malicious_clients
    (2, ['client-3'])
    """

    config: SimulationConfig
    aggregator: str
    malicious_clients: list[str]
    history: list[RoundRecord]
    reputation: list[dict[str, Any]]
    flag_precision: float | None
    flag_recall: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        """Main-task accuracy after the last round."""
        return self.history[-1].accuracy

    @property
    def final_attack_success(self) -> float | None:
        """Backdoor attack success rate after the last round (None without a backdoor)."""
        return self.history[-1].attack_success

    def to_dict(self) -> dict[str, Any]:
        """The JSON history ``fl-sim`` writes."""
        return {"tool": "poisonguard", "kind": "fl-sim", "config": self.config.to_dict(),
                "aggregator": self.aggregator, "malicious_clients": self.malicious_clients,
                "final": {"accuracy": self.final_accuracy,
                          "attack_success": self.final_attack_success,
                          "flag_precision": self.flag_precision,
                          "flag_recall": self.flag_recall},
                "rounds": [r.to_dict() for r in self.history],
                "reputation": self.reputation, **self.extra}


def _client_ids(n: int) -> list[str]:
    width = len(str(n - 1))
    return [f"client-{i:0{width}d}" for i in range(n)]


def _attack_success(model: NumpyClassifier, params: list[np.ndarray], data: FederatedData,
                    target: int) -> float:
    from poisonguard.attack.trigger import stamp  # lazy: keeps `poisonguard --help` fast

    keep = data.y_test != target
    triggered = stamp(data.x_test[keep], data.trigger).astype(np.float64)
    return float(np.mean(model.predict(params, triggered) == target))


def simulate(config: SimulationConfig, *, progress: Progress | None = None,
             on_round: Callable[[RoundRecord], None] | None = None) -> SimulationResult:
    """Run a federated training with attackers and a defence; return the history.

    Parameters
    ----------
    config : SimulationConfig
        The run.
    progress : Progress, optional
        Receives ``update("round r/R", ...)`` after each round.
    on_round : callable, optional
        Called with each :class:`RoundRecord` as soon as the round ends.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> cfg = SimulationConfig(clients=10, malicious=2, attack="sign-flip",
    ...                        aggregator="median", rounds=3, seed=0)
    >>> result = simulate(cfg)
    >>> len(result.history), result.final_accuracy > 0.5
    (3, True)
    """
    cfg = config
    progress = progress or NullProgress()
    data = make_federated_data(cfg.dataset, n_clients=cfg.clients, split=cfg.split,
                               alpha=cfg.alpha, root_size=cfg.root_size, seed=cfg.seed)
    aggregator = aggregator_for(cfg.aggregator, cfg.clients, byzantine=cfg.byzantine)
    model = NumpyClassifier(n_features=data.x.shape[1], n_classes=data.n_classes,
                            hidden=cfg.hidden)
    rng = np.random.default_rng(cfg.seed)
    ids = _client_ids(cfg.clients)
    bad = set(rng.choice(cfg.clients, size=cfg.malicious, replace=False).tolist())
    scale = cfg.attack_scale or default_scale(cfg.attack, cfg.clients, cfg.malicious)

    def train(start: list[np.ndarray], x: np.ndarray, y: np.ndarray, seed: int
              ) -> list[np.ndarray]:
        return model.train(start, x, y, epochs=cfg.local_epochs, lr=cfg.lr,
                           batch_size=cfg.batch_size, seed=seed)

    shards = []
    for i, rows in enumerate(data.shards):
        x, y = data.x[rows], data.y[rows]
        if i in bad:
            x, y = poison_local_data(cfg.attack, x, y, n_classes=data.n_classes,
                                     trigger=data.trigger, target=cfg.target,
                                     fraction=cfg.poison_fraction, rng=rng)
        shards.append((x, y))
    reputation = Reputation(min_rounds=cfg.reputation_min_rounds, exclude=cfg.exclude_flagged)
    params = model.init(cfg.seed)
    history: list[RoundRecord] = []
    for r in range(1, cfg.rounds + 1):
        updates = []
        for i, (x, y) in enumerate(shards):
            trained = train(params, x, y, cfg.seed * 100_003 + r * 1009 + i)
            updates.append([t - p for t, p in zip(trained, params, strict=True)])
        matrix, shapes = flatten_updates(updates)
        attackers = sorted(bad)
        if attackers:
            matrix[attackers] = craft_updates(cfg.attack, matrix[attackers],
                                              n_clients=cfg.clients, scale=scale, rng=rng)
        allowed = reputation.allowed(ids)
        idx = np.flatnonzero(allowed)
        trusted = None
        if aggregator.needs_trusted:
            root = train(params, data.x_root, data.y_root, cfg.seed + r)
            trusted = [t - p for t, p in zip(root, params, strict=True)]
        sizes = [len(shards[i][1]) for i in idx]
        result = aggregator.aggregate([unflatten(matrix[i], shapes) for i in idx],
                                      weights=sizes, trusted=trusted)
        newly = reputation.update([ids[i] for i in idx], result.scores)
        params = [p + u for p, u in zip(params, result.update, strict=True)]
        is_bad = np.array([i in bad for i in idx])
        record = RoundRecord(
            round=r, accuracy=model.accuracy(params, data.x_test, data.y_test),
            attack_success=(_attack_success(model, params, data, cfg.target)
                            if cfg.attack in BACKDOOR_ATTACKS else None),
            newly_flagged=[str(c) for c in newly],
            flagged=[str(c) for c in reputation.flagged()],
            excluded=int((~allowed).sum()),
            malicious_selected=int((result.selected & is_bad).sum()),
            mean_score_honest=float(result.scores[~is_bad].mean()),
            mean_score_malicious=float(result.scores[is_bad].mean()) if is_bad.any() else None,
        )
        history.append(record)
        if on_round is not None:
            on_round(record)
        progress.update(f"round {r}/{cfg.rounds}", done=r, total=cfg.rounds)
    flagged = set(str(c) for c in reputation.flagged())
    truth = {ids[i] for i in bad} if cfg.attack != "none" else set()
    precision = len(flagged & truth) / len(flagged) if flagged else None
    recall = len(flagged & truth) / len(truth) if truth else None
    return SimulationResult(config=cfg, aggregator=repr(aggregator),
                            malicious_clients=sorted(truth), history=history,
                            reputation=[rec.to_dict() for rec in reputation.records()],
                            flag_precision=precision, flag_recall=recall)
