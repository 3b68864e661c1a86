"""Compact content row ids: SHA-256 digests kept as 32 bytes a row, read as hex.

A million content ids as Python strings take about 121 bytes a row (a 64-character
``str`` object and its pointer): 0.6x a 50-column float32 table. :class:`RowIds` keeps
the raw digests (N x 32 uint8) and turns a row into its 64-character lowercase hex
string only when it is read, so every reader still sees the same strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

__all__ = ["DIGEST_BYTES", "DigestWriter", "RowIds"]

DIGEST_BYTES = 32
_HEX = 2 * DIGEST_BYTES
#: Rows turned into strings at a time when iterating.
_ITER_ROWS = 65_536


def _hex_rows(digests: np.ndarray) -> list[str]:
    text = digests.tobytes().hex()
    return [text[i:i + _HEX] for i in range(0, len(text), _HEX)]


class RowIds(Sequence[str]):
    """Row ids stored as N x 32 uint8 digests, read as 64-character hex strings.

    Indexing with an integer gives a ``str``; with a slice, an integer array or a
    boolean mask it gives a :class:`RowIds` of those rows. ``np.asarray(ids)`` and
    :meth:`tolist` give the strings (an object array or a list).

    Examples
    --------
    >>> import hashlib
    >>> digests = [hashlib.sha256(t).digest() for t in (b"a", b"b")]
    >>> ids = RowIds.from_digests(digests)
    >>> len(ids), ids[0] == hashlib.sha256(b"a").hexdigest(), ids[[1]].tolist() == [ids[1]]
    (2, True, True)
    >>> np.asarray(ids).dtype, ids.nbytes
    (dtype('O'), 64)
    """

    __slots__ = ("_digests",)

    def __init__(self, digests: np.ndarray) -> None:
        digests = np.asarray(digests)
        if digests.dtype != np.uint8 or digests.ndim != 2 or digests.shape[1] != DIGEST_BYTES:
            raise ValueError(f"digests must be N x {DIGEST_BYTES} uint8")
        digests.flags.writeable = False
        self._digests = digests

    @classmethod
    def from_digests(cls, digests: Sequence[bytes]) -> RowIds:
        """Ids from raw 32-byte digests (``hashlib.sha256(...).digest()``)."""
        buffer = b"".join(digests)
        if len(buffer) != DIGEST_BYTES * len(digests):
            raise ValueError(f"every digest must be {DIGEST_BYTES} bytes")
        flat = np.frombuffer(buffer, dtype=np.uint8)
        return cls(flat.reshape(len(digests), DIGEST_BYTES))

    @classmethod
    def concatenate(cls, parts: Sequence[RowIds]) -> RowIds:
        """The ids of ``parts`` one after the other."""
        return cls(np.concatenate([p.digests for p in parts]) if parts
                   else np.zeros((0, DIGEST_BYTES), dtype=np.uint8))

    @property
    def digests(self) -> np.ndarray:
        """The N x 32 uint8 digests (read-only)."""
        return self._digests

    @property
    def shape(self) -> tuple[int]:
        return (len(self._digests),)

    @property
    def nbytes(self) -> int:
        """Bytes held by the digests."""
        return int(self._digests.nbytes)

    def __len__(self) -> int:
        return len(self._digests)

    @overload
    def __getitem__(self, key: int | np.integer[Any]) -> str: ...

    @overload
    def __getitem__(self, key: slice | np.ndarray | Sequence[int]) -> RowIds: ...

    def __getitem__(self, key: Any) -> str | RowIds:
        if isinstance(key, (int, np.integer)):
            return self._digests[key].tobytes().hex()
        return RowIds(np.ascontiguousarray(self._digests[np.asarray(key)
                                                         if not isinstance(key, slice)
                                                         else key]))

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), _ITER_ROWS):  # a block's strings at a time
            yield from _hex_rows(self._digests[start:start + _ITER_ROWS])

    def tolist(self) -> list[str]:
        """The ids as a list of hex strings."""
        return _hex_rows(self._digests)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = np.empty(len(self), dtype=object)
        out[:] = self.tolist()
        return out if dtype is None else out.astype(dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowIds):
            return np.array_equal(self._digests, other._digests)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(i) for i in self[:2]) + (", ..." if len(self) > 2 else "")
        return f"RowIds([{head}], n={len(self)})"


class DigestWriter:
    """Collects ``n`` digests in place (32 bytes each, no per-row objects kept).

    Examples
    --------
    >>> import hashlib
    >>> out = DigestWriter(2)
    >>> out[1] = hashlib.sha256(b"b").digest()
    >>> out[0] = hashlib.sha256(b"a").digest()
    >>> out.ids()[1] == hashlib.sha256(b"b").hexdigest()
    True
    """

    __slots__ = ("_buffer",)

    def __init__(self, n: int) -> None:
        self._buffer = bytearray(DIGEST_BYTES * n)

    def __setitem__(self, i: int, digest: bytes) -> None:
        if len(digest) != DIGEST_BYTES:
            raise ValueError(f"a digest is {DIGEST_BYTES} bytes")
        self._buffer[DIGEST_BYTES * i:DIGEST_BYTES * (i + 1)] = digest

    def ids(self) -> RowIds:
        """The digests written so far, as :class:`RowIds` (sharing this buffer)."""
        flat = np.frombuffer(self._buffer, dtype=np.uint8)
        return RowIds(flat.reshape(-1, DIGEST_BYTES))
