"""Lineage: which inputs (by Merkle root) each output of the pipeline came from.

Commands that derive data (``clean``, ...) record an entry whose ``inputs`` and
``outputs`` are ``{"path", "root"}`` objects (:func:`data_ref`). :func:`lineage` walks
back from a file's root through those entries to the sources, noting the snapshots
(signed manifests) taken of every version on the way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poisonguard.data import Dataset, row_ids
from poisonguard.provenance.ledger import Ledger, LedgerEntry, record_event
from poisonguard.provenance.merkle import merkle_root
from poisonguard.provenance.text import printable

__all__ = ["LineageNode", "data_ref", "dataset_root", "lineage", "record_derivation"]


def dataset_root(dataset: Dataset) -> str:
    """The ML-view root: the Merkle root over the rows' ML content ids.

    This digest of what the detectors see (:func:`poisonguard.data.row_ids`) is what
    ``scan`` and ``clean`` record to link versions; it is *not* a snapshot's root,
    which commits to the file's typed cells (``ledger lineage`` matches both).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> dataset_root(wine) == dataset_root(builtin_dataset("wine")), len(dataset_root(wine))
    (True, 64)
    """
    ids = row_ids(dataset.classes, dataset.labels, features=dataset.features,
                  images=dataset.images, texts=dataset.texts)
    return merkle_root([bytes.fromhex(h) for h in ids])


def data_ref(path: str | os.PathLike[str], dataset: Dataset | None = None,
             **extra: Any) -> dict[str, Any]:
    """``{"path": absolute path, "root": dataset_root(dataset)}`` for a ledger entry.

    A built-in dataset (``"builtin:NAME"``) keeps its name as the path.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> ref = data_ref("builtin:wine", builtin_dataset("wine"))
    >>> ref["path"], len(ref["root"])
    ('builtin:wine', 64)
    >>> data_ref("clean.csv", rows=0)["rows"]
    0
    """
    from poisonguard.datasets import BUILTIN_PREFIX

    spec = str(path)
    ref: dict[str, Any] = {"path": spec if spec.startswith(BUILTIN_PREFIX) else
                           str(Path(path).absolute())}
    if dataset is not None:
        ref["root"] = dataset_root(dataset)
    ref.update(extra)
    return ref


def record_derivation(kind: str, inputs: list[tuple[str | os.PathLike[str], Dataset | None]],
                      outputs: list[tuple[str | os.PathLike[str], Dataset | None]], *,
                      details: dict[str, Any] | None = None, actor: str | None = None,
                      ledger: Ledger | str | os.PathLike[str] | None = None) -> LedgerEntry:
    """Record that ``outputs`` were made from ``inputs`` (e.g. by ``clean``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.provenance import Ledger
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> wine = builtin_dataset("wine")
    >>> e = record_derivation("clean", [("builtin:wine", wine)],
    ...                       [(d / "w.csv", wine.subset(range(10)))], ledger=Ledger(d / "l.db"))
    >>> e.kind, e.inputs[0]["path"]
    ('clean', 'builtin:wine')
    """
    return record_event(kind, inputs=[data_ref(p, d) for p, d in inputs],
                        outputs=[data_ref(p, d) for p, d in outputs],
                        details=details, actor=actor, ledger=ledger)


@dataclass
class LineageNode:
    """One version of the data: where it was, its root, what made it, what it came from.

    Examples
    --------
    >>> LineageNode(path="w.csv", root=None).parents
    []
    """

    path: str
    root: str | None
    produced_by: LedgerEntry | None = None
    snapshots: list[LedgerEntry] = field(default_factory=list)
    parents: list[LineageNode] = field(default_factory=list)

    def sources(self) -> list[LineageNode]:
        if not self.parents:
            return [self]
        return [s for p in self.parents for s in p.sources()]

    def label(self) -> str:
        text = f"{printable(self.path or '?')}  root {printable(str(self.root)[:16])}"
        if self.produced_by is not None:
            e = self.produced_by
            text += (f"  <- {printable(e.kind)} #{e.seq} by {printable(e.actor)} at "
                     f"{printable(e.created_at[:19])}")
        else:
            text += "  (source)"
        if self.snapshots:
            text += "  snapshots: " + ", ".join(f"#{s.seq}" for s in self.snapshots)
        return text

    def lines(self, depth: int = 0) -> list[str]:
        """The tree as text, this node first, its parents indented below."""
        head = ("    " * (depth - 1) + "└── " if depth else "") + self.label()
        return [head, *(line for p in self.parents for line in p.lines(depth + 1))]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "root": self.root,
                "produced_by": self.produced_by.to_dict() if self.produced_by else None,
                "snapshots": [s.seq for s in self.snapshots],
                "parents": [p.to_dict() for p in self.parents]}


def _matches(ref: Any, roots: frozenset[str], path: str | None) -> bool:
    if not isinstance(ref, dict) or ref.get("kind") == "manifest":
        return False
    if roots and ref.get("root") is not None:
        return ref.get("root") in roots
    return path is not None and ref.get("path") == path


def lineage(*, root: str | None = None, path: str | os.PathLike[str] | None = None,
            ledger: Ledger | str | os.PathLike[str] | None = None,
            max_depth: int = 64, data_root: str | None = None) -> LineageNode:
    """Walk back from the data with ``root`` (or at ``path``) to its sources.

    ``root`` is the ML-view root (:func:`dataset_root`), ``data_root`` the typed
    root a snapshot of the file records; entries holding either match.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.provenance import Ledger
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> led = Ledger(d / "l.db")
    >>> wine = builtin_dataset("wine")
    >>> _ = record_derivation("clean", [("builtin:wine", wine)],
    ...                       [(d / "w.csv", wine.subset(range(10)))], ledger=led)
    >>> node = lineage(path=d / "w.csv", ledger=led)
    >>> node.produced_by.kind, [p.path for p in node.parents]
    ('clean', ['builtin:wine'])
    """
    led = ledger if isinstance(ledger, Ledger) else Ledger(ledger, create=False)
    try:
        entries = led.entries()
    finally:
        if led is not ledger:
            led.close()
    abspath = str(Path(path).absolute()) if path is not None else None

    def build(root: str | None, path: str | None, depth: int, seen: frozenset[int]) -> LineageNode:
        node = LineageNode(path=path or "", root=root)
        roots = frozenset(r for r in (root, data_root if depth == 0 else None) if r)
        node.snapshots = [e for e in entries if e.kind == "snapshot" and any(
            _matches(r, roots, path) or (isinstance(r, dict) and path is not None
                                         and r.get("path") == path) for r in e.inputs)]
        producers = [e for e in entries if e.kind != "snapshot" and e.seq not in seen
                     and any(_matches(r, roots, path) for r in e.outputs)]
        if not producers or depth >= max_depth:
            return node
        node.produced_by = producer = producers[-1]
        for ref in producer.inputs:
            if isinstance(ref, dict) and (ref.get("root") or ref.get("path")):
                node.parents.append(build(ref.get("root"), ref.get("path"), depth + 1,
                                          seen | {producer.seq}))
        return node

    return build(root, abspath, 0, frozenset())
