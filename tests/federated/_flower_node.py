"""A real Flower server or a set of Flower clients, for the loopback test (run as a script).

    python tests/federated/_flower_node.py server PORT AGGREGATOR ROUNDS OUT.json
    python tests/federated/_flower_node.py clients PORT N_HONEST ATTACK

Clients are threads of one process, each with its own gRPC connection to the server
on 127.0.0.1; client i trains on shard i of the digits split (seed 0). The server
holds the test set and the trusted root set (FLTrust).
"""

from __future__ import annotations

import json
import sys
import threading

import flwr

from poisonguard.federated import NumpyClassifier, Reputation, get_aggregator
from poisonguard.federated.flower import NumpyFlowerClient, RobustStrategy
from poisonguard.federated.partition import make_federated_data

N_CLIENTS = 6


def _setup():  # type: ignore[no-untyped-def]
    data = make_federated_data("digits", n_clients=N_CLIENTS, seed=0)
    model = NumpyClassifier(n_features=data.x.shape[1], n_classes=data.n_classes, hidden=0)
    return data, model


def server(port: int, aggregator: str, rounds: int, out: str) -> None:
    data, model = _setup()

    def evaluate(rnd, params, config):  # type: ignore[no-untyped-def]
        return 0.0, {"accuracy": model.accuracy(params, data.x_test, data.y_test)}

    def trusted_update(params):  # type: ignore[no-untyped-def]
        new = model.train(params, data.x_root, data.y_root, epochs=2, lr=0.1, batch_size=16,
                          seed=0)
        return [n - p for n, p in zip(new, params, strict=True)]

    rule = get_aggregator(aggregator, f=1) if aggregator in ("krum", "multi-krum", "bulyan") \
        else get_aggregator(aggregator)
    strategy = RobustStrategy(
        rule, initial_parameters=model.init(0), reputation=Reputation(min_rounds=3),
        trusted_update=trusted_update, evaluate_fn=evaluate, fraction_evaluate=0.0,
        min_fit_clients=N_CLIENTS, min_available_clients=N_CLIENTS)
    history = flwr.server.start_server(server_address=f"127.0.0.1:{port}", strategy=strategy,
                                       config=flwr.server.ServerConfig(num_rounds=rounds))
    accuracy = [float(v) for _, v in history.metrics_centralized["accuracy"]]
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"accuracy": accuracy, "rounds": strategy.rounds,
                   "flagged": [strategy.rounds[-1]["names"][strategy.rounds[-1]["clients"]
                                                          .index(c)]
                               for c in strategy.reputation.flagged()]}, fh)


def clients(port: int, n_honest: int, attack: str) -> None:
    data, model = _setup()
    threads = []
    for i, rows in enumerate(data.shards):
        bad = i >= n_honest
        client = NumpyFlowerClient(model, data.x[rows], data.y[rows],
                                   name=f"{'attacker' if bad else 'honest'}-{i}",
                                   attack=attack if bad else None, seed=i)
        thread = threading.Thread(target=flwr.client.start_client, kwargs={
            "server_address": f"127.0.0.1:{port}", "client": client.to_client(),
            "insecure": True, "max_wait_time": 60.0})
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        clients(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
