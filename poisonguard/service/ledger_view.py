"""Read views over the ledger: a dataset's timeline, the whole chain, models and alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poisonguard.provenance.ledger import LedgerEntry

if TYPE_CHECKING:
    from poisonguard.service.core import Service

__all__ = ["all_entries", "dataset_entries", "monitor_items"]


def _mentions(entry: LedgerEntry, dataset_id: str) -> bool:
    if isinstance(entry.details, dict) and entry.details.get("dataset") == dataset_id:
        return True
    refs = [*(entry.inputs or []), *(entry.outputs or [])]
    return any(isinstance(r, dict) and dataset_id in (r.get("dataset"), r.get("baseline"))
               for r in refs)


def dataset_entries(service: Service, dataset_id: str) -> list[dict[str, Any]]:
    """Every ledger entry about the dataset (uploads, jobs, decisions, refusals)."""
    return [e.to_dict() for e in service.store.ledger.entries() if _mentions(e, dataset_id)]


def all_entries(service: Service, *, offset: int = 0, limit: int = 200) -> dict[str, Any]:
    """A page of the whole chain, newest first, and whether the chain verifies."""
    entries = service.store.ledger.entries()
    problems = service.store.ledger.verify()
    page = list(reversed(entries))[offset:offset + limit]
    return {"total": len(entries), "intact": not problems,
            "problems": [str(p) for p in problems[:20]],
            "entries": [e.to_dict() for e in page]}


def monitor_items(service: Service, what: str) -> list[dict[str, Any]]:
    """Model versions (``"models"``) or alerts from :mod:`poisonguard.monitor`."""
    from poisonguard.monitor import list_alerts, list_versions

    led = service.store.ledger
    items = list_versions(ledger=led) if what == "models" else list_alerts(ledger=led)
    return [item.to_dict() for item in items]
