"""File plumbing shared by every writer: atomic writes and path checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from poisonguard.errors import UsageError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "ensure_not_same"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    Nothing half-written is ever left at ``target``: on any error the temporary file
    is removed and the exception propagates.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def ensure_not_same(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Refuse to write an output over an input file."""
    s, t = Path(source), Path(target)
    if t.exists() and s.exists() and s.resolve() == t.resolve():
        raise UsageError(f"{t}: refusing to overwrite the input file")
