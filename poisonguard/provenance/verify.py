"""Compare a data file with a manifest: signature, schema, and every added, removed,
modified or moved row.

Rows are matched by their typed row hashes in three passes, so that one insertion
reads as one added row:

1. equal hashes pair up (duplicates in order of appearance); among them, the rows
   outside a longest run kept in order are **moved** (named old -> new position);
2. an unmatched new row and an unmatched old row in the same gap between matched
   rows (after the same matched old row) pair up in order as one **modified** row,
   with the columns whose fingerprints differ when the signer's key is given;
3. the rest are **added** or **removed**.

Everything is computed on arrays of 32-byte hashes, in memory proportional to the
row count; the data file is streamed in batches.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poisonguard.errors import IntegrityError
from poisonguard.provenance.canonical import file_sha256
from poisonguard.provenance.manifest import Manifest, manifest_body, open_cells
from poisonguard.provenance.merkle import root_and_path
from poisonguard.provenance.snapshot import hash_source
from poisonguard.provenance.text import printable
from poisonguard.provenance.trust import SignaturePolicy
from poisonguard.provenance.typed import InputLimits, TypedSource, open_typed

__all__ = ["RowChange", "VerifyResult", "check_manifest", "match_rows", "verify_file"]


@dataclass(frozen=True)
class RowChange:
    """One row that differs. ``index`` is the new position, ``old_index`` the manifest's.

    Examples
    --------
    >>> RowChange(kind="modified", index=1, old_index=1).kind
    'modified'
    """

    kind: str  # "added", "removed", "modified" or "moved"
    index: int | None
    old_index: int | None
    id: str | None = None
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line of text, with every value from the data escaped."""
        ident = f" (id {printable(self.id)})" if self.id is not None else ""
        if self.kind == "added":
            return f"row {self.index} added{ident}"
        if self.kind == "removed":
            return f"row {self.old_index} removed"
        if self.kind == "moved":
            return f"row {self.old_index} -> {self.index} moved{ident}"
        moved = "" if self.old_index == self.index else f" (was row {self.old_index})"
        cols = ", ".join(printable(c) for c in self.columns) if self.columns else \
            "unknown (give the signer's --key to name them)"
        return f"row {self.index}{moved} modified{ident}: columns {cols}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "index": self.index, "old_index": self.old_index,
                "id": self.id, "columns": list(self.columns)}


@dataclass
class VerifyResult:
    """What ``verify`` found. ``identical`` is the exit-0 condition (with a good signature).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import build_manifest, verify_file
    >>> from poisonguard.provenance.trust import SignaturePolicy
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n2,b\\n")
    >>> m = build_manifest(p)
    >>> _ = p.write_text("x,label\\n1,a\\n9,b\\n")
    >>> r = verify_file(p, m, policy=SignaturePolicy(allow_unsigned=True))
    >>> r.identical, r.rows_old, r.rows_new
    (False, 2, 2)
    """

    signature: str
    old_root: str
    new_root: str
    rows_old: int
    rows_new: int
    changes: list[RowChange] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reordered(self) -> bool:
        return any(c.kind == "moved" for c in self.changes)

    @property
    def identical(self) -> bool:
        return not self.changes and not self.schema_changes and self.old_root == self.new_root

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
                       f"{self.count('modified')} modified, {self.count('moved')} moved")
            out += [f"  {printable(line)}" for line in self.schema_changes]
            out += [f"  {c.describe()}" for c in self.changes[:max_show]]
            if len(self.changes) > max_show:
                out.append(f"  ... and {len(self.changes) - max_show} more (--json)")
        return out + [f"note: {printable(n)}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical, "signature": self.signature,
            "old_root": self.old_root, "new_root": self.new_root,
            "rows_old": self.rows_old, "rows_new": self.rows_new,
            "added": self.count("added"), "removed": self.count("removed"),
            "modified": self.count("modified"), "moved": self.count("moved"),
            "reordered": self.reordered, "schema_changes": self.schema_changes,
            "notes": self.notes, "changes": [c.to_dict() for c in self.changes],
        }


def check_manifest(manifest: Manifest, policy: SignaturePolicy) -> str:
    """Check the signature (under ``policy``) and that the root matches the row hashes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import build_manifest, sign_manifest
    >>> from poisonguard.provenance.keys import Ed25519PrivateKey
    >>> from poisonguard.provenance.trust import SignaturePolicy
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n2,b\\n")
    >>> key = Ed25519PrivateKey.generate()
    >>> check_manifest(sign_manifest(build_manifest(p), key),
    ...                SignaturePolicy(pinned=key.public_key()))
    '...'
    """
    status = policy.check(manifest.signature, manifest_body(manifest.header),
                          what="the manifest")
    root, _ = root_and_path(manifest.row_hashes)
    if root != manifest.root or manifest.header["merkle"].get("size") != manifest.rows:
        raise IntegrityError("the manifest's Merkle root does not match its row hashes "
                             "(the manifest was edited)")
    return status


def _group_ids(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """One id per distinct 32-byte hash over old then new rows."""
    both = np.concatenate([old, new]) if len(old) or len(new) else np.zeros((0, 32), np.uint8)
    words = both.view(">u8").reshape(len(both), 4)
    order = np.lexsort(words.T[::-1])
    sorted_words = words[order]
    starts = np.r_[True, np.any(sorted_words[1:] != sorted_words[:-1], axis=1)]
    ids = np.empty(len(both), dtype=np.int64)
    ids[order] = np.cumsum(starts) - 1
    return ids


def _rank(keys: np.ndarray) -> np.ndarray:
    """The rank of each element among the elements with the same key, in order."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys)) - first
    return rank


def _pair(old_keys: np.ndarray, new_keys: np.ndarray) -> np.ndarray:
    """For each new key, the position of the equal old key (keys unique per side), or -1."""
    out = np.full(len(new_keys), -1, dtype=np.int64)
    if not len(old_keys) or not len(new_keys):
        return out
    order = np.argsort(old_keys, kind="stable")
    pos = np.searchsorted(old_keys[order], new_keys)
    pos = np.minimum(pos, len(order) - 1)
    hit = old_keys[order][pos] == new_keys
    out[hit] = order[pos[hit]]
    return out


def match_rows(old: np.ndarray, new: np.ndarray) -> tuple[
        np.ndarray, list[tuple[int, int]], list[int], list[int], list[tuple[int, int]]]:
    """(new->old for equal rows or -1, modified (old, new), removed, added, moved (old, new)).

    Examples
    --------
    >>> h = np.eye(3, 32, dtype=np.uint8)
    >>> match_rows(h, h[[1, 0, 2]])[4]
    [(1, 0)]
    """
    n_old, n_new = len(old), len(new)
    ids = _group_ids(old, new)
    span = np.int64(n_old + n_new + 1)
    old_key = ids[:n_old] * span + _rank(ids[:n_old])
    new_key = ids[n_old:] * span + _rank(ids[n_old:])
    equal = _pair(old_key, new_key)
    old_match = np.zeros(n_old, dtype=bool)
    old_match[equal[equal >= 0]] = True
    # pass 2: pair leftovers within the same gap (after the same matched old row)
    old_ff = np.maximum.accumulate(np.where(old_match, np.arange(n_old), -1)) if n_old \
        else np.zeros(0, dtype=np.int64)
    new_ff = np.maximum.accumulate(np.where(equal >= 0, np.arange(n_new), -1)) if n_new \
        else np.zeros(0, dtype=np.int64)
    old_free = np.flatnonzero(~old_match)
    new_free = np.flatnonzero(equal < 0)
    old_gap = old_ff[old_free] if len(old_free) else np.zeros(0, dtype=np.int64)
    last_new = new_ff[new_free] if len(new_free) else np.zeros(0, dtype=np.int64)
    new_gap = np.where(last_new >= 0, equal[np.maximum(last_new, 0)] if n_new else last_new, -1)
    gap_old_key = (old_gap + 1) * span + _rank(old_gap)
    gap_new_key = (new_gap + 1) * span + _rank(new_gap)
    paired = _pair(gap_old_key, gap_new_key)
    modified = [(int(old_free[p]), int(j)) for j, p in zip(new_free, paired, strict=True)
                if p >= 0]
    added = [int(j) for j, p in zip(new_free, paired, strict=True) if p < 0]
    used = np.zeros(len(old_free), dtype=bool)
    used[paired[paired >= 0]] = True
    removed = old_free[~used].tolist()
    return equal, modified, removed, added, _moved(equal)


def _moved(equal: np.ndarray) -> list[tuple[int, int]]:
    """Equal rows outside a longest increasing run of old positions: (old, new)."""
    new_idx = np.flatnonzero(equal >= 0)
    seq = equal[new_idx]
    if len(seq) < 2 or bool(np.all(seq[1:] > seq[:-1])):
        return []
    tails: list[int] = []
    tail_at: list[int] = []
    parent = np.full(len(seq), -1, dtype=np.int64)
    for k, v in enumerate(seq.tolist()):
        i = bisect.bisect_left(tails, v)
        if i == len(tails):
            tails.append(v)
            tail_at.append(k)
        else:
            tails[i] = v
            tail_at[i] = k
        parent[k] = tail_at[i - 1] if i else -1
    keep = np.zeros(len(seq), dtype=bool)
    k = tail_at[-1]
    while k >= 0:
        keep[k] = True
        k = int(parent[k])
    return [(int(seq[k]), int(new_idx[k])) for k in np.flatnonzero(~keep)]


def _schema_changes(old: dict[str, Any], new: list[dict[str, str]]) -> list[str]:
    before = [(c.get("name"), c.get("type")) for c in old.get("columns", [])]
    after = [(c["name"], c["type"]) for c in new]
    if before == after:
        return []
    out = []
    old_types, new_types = dict(before), dict(after)
    for name, kind in after:
        if name not in old_types:
            out.append(f"column {name!r} added ({kind})")
        elif old_types[name] != kind:
            out.append(f"column {name!r}: type {old_types[name]} -> {kind}")
    out += [f"column {name!r} removed" for name, _ in before if name not in new_types]
    if not out:
        out.append("columns reordered: " + ", ".join(repr(n) for n, _ in after))
    return out


def _ids_of(source: TypedSource, id_column: str, wanted: set[int]) -> dict[int, str]:
    """The id column's values of the rows in ``wanted`` (a second, streaming pass)."""
    j = [c.name for c in source.columns].index(id_column)
    out: dict[int, str] = {}
    start = 0
    for batch in source.batches():
        n = len(batch[j])
        hits = [i for i in wanted if start <= i < start + n]
        for i in hits:
            out[i] = str(batch[j][i - start].as_py())
        start += n
    return out


def verify_file(
    path: str | os.PathLike[str], manifest: Manifest, *, policy: SignaturePolicy,
    key: Ed25519PrivateKey | None = None, limits: InputLimits | None = None,
    status: str | None = None,
) -> VerifyResult:
    """Stream the data at ``path`` and compare it with ``manifest``.

    ``key`` (the signer's private key) opens the cell fingerprints to name changed
    columns; ``status`` is what :func:`check_manifest` returned, if already run.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance.snapshot import build_manifest
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n")
    >>> policy = SignaturePolicy(allow_unsigned=True)
    >>> verify_file(p, build_manifest(p), policy=policy).identical
    True
    """
    status = status or check_manifest(manifest, policy)
    source = open_typed(path, limits=limits)
    old_cells = open_cells(manifest, key) if key is not None else None
    new, new_cells = hash_source(source, limits=limits, fingerprints=old_cells is not None)
    old = manifest.row_hashes
    same_rows = old.shape == new.shape and bool(np.array_equal(old, new))
    new_root = manifest.root if same_rows else root_and_path(new)[0]
    schema = manifest.header["schema"]
    result = VerifyResult(signature=status, old_root=manifest.root, new_root=new_root,
                          rows_old=len(old), rows_new=len(new),
                          schema_changes=_schema_changes(schema,
                                                         [c.to_dict() for c in source.columns]))
    want = manifest.header.get("data", {}).get("sha256")
    if same_rows and want and Path(path).is_file() and file_sha256(Path(path)) != want:
        result.notes.append("the file's bytes differ from the snapshotted file (another "
                            "format or layout), but every typed cell is the same")
    if same_rows:
        return result
    _equal, modified, removed, added, moved = match_rows(old, new)
    names = [c.name for c in source.columns]
    comparable = (old_cells is not None and new_cells is not None
                  and old_cells.shape[1:] == new_cells.shape[1:])
    id_column = schema.get("id_column") or ("path" if source.format == "folder" else None)
    ids: dict[int, str] = {}
    if id_column in names:
        ids = _ids_of(source, id_column, {j for _, j in modified + moved} | set(added))
    changes = [RowChange("removed", None, i) for i in removed]
    changes += [RowChange("added", j, None, ids.get(j)) for j in added]
    changes += [RowChange("moved", j, i, ids.get(j)) for i, j in moved]
    for i, j in modified:
        cols: tuple[str, ...] = ()
        if comparable and old_cells is not None and new_cells is not None:
            diff = np.flatnonzero(old_cells[i] != new_cells[j])
            cols = tuple(names[c] for c in diff) or ("? (fingerprints collide)",)
        changes.append(RowChange("modified", j, i, ids.get(j), cols))
    changes.sort(key=lambda c: (c.index if c.index is not None else c.old_index or 0,
                                c.kind != "removed"))
    result.changes = changes
    return result
