"""The torch networks robust training trains: the scan's small CNN for images and a
one-hidden-layer MLP for tabular data, both as ``ModuleDict(features, head, out)``.

BatchNorm (in the scan's CNN) mixes rows of a batch, which DP-SGD cannot account
for; :func:`replace_batchnorm` swaps each BatchNorm for a GroupNorm of the same width.
"""

from __future__ import annotations

from typing import Any

from poisonguard.errors import MissingDependencyError
from poisonguard.represent.cnn import build_cnn as _scan_cnn

__all__ = ["build_net", "forward", "replace_batchnorm", "torch_module"]


def torch_module() -> Any:
    """The ``torch`` module, or a one-line error naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "training torch models") from exc
    return torch


def build_net(*, n_inputs: int, n_classes: int, image_shape: tuple[int, int, int] | None,
              width: int, hidden: int, groupnorm: bool = False) -> Any:
    """A fresh network: the scan's CNN when ``image_shape`` (H, W, C) is given, else an MLP."""
    torch = torch_module()
    nn = torch.nn
    if image_shape is not None:
        h, w, c = image_shape
        net = _scan_cnn(torch, c, max(h, w), n_classes, width, hidden)
    else:
        net = nn.ModuleDict({
            "features": nn.Identity(),
            "head": nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU()),
            "out": nn.Linear(hidden, n_classes),
        })
    return replace_batchnorm(net) if groupnorm else net


def replace_batchnorm(module: Any) -> Any:
    """``module`` with every BatchNorm replaced (in place) by GroupNorm(min(32, C), C)."""
    torch = torch_module()
    nn = torch.nn
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            c = child.num_features
            groups = next(g for g in range(min(32, c), 0, -1) if c % g == 0)
            setattr(module, name, nn.GroupNorm(groups, c))
        else:
            replace_batchnorm(child)
    return module


def forward(net: Any, x: Any) -> Any:
    """Logits of ``net`` for a batch ``x``."""
    return net["out"](net["head"](net["features"](x)))
