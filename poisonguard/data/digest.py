"""The content fingerprint of a dataset: a hash of its row ids in order."""

from __future__ import annotations

import hashlib

from poisonguard.data.dataset import Dataset

__all__ = ["dataset_digest"]


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 over the row ids in order, one id per line: the dataset's content fingerprint.

    The findings of a scan carry it (``dataset.sha256``) so that a report or a clean
    can check that it is given the same data.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(labels=np.array([0, 1]), classes=("a", "b"),
    ...              features=np.zeros((2, 1)), ids=np.array(["r1", "r2"]))
    >>> dataset_digest(ds)[:12]
    'b9d2bff8d5d6'
    """
    assert dataset.ids is not None
    h = hashlib.sha256()
    step = 65_536  # same bytes as hashing id by id, in a few large updates
    for start in range(0, len(dataset.ids), step):
        chunk = dataset.ids[start:start + step]
        h.update(("\n".join(str(i) for i in chunk) + "\n").encode())
    return h.hexdigest()
