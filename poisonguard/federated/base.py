"""What every aggregator shares: the update format, the result type, the registry.

A client *update* is a list of numpy arrays (one per model tensor), the change the
client proposes to the global model (its local weights minus the global weights).
Aggregators work on the updates flattened into one ``n_clients x n_params`` float64
matrix, so they never depend on a framework.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from poisonguard.errors import UsageError

__all__ = [
    "AGGREGATORS",
    "AggregationResult",
    "Aggregator",
    "Update",
    "all_selected",
    "distance_scores",
    "distances_to",
    "flatten_updates",
    "outlier_scores",
    "register",
    "row_norms",
    "unflatten",
]

Update = Sequence[np.ndarray]

AGGREGATORS: dict[str, type[Aggregator]] = {}


def register(cls: type[Aggregator]) -> type[Aggregator]:
    """Class decorator: make the aggregator findable by its ``name``."""
    AGGREGATORS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class AggregationResult:
    """The outcome of one round of aggregation.

    Attributes
    ----------
    update : list of numpy.ndarray
        The aggregate, shaped like one client update.
    scores : numpy.ndarray
        Per-client anomaly score in [0, 1] for this round, in the order the updates
        came in. Above 0.5 means the rule judged the update an outlier this round.
    selected : numpy.ndarray
        Per-client bool: the update contributed to the aggregate (Krum keeps one,
        FLTrust drops updates with zero trust, coordinate-wise rules keep all).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.federated import get_aggregator
    >>> updates = [[np.ones(3)], [np.ones(3)], [np.full(3, 100.0)]]
    >>> result = get_aggregator("median").aggregate(updates)
    >>> result.update[0].tolist(), result.scores.round(3).tolist()
    ([1.0, 1.0, 1.0], [0.0, 0.0, 1.0])
    """

    update: list[np.ndarray]
    scores: np.ndarray
    selected: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Scores and selection as JSON-able lists (the update itself is left out)."""
        return {"scores": [round(float(s), 6) for s in self.scores],
                "selected": [bool(s) for s in self.selected], **self.details}


def flatten_updates(updates: Sequence[Update]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Stack client updates into an ``n x d`` float64 matrix; return it and the shapes.

    Raises :class:`UsageError` when there are no updates, when shapes differ between
    clients, or when a value is not finite (an aggregator fails closed on such input).
    """
    if len(updates) == 0:
        raise UsageError("no client updates to aggregate")
    shapes = [tuple(int(s) for s in np.shape(a)) for a in updates[0]]
    d = int(sum(int(np.prod(s)) for s in shapes))
    matrix = np.empty((len(updates), d), dtype=np.float64)
    for i, update in enumerate(updates):
        got = [tuple(int(s) for s in np.shape(a)) for a in update]
        if got != shapes:
            raise UsageError(f"client {i} sent tensors of shapes {got}, expected {shapes}")
        start = 0
        for a in update:
            size = int(np.size(a))
            matrix[i, start:start + size] = np.ravel(a)
            start += size
    if not np.isfinite(matrix).all():
        bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise UsageError(f"client {bad} sent a non-finite value (NaN or infinity)")
    return matrix, shapes


def unflatten(vector: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Split a flat vector back into arrays of ``shapes``."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(vector[start:start + size].reshape(shape).copy())
        start += size
    return out


def outlier_scores(statistic: np.ndarray) -> np.ndarray:
    """Map a per-client outlyingness statistic (higher = odder) to scores in [0, 1).

    The robust z-score ``z = (s - median) / (1.4826 * MAD)`` of each client against
    this round's clients becomes ``z^2 / (z^2 + 9)`` (0 for z <= 0): z = 3 gives 0.5.
    The cut comes from the round's own spread, never from an assumed attack rate.
    """
    s = np.asarray(statistic, dtype=np.float64)
    med = float(np.median(s))
    mad = 1.4826 * float(np.median(np.abs(s - med)))
    scale = max(mad, 1e-12 * max(abs(med), 1.0), 1e-300)
    z = np.maximum((s - med) / scale, 0.0)
    z = np.minimum(z, 1e6)
    return np.asarray(z * z / (z * z + 9.0))


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise UsageError(f"weights must be {n} non-negative numbers with a positive sum")
    return w / w.sum()


class Aggregator(ABC):
    """Base class: combine client updates into one, scoring each client.

    Subclasses set ``name``, take their parameters as keyword-only ``__init__``
    arguments (validated there, nowhere else) and implement :meth:`_combine`.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.federated import get_aggregator
    >>> updates = [[np.ones(3)], [np.ones(3)], [np.full(3, 100.0)]]
    >>> result = get_aggregator("median").aggregate(updates)
    >>> result.update[0].tolist()
    [1.0, 1.0, 1.0]
    """

    name: ClassVar[str]
    needs_trusted: ClassVar[bool] = False

    def min_clients(self) -> int:
        """The fewest updates this rule accepts (Krum needs n > 2f + 2, and so on)."""
        return 1

    def aggregate(self, updates: Sequence[Update], *, weights: Sequence[float] | None = None,
                  trusted: Update | None = None) -> AggregationResult:
        """Aggregate one round.

        Parameters
        ----------
        updates : sequence of list of numpy.ndarray
            One update per client, all with the same tensor shapes.
        weights : sequence of float, optional
            Per-client weights (e.g. number of examples); used by the mean-based rules.
        trusted : list of numpy.ndarray, optional
            The server's own update on its trusted root data (FLTrust needs it).

        Returns
        -------
        AggregationResult
        """
        matrix, shapes = flatten_updates(updates)
        n = matrix.shape[0]
        if n < self.min_clients():
            raise UsageError(f"{self.name} needs at least {self.min_clients()} updates "
                             f"with its parameters, got {n}")
        w = _check_weights(weights, n)
        reference = None
        if self.needs_trusted:
            if trusted is None:
                raise UsageError(f"{self.name} needs the server's trusted update")
            reference, ref_shapes = flatten_updates([trusted])
            if ref_shapes != shapes:
                raise UsageError("the trusted update's shapes differ from the clients'")
        vector, scores, selected, details = self._combine(
            matrix, w, None if reference is None else reference[0])
        return AggregationResult(update=unflatten(vector, shapes), scores=scores,
                                 selected=selected, details=details)

    @abstractmethod
    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Return (aggregate vector, scores, selected mask, details)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """The L2 norm of each row, without an n x d temporary."""
    return np.sqrt(np.einsum("ij,ij->i", matrix, matrix))


def distances_to(matrix: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row to ``center`` (row by row: no n x d temporary)."""
    return np.array([float(np.linalg.norm(row - center)) for row in matrix])


def distance_scores(matrix: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Outlier scores of each row's Euclidean distance to ``center``."""
    return outlier_scores(distances_to(matrix, center))


def all_selected(n: int) -> np.ndarray:
    """A selection mask with every client kept."""
    return np.ones(n, dtype=bool)

