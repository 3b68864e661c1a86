"""Every poisonguard aggregator as a Flower strategy (optional extra ``fl``).

:class:`RobustStrategy` is Flower's ``FedAvg`` strategy (client sampling, fit and
evaluate configuration, server-side evaluation) with ``aggregate_fit`` replaced: the
clients' parameters become updates against the global model the server sent, a
poisonguard aggregator combines them, and a :class:`Reputation` scores the clients.
An update that cannot be used (wrong shapes, NaN or infinity) is never aggregated
and counts as an outlier (score 1) for its client.

Clients are identified by Flower's ``ClientProxy.cid`` (one per connection): a client
that reconnects starts a fresh reputation, so excluding flagged clients only holds
against attackers that cannot open new connections (use Flower's node
authentication for that). Importing this module switches Flower's telemetry off
unless ``FLWR_TELEMETRY_ENABLED`` is already set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.federated.attacks import craft_updates
from poisonguard.federated.base import Aggregator
from poisonguard.federated.model import NumpyClassifier
from poisonguard.federated.registry import get_aggregator
from poisonguard.federated.reputation import Reputation

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
try:
    from flwr.client import NumPyClient
    from flwr.common import (
        FitRes,
        NDArrays,
        Parameters,
        Scalar,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
    )
    from flwr.server.client_manager import ClientManager
    from flwr.server.client_proxy import ClientProxy
    from flwr.server.strategy import FedAvg as FlowerFedAvg
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("flwr", "fl", "Flower strategies") from exc

__all__ = ["NumpyFlowerClient", "RobustStrategy"]

TrustedUpdate = Callable[[list[np.ndarray]], list[np.ndarray]]


def _usable(update: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> bool:
    return len(update) == len(reference) and all(
        u.shape == r.shape and np.isfinite(u).all() for u, r in zip(update, reference,
                                                                     strict=True))


class RobustStrategy(FlowerFedAvg):
    """A Flower strategy that aggregates with any poisonguard aggregator.

    Parameters
    ----------
    aggregator : Aggregator or str
        The rule, or a registered name built with its defaults (``"krum"`` is f=1).
    initial_parameters : sequence of numpy.ndarray
        The starting global model.
    reputation : Reputation, optional
        Scores across rounds; a fresh ``Reputation()`` when not given.
    trusted_update : callable, optional
        ``global parameters -> update`` on the server's trusted root data; needed by
        FLTrust.
    **fedavg_options
        Passed to Flower's ``FedAvg`` (``min_fit_clients``, ``evaluate_fn``, ...).

    Attributes
    ----------
    rounds : list of dict
        Per round: the clients (cid and the ``name`` each reported, if any), their
        scores and selection, who was excluded, rejected or newly flagged.

    Examples
    --------
    >>> import numpy as np
    >>> strategy = RobustStrategy("median", initial_parameters=[np.zeros(3)])
    >>> strategy.aggregator
    CoordinateMedian()
    """

    def __init__(self, aggregator: Aggregator | str, *,
                 initial_parameters: Sequence[np.ndarray],
                 reputation: Reputation | None = None,
                 trusted_update: TrustedUpdate | None = None, **fedavg_options: Any) -> None:
        self.aggregator = get_aggregator(aggregator) if isinstance(aggregator, str) \
            else aggregator
        if self.aggregator.needs_trusted and trusted_update is None:
            raise UsageError(f"{self.aggregator.name} needs trusted_update (the server's "
                             "update on its root data)")
        super().__init__(initial_parameters=ndarrays_to_parameters(list(initial_parameters)),
                         **fedavg_options)
        self.reputation = reputation if reputation is not None else Reputation()
        self.trusted_update = trusted_update
        self.rounds: list[dict[str, Any]] = []
        self._global: list[np.ndarray] = [np.asarray(a) for a in initial_parameters]

    def __repr__(self) -> str:
        return f"RobustStrategy({self.aggregator!r})"

    def configure_fit(self, server_round: int, parameters: Parameters,
                      client_manager: ClientManager) -> list[tuple[ClientProxy, Any]]:
        """Remember the global model sent out, then sample clients as FedAvg does."""
        self._global = parameters_to_ndarrays(parameters)
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]],
                      failures: list[tuple[ClientProxy, FitRes] | BaseException],
                      ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Aggregate the round's updates robustly; score and maybe exclude clients."""
        if not results or (failures and not self.accept_failures):
            return None, {}
        cids = [proxy.cid for proxy, _ in results]
        names = [str(res.metrics.get("name", proxy.cid)) for proxy, res in results]
        cids = [str(c) for c in cids]
        updates = [[p - g for p, g in zip(parameters_to_ndarrays(res.parameters),
                                          self._global, strict=False)]
                   for _, res in results]
        usable = [_usable(u, self._global) for u in updates]
        allowed = self.reputation.allowed(cids)
        keep = [i for i in range(len(results)) if usable[i] and allowed[i]]
        rejected = [names[i] for i in range(len(results)) if not usable[i]]
        name_of = dict(zip(cids, names, strict=True))
        record: dict[str, Any] = {"round": server_round, "clients": cids, "names": names,
                                  "rejected": rejected,
                                  "excluded": [names[i] for i in np.flatnonzero(~allowed)]}
        newly = self.reputation.update([cids[i] for i in range(len(results))
                                        if not usable[i] and allowed[i]],
                                       [1.0] * sum(not u and a for u, a in zip(usable, allowed,
                                                                                strict=True)))
        if len(keep) < self.aggregator.min_clients():
            record.update(newly_flagged=[name_of.get(str(c), str(c)) for c in newly], skipped=True)
            self.rounds.append(record)
            return None, {"skipped": True, "usable_updates": len(keep)}
        trusted = self.trusted_update(self._global) if self.trusted_update else None
        result = self.aggregator.aggregate(
            [updates[i] for i in keep], weights=[results[i][1].num_examples for i in keep],
            trusted=trusted)
        newly += self.reputation.update([cids[i] for i in keep], result.scores)
        self._global = [g + u for g, u in zip(self._global, result.update, strict=True)]
        record.update(kept=[names[i] for i in keep], scores=result.scores.tolist(),
                      selected=result.selected.tolist(),
                      newly_flagged=[name_of.get(str(c), str(c)) for c in newly], skipped=False)
        self.rounds.append(record)
        flagged = [name_of[str(c)] for c in self.reputation.flagged() if str(c) in name_of]
        return ndarrays_to_parameters(self._global), {
            "aggregator": self.aggregator.name, "flagged": ",".join(flagged),
            "excluded": len(record["excluded"]), "rejected": len(rejected)}


class NumpyFlowerClient(NumPyClient):
    """A Flower client training :class:`NumpyClassifier` on its shard; optionally malicious.

    ``attack`` is ``None`` (honest) or one of ``scaling``, ``sign-flip``, ``noise``:
    the client trains honestly, then sends the crafted update (see
    :mod:`poisonguard.federated.attacks`) in place of its own.

    Examples
    --------
    >>> import numpy as np
    >>> model = NumpyClassifier(n_features=2, n_classes=2, hidden=0)
    >>> client = NumpyFlowerClient(model, np.eye(2), np.array([0, 1]), name="c0")
    >>> new, n, metrics = client.fit(model.init(0), {})
    >>> n, metrics["name"]
    (2, 'c0')
    """

    def __init__(self, model: NumpyClassifier, x: np.ndarray, y: np.ndarray, *, name: str,
                 attack: str | None = None, scale: float = 5.0, epochs: int = 2,
                 lr: float = 0.1, batch_size: int = 16, seed: int = 0) -> None:
        if attack not in (None, "scaling", "sign-flip", "noise"):
            raise UsageError(f"a Flower demo client attacks with scaling, sign-flip or noise, "
                             f"not '{attack}'")
        self.model, self.x, self.y, self.name = model, x, y, name
        self.attack, self.scale = attack, scale
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self._rng = np.random.default_rng(seed)
        self._round = 0

    def fit(self, parameters: NDArrays, config: dict[str, Scalar]
            ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        """Train locally from the global parameters; return (parameters, rows, metrics)."""
        self._round += 1
        trained = self.model.train(parameters, self.x, self.y, epochs=self.epochs, lr=self.lr,
                                   batch_size=self.batch_size,
                                   seed=int(self._rng.integers(2**31)))
        if self.attack is not None:
            flat = np.concatenate([(t - p).ravel() for t, p in zip(trained, parameters,
                                                                  strict=True)])
            crafted = craft_updates(self.attack, flat[None, :], n_clients=1,
                                    scale=self.scale, rng=self._rng)[0]
            out, start = [], 0
            for p in parameters:
                out.append(p + crafted[start:start + p.size].reshape(p.shape))
                start += p.size
            trained = out
        return trained, len(self.y), {"name": self.name}

    def evaluate(self, parameters: NDArrays, config: dict[str, Scalar]
                 ) -> tuple[float, int, dict[str, Scalar]]:
        """Accuracy on the local shard (reported as 1 - accuracy for the loss)."""
        acc = self.model.accuracy(parameters, self.x, self.y)
        return 1.0 - acc, len(self.y), {"accuracy": acc, "name": self.name}
