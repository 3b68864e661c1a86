"""Client reputation across rounds: name persistent offenders, optionally shut them out."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.errors import UsageError

__all__ = ["ClientRecord", "Reputation"]


@dataclass(frozen=True)
class ClientRecord:
    """One client's standing: rounds scored, summed scores, suspicion, flagged.

    Examples
    --------
    >>> rep = Reputation(min_rounds=1)
    >>> rep.update(["a", "b"], [0.1, 0.9])
    ['b']
    >>> [(r.client, r.rounds, r.flagged) for r in rep.records()]
    [('b', 1, True), ('a', 1, False)]
    """

    client: Hashable
    rounds: int
    score_sum: float
    suspicion: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {"client": str(self.client), "rounds": self.rounds,
                "score_sum": round(self.score_sum, 6), "suspicion": round(self.suspicion, 6),
                "flagged": self.flagged}


class Reputation:
    """Beta-style reputation over each client's per-round anomaly scores.

    Each round adds a client's score ``s`` in [0, 1] as ``s`` "bad" and ``1 - s``
    "good" evidence; with ``decay < 1`` older rounds weigh less. The suspicion is the
    posterior mean ``(1 + bad) / (2 + bad + good)``. A client is flagged once it has
    been scored in at least ``min_rounds`` rounds and its suspicion exceeds
    ``threshold`` (default 0.5: on balance, its updates were outliers). A flag is
    sticky. With ``exclude=True``, :meth:`allowed` shuts flagged clients out.

    Parameters
    ----------
    min_rounds : int
        Rounds of evidence needed before a client can be flagged.
    threshold : float
        Suspicion above which a client is flagged, in (0, 1).
    decay : float
        Weight kept by past evidence each round, in (0, 1].
    exclude : bool
        Whether flagged clients' updates are left out of later rounds.

    Examples
    --------
    >>> rep = Reputation(min_rounds=3)
    >>> for _ in range(3):
    ...     _ = rep.update(["a", "b", "c"], [0.05, 0.1, 0.95])
    >>> rep.flagged()
    ['c']
    """

    def __init__(self, *, min_rounds: int = 5, threshold: float = 0.5, decay: float = 1.0,
                 exclude: bool = False) -> None:
        if not (isinstance(min_rounds, int) and min_rounds >= 1):
            raise UsageError(f"min_rounds must be an integer >= 1, got {min_rounds!r}")
        if not 0 < threshold < 1:
            raise UsageError(f"threshold must be in (0, 1), got {threshold}")
        if not 0 < decay <= 1:
            raise UsageError(f"decay must be in (0, 1], got {decay}")
        self.min_rounds = min_rounds
        self.threshold = threshold
        self.decay = decay
        self.exclude = exclude
        self._bad: dict[Hashable, float] = {}
        self._good: dict[Hashable, float] = {}
        self._rounds: dict[Hashable, int] = {}
        self._sum: dict[Hashable, float] = {}
        self._flagged: dict[Hashable, None] = {}

    def update(self, clients: Sequence[Hashable], scores: Iterable[float]) -> list[Hashable]:
        """Record one round's scores; return the clients newly flagged by it."""
        values = np.asarray(list(scores), dtype=np.float64)
        if len(values) != len(clients) or not np.isfinite(values).all() \
                or (values < 0).any() or (values > 1).any():
            raise UsageError("reputation needs one score in [0, 1] per client")
        if len(set(clients)) != len(clients):
            raise UsageError("a client appears twice in one round")
        newly = []
        for client, s in zip(clients, values, strict=True):
            self._bad[client] = self.decay * self._bad.get(client, 0.0) + float(s)
            self._good[client] = self.decay * self._good.get(client, 0.0) + 1.0 - float(s)
            self._rounds[client] = self._rounds.get(client, 0) + 1
            self._sum[client] = self._sum.get(client, 0.0) + float(s)
            if client not in self._flagged and self._rounds[client] >= self.min_rounds \
                    and self.suspicion(client) > self.threshold:
                self._flagged[client] = None
                newly.append(client)
        return newly

    def suspicion(self, client: Hashable) -> float:
        """Posterior mean of the client's outlier rate (0.5 for a client never seen)."""
        bad, good = self._bad.get(client, 0.0), self._good.get(client, 0.0)
        return (1.0 + bad) / (2.0 + bad + good)

    def flagged(self) -> list[Hashable]:
        """Flagged clients, in the order they were flagged."""
        return list(self._flagged)

    def allowed(self, clients: Sequence[Hashable]) -> np.ndarray:
        """Bool mask of the clients whose updates may be aggregated this round."""
        if not self.exclude:
            return np.ones(len(clients), dtype=bool)
        return np.array([c not in self._flagged for c in clients], dtype=bool)

    def records(self) -> list[ClientRecord]:
        """Every client seen, most suspicious first."""
        rows = [ClientRecord(c, self._rounds[c], self._sum[c], self.suspicion(c),
                             c in self._flagged) for c in self._rounds]
        return sorted(rows, key=lambda r: (-r.suspicion, str(r.client)))
