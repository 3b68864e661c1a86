"""One scan's memo: work that several parts of a scan share, forgotten when it ends.

Parts of one scan ask for the same things: the label, knn and duplicate detectors
the neighbours of the same features, ``trigger`` and ``cleanlabel`` the same item
mining and principal axes, every detector that reads it the MLP's deferred embedding
(:meth:`~poisonguard.represent.Representation.with_embedding`), the representation
and the token detector the sentence vectors of the same texts
(:func:`~poisonguard.represent.text.embed_texts`). :func:`scan_memo` opens a memo
for the duration of a scan (:func:`poisonguard.scan.scan_dataset` does); inside it,
:func:`remember` computes a result once and returns it again to a later caller
asking under the same name and key. When the scan ends the memo is emptied, so no
array outlives the scan (a service runs many users' scans in one process), unless
the caller opened the memo around several scans and so owns it. Outside a memo
nothing is memoised: every call computes.

It sits below ``represent/`` and ``detect/`` (both use it) and imports nothing of
the package. The memo lives in a context variable: each thread and each asyncio
task sees its own scan's memo, never another's.

Keys are the caller's: a :func:`content_key` (a digest of the values, for arrays
that reach the callers as different objects) or an identity key (``id(x)`` plus the
array kept in the value and compared with ``is``, for large arrays that would cost a
pass to hash).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np

__all__ = ["ScanMemo", "content_key", "current_memo", "remember", "scan_memo"]

_T = TypeVar("_T")


class ScanMemo:
    """Results by name and key; each name keeps its ``keep`` most recently used.

    Examples
    --------
    >>> memo = ScanMemo()
    >>> memo.put("square", 3, 9)
    >>> memo.get("square", 3), memo.get("square", 4)
    (9, None)
    >>> len(memo)
    1
    """

    def __init__(self) -> None:
        self._names: dict[str, OrderedDict[Hashable, Any]] = {}

    def get(self, name: str, key: Hashable) -> Any | None:
        """The result stored under ``name`` and ``key`` (now the most recent), or None."""
        entries = self._names.get(name)
        if entries is None or key not in entries:
            return None
        entries.move_to_end(key)
        return entries[key]

    def put(self, name: str, key: Hashable, value: Any, *, keep: int = 1) -> None:
        """Store ``value``; the least recently used results of ``name`` beyond ``keep`` go."""
        entries = self._names.setdefault(name, OrderedDict())
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > keep:
            entries.popitem(last=False)

    def held(self, name: str) -> int:
        """How many results are stored under ``name`` (0 when none): what was computed
        and is still kept, read without touching the recency order.

        Examples
        --------
        >>> memo = ScanMemo()
        >>> memo.put("neighbours", 1, "lists")
        >>> memo.held("neighbours"), memo.held("embedding")
        (1, 0)
        """
        return len(self._names.get(name, ()))

    def forget(self, name: str) -> None:
        """Forget the results of ``name`` (e.g. the neighbours, once no detector left in
        the scan reads them).

        Examples
        --------
        >>> memo = ScanMemo()
        >>> memo.put("neighbours", 1, "lists")
        >>> memo.forget("neighbours")
        >>> memo.get("neighbours", 1) is None
        True
        """
        self._names.pop(name, None)

    def clear(self) -> None:
        """Forget every result."""
        self._names.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._names.values())


_CURRENT: ContextVar[ScanMemo | None] = ContextVar("scan_memo", default=None)


def current_memo() -> ScanMemo | None:
    """The memo of the scan running in this context, or None outside a scan."""
    return _CURRENT.get()


@contextlib.contextmanager
def scan_memo() -> Iterator[ScanMemo]:
    """Open a fresh memo for the block (a scan); it is emptied when the block ends.

    Inside a block that already has one, the block joins it: a caller that runs
    several scans of related data (a benchmark's clean and poisoned copies) owns their
    shared work by opening the memo around them, and the outermost block empties it.

    Examples
    --------
    >>> with scan_memo() as memo:
    ...     remember("answer", "k", lambda: 42), len(memo)
    (42, 1)
    >>> len(memo), current_memo() is None
    (0, True)
    >>> with scan_memo() as outer:
    ...     with scan_memo() as inner:  # a scan inside the caller's block
    ...         _ = remember("answer", "k", lambda: 42)
    ...     inner is outer, len(outer)
    (True, 1)
    """
    joined = _CURRENT.get()
    if joined is not None:
        yield joined
        return
    memo = ScanMemo()
    token = _CURRENT.set(memo)
    try:
        yield memo
    finally:
        _CURRENT.reset(token)
        memo.clear()


def remember(name: str, key: Hashable, compute: Callable[[], _T], *, keep: int = 1) -> _T:
    """``compute()``, or the result an earlier call of this scan stored under
    ``name`` and ``key``. Outside a scan: ``compute()`` every time.

    Examples
    --------
    >>> calls = []
    >>> with scan_memo():
    ...     [remember("n", 1, lambda: calls.append(1) or len(calls)) for _ in range(3)]
    [1, 1, 1]
    """
    memo = _CURRENT.get()
    if memo is None:
        return compute()
    hit = memo.get(name, key)
    if hit is not None:
        return hit[0]
    value = compute()
    memo.put(name, key, (value,), keep=keep)  # boxed: a result of None is remembered too
    return value


def content_key(arrays: tuple[np.ndarray, ...], params: tuple[object, ...] = ()) -> str:
    """A BLAKE2 digest of the arrays' shapes, dtypes and bytes, plus ``repr(params)``:
    equal for equal values, whatever objects hold them.

    Examples
    --------
    >>> a = np.arange(3)
    >>> content_key((a,), (1,)) == content_key((a.copy(),), (1,)) != content_key((a,), (2,))
    True
    """
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.data)
    return h.hexdigest() + repr(params)
