"""Pixels read a block at a time: equal to the one-shot computations, no float64 copy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from poisonguard.datasets import builtin_dataset
from poisonguard.represent.pixels import PixelBatches, channel_stats, standardised_pixels


@pytest.fixture(scope="module")
def rgb_uint8() -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(500, 6, 5, 3), dtype=np.uint8)
    images[:, 0, 0, :] = 7  # a constant pixel: scaled to 0
    return images


@pytest.mark.parametrize("block_rows", [1, 77, 4096])
def test_standardised_pixels_equal_standard_scaler_bit_for_bit(rgb_uint8, block_rows) -> None:  # type: ignore[no-untyped-def]
    digits = builtin_dataset("digits").images
    assert digits is not None
    wine = builtin_dataset("wine").features
    for images in (rgb_uint8, digits, rgb_uint8.astype(np.float32) / 3, wine):
        flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
        expected = StandardScaler().fit_transform(flat.astype(np.float64)).astype(np.float32)
        got = standardised_pixels(images, block_rows=block_rows)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    assert not standardised_pixels(rgb_uint8)[:, 0].any()


def test_channel_stats_are_exact_for_uint8(rgb_uint8) -> None:  # type: ignore[no-untyped-def]
    mean, std = channel_stats(rgb_uint8, block_rows=33)
    x = rgb_uint8.reshape(-1, 3).astype(np.float64)
    np.testing.assert_array_equal(mean, x.mean(axis=0).astype(np.float32))
    np.testing.assert_allclose(std, x.std(axis=0), rtol=1e-6)


def test_batches_scale_like_the_whole_array_at_once(rgb_uint8) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    mean, std = channel_stats(rgb_uint8)
    batches = PixelBatches(torch, rgb_uint8, mean, std, device=torch.device("cpu"))
    whole = ((rgb_uint8.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
    rows = torch.tensor([4, 0, 499, 4])
    got = batches.take(rows)
    assert got.dtype == torch.float32 and got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), whole[[4, 0, 499, 4]])
    np.testing.assert_array_equal(batches.take(slice(10, 20)).numpy(), whole[10:20])
    last = batches.take(rows, channels_last=True)
    assert last.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(last.numpy(), whole[[4, 0, 499, 4]])
