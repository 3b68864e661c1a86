"""Image representation: a small CNN trained with cross-validation (needs torch).

Three things come out of it:

- ``proba``: out-of-fold class probabilities (K folds; no row is scored by a model
  that saw it);
- ``embedding_oof``: the held-out rows' activations under their fold's model;
- ``embedding``: the activations of one model trained on *all* rows. That model
  learns a backdoor if the data holds one, which is what spectral and clustering
  detectors look for.

The net is deliberately small (two or three conv blocks, one hidden dense layer) so
that 1,797 digits train in seconds on two CPU cores; it scales to 28 x 28 or
32 x 32 x 3 images by adding a pooling block per halving. Runs on CUDA when present.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from poisonguard.data import Dataset
from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.progress import NullProgress, Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.tabular import scale_features

__all__ = ["LAYERS", "SmallCNN", "image_representation"]

#: Layers whose activations can serve as the embedding.
LAYERS = ("penultimate", "conv")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "scanning images") from exc
    return torch


def epochs_for_steps(epochs: int | None, n: int, batch_size: int, target_steps: int,
                     bounds: tuple[int, int]) -> int:
    """Epochs to train: ``epochs`` when given, else enough for about ``target_steps`` steps.

    Parameters
    ----------
    epochs : int or None
        An explicit epoch count, returned as is when not None.
    n : int
        Training rows.
    batch_size : int
        Rows per step.
    target_steps : int
        Optimiser steps wanted in total.
    bounds : tuple of int
        Lowest and highest epoch count when derived from ``target_steps``.

    Returns
    -------
    int
        The epoch count.

    Examples
    --------
    >>> epochs_for_steps(None, 1000, 64, 700, (4, 40))
    40
    """
    if epochs is not None:
        return int(epochs)
    per_epoch = max(1, math.ceil(n / batch_size))
    low, high = bounds
    return int(min(high, max(low, math.ceil(target_steps / per_epoch))))


def _build_net(torch: Any, channels: int, size: int, n_classes: int, width: int,
               hidden: int) -> Any:
    nn = torch.nn
    blocks: list[Any] = []
    c_in, c_out, side = channels, width, size
    # One conv block per halving until the feature map is at most 8 x 8 (at least one).
    while True:
        blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
        if side <= 8:
            break
        blocks.append(nn.MaxPool2d(2))
        side = math.ceil(side / 2)
        c_out = min(c_out * 2, 4 * width)
    blocks += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.BatchNorm2d(c_in), nn.ReLU(),
               nn.AdaptiveAvgPool2d(4), nn.Flatten()]
    features = nn.Sequential(*blocks)
    head = nn.Sequential(nn.Linear(c_in * 16, hidden), nn.ReLU())
    return nn.ModuleDict({"features": features, "head": head,
                          "out": nn.Linear(hidden, n_classes)})


class SmallCNN:
    """A small CNN classifier with a scikit-learn-like shape.

    ``fit(x, y)`` takes N x C x H x W float32 images (already scaled) and int labels;
    ``predict_proba(x)`` and ``transform(x, layer=...)`` give probabilities and
    activations. ``epochs=None`` picks the number of epochs from the data size
    (about ``target_steps`` optimiser steps, between 4 and 40 epochs).
    """

    def __init__(self, *, n_classes: int, width: int = 16, hidden: int = 64,
                 epochs: int | None = None, batch_size: int = 64, lr: float = 3e-3,
                 weight_decay: float = 1e-4, target_steps: int = 700, seed: int = 0,
                 device: str | None = None) -> None:
        self.n_classes = n_classes
        self.width = width
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.target_steps = target_steps
        self.seed = seed
        self.device = device

    def _epochs(self, n: int) -> int:
        return epochs_for_steps(self.epochs, n, self.batch_size, self.target_steps, (4, 40))

    def fit(self, x: np.ndarray, y: np.ndarray) -> SmallCNN:
        torch = _torch()
        torch.manual_seed(self.seed)
        dev = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.device_ = str(dev)
        net = _build_net(torch, x.shape[1], max(x.shape[2], x.shape[3]), self.n_classes,
                         self.width, self.hidden).to(dev)
        xt = torch.as_tensor(x, dtype=torch.float32, device=dev)
        yt = torch.as_tensor(np.array(y, dtype=np.int64), device=dev)
        epochs = self._epochs(len(x))
        steps = epochs * max(1, math.ceil(len(x) / self.batch_size))
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        gen = torch.Generator().manual_seed(self.seed)
        loss_fn = torch.nn.CrossEntropyLoss()
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen).to(dev)
            for start in range(0, len(x), self.batch_size):
                idx = order[start:start + self.batch_size]
                if len(idx) < 2:  # batch norm needs two rows
                    continue
                logits = net["out"](net["head"](net["features"](xt[idx])))
                loss = loss_fn(logits, yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        self.net_ = net
        self.epochs_ = epochs
        return self

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = _torch()
        conv, pen, logit = [], [], []
        with torch.no_grad():
            for start in range(0, len(x), 1024):
                xb = torch.as_tensor(x[start:start + 1024], dtype=torch.float32,
                                     device=self.device_)
                c = self.net_["features"](xb)
                h = self.net_["head"](c)
                conv.append(c.cpu().numpy())
                pen.append(h.cpu().numpy())
                logit.append(self.net_["out"](h).cpu().numpy())
        return np.concatenate(conv), np.concatenate(pen), np.concatenate(logit)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self._forward(x)[2].astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def transform(self, x: np.ndarray, *, layer: str = "penultimate") -> np.ndarray:
        """Activations of ``layer``: "penultimate" (hidden dense, post-ReLU) or "conv"."""
        if layer not in LAYERS:
            raise UsageError(f"unknown layer '{layer}' (known: {', '.join(LAYERS)})")
        conv, pen, _ = self._forward(x)
        return np.asarray(pen if layer == "penultimate" else conv, dtype=np.float32)


def _scale(images: np.ndarray) -> np.ndarray:
    """Per-channel standardisation, N x H x W x C -> N x C x H x W float32."""
    x = np.asarray(images, dtype=np.float32)
    mean = x.mean(axis=(0, 1, 2), keepdims=True)
    std = x.std(axis=(0, 1, 2), keepdims=True)
    x = (x - mean) / np.where(std > 1e-8, std, 1.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def image_representation(
    dataset: Dataset,
    *,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    layer: str = "penultimate",
    epochs: int | None = None,
    width: int = 16,
    hidden: int = 64,
    device: str | None = None,
    threads: int | None = None,
) -> Representation:
    """Train ``folds`` CNNs out-of-fold and one on all rows of an image dataset.

    ``threads`` sets torch's CPU threads for the duration and is restored afterwards.
    Default: one thread for images up to 16 x 16 (the net is too small for threads
    to pay: two threads on a busy 2-core machine cost 8x the CPU time of one),
    otherwise up to 4.
    """
    torch = _torch()
    if dataset.images is None:
        raise UsageError("image_representation needs an image dataset")
    if layer not in LAYERS:
        raise UsageError(f"unknown layer '{layer}' (known: {', '.join(LAYERS)})")
    progress = progress or NullProgress()
    x = _scale(dataset.images)
    y = np.asarray(dataset.labels)
    n_classes = dataset.n_classes
    previous_threads = torch.get_num_threads()
    small = dataset.images.shape[1] * dataset.images.shape[2] <= 16 * 16
    torch.set_num_threads(threads or (1 if small else min(4, os.cpu_count() or 1)))
    try:
        def model(k: int) -> SmallCNN:
            return SmallCNN(n_classes=n_classes, width=width, hidden=hidden, epochs=epochs,
                            seed=seed + k, device=device)

        n_splits = max(2, int(min(folds, np.bincount(y, minlength=n_classes)[np.unique(y)].min())))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        total = n_splits + 1
        proba = np.zeros((len(x), n_classes), dtype=np.float64)
        oof: np.ndarray | None = None
        for k, (train, held) in enumerate(splitter.split(x, y)):
            progress.update(f"training CNN fold {k + 1}/{n_splits}", done=k, total=total)
            fold = model(k + 1).fit(x[train], y[train])
            proba[held] = fold.predict_proba(x[held])
            act = fold.transform(x[held], layer=layer)
            if oof is None:
                oof = np.zeros((len(x), act.shape[1]), dtype=np.float32)
            oof[held] = act
        progress.update("training CNN on all rows", done=n_splits, total=total)
        full = model(0).fit(x, y)
        embedding = full.transform(x, layer=layer)
        progress.update("representation ready", done=total, total=total)
    finally:
        torch.set_num_threads(previous_threads)
    return Representation(
        features=scale_features(dataset.matrix()), embedding=embedding, proba=proba,
        embedding_oof=oof,
        model=f"cnn(width={width}, hidden={hidden})", layer=layer,
        meta={"folds": n_splits, "epochs": full.epochs_, "device": full.device_},
    )
