"""Compare a dataset with a manifest: signature, schema, and every added, removed,
modified or moved row.

Rows are matched in three passes so that one insertion reads as one added row:

1. equal content hashes (duplicates pair in order of appearance);
2. equal ids, where the data brought its own id column (a modified row keeps its id);
3. by position: an unmatched new row and an unmatched old row that sit in the same
   gap between matched rows (after the same matched old row) pair up in order and
   are reported as one modified row, with the columns whose cell fingerprints
   differ; what is left over is added or removed.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from poisonguard.data import Dataset
from poisonguard.errors import IntegrityError
from poisonguard.provenance.canonical import cell_fingerprints, columns_of, file_sha256, row_hashes
from poisonguard.provenance.keys import verify_signature_block
from poisonguard.provenance.manifest import decode_cells, manifest_body
from poisonguard.provenance.merkle import MerkleTree

__all__ = ["RowChange", "VerifyResult", "check_manifest", "match_rows", "verify_dataset"]


@dataclass(frozen=True)
class RowChange:
    """One row that differs. ``index`` is the new position, ``old_index`` the manifest's."""

    kind: str  # "added", "removed" or "modified"
    index: int | None
    old_index: int | None
    id: str | None
    old_id: str | None
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "added":
            return f"row {self.index} added (id {self.id})"
        if self.kind == "removed":
            return f"row {self.old_index} removed (id {self.old_id})"
        moved = "" if self.old_index == self.index else f" (was row {self.old_index})"
        return (f"row {self.index}{moved} modified: columns {', '.join(self.columns)} "
                f"(id {self.old_id} -> {self.id})")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "index": self.index, "old_index": self.old_index,
                "id": self.id, "old_id": self.old_id, "columns": list(self.columns)}


@dataclass
class VerifyResult:
    """What ``verify`` found. ``identical`` is the exit-0 condition (with a good signature)."""

    signature: str
    old_root: str
    new_root: str
    rows_old: int
    rows_new: int
    changes: list[RowChange] = field(default_factory=list)
    reordered: bool = False
    schema_changes: list[str] = field(default_factory=list)
    file_changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return (not self.changes and not self.reordered and not self.schema_changes
                and not self.file_changes and self.old_root == self.new_root)

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.changes)

    def lines(self, *, max_show: int = 50) -> list[str]:
        """The human report: signature, verdict, then up to ``max_show`` changes."""
        out = [f"signature: {self.signature}"]
        if self.identical:
            out.append(f"OK: {self.rows_new} rows identical, root {self.new_root}")
        else:
            out.append(f"CHANGED: {self.rows_old} -> {self.rows_new} rows; "
                       f"{self.count('added')} added, {self.count('removed')} removed, "
                       f"{self.count('modified')} modified"
                       + ("; rows reordered" if self.reordered else ""))
            out += [f"  {line}" for line in [*self.schema_changes, *self.file_changes]]
            out += [f"  {c.describe()}" for c in self.changes[:max_show]]
            if len(self.changes) > max_show:
                out.append(f"  ... and {len(self.changes) - max_show} more (--json)")
        return out + [f"note: {n}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical, "signature": self.signature,
            "old_root": self.old_root, "new_root": self.new_root,
            "rows_old": self.rows_old, "rows_new": self.rows_new,
            "added": self.count("added"), "removed": self.count("removed"),
            "modified": self.count("modified"), "reordered": self.reordered,
            "schema_changes": self.schema_changes, "file_changes": self.file_changes,
            "notes": self.notes, "changes": [c.to_dict() for c in self.changes],
        }


def check_manifest(
    manifest: dict[str, Any], *, trusted: Ed25519PublicKey | None = None,
    allow_unsigned: bool = False,
) -> tuple[str, MerkleTree]:
    """Check the signature and that the stored root matches the stored row hashes."""
    block = manifest.get("signature")
    if block is None:
        if trusted is not None or not allow_unsigned:
            raise IntegrityError("the manifest is not signed (pass --allow-unsigned to accept)")
        status = "unsigned (accepted by --allow-unsigned)"
    else:
        kid = verify_signature_block(block, manifest_body(manifest), trusted)
        status = (f"good, key {kid} (trusted)" if trusted is not None
                  else f"good, key {kid} (signer not pinned: pass --pubkey to require a key)")
    try:
        tree = MerkleTree([bytes.fromhex(h) for h in manifest["row_hashes"]])
    except (TypeError, ValueError):
        raise IntegrityError("the manifest's row hashes are malformed") from None
    if tree.root != manifest["merkle"].get("root"):
        raise IntegrityError("the manifest's Merkle root does not match its row hashes "
                             "(the manifest was edited)")
    return status, tree


def _index(keys: Sequence[str], skip: set[int] | None = None) -> dict[str, Any]:
    """key -> position (an int), or a deque of positions for repeated keys."""
    index: dict[str, Any] = {}
    for i, k in enumerate(keys):
        if skip is not None and i in skip:
            continue
        v = index.get(k)
        if v is None:
            index[k] = i
        elif isinstance(v, int):
            index[k] = deque([v, i])
        else:
            v.append(i)
    return index


def _take(index: dict[str, Any], key: str) -> int | None:
    v = index.get(key)
    if v is None:
        return None
    if isinstance(v, int):
        del index[key]
        return v
    i = int(v.popleft())
    if not v:
        del index[key]
    return i


def _gap_rank(keys: np.ndarray) -> np.ndarray:
    """The rank of each element among the elements with the same key, in order."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys)) - first
    return rank


def match_rows(
    old: Sequence[str], new: Sequence[str],
    old_ids: Sequence[str] | None = None, new_ids: Sequence[str] | None = None,
) -> tuple[dict[int, int], list[tuple[int, int]], list[int], list[int]]:
    """(new->old for equal rows, modified (old, new) pairs, removed old, added new)."""
    index = _index(old)
    equal: dict[int, int] = {}
    for j, h in enumerate(new):
        i = _take(index, h)
        if i is not None:
            equal[j] = i
    paired = dict(equal)
    if old_ids is not None and new_ids is not None:
        by_id = _index(old_ids, skip=set(equal.values()))
        for j, k in enumerate(new_ids):
            if j not in paired:
                i = _take(by_id, k)
                if i is not None:
                    paired[j] = i
    # position: the gap of a row is the old position of the last matched row before it
    old_match = np.zeros(len(old), dtype=bool)
    old_match[list(paired.values())] = True
    new_to_old = np.full(len(new), -1, dtype=np.int64)
    new_to_old[list(paired)] = list(paired.values())
    old_ff = np.maximum.accumulate(np.where(old_match, np.arange(len(old)), -1)) if len(old) \
        else np.zeros(0, dtype=np.int64)
    new_ff = np.maximum.accumulate(np.where(new_to_old >= 0, np.arange(len(new)), -1)) \
        if len(new) else np.zeros(0, dtype=np.int64)
    old_free = np.flatnonzero(~old_match)
    new_free = np.flatnonzero(new_to_old < 0)
    old_gap = np.where(old_ff[old_free] >= 0, old_free * 0 + old_ff[old_free], -1)
    last_new = new_ff[new_free]
    new_gap = np.where(last_new >= 0, new_to_old[np.maximum(last_new, 0)], -1)
    slots = dict(zip(zip(old_gap.tolist(), _gap_rank(old_gap).tolist(), strict=True),
                     old_free.tolist(), strict=True))
    modified: list[tuple[int, int]] = []
    added: list[int] = []
    for j, key in zip(new_free.tolist(), zip(new_gap.tolist(), _gap_rank(new_gap).tolist(),
                                             strict=True), strict=True):
        i = slots.pop(key, None)
        if i is None:
            added.append(j)
        else:
            modified.append((i, j))
    removed = sorted(slots.values())
    modified += [(paired[j], j) for j in paired if j not in equal]
    modified.sort(key=lambda p: p[1])
    return equal, modified, removed, added


def _default_names(columns: Sequence[str]) -> bool:
    return list(columns[:-1]) == [f"f{j}" for j in range(len(columns) - 1)]


def _schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in ("modality", "label_column", "image_shape"):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    oc, nc = list(old.get("columns", [])), list(new.get("columns", []))
    if len(oc) != len(nc):
        out.append(f"columns: {len(oc)} -> {len(nc)}")
    elif oc != nc and not (_default_names(oc) or _default_names(nc)):
        renamed = [f"{a}->{b}" for a, b in zip(oc, nc, strict=True) if a != b]
        out.append("columns renamed: " + ", ".join(renamed[:10]))
    return out


def _file_changes(manifest: dict[str, Any], dataset: Dataset, path: str | None) -> list[str]:
    old = {f["path"]: f["sha256"] for f in manifest.get("data", {}).get("files", [])}
    if not old or path is None or dataset.images is None:
        return []
    root = Path(path)
    new = {f: file_sha256(root / f) for f in json.loads(dataset.meta.get("files", "[]"))}
    out = [f"added file {f}" for f in sorted(set(new) - set(old))]
    out += [f"removed file {f}" for f in sorted(set(old) - set(new))]
    out += [f"changed file {f}" for f in sorted(set(old) & set(new)) if old[f] != new[f]]
    return out


def verify_dataset(
    dataset: Dataset, manifest: dict[str, Any], *, path: str | None = None,
    trusted: Ed25519PublicKey | None = None, allow_unsigned: bool = False,
    checked: tuple[str, MerkleTree] | None = None,
) -> VerifyResult:
    """Recompute ``dataset``'s hashes and compare them with ``manifest``.

    ``checked`` is what :func:`check_manifest` returned, when the caller ran it already.
    """
    status, tree = checked or check_manifest(manifest, trusted=trusted,
                                             allow_unsigned=allow_unsigned)
    old: list[str] = manifest["row_hashes"]
    new_arr = row_hashes(dataset)
    new: list[str] = new_arr.tolist()
    same_rows = old == new
    new_root = tree.root if same_rows else MerkleTree([bytes.fromhex(h) for h in new]).root
    schema = {"modality": dataset.modality, "columns": columns_of(dataset),
              "label_column": dataset.label_column,
              "image_shape": list(dataset.images.shape[1:]) if dataset.images is not None else None}
    old_schema = dict(manifest["schema"])
    old_schema.setdefault("image_shape", None)
    result = VerifyResult(signature=status, old_root=tree.root, new_root=new_root,
                          rows_old=len(old), rows_new=len(new),
                          schema_changes=_schema_changes(old_schema, schema),
                          file_changes=_file_changes(manifest, dataset, path))
    want = manifest.get("data", {}).get("sha256")
    if path is not None and want and same_rows:
        if Path(path).is_file() and file_sha256(path) != want:
            result.notes.append("the file's bytes differ from the snapshotted file (another "
                                "format or layout), but every row has the same values")
    if same_rows:
        return result
    old_ids = manifest.get("ids")
    assert dataset.ids is not None
    new_ids = None if old_ids is None else [str(i) for i in dataset.ids]
    equal, modified, removed, added = match_rows(old, new, old_ids, new_ids)
    olds = list(equal.values())
    result.reordered = any(b <= a for a, b in zip(olds, olds[1:], strict=False))
    old_cells, new_cells = decode_cells(manifest), cell_fingerprints(dataset)
    names = columns_of(dataset)
    comparable = old_cells.shape[1:] == new_cells.shape[1:] and len(old_cells) == len(old)

    def key(ids: Any, i: int) -> str | None:
        return None if ids is None else str(ids[i])

    changes = [RowChange("removed", None, i, None, key(old_ids, i) or old[i]) for i in removed]
    changes += [RowChange("added", j, None, str(dataset.ids[j]), None) for j in added]
    for i, j in modified:
        cols: tuple[str, ...] = ("?",)
        if comparable:
            diff = np.flatnonzero(old_cells[i] != new_cells[j])
            cols = tuple(names[c] for c in diff) or ("? (fingerprints collide)",)
        changes.append(RowChange("modified", j, i, str(dataset.ids[j]),
                                 key(old_ids, i) or old[i], cols))
    changes.sort(key=lambda c: (c.index if c.index is not None else c.old_index or 0,
                                c.kind != "removed"))
    result.changes = changes
    return result
