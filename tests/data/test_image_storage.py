"""Images keep uint8 storage: same ids and values as float32, pixels readable in blocks."""

from __future__ import annotations

import numpy as np

from poisonguard.data import Dataset


def test_uint8_images_stay_uint8_with_the_ids_of_their_float_values() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(9, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(9) % 2
    small = Dataset(labels=labels, classes=("a", "b"), images=pixels)
    wide = Dataset(labels=labels, classes=("a", "b"), images=pixels.astype(np.float64))
    assert small.images is not None and small.images.dtype == np.uint8
    assert wide.images is not None and wide.images.dtype == np.float32
    assert list(small.ids) == list(wide.ids)
    np.testing.assert_array_equal(small.matrix(), wide.matrix())
    assert small.matrix().dtype == np.float32
    blocks = list(small.pixel_chunks(4))
    assert [start for start, _ in blocks] == [0, 4, 8]
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), wide.matrix())
    assert small.subset([2, 0]).images.dtype == np.uint8  # type: ignore[union-attr]
