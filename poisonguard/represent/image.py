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
32 x 32 x 3 images by adding a pooling block per halving (:mod:`.cnn`). Runs on CUDA
when present: the images are copied to the GPU once in their stored dtype (uint8)
and scaled there a batch at a time (:mod:`.pixels`); on the CPU they are read in
place. No float64 or flattened full copy of the pixels is made besides the
representation's ``features`` (float32 standardised pixels, built a block at a time).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from poisonguard.data import Dataset
from poisonguard.errors import UsageError
from poisonguard.progress import NullProgress, Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.cnn import (
    LAYERS,
    SMALL_ROWS,
    SmallCNN,
    build_cnn,
    epochs_for_steps,
    pin_mkl_branch,
    torch_module,
)
from poisonguard.represent.pixels import PixelBatches, channel_stats, standardised_pixels

__all__ = ["LAYERS", "LEAN_WIDTH", "SmallCNN", "build_cnn", "epochs_for_steps",
           "image_representation", "torch_threads"]

#: Images of at most this many pixels (H x W) train on one torch thread by default.
ONE_THREAD_PIXELS = 16 * 16
#: First-block channels of the large-data plan's (lean) net by default.
LEAN_WIDTH = 8
#: Fewer folds above this many rows: each fold model already sees plenty of rows.
MANY_ROWS = 8_000


def torch_threads(torch: Any, image_shape: tuple[int, ...], threads: int | None) -> int:
    """Torch CPU threads for training on ``image_shape`` images.

    ``threads`` when given; else one for images up to 16 x 16 (the net is too small
    for threads to pay: two threads on a busy 2-core machine cost 8x the CPU time of
    one), otherwise the cores this process may use, at most 4. Idle OpenMP threads
    should sleep rather than spin: the CLI sets ``OMP_WAIT_POLICY=PASSIVE`` before
    torch loads (docs/scale.md).
    """
    if threads is not None:
        return int(threads)
    if image_shape[0] * image_shape[1] <= ONE_THREAD_PIXELS:
        return 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, usable or 1))


def image_representation(
    dataset: Dataset,
    *,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    layer: str = "penultimate",
    epochs: int | None = None,
    width: int | None = None,
    hidden: int = 64,
    device: str | None = None,
    threads: int | None = None,
    defer_embedding: bool = False,
    reproducible: bool = False,
) -> Representation:
    """Train ``folds`` CNNs out-of-fold and one on all rows of an image dataset.

    ``threads`` sets torch's CPU threads for the duration and is restored afterwards
    (default: :func:`torch_threads`). Above :data:`~poisonguard.represent.cnn.SMALL_ROWS`
    rows the CNNs train with the large-data plan (:class:`SmallCNN`) and, above
    :data:`MANY_ROWS` rows, with at most 3 folds. ``width`` is the first conv block's
    channels (default: 16 for the small-data plan, :data:`LEAN_WIDTH` for the large
    one). ``device`` is "cpu", "cuda", ...; None uses CUDA when present.
    ``defer_embedding=True`` leaves the model on all rows, whose only product is the
    embedding, to ``Representation.embed`` (:class:`_AllRowsCNN`): trained when the
    embedding is first read, the same values (a scan none of whose detectors reads it
    trains ``folds`` CNNs, not ``folds + 1``). ``meta["epochs"]`` and
    ``meta["device"]`` are the fold models' (whose out-of-fold probabilities the
    label detectors read).

    ``reproducible=True``: on the CPU the CNNs train and predict with kernels that
    round the same on every x86-64 CPU with AVX2 or AVX-512 (oneDNN off, MKL held to
    its COMPATIBLE branch, a portable cross-entropy; docs/reproducibility.md), so the
    same seed and thread count give the same weights and probabilities on any such
    machine, for about twice the CNN's CPU time (not the default for that reason).
    ``meta["cpu_reproducible"]`` says whether that held: "yes", or why not ("off",
    "not on the CPU", or MKL's state, e.g. "MKL: too late" when MKL had already
    computed in this process: then the rest still holds but MKL rounds by the CPU).
    GPUs are unaffected.
    """
    if not isinstance(reproducible, bool):
        raise UsageError(f"image_representation: reproducible must be True or False, "
                         f"got {reproducible!r}")
    torch = torch_module()
    images = dataset.images
    if images is None:
        raise UsageError("image_representation needs an image dataset")
    if layer not in LAYERS:
        raise UsageError(f"unknown layer '{layer}' (known: {', '.join(LAYERS)})")
    progress = progress or NullProgress()
    y = np.asarray(dataset.labels)
    n, n_classes = len(y), dataset.n_classes
    large = n > SMALL_ROWS
    width = width if width is not None else (LEAN_WIDTH if large else 16)
    with _torch_threads_set(torch, images.shape[1:], threads):
        settings: dict[str, Any] = {"n_classes": n_classes, "width": width, "hidden": hidden,
                                    "epochs": epochs, "device": device, "large": large,
                                    "reproducible": reproducible}
        dev = SmallCNN(**settings).resolve_device(torch)
        if reproducible and dev.type == "cpu":
            pin_mkl_branch(torch)  # before the CNNs' first matrix product
        mean, std = channel_stats(images)
        batches = PixelBatches(torch, images, mean, std, device=dev,
                               resident=dev.type != "cpu")
        most = min(folds, 3) if n > MANY_ROWS else folds
        n_splits = max(2, int(min(most, np.bincount(y, minlength=n_classes)[np.unique(y)].min())))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        total = n_splits + 1
        proba = np.zeros((n, n_classes), dtype=np.float64)
        oof: np.ndarray | None = None
        for k, (train, held) in enumerate(splitter.split(np.zeros((n, 1)), y)):
            progress.update(f"training CNN fold {k + 1}/{n_splits}", done=k, total=total)
            fold = SmallCNN(**settings, seed=seed + k + 1).fit(batches, train, y)
            proba[held], act = fold.forward(batches, held, layer=layer)
            if oof is None:
                oof = np.zeros((n, act.shape[1]), dtype=np.float32)
            oof[held] = act
        embed = _AllRowsCNN(torch, images, y, settings, mean=mean, std=std, device=dev,
                            layer=layer, seed=seed, threads=threads, progress=progress,
                            stage=(n_splits, total))
        embedding = np.zeros((n, 0), dtype=np.float32)
        if not defer_embedding:
            embedding = embed(batches)
        del batches  # frees the device copy of the images
        progress.update("representation ready", done=total, total=total)
    return Representation(
        features=standardised_pixels(images), embedding=embedding, proba=proba,
        embedding_oof=oof,
        model=f"cnn(width={width}, hidden={hidden})", layer=layer,
        meta={"folds": n_splits, "epochs": fold.epochs_, "device": fold.device_,
              "plan": "large" if large else "small",
              "cpu_reproducible": _reproducible_state(reproducible, dev)},
        embed=embed if defer_embedding else None,
    )


def _reproducible_state(reproducible: bool, dev: Any) -> str:
    """``meta["cpu_reproducible"]``: "yes", or why the CNN's bits may depend on the CPU."""
    if not reproducible:
        return "off"
    if dev.type != "cpu":
        return "not on the CPU"
    mkl = pin_mkl_branch(torch_module())
    if mkl == "no MKL":
        return "no: torch without MKL (its BLAS rounds by the CPU)"
    return "yes" if mkl == "compatible" else f"MKL: {mkl}"


class _AllRowsCNN:
    """The ``layer`` activations of every image under the CNN trained on all rows.

    That model learns a backdoor if the data holds one, which is what the
    representation-space detectors look for. Called, it trains the model the first
    time (under the representation's torch threads, on fresh batches of the images)
    and keeps it; each call computes the activations (N x hidden floats) again.
    """

    def __init__(self, torch: Any, images: np.ndarray, labels: np.ndarray,
                 settings: dict[str, Any], *, mean: np.ndarray, std: np.ndarray, device: Any,
                 layer: str, seed: int, threads: int | None, progress: Progress,
                 stage: tuple[int, int]) -> None:
        self._torch, self._images, self._labels = torch, images, labels
        self._settings, self._mean, self._std, self._device = settings, mean, std, device
        self._layer, self._seed, self._threads = layer, seed, threads
        self._progress, self._stage = progress, stage
        self.model: SmallCNN | None = None

    def __call__(self, batches: PixelBatches | None = None) -> np.ndarray:
        """The activations; ``batches``: the images' batches when the caller has them
        (on a device, a second copy of the images is not made)."""
        torch, images = self._torch, self._images
        with _torch_threads_set(torch, images.shape[1:], self._threads):
            if batches is None:
                batches = PixelBatches(torch, images, self._mean, self._std,
                                       device=self._device, resident=self._device.type != "cpu")
            if self.model is None:
                done, total = self._stage
                self._progress.update("training CNN on all rows", done=done, total=total)
                # Single-channel images: the model on all rows reads channels-last
                # batches and the fold models standard ones, the layouts the scan has
                # always used (the small plan's results stay bit for bit those of
                # earlier versions).
                channels_last = not self._settings["large"] and images.shape[3] == 1
                self.model = SmallCNN(**self._settings, seed=self._seed,
                                      channels_last=channels_last
                                      ).fit(batches, np.arange(len(images)), self._labels)
            _, embedding = self.model.forward(batches, layer=self._layer)
            return np.asarray(embedding)


@contextlib.contextmanager
def _torch_threads_set(torch: Any, image_shape: tuple[int, ...],
                       threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to :func:`torch_threads` for the duration, then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(torch_threads(torch, image_shape, threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
