"""A Merkle tree in the style of RFC 6962 / RFC 9162 (Certificate Transparency).

``leaf = SHA-256(0x00 || data)`` and ``node = SHA-256(0x01 || left || right)``. The
tree over n leaves splits at the largest power of two below n; built level by level
that is the same as pairing neighbours and carrying an unpaired last node up
unchanged (no duplication, so no CVE-2012-2459 style second preimages). The empty
tree's root is ``SHA-256("")``. An inclusion proof is the audit path of RFC 6962
section 2.1.1 (at most ceil(log2 n) hashes), checked with the algorithm of RFC 9162
section 2.1.3.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from poisonguard.errors import IntegrityError, UsageError

__all__ = [
    "InclusionProof", "MerkleTree", "leaf_hash", "merkle_root", "node_hash", "root_and_path",
    "verify_inclusion",
]

_sha = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right).digest()


@dataclass(frozen=True)
class InclusionProof:
    """That the leaf ``leaf_data`` sits at ``leaf_index`` in the tree with ``root``.

    Examples
    --------
    >>> p = MerkleTree([b"a", b"b", b"c"]).proof(1, b"b")
    >>> p.leaf_index, p.tree_size, InclusionProof.from_dict(p.to_dict()) == p
    (1, 3, True)
    """

    leaf_index: int
    tree_size: int
    leaf_data: str  # hex of the leaf's data (a row hash)
    root: str
    path: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "poisonguard-inclusion-proof",
            "version": 1,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_data": self.leaf_data,
            "root": self.root,
            "path": list(self.path),
        }

    @classmethod
    def from_dict(cls, obj: Any) -> InclusionProof:
        try:
            if obj.get("format") != "poisonguard-inclusion-proof":
                raise KeyError("format")
            return cls(
                leaf_index=int(obj["leaf_index"]), tree_size=int(obj["tree_size"]),
                leaf_data=str(obj["leaf_data"]), root=str(obj["root"]),
                path=tuple(str(p) for p in obj["path"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"not an inclusion proof (bad or missing field {exc})") from None


class MerkleTree:
    """All levels of the tree over ``leaves`` (raw leaf data, e.g. 32-byte row hashes).

    Examples
    --------
    >>> tree = MerkleTree([b"a", b"b", b"c"])
    >>> tree.size, len(tree.root)
    (3, 64)
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        level = [_sha(b"\x00" + d).digest() for d in leaves]
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            pairs = zip(level[0::2], level[1::2], strict=False)
            nxt = [_sha(b"\x01" + a + b).digest() for a, b in pairs]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def size(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> str:
        if not self.levels[0]:
            return _sha(b"").hexdigest()
        return self.levels[-1][0].hex()

    def audit_path(self, index: int) -> list[bytes]:
        if not 0 <= index < self.size:
            raise UsageError(f"row {index} is out of range (the tree has {self.size} rows)")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path

    def proof(self, index: int, leaf_data: bytes) -> InclusionProof:
        return InclusionProof(
            leaf_index=index, tree_size=self.size, leaf_data=leaf_data.hex(),
            root=self.root, path=tuple(p.hex() for p in self.audit_path(index)),
        )


def merkle_root(leaves: Sequence[bytes]) -> str:
    """Hex root of the tree over ``leaves``."""
    return MerkleTree(leaves).root


def _level_up(level: bytes | bytearray, count: int) -> bytearray:
    out = bytearray(32 * ((count + 1) // 2))
    for i in range(count // 2):
        out[32 * i:32 * i + 32] = _sha(b"\x01" + level[64 * i:64 * i + 64]).digest()
    if count % 2:
        out[-32:] = level[32 * (count - 1):]
    return out


def root_and_path(leaf_data: Any, index: int | None = None) -> tuple[str, list[bytes]]:
    """The root over an N x 32 array of leaf data (row hashes), and the audit path of
    leaf ``index`` (empty when None), computed level by level in O(N) memory.

    Examples
    --------
    >>> import numpy as np
    >>> leaves = np.frombuffer(bytes(range(64)), dtype=np.uint8).reshape(2, 32)
    >>> root_and_path(leaves)[0] == merkle_root([bytes(range(32)), bytes(range(32, 64))])
    True
    """
    view = memoryview(leaf_data)
    if view.nbytes == 0:
        return _sha(b"").hexdigest(), []
    data = view.cast("B") if view.ndim != 1 or view.format != "B" else view
    count = len(data) // 32
    level = bytearray(32 * count)
    for i in range(count):
        level[32 * i:32 * i + 32] = _sha(b"\x00" + data[32 * i:32 * i + 32]).digest()
    cur: bytes | bytearray = level
    path: list[bytes] = []
    while count > 1:
        if index is not None:
            sibling = index ^ 1
            if sibling < count:
                path.append(bytes(cur[32 * sibling:32 * sibling + 32]))
            index >>= 1
        cur, count = _level_up(cur, count), (count + 1) // 2
    return bytes(cur[:32]).hex(), path


def verify_inclusion(proof: InclusionProof, root: str | None = None) -> bool:
    """RFC 9162 2.1.3.2: does the proof lead from its leaf to ``root`` (default its own)?

    Examples
    --------
    >>> tree = MerkleTree([b"a", b"b", b"c"])
    >>> verify_inclusion(tree.proof(1, b"b")), verify_inclusion(tree.proof(1, b"x"), tree.root)
    (True, False)
    """
    expected = proof.root if root is None else root
    if not 0 <= proof.leaf_index < proof.tree_size:
        return False
    try:
        r = leaf_hash(bytes.fromhex(proof.leaf_data))
        path = [bytes.fromhex(p) for p in proof.path]
    except ValueError:
        return False
    fn, sn = proof.leaf_index, proof.tree_size - 1
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == expected.lower()
