"""Receive uploads: streamed to a private temporary file, counted, hashed, capped.

Two shapes arrive: a raw body (the API: ``PUT``-style, file name in the query) and
``multipart/form-data`` with one file part (the dashboard's form). Either way the
bytes go to disk as they come, the upload is refused the moment it passes the size
limit, and on any refusal the temporary file is removed: nothing is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["ALLOWED_SUFFIXES", "Received", "UploadRefused", "check_name", "receive_body",
           "receive_form"]

ALLOWED_SUFFIXES = (".csv", ".parquet", ".npz", ".jsonl")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
_MAX_FIELDS, _MAX_FIELD_BYTES = 16, 4096


class UploadRefused(Exception):
    """An upload that is not accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_name(name: str) -> str:
    """The file's suffix, after refusing names that could point anywhere but here.

    Refused: path separators, ``..``, leading dots, control characters, anything but
    letters, digits, ``._ -``, and suffixes other than :data:`ALLOWED_SUFFIXES`.

    Examples
    --------
    >>> check_name("train.csv")
    '.csv'
    """
    if not _NAME.match(name) or ".." in name:
        raise UploadRefused(422, "bad file name: use letters, digits, '.', '_', '-' and "
                                 "spaces, with no path")
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise UploadRefused(415, f"unsupported file type {suffix or '(none)'!r} (expected "
                                 f"{', '.join(ALLOWED_SUFFIXES)})")
    return suffix


@dataclass
class Received:
    """A fully received upload, in a private temporary file."""

    path: Path
    name: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class _Sink:
    """Writes bytes to a new 0600 temporary file, refusing past ``limit``."""

    def __init__(self, tmp_dir: Path, suffix: str, limit: int) -> None:
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=tmp_dir)
        self.path = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self.limit, self.size, self.hash = limit, 0, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise UploadRefused(413, f"upload larger than the limit of {self.limit:,} bytes")
        self.hash.update(data)
        self.file.write(data)

    def fail(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def receive_body(chunks: AsyncIterator[bytes], name: str, *, tmp_dir: Path,
                       limit: int, declared: int | None) -> Received:
    """Stream a raw request body to a temporary file."""
    suffix = check_name(name)
    if declared is not None and declared > limit:
        raise UploadRefused(413, f"upload larger than the limit of {limit:,} bytes")
    sink = _Sink(tmp_dir, suffix, limit)
    try:
        async for chunk in chunks:
            sink.write(chunk)
        sink.file.close()
    except BaseException:
        sink.fail()
        raise
    if sink.size == 0:
        sink.fail()
        raise UploadRefused(422, "the upload is empty")
    return Received(sink.path, name, sink.size, sink.hash.hexdigest())


class _Form:
    """Callbacks of the multipart parser: small text fields, and one file part."""

    def __init__(self, tmp_dir: Path, limit: int) -> None:
        self.tmp_dir, self.limit = tmp_dir, limit
        self.fields: dict[str, str] = {}
        self.sink: _Sink | None = None
        self.file_name: str | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""
        self._part_name: str | None = None
        self._buffer: bytearray | None = None

    def on_part_begin(self) -> None:
        self._headers, self._part_name, self._buffer = {}, None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if self.sink is not None:
                raise UploadRefused(422, "one file per upload")
            self.file_name = options[b"filename"].decode("utf-8", "replace")
            self.sink = _Sink(self.tmp_dir, check_name(self.file_name), self.limit)
        else:
            if len(self.fields) >= _MAX_FIELDS:
                raise UploadRefused(422, "too many form fields")
            self._part_name, self._buffer = name, bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._buffer is not None:
            self._buffer += data[start:end]
            if len(self._buffer) > _MAX_FIELD_BYTES:
                raise UploadRefused(422, "a form field is too long")
        elif self.sink is not None:
            self.sink.write(data[start:end])

    def on_part_end(self) -> None:
        if self._buffer is not None and self._part_name is not None:
            self.fields[self._part_name] = self._buffer.decode("utf-8", "replace")
        self._buffer = None


async def receive_form(chunks: AsyncIterator[bytes], content_type: str, *, tmp_dir: Path,
                       limit: int, declared: int | None) -> Received:
    """Stream a ``multipart/form-data`` body with exactly one file part."""
    if declared is not None and declared > limit + 64 * 1024:
        raise UploadRefused(413, f"upload larger than the limit of {limit:,} bytes")
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadRefused(422, "malformed multipart body (no boundary)")
    form = _Form(tmp_dir, limit)
    parser = MultipartParser(boundary, {
        "on_part_begin": form.on_part_begin, "on_part_data": form.on_part_data,
        "on_part_end": form.on_part_end, "on_header_field": form.on_header_field,
        "on_header_value": form.on_header_value, "on_header_end": form.on_header_end,
        "on_headers_finished": form.on_headers_finished})
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        if form.sink is not None:
            form.sink.fail()
        if isinstance(exc, UploadRefused):
            raise
        if isinstance(exc, Exception):
            raise UploadRefused(422, "malformed multipart body") from None
        raise
    if form.sink is None or form.file_name is None:
        raise UploadRefused(422, "no file in the upload")
    form.sink.file.close()
    if form.sink.size == 0:
        form.sink.fail()
        raise UploadRefused(422, "the upload is empty")
    return Received(form.sink.path, form.file_name, form.sink.size, form.sink.hash.hexdigest(),
                    fields=form.fields)
