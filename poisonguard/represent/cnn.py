"""The scan's small CNN: training settings shared with the train package, device-aware.

:class:`NetSettings` holds the settings both this CNN and
:class:`poisonguard.train.TorchClassifier` take (one constructor, one epochs rule).
:class:`SmallCNN` trains on :class:`~poisonguard.represent.pixels.PixelBatches`: the
images stay in their stored dtype and are scaled a batch at a time on the device.

Two training plans:

- up to :data:`SMALL_ROWS` training rows (the 1,797 digits, small folders): batches
  of 64, a one-cycle schedule over about ``target_steps`` steps, as the scan always
  trained (the same result for the same seed);
- larger data: larger batches (256 on the CPU, 1,024 on a GPU) with the learning rate
  scaled by the square root of the batch ratio, at most ``max_epochs`` passes with a
  warm-up then cosine schedule, and early stopping on the loss of a held-out tenth
  (checked after each pass), on the lean net of :func:`build_cnn` (a stride-2 first
  convolution, no extra last convolution: about a seventh of the standard net's work
  on 28 x 28 digits, issue 13). On CUDA the forward and backward passes run in
  bfloat16 autocast where the GPU supports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import math
import os
import sys
from typing import Any

import numpy as np

from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.represent.pixels import PixelBatches

__all__ = ["LAYERS", "SMALL_ROWS", "NetSettings", "SmallCNN", "build_cnn", "cpu_reproducible",
           "epochs_for_steps", "mkl_branch_status", "torch_module"]

#: Layers whose activations can serve as the embedding.
LAYERS = ("penultimate", "conv")
#: Up to this many training rows the CNN trains with the small-data plan.
SMALL_ROWS = 4_096
#: Rows per forward pass when predicting.
PREDICT_ROWS = 1_024
#: MKL's conditional numerical reproducibility (mkl_cbwr.h): the query for the code
#: branch, and the branch whose results are the same on every x86-64 CPU.
_MKL_CBWR_BRANCH, _MKL_CBWR_COMPATIBLE = 1, 3
#: What :func:`pin_mkl_branch` found (None: not tried in this process yet).
_mkl_status: str | None = None


def torch_module() -> Any:
    """``torch``, or a MissingDependencyError naming the extra.

    Before torch's first import, ``OMP_WAIT_POLICY`` defaults to ``PASSIVE``: OpenMP
    threads with no work sleep instead of spinning, which on a busy machine made a
    scan's CPU time grow about 5x (issue 13). A value the user set is kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "scanning images") from exc
    return torch


def _mkl_library(torch: Any) -> Any:
    """torch's CPU library, where MKL is linked in (None: not found).

    torch links MKL statically and exports its service functions
    ``mkl_serv_cbwr_get``/``mkl_serv_cbwr_set`` (the service layer of MKL's public
    ``mkl_cbwr_get``/``mkl_cbwr_set``, same constants), not the public names.
    """
    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for path in sorted(glob.glob(os.path.join(lib_dir, "libtorch_cpu.*"))):
        try:
            lib = ctypes.CDLL(path)
            return lib if hasattr(lib, "mkl_serv_cbwr_set") else None
        except OSError:
            continue
    return None


def pin_mkl_branch(torch: Any) -> str:
    """Hold MKL to its COMPATIBLE code branch for this process; what was found.

    MKL picks its kernels by the CPU (AVX-512 on one machine, AVX2 on another) and
    the kernels round differently; its conditional numerical reproducibility mode
    with the COMPATIBLE branch gives the same results on every x86-64 CPU. The branch
    can only be chosen before MKL's first computation in the process, and it holds
    for the whole process (torch's matrix products elsewhere too). Tried once per
    process (the first reproducible image representation); a ``MKL_CBWR`` the user
    set is kept.

    Returns one of "compatible" (pinned now or already), "MKL_CBWR=<value>" (the
    user's other setting), "too late" (MKL already ran in this process) or "no MKL"
    (a torch build without it: its BLAS is not pinned).
    """
    global _mkl_status
    if _mkl_status is not None:
        return _mkl_status
    lib = _mkl_library(torch) if torch.backends.mkl.is_available() else None
    if lib is None:
        _mkl_status = "no MKL"
        return _mkl_status
    lib.mkl_serv_cbwr_get.argtypes = [ctypes.c_int]
    lib.mkl_serv_cbwr_get.restype = ctypes.c_int
    lib.mkl_serv_cbwr_set.argtypes = [ctypes.c_int]
    lib.mkl_serv_cbwr_set.restype = ctypes.c_int
    user = os.environ.get("MKL_CBWR")
    if lib.mkl_serv_cbwr_get(_MKL_CBWR_BRANCH) == _MKL_CBWR_COMPATIBLE:
        _mkl_status = "compatible"
    elif user:
        _mkl_status = f"MKL_CBWR={user}"
    else:
        done = lib.mkl_serv_cbwr_set(_MKL_CBWR_COMPATIBLE) == 0
        _mkl_status = "compatible" if done else "too late"
    return _mkl_status


def mkl_branch_status() -> str | None:
    """What :func:`pin_mkl_branch` found in this process (None: not tried yet)."""
    return _mkl_status


@contextlib.contextmanager
def cpu_reproducible(torch: Any, dev: Any, on: bool) -> Any:
    """The CNN's CPU kernels that round the same on every x86-64 CPU, for the duration.

    With ``on`` and a CPU device: oneDNN (mkldnn) is switched off, so convolutions run
    as torch's own im2col and MKL matrix products (oneDNN picks its kernels and their
    blocking by the CPU's instruction set and caches). Otherwise nothing changes.
    """
    if not on or torch.device(dev).type != "cpu":
        yield
        return
    with torch.backends.mkldnn.flags(enabled=False):
        yield


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


def build_cnn(torch: Any, channels: int, size: int, n_classes: int, width: int,
              hidden: int, *, lean: bool = False) -> Any:
    """Conv blocks (one per halving until the map is at most 8 x 8), a dense layer, logits.

    A ``ModuleDict`` with ``features`` (conv blocks, pooled to 4 x 4 and flattened),
    ``head`` (dense + ReLU: the penultimate layer) and ``out`` (logits).

    ``lean=True`` (:class:`SmallCNN`'s large-data plan, images over 8 x 8): the first
    convolution has stride 2 instead of running at full resolution, and there is no
    extra convolution after the last block. On 28 x 28 digits with width 8 that is
    about a seventh of the multiply-adds of the standard net with width 16 (0.5M
    against 3.7M per image; the issue-13 CPU budget), for 0.5-1 point less held-out
    accuracy on 4,000 MNIST digits (0.97 against 0.98).

    Examples
    --------
    >>> torch = torch_module()
    >>> net = build_cnn(torch, 1, 28, 10, 8, 64, lean=True)
    >>> net["out"](net["head"](net["features"](torch.zeros(2, 1, 28, 28)))).shape
    torch.Size([2, 10])
    """
    nn = torch.nn
    blocks: list[Any] = []
    c_in, c_out, side = channels, width, size
    if lean and size > 8:
        blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out),
                   nn.ReLU()]
        c_in, side = c_out, math.ceil(side / 2)
        c_out = min(c_out * 2, 4 * width)
    while True:
        blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
        if side <= 8:
            break
        blocks.append(nn.MaxPool2d(2))
        side = math.ceil(side / 2)
        c_out = min(c_out * 2, 4 * width)
    if not lean:
        blocks += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.BatchNorm2d(c_in), nn.ReLU()]
    blocks += [nn.AdaptiveAvgPool2d(4), nn.Flatten()]
    features = nn.Sequential(*blocks)
    head = nn.Sequential(nn.Linear(c_in * 16, hidden), nn.ReLU())
    return nn.ModuleDict({"features": features, "head": head,
                          "out": nn.Linear(hidden, n_classes)})


class NetSettings:
    """Training settings of a small torch network (CNN or MLP).

    Parameters
    ----------
    width, hidden : int
        CNN channels of the first block; units of the hidden dense layer.
    epochs : int or None
        Passes over the data; None: about ``target_steps`` optimiser steps.
    target_steps : int
        Steps wanted when ``epochs`` is None.
    batch_size, lr, weight_decay
        AdamW settings.
    seed : int
        Seeds initialisation and batch order.
    device : str or None
        "cpu", "cuda", ...; None uses CUDA when present.

    Examples
    --------
    >>> NetSettings(width=8).epochs_for(1000, (4, 40))
    40
    """

    def __init__(self, *, width: int = 16, hidden: int = 64, epochs: int | None = None,
                 target_steps: int = 700, batch_size: int = 64, lr: float = 3e-3,
                 weight_decay: float = 1e-4, seed: int = 0, device: str | None = None) -> None:
        self.width = width
        self.hidden = hidden
        self.epochs = epochs
        self.target_steps = target_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def epochs_for(self, n: int, bounds: tuple[int, int]) -> int:
        """Epochs for ``n`` training rows (:func:`epochs_for_steps` with these settings)."""
        return epochs_for_steps(self.epochs, n, self.batch_size, self.target_steps, bounds)

    def resolve_device(self, torch: Any) -> Any:
        """The torch device: ``device`` when set, else CUDA when present, else the CPU."""
        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _bf16(torch: Any, dev: Any) -> bool:
    return bool(dev.type == "cuda" and torch.cuda.is_bf16_supported())


def _cross_entropy(torch: Any, logits: Any, labels: Any, *, portable: bool,
                   reduction: str = "mean") -> Any:
    """Cross-entropy of ``logits``; ``portable``: as max, exp, sum and log.

    torch's fused log-softmax rounds differently with its AVX2 and AVX-512 kernels;
    the same loss written with element-wise operations and a plain sum gives the same
    bits under both (issue 12).
    """
    if not portable:
        return torch.nn.functional.cross_entropy(logits, labels, reduction=reduction)
    top = logits.max(dim=1, keepdim=True).values.detach()
    log_p = logits - (torch.exp(logits - top).sum(dim=1, keepdim=True).log() + top)
    picked = -log_p.gather(1, labels[:, None])[:, 0]
    return picked.sum() if reduction == "sum" else picked.mean()


def _autocast(bf16: bool) -> Any:
    """bfloat16 autocast on CUDA when ``bf16``, else nothing (CPU math stays float32)."""
    if not bf16:
        return contextlib.nullcontext()
    torch = torch_module()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


class SmallCNN(NetSettings):
    """A small CNN classifier trained on :class:`PixelBatches` rows.

    ``fit(batches, rows, labels)`` trains on ``rows`` of the stored images (``labels``:
    one int label per stored image); ``forward(batches, rows)`` gives probabilities
    and activations of the rows. Parameters: those of :class:`NetSettings`, plus
    ``n_classes``, ``max_epochs`` (the large-data plan's cap on passes), ``large``
    (which plan; None: the large one above :data:`SMALL_ROWS` training rows) and
    ``channels_last`` (the batches' memory format, see :meth:`PixelBatches.take`) and
    ``reproducible`` (on the CPU: the kernels of :func:`cpu_reproducible` and the
    portable cross-entropy, so that the trained weights do not depend on the CPU).
    """

    def __init__(self, *, n_classes: int, max_epochs: int = 6, large: bool | None = None,
                 channels_last: bool = False, reproducible: bool = False,
                 **settings: Any) -> None:
        super().__init__(**settings)
        self.n_classes = n_classes
        self.max_epochs = max_epochs
        self.large = large
        self.channels_last = channels_last
        self.reproducible = reproducible

    def fit(self, batches: PixelBatches, rows: np.ndarray, labels: np.ndarray) -> SmallCNN:
        """Train on ``rows``; the small-data or the large-data plan by their number."""
        torch = torch_module()
        torch.manual_seed(self.seed)
        dev = torch.device(batches.device)
        self.device_ = str(dev)
        h, w, c = batches.shape
        large = len(rows) > SMALL_ROWS if self.large is None else self.large
        net = build_cnn(torch, c, max(h, w), self.n_classes, self.width, self.hidden,
                        lean=large).to(dev)
        yt = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=dev)
        rows_t = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        self._portable = self.reproducible and dev.type == "cpu"
        with cpu_reproducible(torch, dev, self.reproducible):
            if not large:
                self.epochs_ = self.epochs_for(len(rows), (4, 40))
                self._fit_small(net, batches, rows_t, yt)
            else:
                self._fit_large(net, batches, rows_t, yt)
        net.eval()
        self.net_ = net
        return self

    def _fit_small(self, net: Any, batches: PixelBatches, rows: Any, yt: Any) -> None:
        torch = torch_module()
        n = len(rows)
        steps = self.epochs_ * max(1, math.ceil(n / self.batch_size))
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        gen = torch.Generator().manual_seed(self.seed)
        net.train()
        for _ in range(self.epochs_):
            order = rows[torch.randperm(n, generator=gen)]
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                if len(idx) < 2:  # batch norm needs two rows
                    continue
                self._step(net, opt, self._take(batches, idx), yt[idx.to(yt.device)], False)
                sched.step()

    def _take(self, batches: PixelBatches, rows: Any) -> Any:
        return batches.take(rows, channels_last=self.channels_last)

    def _step(self, net: Any, opt: Any, xb: Any, yb: Any, bf16: bool) -> None:
        torch = torch_module()
        with _autocast(bf16):
            logits = net["out"](net["head"](net["features"](xb)))
            loss = _cross_entropy(torch, logits.float(), yb, portable=self._portable)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def _fit_large(self, net: Any, batches: PixelBatches, rows: Any, yt: Any) -> None:
        torch = torch_module()
        dev = torch.device(batches.device)
        bf16 = _bf16(torch, dev)
        gen = torch.Generator().manual_seed(self.seed)
        shuffled = rows[torch.randperm(len(rows), generator=gen)]
        n_held = max(len(rows) // 10, 2)
        held, train = shuffled[:n_held], shuffled[n_held:]
        batch = 1_024 if dev.type == "cuda" else 256
        lr = self.lr * math.sqrt(batch / 64)
        per_epoch = math.ceil(len(train) / batch)
        max_epochs = int(self.epochs) if self.epochs is not None else self.max_epochs
        total = max_epochs * per_epoch
        warm = max(1, per_epoch // 2)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(
            (s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))))
        best, best_state, epochs = math.inf, None, 0
        for _ in range(max_epochs):
            net.train()
            order = train[torch.randperm(len(train), generator=gen)]
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                if len(idx) >= 2:
                    self._step(net, opt, self._take(batches, idx), yt[idx.to(yt.device)], bf16)
                sched.step()
            epochs += 1
            loss = self._held_loss(net, batches, held, yt, bf16)
            if loss < best - 1e-4:
                best = loss
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            elif self.epochs is None:
                break  # the held-out loss stopped improving
        if best_state is not None:
            net.load_state_dict(best_state)
        self.epochs_ = epochs

    def _held_loss(self, net: Any, batches: PixelBatches, held: Any, yt: Any,
                   bf16: bool) -> float:
        torch = torch_module()
        net.eval()
        total = 0.0
        with torch.no_grad(), _autocast(bf16):
            for start in range(0, len(held), PREDICT_ROWS):
                idx = held[start:start + PREDICT_ROWS]
                logits = net["out"](net["head"](net["features"](self._take(batches, idx))))
                total += float(_cross_entropy(torch, logits.float(), yt[idx.to(yt.device)],
                                              portable=self._portable, reduction="sum"))
        return total / len(held)

    def forward(self, batches: PixelBatches, rows: np.ndarray | None = None, *,
                layer: str = "penultimate") -> tuple[np.ndarray, np.ndarray]:
        """``(proba, activations)`` of ``rows`` (all stored images when None).

        ``proba`` is N x n_classes float64; ``activations`` the ``layer`` ("penultimate"
        or "conv") as float32. Rows go through the net :data:`PREDICT_ROWS` at a time.
        """
        torch = torch_module()
        if layer not in LAYERS:
            raise UsageError(f"unknown layer '{layer}' (known: {', '.join(LAYERS)})")
        bf16 = _bf16(torch, torch.device(self.device_))
        total = batches.n if rows is None else len(rows)
        rows_t = None if rows is None else torch.as_tensor(np.asarray(rows, dtype=np.int64))
        acts, logits = [], []
        with torch.no_grad(), _autocast(bf16), \
                cpu_reproducible(torch, self.device_, self.reproducible):
            for start in range(0, total, PREDICT_ROWS):
                part = slice(start, start + PREDICT_ROWS) if rows_t is None \
                    else rows_t[start:start + PREDICT_ROWS]
                conv = self.net_["features"](self._take(batches, part))
                hidden = self.net_["head"](conv)
                acts.append((hidden if layer == "penultimate" else conv).float().cpu().numpy())
                logits.append(self.net_["out"](hidden).float().cpu().numpy())
        z = np.concatenate(logits).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return np.asarray(p / p.sum(axis=1, keepdims=True)), \
            np.asarray(np.concatenate(acts), dtype=np.float32)
