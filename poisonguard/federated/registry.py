"""Find aggregators by name; size their Byzantine tolerance for a number of clients."""

from __future__ import annotations

from typing import Any

from poisonguard.errors import UsageError
from poisonguard.federated import coordinate, fltrust, geomed, krum, mean  # noqa: F401
from poisonguard.federated.base import AGGREGATORS, Aggregator

__all__ = ["aggregator_for", "available_aggregators", "get_aggregator"]


_ORDER = ("fedavg", "clip", "median", "trimmed-mean", "krum", "multi-krum", "bulyan", "geomed",
          "fltrust")


def available_aggregators() -> list[str]:
    """Names of the registered aggregators: the baseline first, then by family.

    Examples
    --------
    >>> available_aggregators()[:3]
    ['fedavg', 'clip', 'median']
    """
    return sorted(AGGREGATORS, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def get_aggregator(name: str, **params: Any) -> Aggregator:
    """The aggregator registered as ``name``, built with ``params``.

    Examples
    --------
    >>> get_aggregator("krum", f=2)
    Krum(f=2)
    """
    if name not in AGGREGATORS:
        raise UsageError(f"unknown aggregator '{name}' "
                         f"(known: {', '.join(available_aggregators())})")
    try:
        return AGGREGATORS[name](**params)
    except TypeError as exc:
        raise UsageError(f"aggregator '{name}': {exc}") from None


def aggregator_for(name: str, n_clients: int, *, byzantine: int | None = None) -> Aggregator:
    """``name`` set up to tolerate ``byzantine`` arbitrary clients out of ``n_clients``.

    ``byzantine=None`` means 30% of the clients (rounded down): a fixed design
    tolerance, never the number of attackers actually present; each rule then gets the
    most it supports up to that. An explicit ``byzantine`` beyond what the rule
    supports is an error. Krum and Multi-Krum need n > 2f + 2, Bulyan n >= 4f + 3;
    the trimmed mean trims f / n from each end (less than one half).

    Examples
    --------
    >>> aggregator_for("bulyan", 20)
    Bulyan(f=4)
    """
    f = int(0.3 * n_clients) if byzantine is None else byzantine
    if f < 0:
        raise UsageError(f"byzantine must be >= 0, got {f}")
    most = {"krum": (n_clients - 3) // 2, "multi-krum": (n_clients - 3) // 2,
            "bulyan": (n_clients - 3) // 4, "trimmed-mean": (n_clients - 1) // 2}
    if name not in most:
        return get_aggregator(name)
    if byzantine is not None and f > most[name]:
        raise UsageError(f"{name} tolerates at most {max(most[name], 0)} Byzantine clients "
                         f"out of {n_clients}, asked for {f}")
    f = max(0, min(f, most[name]))
    if name == "trimmed-mean":
        return get_aggregator(name, trim=f / n_clients)
    return get_aggregator(name, f=f)
