"""Pixels read a block of rows at a time: statistics, scaled features, device batches.

Images stay in their stored dtype (uint8 for most image files); nothing here makes a
full float64 copy of them. What comes out equals the one-shot computations the scan
used before (``StandardScaler`` on the flattened pixels, per-channel standardisation)
bit for bit for float32 images; for uint8 images the per-channel statistics are
exact (integer sums), see :func:`channel_stats`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["BLOCK_ROWS", "PixelBatches", "channel_stats", "standardise_blocked",
           "standardised_pixels"]

#: Rows per block when pixels are read in chunks.
BLOCK_ROWS = 2_048


def _flat(images: np.ndarray, start: int, stop: int) -> np.ndarray:
    block = images[start:stop]
    return np.asarray(block.reshape(len(block), -1), dtype=np.float64)


def _running_sum(total: np.ndarray, block: np.ndarray) -> np.ndarray:
    """``total`` plus the rows of ``block`` added one after the other, in the order a
    single column sum over all rows adds them (numpy sums axis 0 of a C-ordered array
    row by row), so that a blocked sum equals the one-shot sum exactly."""
    return np.asarray(np.concatenate([total[None], block]).sum(axis=0))


def standardised_pixels(images: np.ndarray, *, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """N x (H*W*C) float32 pixels scaled to zero mean, unit variance per pixel.

    :func:`standardise_blocked` of the flattened images.

    Examples
    --------
    >>> import numpy as np
    >>> standardised_pixels(np.zeros((2, 1, 1, 1), dtype=np.uint8)).tolist()
    [[0.0], [0.0]]
    """
    return standardise_blocked(images, block_rows=block_rows)


def standardise_blocked(images: np.ndarray, *, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Rows of ``images`` (N x ..., any dtype) flattened and standardised per column.

    Equal to scikit-learn's ``StandardScaler`` on the float64 values, then float32,
    bit for bit, computed a block of rows at a time: the float32 result is the only
    full-size array made (``StandardScaler`` makes three float64 copies).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.arange(12, dtype=np.uint8).reshape(3, 2, 2, 1)
    >>> standardised_pixels(images)[:, 0]
    array([-1.2247449,  0.       ,  1.2247449], dtype=float32)
    """
    n = len(images)
    d = int(np.prod(images.shape[1:]))
    if n == 0:
        return np.zeros((0, d), dtype=np.float32)
    total = np.zeros(d)
    for start in range(0, n, block_rows):
        total = _running_sum(total, _flat(images, start, start + block_rows))
    mean = total / n
    correction, squares = np.zeros(d), np.zeros(d)
    for start in range(0, n, block_rows):
        centred = _flat(images, start, start + block_rows) - mean
        correction = _running_sum(correction, centred)
        squares = _running_sum(squares, centred ** 2)
    var = (squares - correction ** 2 / n) / n
    # scikit-learn's test for a constant column (its _is_constant_feature)
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.sqrt(var)
    scale[constant | (scale < 10 * eps)] = 1.0
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, block_rows):
        out[start:start + block_rows] = (_flat(images, start, start + block_rows) - mean) / scale
    return out


def channel_stats(images: np.ndarray, *,
                  block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float32, shape (C,)) of N x H x W x C.

    float32 images: numpy's float32 ``mean``/``std`` over axes (0, 1, 2), as the scan
    always computed them (no copy is made). uint8 images: exact integer sums, a block
    of rows at a time, rounded once to float32.
    """
    if images.dtype != np.uint8:
        x = np.asarray(images, dtype=np.float32)
        return (np.asarray(x.mean(axis=(0, 1, 2)), dtype=np.float32),
                np.asarray(x.std(axis=(0, 1, 2)), dtype=np.float32))
    channels = images.shape[3]
    total = np.zeros(channels, dtype=np.int64)
    squares = np.zeros(channels, dtype=np.int64)
    for start in range(0, len(images), block_rows):
        block = images[start:start + block_rows].reshape(-1, channels).astype(np.int64)
        total += block.sum(axis=0)
        squares += (block * block).sum(axis=0)
    count = max(len(images) * images.shape[1] * images.shape[2], 1)
    mean = total / count
    var = np.maximum(squares / count - mean ** 2, 0.0)
    return np.asarray(mean, dtype=np.float32), np.asarray(np.sqrt(var), dtype=np.float32)


class PixelBatches:
    """Scaled N x C x H x W float32 batches of stored N x H x W x C images, on a device.

    The stored array (uint8 or float32) is shared with torch without a copy on the
    CPU; with ``resident=True`` it is copied to the device once, in its stored dtype,
    and batches are gathered and scaled there (no host work per step). Scaling is
    ``(x - mean) / std`` per channel in float32 (``std`` below 1e-8 counts as 1), the
    same arithmetic as scaling the whole array at once.
    """

    def __init__(self, torch: Any, images: np.ndarray, mean: np.ndarray, std: np.ndarray,
                 *, device: Any, resident: bool = False) -> None:
        if images.ndim != 4:
            raise ValueError("images must be N x H x W x C")
        self.torch = torch
        self.device = device
        self.n = len(images)
        self.shape = tuple(int(s) for s in images.shape[1:])
        with warnings.catch_warnings():  # the stored array is read-only; torch only reads
            warnings.simplefilter("ignore", UserWarning)
            host = torch.from_numpy(np.ascontiguousarray(images))
        self.store = host.to(device) if resident else host
        self.resident = resident
        safe_std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        self.mean = torch.as_tensor(np.asarray(mean, dtype=np.float32), device=device)
        self.std = torch.as_tensor(safe_std, device=device)

    def take(self, rows: Any, *, channels_last: bool = False) -> Any:
        """The batch of ``rows`` (an index tensor or a slice), scaled, on the device.

        ``channels_last`` keeps the stored H x W x C memory order under the
        N x C x H x W shape (torch's channels-last format); otherwise the batch has
        standard strides. Convolutions pick their kernel by the format, so the two
        agree to rounding, not bit for bit.
        """
        torch = self.torch
        if isinstance(rows, slice):
            raw = self.store[rows]
        elif self.resident:
            raw = self.store[rows.to(self.device)]
        else:
            raw = self.store[rows.cpu()]
        raw = raw.to(self.device, non_blocking=True)
        x = ((raw.to(torch.float32) - self.mean) / self.std).permute(0, 3, 1, 2)
        if channels_last:
            return x
        # (with C == 1, .contiguous() would keep the channels-last strides)
        return x.clone(memory_format=torch.contiguous_format)
