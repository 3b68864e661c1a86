"""Merkle subtrees of consecutive row ranges, merged into the root of the whole tree.

A *compact range* of leaves ``begin .. end - 1`` is the list of the largest perfect
subtrees (aligned, ``2**h`` leaves) that exactly cover it: at most ``2 log2 n``
hashes. Shards compute the compact range of their rows on their own; ranges of
adjacent shards merge by appending one's subtrees to the other's (siblings join);
the range ``0 .. N - 1`` folds into the RFC 6962 root of :mod:`.merkle`. Every node is
a node of the one tree over all N leaves, so the root equals
:func:`~poisonguard.provenance.merkle.root_and_path` over all row hashes, whatever
the shard sizes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from poisonguard.errors import UsageError

__all__ = ["CompactRange"]

_sha = hashlib.sha256


@dataclass
class CompactRange:
    """Perfect subtrees ``(start, height, hash)`` covering leaves ``begin .. end - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.provenance.merkle import root_and_path
    >>> rows = np.frombuffer(bytes(range(160)), dtype=np.uint8).reshape(5, 32)
    >>> left = CompactRange.of_rows(rows[:3], begin=0)
    >>> right = CompactRange.of_rows(rows[3:], begin=3)
    >>> left.extend(right).root() == root_and_path(rows)[0]
    True
    """

    begin: int
    end: int
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)

    @classmethod
    def of_rows(cls, row_hashes: object, *, begin: int) -> CompactRange:
        """The compact range of N x 32 row hashes that sit at leaves ``begin ..``."""
        view = memoryview(row_hashes)  # type: ignore[arg-type]
        data = view.cast("B") if view.ndim != 1 or view.format != "B" else view
        out = cls(begin, begin)
        for i in range(len(data) // 32):
            out._push(out.end, 0, _sha(b"\x00" + data[32 * i:32 * i + 32]).digest())
        return out

    def _push(self, start: int, height: int, digest: bytes) -> None:
        if start != self.end or start % (1 << height):
            raise UsageError(f"subtree at {start} (height {height}) does not continue the "
                             f"range ending at {self.end}")
        self.nodes.append((start, height, digest))
        self.end = start + (1 << height)
        while len(self.nodes) > 1:
            (s1, h1, d1), (_, h2, d2) = self.nodes[-2], self.nodes[-1]
            if h1 != h2 or s1 % (1 << (h1 + 1)):
                break
            self.nodes[-2:] = [(s1, h1 + 1, _sha(b"\x01" + d1 + d2).digest())]

    def extend(self, other: CompactRange) -> CompactRange:
        """Append the range that starts where this one ends (in place; returns self)."""
        if other.begin != self.end:
            raise UsageError(f"range {other.begin}.. does not follow {self.begin}..{self.end}")
        for start, height, digest in other.nodes:
            self._push(start, height, digest)
        return self

    def root(self) -> str:
        """The RFC 6962 root (hex) of the tree over leaves ``0 .. end - 1``."""
        if self.begin != 0:
            raise UsageError("the root needs the range to start at leaf 0")
        if not self.nodes:
            return _sha(b"").hexdigest()
        acc = self.nodes[-1][2]
        for _, _, digest in reversed(self.nodes[:-1]):
            acc = _sha(b"\x01" + digest + acc).digest()
        return acc.hex()
