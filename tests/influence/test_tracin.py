"""TracIn: the factorised and sketched gradients against autograd, safe checkpoint folders."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from poisonguard.datasets import builtin_dataset
from poisonguard.errors import PoisonguardError, UsageError
from poisonguard.influence.checkpoints import Checkpoints, load_checkpoints, train_checkpoints
from poisonguard.influence.tracin import tracin_scores
from poisonguard.train.nets import forward


@pytest.fixture(scope="module")
def wine_ckpts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Checkpoints, Path]:
    folder = tmp_path_factory.mktemp("ckpts")
    return train_checkpoints(builtin_dataset("wine"), folder, n_checkpoints=2, epochs=4), folder


def _autograd_dots(ckpts: Checkpoints, x: np.ndarray, y: np.ndarray, q: np.ndarray,
                   c: np.ndarray, *, last_only: bool) -> np.ndarray:
    out = np.zeros((len(q), len(x)))
    for model, weight in zip(ckpts.models, ckpts.weights, strict=True):
        params = list(model.net_["out"].parameters()) if last_only else \
            list(model.net_.parameters())
        out += weight * _grads(model, params, q, c) @ _grads(model, params, x, y).T
    return out


def _grads(model: object, params: list[torch.Tensor], rows: np.ndarray,
           labels: np.ndarray) -> np.ndarray:
    flat = []
    for row, label in zip(rows, labels, strict=True):
        logits = forward(model.net_, model._tensor(row[None]))  # type: ignore[attr-defined]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([int(label)]))
        g = torch.autograd.grad(loss, params)
        flat.append(torch.cat([t.reshape(-1) for t in g]).double().numpy())
    return np.stack(flat)


def test_last_layer_scores_equal_autograd(wine_ckpts: tuple[Checkpoints, Path]) -> None:
    ckpts, _ = wine_ckpts
    wine = builtin_dataset("wine")
    x, y = wine.features[:40], wine.labels[:40]
    q, c = wine.features[[60, 150]], np.array([1, 0])
    fast = tracin_scores(ckpts, x, y, q, c)
    np.testing.assert_allclose(fast, _autograd_dots(ckpts, x, y, q, c, last_only=True),
                               rtol=1e-4, atol=1e-6)


def test_all_layers_exact_and_sketched(wine_ckpts: tuple[Checkpoints, Path]) -> None:
    ckpts, _ = wine_ckpts
    wine = builtin_dataset("wine")
    x, y = wine.features[::4], wine.labels[::4]
    q, c = wine.features[[10]], wine.labels[[10]]
    exact = tracin_scores(ckpts, x, y, q, c, layers="all", projection_dim=10**6)
    np.testing.assert_allclose(exact, _autograd_dots(ckpts, x, y, q, c, last_only=False),
                               rtol=1e-4, atol=1e-6)
    sketched = tracin_scores(ckpts, x, y, q, c, layers="all", projection_dim=512)
    assert spearmanr(exact[0], sketched[0]).statistic >= 0.9
    with pytest.raises(UsageError, match="unknown layers"):
        tracin_scores(ckpts, x, y, q, c, layers="some")


def test_checkpoint_folder_round_trip_loads_no_pickle(
        wine_ckpts: tuple[Checkpoints, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    ckpts, folder = wine_ckpts
    wine = builtin_dataset("wine")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pickle was loaded")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    again = load_checkpoints(folder, wine)
    x, y = wine.features, wine.labels
    np.testing.assert_array_equal(tracin_scores(again, x, y, x[:2], y[:2]),
                                  tracin_scores(ckpts, x, y, x[:2], y[:2]))
    assert again.weights == (1.0, 1.0)


def test_unsafe_or_foreign_folders_are_refused(wine_ckpts: tuple[Checkpoints, Path],
                                               tmp_path: Path) -> None:
    _, folder = wine_ckpts
    wine = builtin_dataset("wine")
    doc = json.loads((folder / "checkpoints.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "checkpoint-01.safetensors").write_bytes(
        pickle.dumps({"w": [1, 2]}))  # a pickle dressed as safetensors
    doc["checkpoints"] = [{"file": "checkpoint-01.safetensors", "weight": 1.0}]
    (bad / "checkpoints.json").write_text(json.dumps(doc))
    with pytest.raises(PoisonguardError):
        load_checkpoints(bad, wine)
    doc["checkpoints"] = [{"file": "../ckpts/checkpoint-01.safetensors"}]
    (bad / "checkpoints.json").write_text(json.dumps(doc))
    with pytest.raises(PoisonguardError, match="bad checkpoint path"):
        load_checkpoints(bad, wine)
    with pytest.raises(PoisonguardError, match="classes differ"):
        load_checkpoints(folder, builtin_dataset("breast_cancer"))
    with pytest.raises(PoisonguardError, match="not a model folder"):
        load_checkpoints(tmp_path, wine)
