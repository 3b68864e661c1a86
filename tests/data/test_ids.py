"""Content ids are kept as 32-byte digests and read as the same hex strings."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from poisonguard.data import Dataset, RowIds, dataset_digest
from poisonguard.data.dataset import ROW_ID_PREFIX


@pytest.fixture(scope="module")
def table() -> Dataset:
    x = np.random.default_rng(0).normal(size=(70_000, 3)).astype(np.float32)
    return Dataset(labels=np.arange(70_000) % 2, classes=("a", "b"), features=x)


def test_ids_are_digests_read_as_the_sha256_hex_of_each_row(table: Dataset) -> None:
    assert isinstance(table.ids, RowIds) and table.ids.nbytes == 32 * len(table)
    assert table.features is not None
    for i in (0, 65_537, len(table) - 1):  # either side of an iteration block
        body = ROW_ID_PREFIX + table.classes[table.labels[i]].encode() + b"\x00"
        want = hashlib.sha256(body + table.features[i].astype("<f4").tobytes()).hexdigest()
        assert table.ids[i] == want
        assert list(table.ids)[i] == want == table.ids.tolist()[i]
        assert np.asarray(table.ids)[i] == want


def test_subsets_masks_and_copies_keep_the_same_strings(table: Dataset) -> None:
    strings = np.asarray(table.ids, dtype=object)
    rows = np.array([5, 3, 69_999])
    assert table.ids[rows].tolist() == strings[rows].tolist()
    mask = table.labels == 1
    assert table.ids[mask].tolist() == strings[mask].tolist()
    assert table.ids[2:4].tolist() == strings[2:4].tolist()
    sub = table.subset(rows)
    assert isinstance(sub.ids, RowIds) and sub.ids.tolist() == strings[rows].tolist()
    as_strings = table.replace(ids=strings)  # the same ids given as strings
    assert dataset_digest(as_strings) == dataset_digest(table)
    assert RowIds.concatenate([table.ids[:2], table.ids[2:5]]) == table.ids[:5]
