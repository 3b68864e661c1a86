"""A tiny progress protocol so the library can report long work without knowing the CLI."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

__all__ = ["NullProgress", "PlainProgress", "Progress"]


class Progress(Protocol):
    """Receives stage updates: ``update("training fold 2/5", done=2, total=6)``.

    Examples
    --------
    >>> class Stages:  # any object with this update method is a Progress
    ...     def __init__(self):
    ...         self.seen = []
    ...     def update(self, stage, *, done, total):
    ...         self.seen.append(stage)
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.scan import scan_dataset
    >>> stages = Stages()
    >>> _ = scan_dataset(builtin_dataset("wine"), detectors="duplicate", progress=stages)
    >>> stages.seen[-1]
    'fusing'
    """

    def update(self, stage: str, *, done: int, total: int) -> None: ...


class NullProgress:
    """Progress that shows nothing (the library default).

    Examples
    --------
    >>> NullProgress().update("fitting", done=1, total=3)  # shows nothing
    """

    def update(self, stage: str, *, done: int, total: int) -> None:
        return None


class PlainProgress:
    """Progress as plain timestamped lines (for logs, CI and pipes: no terminal needed).

    One line per new stage, ``2026-11-29 20:41:07 [2/6] training fold 2/5``, written
    to ``stream`` (stderr by default) and flushed at once. Repeated updates of the
    same stage print nothing.

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> PlainProgress(buf).update("training fold 1/5", done=0, total=6)
    >>> "[0/6] training fold 1/5" in buf.getvalue()
    True
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._last = ""

    def update(self, stage: str, *, done: int, total: int) -> None:
        if stage == self._last:
            return
        self._last = stage
        stream = self._stream if self._stream is not None else sys.stderr
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        clean = "".join(ch if ch.isprintable() else "?" for ch in stage)
        stream.write(f"{stamp} [{done}/{total}] {clean}\n")
        stream.flush()
