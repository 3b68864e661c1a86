"""File plumbing shared by every writer: atomic writes and path checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from poisonguard.errors import UsageError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_output_path",
           "ensure_not_same"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    Nothing half-written is ever left at ``target``: on any error the temporary file
    is removed and the exception propagates.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(target)
    check_output_path(target)
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
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "blob.bin"
    >>> atomic_write_bytes(target, b"PG")
    >>> target.read_bytes()
    b'PG'
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``target`` atomically (see :func:`atomic_path`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_write_text(target, "héllo")
    >>> target.read_text(encoding="utf-8")
    'héllo'
    """
    atomic_write_bytes(target, text.encode("utf-8"))


def ensure_not_same(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Refuse to write an output over an input file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> data = Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = data.write_text("a,label")
    >>> ensure_not_same(data, data.with_name("clean.csv"))  # another file: fine
    >>> ensure_not_same(data, data)
    Traceback (most recent call last):
    ...
    poisonguard.errors.UsageError: ...: refusing to overwrite the input file
    """
    s, t = Path(source), Path(target)
    if t.exists() and s.exists() and s.resolve() == t.resolve():
        raise UsageError(f"{t}: refusing to overwrite the input file")


def check_output_path(target: str | os.PathLike[str], *, folder: bool = False,
                      name: str = "the output") -> Path:
    """Refuse, before any work, an output path that cannot be written.

    ``target`` is a file to write (``folder=False``) or a folder to write into
    (``folder=True``); it must not exist as the other kind, and no existing folder
    above it may be a file. ``name`` says what the path is in the message (an option
    such as ``"--out"``). Raises :class:`~poisonguard.errors.UsageError` (one line,
    exit 2 on the command line).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> check_output_path(root / "new" / "findings.json") == root / "new" / "findings.json"
    True
    >>> check_output_path(root, folder=False)
    Traceback (most recent call last):
    ...
    poisonguard.errors.UsageError: ...: the output must be a file path (it is a folder)
    """
    path = Path(target)
    if path.is_dir() and not folder:
        raise UsageError(f"{path}: {name} must be a file path (it is a folder)")
    if path.exists() and not path.is_dir() and folder:
        raise UsageError(f"{path}: {name} must be a folder (it is a file)")
    for above in path.parents:
        if above.exists():
            if not above.is_dir():
                raise UsageError(f"{path}: cannot write there: {above} is a file, not a folder")
            break
    return path
