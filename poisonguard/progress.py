"""A tiny progress protocol so the library can report long work without knowing the CLI."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullProgress", "Progress"]


class Progress(Protocol):
    """Receives stage updates: ``update("training fold 2/5", done=2, total=6)``."""

    def update(self, stage: str, *, done: int, total: int) -> None: ...


class NullProgress:
    """Progress that shows nothing (the library default)."""

    def update(self, stage: str, *, done: int, total: int) -> None:
        return None
