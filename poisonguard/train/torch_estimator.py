"""A scikit-learn classifier around the torch networks of :mod:`poisonguard.train.nets`.

``X`` is always 2-D (rows x values) so that the estimator works with scikit-learn's
tools; images are passed flattened with ``image_shape=(H, W, C)``. Inputs are
standardised with statistics learned in ``fit`` (per channel for images, per column
otherwise). Training is deterministic for a seed on one machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from poisonguard.represent.cnn import NetSettings
from poisonguard.train.nets import build_net, forward, torch_module

__all__ = ["TorchClassifier", "Objective", "train_net"]

#: ``objective(logits, targets) -> scalar loss`` for one batch.
Objective = Callable[[Any, Any], Any]


def train_net(net: Any, x: Any, y: Any, *, epochs: int, batch_size: int, lr: float,
              weight_decay: float, seed: int, objective: Objective | None = None,
              optimizer: Any = None) -> None:
    """Train ``net`` on tensors ``x``, ``y`` with AdamW and a one-cycle schedule."""
    torch = torch_module()
    n = len(x)
    if n < 2 or epochs < 1:
        return
    per_epoch = math.ceil(n / batch_size)
    opt = optimizer or torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch)
    loss_fn = objective or torch.nn.functional.cross_entropy
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(x.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if len(idx) >= 2:  # batch norm needs two rows
                loss = loss_fn(forward(net, x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
    net.eval()


class TorchClassifier(ClassifierMixin, BaseEstimator, NetSettings):
    """A small CNN (``image_shape`` given) or MLP classifier, scikit-learn style.

    Parameters
    ----------
    image_shape : (H, W, C) or None
        Rows of ``X`` are images flattened in H x W x C order; None: tabular (MLP).
    width, hidden : int
        CNN channels of the first block; units of the hidden dense layer.
    epochs : int or None
        Passes over the data; None picks about ``target_steps`` optimiser steps
        (between 5 and 100 epochs).
    batch_size, lr, weight_decay : training settings (AdamW, one-cycle schedule).
    seed : int
        Seeds initialisation and batch order.
    device : str or None
        "cpu", "cuda", ...; None uses CUDA when present.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> d = load_digits()
    >>> model = TorchClassifier(image_shape=(8, 8, 1), epochs=3).fit(d.data[:200], d.target[:200])
    >>> model.predict(d.data[:3]).shape
    (3,)
    """

    def __init__(self, *, image_shape: tuple[int, int, int] | None = None, width: int = 16,
                 hidden: int = 64, epochs: int | None = None, target_steps: int = 300,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-4,
                 seed: int = 0, device: str | None = None) -> None:
        # scikit-learn reads the parameters from this signature; NetSettings stores them
        NetSettings.__init__(self, width=width, hidden=hidden, epochs=epochs,
                             target_steps=target_steps, batch_size=batch_size, lr=lr,
                             weight_decay=weight_decay, seed=seed, device=device)
        self.image_shape = image_shape

    # -- pieces subclasses reuse -------------------------------------------------------
    def _n_epochs(self, n: int) -> int:
        return self.epochs_for(n, (5, 100))

    def _learn_scaling(self, x: np.ndarray) -> None:
        if self.image_shape is not None:
            if x.shape[1] != int(np.prod(self.image_shape)):
                raise ValueError(f"rows of {x.shape[1]} values do not make images of shape "
                                 f"{tuple(self.image_shape)}")
            img = x.reshape(len(x), -1, self.image_shape[2])
            mean, std = img.mean(axis=(0, 1)), img.std(axis=(0, 1))
        else:
            mean, std = x.mean(axis=0), x.std(axis=0)
        self.mean_ = np.asarray(mean, dtype=np.float32)
        self.std_ = np.asarray(np.where(std > 1e-8, std, 1.0), dtype=np.float32)

    def _tensor(self, x: np.ndarray) -> Any:
        torch = torch_module()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected rows of {self.n_features_in_} values, got shape {x.shape}")
        if self.image_shape is not None:
            h, w, c = self.image_shape
            x = ((x.reshape(len(x), h, w, c) - self.mean_) / self.std_).transpose(0, 3, 1, 2)
        else:
            x = (x - self.mean_) / self.std_
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=self.device_)

    def _start(self, x: np.ndarray, y: np.ndarray, *, groupnorm: bool = False) -> tuple[Any, Any]:
        """Validate, learn classes and scaling, build the net; return (x, y) tensors."""
        torch = torch_module()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError("X must be a non-empty 2-D array with one row per label")
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.n_features_in_ = x.shape[1]
        self.device_ = str(self.resolve_device(torch))
        self._learn_scaling(x)
        torch.manual_seed(self.seed)
        shape = None if self.image_shape is None else tuple(int(v) for v in self.image_shape)
        self.net_ = build_net(n_inputs=x.shape[1], n_classes=len(self.classes_),
                              image_shape=shape,  # type: ignore[arg-type]
                              width=self.width, hidden=self.hidden,
                              groupnorm=groupnorm).to(self.device_)
        self.groupnorm_ = groupnorm
        return self._tensor(x), torch.as_tensor(codes.astype(np.int64), device=self.device_)

    def _train(self, xt: Any, yt: Any, *, epochs: int, objective: Objective | None = None,
               seed_offset: int = 0) -> None:
        train_net(self.net_, xt, yt, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                  weight_decay=self.weight_decay, seed=self.seed + seed_offset,
                  objective=objective)

    # -- scikit-learn API --------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> TorchClassifier:
        """Train on ``X`` (N x D) and labels ``y``; returns ``self``."""
        xt, yt = self._start(X, y)
        self.epochs_ = self._n_epochs(len(xt))
        self._train(xt, yt, epochs=self.epochs_)
        return self

    def _logits(self, X: np.ndarray) -> np.ndarray:
        torch = torch_module()
        check_is_fitted(self, "net_")
        xt = self._tensor(X)
        self.net_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(xt), 2048):
                out.append(forward(self.net_, xt[start:start + 2048]).cpu().numpy())
        if not out:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(np.concatenate(out), dtype=np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N x len(classes_)), columns in ``classes_`` order."""
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class per row."""
        return np.asarray(self.classes_[np.argmax(self._logits(X), axis=1)])

    # -- safe storage (see poisonguard.train.storage) ----------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every learned array (network weights and buffers, scaling) by name."""
        check_is_fitted(self, "net_")
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays["scale.mean"] = self.mean_
        arrays["scale.std"] = self.std_
        return arrays

    def restore(self, arrays: dict[str, np.ndarray], *, classes: np.ndarray, n_features: int,
                groupnorm: bool) -> TorchClassifier:
        """Rebuild the fitted state from :meth:`state_arrays` (no training)."""
        torch = torch_module()
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = int(n_features)
        self.device_ = str(self.resolve_device(torch))
        self.mean_ = np.asarray(arrays["scale.mean"], dtype=np.float32)
        self.std_ = np.asarray(arrays["scale.std"], dtype=np.float32)
        shape = None if self.image_shape is None else tuple(int(v) for v in self.image_shape)
        self.net_ = build_net(n_inputs=self.n_features_in_, n_classes=len(self.classes_),
                              image_shape=shape,  # type: ignore[arg-type]
                              width=self.width, hidden=self.hidden, groupnorm=groupnorm)
        state = {k[4:]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("net.")}
        self.net_.load_state_dict(state, strict=True)
        self.net_.to(self.device_).eval()
        self.groupnorm_ = groupnorm
        return self
