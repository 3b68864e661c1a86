"""Federated data for the simulator: a dataset split into a server part and client shards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.errors import UsageError

__all__ = ["FEDERATED_DATASETS", "FederatedData", "dirichlet_split", "iid_split",
           "make_federated_data"]

FEDERATED_DATASETS = ("digits", "synthetic")


@dataclass(frozen=True)
class FederatedData:
    """Client shards plus the server's data.

    ``shards[i]`` holds client i's row indices into ``x``/``y``. The server keeps a
    held-out test set (accuracy and attack success) and a small trusted root set
    (FLTrust), both disjoint from every client's rows. ``trigger`` is the backdoor
    trigger spec (:func:`poisonguard.attack.trigger.stamp`) for this data.

    Examples
    --------
    >>> data = make_federated_data("digits", n_clients=4)
    >>> len(data.shards), data.n_classes, data.x.shape[1]
    (4, 10, 64)
    """

    x: np.ndarray
    y: np.ndarray
    shards: list[np.ndarray]
    x_test: np.ndarray
    y_test: np.ndarray
    x_root: np.ndarray
    y_root: np.ndarray
    n_classes: int
    trigger: dict[str, Any]


def iid_split(n_rows: int, n_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the rows and deal them into ``n_clients`` shards of near-equal size."""
    return [np.sort(s) for s in np.array_split(rng.permutation(n_rows), n_clients)]


def dirichlet_split(y: np.ndarray, n_clients: int, alpha: float, rng: np.random.Generator,
                    *, min_size: int = 10, max_tries: int = 200) -> list[np.ndarray]:
    """Non-IID shards: each class is divided among clients in Dirichlet(alpha) proportions.

    Smaller ``alpha`` gives more skewed label mixes. Redrawn until every client has at
    least ``min_size`` rows; fails after ``max_tries`` draws.
    """
    if not alpha > 0:
        raise UsageError(f"the Dirichlet alpha must be positive, got {alpha}")
    for _ in range(max_tries):
        shards: list[list[int]] = [[] for _ in range(n_clients)]
        for c in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(n_clients, alpha))) * len(rows)).astype(int)
            for client, part in enumerate(np.split(rows, cuts[:-1])):
                shards[client].extend(part.tolist())
        if min(len(s) for s in shards) >= min_size:
            return [np.sort(np.asarray(s, dtype=np.int64)) for s in shards]
    raise UsageError(f"could not give each of {n_clients} clients {min_size} rows with "
                     f"alpha={alpha}; use fewer clients or a larger alpha")


def _load(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    # lazy imports: keep `poisonguard --help` fast
    from sklearn.datasets import load_digits

    from poisonguard.datasets import synthetic

    if name == "digits":
        d = load_digits()
        x = d.data / 16.0
        # a 2 x 2 white patch in the bottom-right corner of the 8 x 8 image
        trigger = {"type": "tabular", "features": [54, 55, 62, 63], "values": [1.0] * 4}
        return x, d.target.astype(np.int64), trigger
    if name == "synthetic":
        ds = synthetic(n_rows=6000, n_features=30, n_classes=5, seed=seed)
        assert ds.features is not None
        x = np.asarray(ds.features, dtype=np.float64)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        trigger = {"type": "tabular", "features": [0, 1, 2], "values": [4.0, -4.0, 4.0]}
        return x, np.asarray(ds.labels, dtype=np.int64), trigger
    raise UsageError(f"unknown federated dataset '{name}' "
                     f"(known: {', '.join(FEDERATED_DATASETS)})")


def make_federated_data(name: str, *, n_clients: int, split: str = "iid", alpha: float = 0.5,
                        test_fraction: float = 0.3, root_size: int = 100,
                        seed: int = 0) -> FederatedData:
    """Load ``name`` and split it: test set, trusted root set, then client shards.

    Parameters
    ----------
    name : str
        ``"digits"`` (scikit-learn's 1,797 8x8 digits as 64 features in [0, 1]) or
        ``"synthetic"`` (6,000 rows x 30 standardised features, 5 classes).
    n_clients : int
        Number of client shards.
    split : str
        ``"iid"`` or ``"dirichlet"``.
    alpha : float
        Dirichlet concentration (``split="dirichlet"`` only).
    test_fraction, root_size : float, int
        Server's held-out share and the size of its trusted root set.
    seed : int
        Seed of every random choice.

    Returns
    -------
    FederatedData

    Examples
    --------
    >>> data = make_federated_data("digits", n_clients=10, seed=0)
    >>> len(data.shards), len(data.x_root)
    (10, 100)
    """
    if split not in ("iid", "dirichlet"):
        raise UsageError(f"split must be 'iid' or 'dirichlet', got '{split}'")
    if n_clients < 1:
        raise UsageError(f"need at least one client, got {n_clients}")
    x, y, trigger = _load(name, seed)
    rng = np.random.default_rng(seed)
    from sklearn.model_selection import train_test_split

    x_pool, x_test, y_pool, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed)
    if not 0 < root_size < len(y_pool) // 2:
        raise UsageError(f"root_size must be between 1 and {len(y_pool) // 2 - 1}")
    root = rng.choice(len(y_pool), size=root_size, replace=False)
    rest = np.setdiff1d(np.arange(len(y_pool)), root)
    x_clients, y_clients = x_pool[rest], y_pool[rest]
    if len(y_clients) < 2 * n_clients:
        raise UsageError(f"{len(y_clients)} rows are too few for {n_clients} clients")
    shards = (iid_split(len(y_clients), n_clients, rng) if split == "iid"
              else dirichlet_split(y_clients, n_clients, alpha, rng))
    return FederatedData(x=x_clients, y=y_clients, shards=shards, x_test=x_test,
                         y_test=y_test, x_root=x_pool[root], y_root=y_pool[root],
                         n_classes=int(y.max()) + 1, trigger=trigger)
