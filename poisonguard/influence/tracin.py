"""TracIn (Pruthi et al., 2020): influence as gradient agreement along training.

``TracIn(z, q) = sum_t w_t grad L(theta_t, z) . grad L(theta_t, q)`` over saved
checkpoints ``theta_t`` (``w_t``: the learning rate of the period they close). A
positive score marks a proponent (a step on ``z`` lowers the query's loss, raising
its class), a negative one an opponent.

Two gradient spaces:

- ``layers="last"`` (default): the output layer only. Its per-row gradient is the
  outer product of the residual ``p - onehot(y)`` and the penultimate activations
  ``[h, 1]``, so the dot product factorises into
  ``(r_z . r_q) (h_z . h_q + 1)``: exact, and linear in the rows (100k rows cost
  one forward pass).
- ``layers="all"``: every parameter, per-row gradients by ``torch.func`` projected
  to ``projection_dim`` dimensions with a seeded Gaussian sketch (Johnson-
  Lindenstrauss: dot products are kept up to a relative error of about
  ``1/sqrt(projection_dim)``) so that memory stays N x ``projection_dim``.

Runs on CUDA when the model is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import Dataset
from poisonguard.errors import DataError, UsageError
from poisonguard.influence.checkpoints import Checkpoints, load_checkpoints, train_checkpoints
from poisonguard.train.nets import torch_module
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = ["LAYERS", "gradient_features", "tracin_explain", "tracin_scores"]

LAYERS = ("last", "all")


def _codes(ckpts: Checkpoints, labels: np.ndarray) -> np.ndarray:
    """Label codes -> model output columns (refused if the model lacks a class)."""
    lookup = {int(c): j for j, c in enumerate(ckpts.classes)}
    missing = sorted({int(c) for c in labels} - set(lookup))
    if missing:
        raise DataError(f"the model has no output for label code {missing[0]}",
                        path=ckpts.source)
    return np.array([lookup[int(c)] for c in labels], dtype=np.int64)


def _last_layer(model: TorchClassifier, x: np.ndarray, columns: np.ndarray,
                batch: int) -> tuple[np.ndarray, np.ndarray]:
    torch = torch_module()
    net = model.net_
    hs, rs = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xt = model._tensor(x[start:start + batch])
            h = net["head"](net["features"](xt))
            p = torch.softmax(net["out"](h), dim=1).double().cpu().numpy()
            p[np.arange(len(p)), columns[start:start + batch]] -= 1.0
            hs.append(np.hstack([h.double().cpu().numpy(), np.ones((len(p), 1))]))
            rs.append(p)
    return np.concatenate(hs), np.concatenate(rs)


def _sketch(torch: Any, params: dict[str, Any], dim: int, seed: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(p.numel(), dim, generator=gen) / np.sqrt(dim)).to(p.device)
            for name, p in params.items()}


def _all_layers(model: TorchClassifier, x: np.ndarray, columns: np.ndarray, batch: int,
                sketch: dict[str, Any] | None) -> np.ndarray:
    torch = torch_module()
    from torch.func import functional_call, grad, vmap

    net = model.net_.eval()
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}

    def loss(p: dict[str, Any], xi: Any, yi: Any) -> Any:
        state = {**p, **buffers}
        h = xi[None]
        for part in ("features", "head", "out"):  # the ModuleDict's forward, functionally
            cut = len(part) + 1
            own = {k[cut:]: v for k, v in state.items() if k.startswith(part + ".")}
            h = functional_call(net[part], own, (h,))
        return torch.nn.functional.cross_entropy(h, yi[None])

    per_row = vmap(grad(loss), in_dims=(None, 0, 0))
    out = []
    for start in range(0, len(x), batch):
        xt = model._tensor(x[start:start + batch])
        yt = torch.as_tensor(columns[start:start + batch], device=xt.device)
        grads = per_row(params, xt, yt)
        if sketch is None:
            flat = torch.cat([g.reshape(len(xt), -1) for g in grads.values()], dim=1)
        else:
            flat = sum(g.reshape(len(xt), -1) @ sketch[name] for name, g in grads.items())
        out.append(flat.double().cpu().numpy())
    return np.concatenate(out)


def gradient_features(model: TorchClassifier, x: np.ndarray, columns: np.ndarray, *,
                      layers: str = "last", projection_dim: int = 512, seed: int = 0,
                      batch: int = 256) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Per-row loss gradients of ``model`` at output columns ``columns``.

    ``layers="last"``: the pair (``[h, 1]``, residual) whose outer product is the
    output layer's gradient; ``"all"``: an N x P (P <= ``projection_dim``: exact)
    or N x ``projection_dim`` sketched matrix.
    """
    if layers == "last":
        return _last_layer(model, x, columns, batch)
    torch = torch_module()
    size = sum(p.numel() for p in model.net_.parameters())
    sketch = None
    if size > projection_dim:
        params = dict(model.net_.named_parameters())
        sketch = _sketch(torch, params, projection_dim, seed)
    return _all_layers(model, x, columns, batch, sketch)


def tracin_scores(ckpts: Checkpoints, x_train: np.ndarray, y_train: np.ndarray,
                  x_query: np.ndarray, classes: np.ndarray, *, layers: str = "last",
                  projection_dim: int = 512, seed: int = 0, batch: int = 256) -> np.ndarray:
    """TracIn score of every training row for each query's class, Q x N.

    Parameters
    ----------
    ckpts : Checkpoints
        The models at the checkpoints, with their weights.
    x_train, y_train : training rows (flattened, raw: each model scales them) and label
        codes.
    x_query, classes : query rows and the label code whose log-likelihood is explained.
    layers : {"last", "all"}
        Gradient space (module docstring).
    projection_dim : int
        Sketch size for ``layers="all"``.
    seed : int
        Seed of the sketch.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> ckpts = train_checkpoints(wine, n_checkpoints=2, epochs=4)
    >>> tracin_scores(ckpts, wine.features, wine.labels, wine.features[:1],
    ...               wine.labels[:1]).shape
    (1, 178)
    """
    if layers not in LAYERS:
        raise UsageError(f"unknown layers '{layers}' (known: {', '.join(LAYERS)})")
    train_cols, query_cols = _codes(ckpts, y_train), _codes(ckpts, classes)
    total = np.zeros((len(x_query), len(x_train)))
    for t, (model, weight) in enumerate(zip(ckpts.models, ckpts.weights, strict=True)):
        options = {"layers": layers, "projection_dim": projection_dim, "seed": seed + t,
                   "batch": batch}
        g_train = gradient_features(model, x_train, train_cols, **options)  # type: ignore[arg-type]
        g_query = gradient_features(model, x_query, query_cols, **options)  # type: ignore[arg-type]
        if layers == "last":
            (h_t, r_t), (h_q, r_q) = g_train, g_query
            total += weight * (r_q @ r_t.T) * (h_q @ h_t.T)
        else:
            total += weight * (np.asarray(g_query) @ np.asarray(g_train).T)
    return total


def tracin_explain(train: Dataset, x_query: np.ndarray, *, model_dir: str | Path | None = None,
                   save_to: str | Path | None = None, seed: int = 0, layers: str = "last",
                   projection_dim: int = 512, n_checkpoints: int = 4,
                   epochs: int | None = None, threads: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(Q x N scores for each query's predicted class, predicted codes, meta).

    The checkpoints come from ``model_dir`` when given, else they are trained here
    (and written to ``save_to`` when given). The prediction is the last checkpoint's.
    """
    torch = torch_module()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or 1)
    try:
        if model_dir is not None:
            ckpts = load_checkpoints(model_dir, train)
        else:
            ckpts = train_checkpoints(train, save_to, n_checkpoints=n_checkpoints,
                                      epochs=epochs, seed=seed)
        x = np.asarray(train.matrix(), dtype=np.float32)
        xq = np.asarray(x_query, dtype=np.float32)
        last = ckpts.models[-1]
        predicted = np.asarray(ckpts.classes[np.argmax(last._logits(xq), axis=1)])
        scores = tracin_scores(ckpts, x, train.labels, xq, predicted, layers=layers,
                               projection_dim=projection_dim, seed=seed)
        accuracy = float((last.predict(x) == train.labels).mean())
    finally:
        torch.set_num_threads(previous)
    return scores, predicted, {"checkpoints": len(ckpts.models), "layers": layers,
                               "train_accuracy": accuracy,
                               "model": ckpts.source or "trained here"}
