"""Stored files: datasets and job results under the service home, encrypted at rest
when a data key is configured (AES-256-GCM, :mod:`poisonguard.provenance.crypto_at_rest`).

Layout: ``datasets/<id><suffix>[.enc]``, ``results/<job id>/<name>[.enc]`` and a
private ``tmp/`` (mode 0700) for uploads in flight and for the plaintext copy a
job reads while it runs (removed as soon as it is loaded).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from poisonguard.data import Dataset, atomic_write_bytes
from poisonguard.datasets import open_dataset
from poisonguard.errors import IntegrityError, UsageError
from poisonguard.provenance.crypto_at_rest import decrypt, encrypt

__all__ = ["FileStore"]

_ID = re.compile(r"^[0-9a-f]{16,32}$")
_RESULT = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class FileStore:
    """Datasets and results on local disk; ``data_key`` (32 bytes) encrypts them.

    Examples
    --------
    >>> import tempfile
    >>> plain = FileStore(tempfile.mkdtemp())
    >>> plain.put_result("0123456789abcdef", "findings.json", b'{"flagged": []}')
    >>> plain.get_result("0123456789abcdef", "findings.json")
    b'{"flagged": []}'
    >>> oct(plain.results.stat().st_mode & 0o777)  # folders private to the service's user
    '0o700'
    >>> sealed = FileStore(tempfile.mkdtemp(), data_key=os.urandom(32))  # AES-256-GCM at rest
    >>> sealed.put_result("0123456789abcdef", "findings.json", b'{"flagged": []}')
    >>> path = sealed.result_path("0123456789abcdef", "findings.json")
    >>> path.name, b"flagged" in path.read_bytes()
    ('findings.json.enc', False)
    >>> sealed.get_result("0123456789abcdef", "findings.json")
    b'{"flagged": []}'
    """

    def __init__(self, root: str | os.PathLike[str], data_key: bytes | None = None) -> None:
        self.root = _private_dir(Path(root))
        self.data_key = data_key
        self.tmp = _private_dir(self.root / "tmp")
        self.datasets = _private_dir(self.root / "datasets")
        self.results = _private_dir(self.root / "results")

    @property
    def encrypted(self) -> bool:
        return self.data_key is not None

    def _seal(self, data: bytes) -> bytes:
        return encrypt(data, self.data_key) if self.data_key is not None else data

    def _open(self, data: bytes, where: str) -> bytes:
        return decrypt(data, self.data_key, where=where)

    def dataset_path(self, dataset_id: str, suffix: str) -> Path:
        if not _ID.match(dataset_id):
            raise UsageError("bad dataset id")
        return self.datasets / (dataset_id + suffix + (".enc" if self.encrypted else ""))

    def keep_dataset(self, upload: Path, dataset_id: str, suffix: str) -> Path:
        """Move a received upload into the store (encrypting it when configured)."""
        target = self.dataset_path(dataset_id, suffix)
        if self.data_key is None:
            os.replace(upload, target)
        else:
            atomic_write_bytes(target, self._seal(upload.read_bytes()))
            upload.unlink()
        os.chmod(target, 0o600)
        return target

    def drop_dataset(self, dataset_id: str, suffix: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.dataset_path(dataset_id, suffix).unlink()

    @contextlib.contextmanager
    def plain_copy(self, stored: Path, suffix: str) -> Iterator[Path]:
        """A plaintext path to read ``stored`` from, removed on exit."""
        if not stored.name.endswith(".enc"):
            yield stored
            return
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self.tmp)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(self._open(stored.read_bytes(), f"dataset {stored.stem}"))
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def load(self, stored: Path, suffix: str, *, label: str, id_column: str | None,
             name: str) -> Dataset:
        """Load a stored dataset; errors name ``name`` (the uploaded file), not the path."""
        with self.plain_copy(stored, suffix) as plain:
            ds = open_dataset(plain, label=label, id_column=id_column)
        return ds.replace(source=name)

    def put_result(self, job_id: str, name: str, data: bytes) -> None:
        atomic_write_bytes(self.result_path(job_id, name), self._seal(data))

    def get_result(self, job_id: str, name: str) -> bytes:
        path = self.result_path(job_id, name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"result {name} of job {job_id} is missing") from None
        return self._open(raw, f"result {name}")

    def has_result(self, job_id: str, name: str) -> bool:
        return self.result_path(job_id, name).exists()

    def result_path(self, job_id: str, name: str) -> Path:
        """Where result ``name`` of a job is kept (``.enc`` when encrypted)."""
        if not _ID.match(job_id) or not _RESULT.match(name):
            raise UsageError("bad result name")
        folder = _private_dir(self.results / job_id)
        return folder / (name + (".enc" if self.encrypted else ""))
