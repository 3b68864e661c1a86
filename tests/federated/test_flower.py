"""The Flower strategies: every aggregator in-process, and a real server and clients over
gRPC on 127.0.0.1 (separate processes; not the Ray simulation engine)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy

from poisonguard.errors import UsageError
from poisonguard.federated import Reputation, available_aggregators, get_aggregator
from poisonguard.federated.flower import RobustStrategy

NODE = Path(__file__).with_name("_flower_node.py")
ROOT = Path(__file__).resolve().parents[2]


class FakeProxy(ClientProxy):
    """Enough of a ClientProxy for aggregate_fit (which only reads ``cid``)."""

    def get_properties(self, *a, **k):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    get_parameters = fit = evaluate = reconnect = get_properties


def fit_res(params: list[np.ndarray], name: str) -> FitRes:
    return FitRes(status=Status(code=Code.OK, message=""),
                  parameters=ndarrays_to_parameters(params), num_examples=10,
                  metrics={"name": name})


def make(name: str):  # type: ignore[no-untyped-def]
    return get_aggregator(name, f=1) if name in ("krum", "multi-krum", "bulyan") \
        else get_aggregator(name)


@pytest.mark.parametrize("name", available_aggregators())
def test_every_aggregator_works_as_a_flower_strategy(name: str) -> None:
    rng = np.random.default_rng(0)
    start = [np.zeros((3, 2)), np.zeros(2)]
    direction = [np.ones((3, 2)), np.ones(2)]
    strategy = RobustStrategy(make(name), initial_parameters=start,
                              reputation=Reputation(min_rounds=2),
                              trusted_update=lambda g: [0.1 * d for d in direction])
    results = []
    for i in range(7):
        noise = [0.01 * rng.normal(size=d.shape) for d in direction]
        params = [s + 0.1 * d + e for s, d, e in zip(start, direction, noise, strict=True)]
        results.append((FakeProxy(f"cid-{i}"), fit_res(params, f"honest-{i}")))
    results.append((FakeProxy("cid-bad"), fit_res([-1e3 * d for d in direction], "attacker")))
    results.append((FakeProxy("cid-nan"), fit_res([np.full((3, 2), np.nan), np.zeros(2)],
                                                  "broken")))
    for rnd in (1, 2):
        new, metrics = strategy.aggregate_fit(rnd, results, [])
        strategy._global = start  # every round from the same start, as if resent
    assert new is not None
    out = parameters_to_ndarrays(new)
    assert [a.shape for a in out] == [(3, 2), (2,)]
    record = strategy.rounds[-1]
    assert record["rejected"] == ["broken"] and "broken" not in record["kept"]
    assert "broken" in metrics["flagged"]  # unusable twice: flagged
    if name not in ("fedavg", "clip"):
        assert np.all(np.abs(out[0] - 0.1) < 0.05)  # the attacker did not move the model
        assert "attacker" in metrics["flagged"]
    assert not any(n.startswith("honest") for n in str(metrics["flagged"]).split(","))


def test_fltrust_strategy_needs_the_trusted_update() -> None:
    with pytest.raises(UsageError, match="trusted_update"):
        RobustStrategy("fltrust", initial_parameters=[np.zeros(2)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_flower_server_and_clients_over_loopback(tmp_path: Path) -> None:
    """5 honest clients + 1 sign-flipping attacker (boost 5) against FLTrust, 5 rounds."""
    port, out = _free_port(), tmp_path / "server.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLWR_TELEMETRY_ENABLED": "0",
           "OMP_NUM_THREADS": "1"}
    srv = subprocess.Popen([sys.executable, str(NODE), "server", str(port), "fltrust", "5",
                            str(out)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    cli = subprocess.Popen([sys.executable, str(NODE), "clients", str(port), "5", "sign-flip"],
                           env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        srv_log, _ = srv.communicate(timeout=600)  # generous: a loaded 2-core box
        cli_log, _ = cli.communicate(timeout=120)
    finally:
        for proc in (srv, cli):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert srv.returncode == 0, srv_log[-3000:]
    assert cli.returncode == 0, cli_log[-3000:]
    result = json.loads(out.read_text())
    assert len(result["rounds"]) == 5 and len(result["accuracy"]) == 6  # round 0 + 5 rounds
    # training goes on (under plain FedAvg the attacker's -5 u cancels the 5 honest updates)
    assert result["accuracy"][-1] >= 0.6, result["accuracy"]
    last = result["rounds"][-1]
    assert sorted(last["names"]) == ["attacker-5"] + [f"honest-{i}" for i in range(5)]
    assert all(r["selected"][r["kept"].index("attacker-5")] is False for r in result["rounds"])
    assert result["flagged"] == ["attacker-5"]
