"""Read a data file's typed cells in row batches, for provenance (never the ML view).

:func:`open_typed` returns a :class:`TypedSource`: the columns with their logical
types and an iterator of row batches, each a list of ``pyarrow`` arrays in those
types. Every column of the file is read, the label, id and text columns included.

Logical types: ``int`` (any integer width, exactly, within int64), ``float`` (any
float width, as float64), ``bool``, ``string`` (UTF-8), ``binary``, ``timestamp``
(``timestamp[TZ]`` with a time zone), ``date``, ``time``, ``null`` (every cell null),
``json`` (a JSONL cell: its canonical JSON), ``ndarray[<dtype> <shape>]`` (an NPZ row).

How each format becomes typed values:

- **Parquet**: the types the file declares (dictionary-encoded columns decoded).
  Types that have no exact encoding here (decimal, nested, ...) are refused.
- **CSV**: deterministic, from the whole file (two passes): an unquoted empty field
  is null; a column is ``int`` when every non-null cell is plain decimal
  (``0``, ``-12``; no sign ``+``, no leading zeros, no ``0x``) within int64, else
  ``float`` when every non-null cell parses as a number without leading zeros
  (``1.50`` and ``1.5`` are the same value; ``nan``/``inf`` allowed; ``007`` or
  ``-01.5`` make the column text, so an id like ``007`` is kept as written), else
  ``bool`` when every non-null cell is ``true``/``false`` in any case, else
  ``string`` (the text as written). So a pandas round trip CSV -> Parquet keeps the
  root when pandas keeps the types.
- **JSONL**: one row per non-blank line; columns are the keys in order of first
  appearance; a cell is the canonical JSON of its value (absent keys are null).
- **NPZ**: one row per index of the arrays whose first dimension is the row count
  (``X``, ``y``, ...), each cell the row's bytes in little-endian order.
- **Parquet folder** (only ``.parquet`` files, same columns): the rows of its files
  in name order, as one table (:mod:`poisonguard.data.folders`).
- **Image folder**: one row per file in sorted order: ``path``, ``class``, and
  ``sha256`` of the file's bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poisonguard.errors import DataError, UsageError

__all__ = ["InputLimits", "TypedColumn", "TypedSource", "open_typed", "read_row_group"]

_BATCH = 65_536
_INT_TEXT = r"^(0|-?[1-9][0-9]*)$"
_BOOL_TEXT = r"^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"
_LEADING_ZERO = r"^[-+]?0[0-9]"


@dataclass(frozen=True)
class InputLimits:
    """Inputs above these are refused with a clear message (``--max-bytes/--max-rows``).

    Examples
    --------
    >>> InputLimits().max_rows
    100000000
    """

    max_bytes: int = 64 << 30
    max_rows: int = 100_000_000

    def check_bytes(self, size: int, path: str) -> None:
        if size > self.max_bytes:
            raise DataError(f"{size:,} bytes is above the input limit of {self.max_bytes:,} "
                            "bytes (raise it with --max-bytes)", path=path)

    def check_rows(self, rows: int, path: str) -> None:
        if rows > self.max_rows:
            raise DataError(f"more than {self.max_rows:,} rows, the input limit (raise it "
                            "with --max-rows)", path=path)


@dataclass(frozen=True)
class TypedColumn:
    """A column's name and logical type (see the module docstring)."""

    name: str
    type: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass
class TypedSource:
    """A file's typed columns and a way to stream its rows."""

    path: str
    format: str
    columns: list[TypedColumn]
    _batches: Callable[[], Iterator[list[pa.Array]]] = field(repr=False)
    files: list[str] = field(default_factory=list)

    def batches(self) -> Iterator[list[pa.Array]]:
        """Row batches: one array per column, in :attr:`columns` order and types."""
        return self._batches()


def logical_type(t: pa.DataType, name: str, path: str) -> str:
    """The logical type of an Arrow type, or a DataError for types not encoded exactly."""
    if pa.types.is_dictionary(t):
        return logical_type(t.value_type, name, path)
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or \
            pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.tz}]" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_null(t):
        return "null"
    raise DataError(f"column '{name}' has type {t}, which provenance cannot encode exactly "
                    "(supported: integers, floats, bool, strings, binary, timestamps, dates, "
                    "times)", path=path)


def canonical_array(arr: pa.Array | pa.ChunkedArray, kind: str) -> pa.Array:
    """``arr`` in the one Arrow type of its logical type (int64, float64, ns, ...)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    target = {"int": pa.int64(), "float": pa.float64(), "string": pa.large_string(),
              "binary": pa.large_binary(), "date": pa.date32(), "time": pa.time64("ns")}
    try:
        if kind in target:
            return pc.cast(arr, target[kind])
        if kind.startswith("timestamp"):
            return pc.cast(arr, pa.timestamp("ns", tz=arr.type.tz))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"a value cannot be encoded exactly ({exc})") from None
    return arr


# ---------------------------------------------------------------- Parquet
def _parquet(path: Path, limits: InputLimits) -> TypedSource:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet: {exc}", path=str(path)) from None
    limits.check_rows(pf.metadata.num_rows, str(path))
    schema = pf.schema_arrow
    cols = [TypedColumn(f.name, logical_type(f.type, f.name, str(path))) for f in schema]
    _unique([c.name for c in cols], str(path))

    def batches() -> Iterator[list[pa.Array]]:
        try:
            for batch in pf.iter_batches(batch_size=_BATCH):
                yield [canonical_array(batch.column(i), c.type) for i, c in enumerate(cols)]
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Parquet: {exc}", path=str(path)) from None

    return TypedSource(str(path), "parquet", cols, batches)


def read_row_group(path: str | os.PathLike[str], row_group: int,
                   columns: list[TypedColumn]) -> Iterator[list[pa.Array]]:
    """The typed batches of one row group of a Parquet file (a shard of parallel work)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=_BATCH, row_groups=[row_group]):
            if batch.schema.names != [c.name for c in columns]:
                raise DataError("its columns differ from the dataset's", path=str(path))
            yield [canonical_array(batch.column(i), c.type) for i, c in enumerate(columns)]
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet: {exc}", path=str(path)) from None


def _parquet_folder(path: Path, files: list[Path], limits: InputLimits) -> TypedSource:
    """Every file of a Parquet folder, in name order, as one source (same columns)."""
    limits.check_bytes(sum(f.stat().st_size for f in files), str(path))
    parts = [_parquet(f, limits) for f in files]
    rows = 0
    for f in files:
        import pyarrow.parquet as pq

        rows += pq.ParquetFile(f).metadata.num_rows
        limits.check_rows(rows, str(path))

    def batches() -> Iterator[list[pa.Array]]:
        for part in parts:
            yield from part.batches()

    return TypedSource(str(path), "parquet", parts[0].columns, batches,
                       files=[f.name for f in files])


# ---------------------------------------------------------------- CSV
def _csv_reader(path: Path, names: list[str] | None) -> Any:
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.large_string()) if names else None,
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)
    return pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22),
                         parse_options=pcsv.ParseOptions(newlines_in_values=True),
                         convert_options=convert)


def _csv_types(path: Path, names: list[str], limits: InputLimits) -> list[str]:
    candidates = [["int", "float", "bool"] for _ in names]
    seen = [False] * len(names)
    rows = 0
    for batch in _csv_reader(path, names):
        rows += batch.num_rows
        limits.check_rows(rows, str(path))
        for j, col in enumerate(batch.columns):
            values = col.drop_null()
            if not len(values):
                continue
            seen[j] = True
            keep = []
            for kind in candidates[j]:
                if kind == "int":
                    ok = pc.all(pc.match_substring_regex(values, _INT_TEXT)).as_py()
                    ok = ok and _casts(values, pa.int64())
                elif kind == "float":
                    ok = _casts(values, pa.float64()) and not pc.any(
                        pc.match_substring_regex(values, _LEADING_ZERO)).as_py()
                else:
                    ok = pc.all(pc.match_substring_regex(values, _BOOL_TEXT)).as_py()
                if ok:
                    keep.append(kind)
            candidates[j] = keep
    if rows == 0:
        raise DataError("file has no rows", path=str(path))
    return [("null" if not s else c[0] if c else "string")
            for c, s in zip(candidates, seen, strict=True)]


def _casts(values: pa.Array, t: pa.DataType) -> bool:
    try:
        pc.cast(values, t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _csv(path: Path, limits: InputLimits) -> TypedSource:
    try:
        names = list(_csv_reader(path, None).schema.names)
        _unique(names, str(path))
        types = _csv_types(path, names, limits)
    except pa.ArrowInvalid as exc:
        raise DataError(f"cannot parse CSV: {exc}", path=str(path)) from None
    cols = [TypedColumn(n, t) for n, t in zip(names, types, strict=True)]
    arrow = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "string": pa.large_string()}

    def batches() -> Iterator[list[pa.Array]]:
        try:
            for batch in _csv_reader(path, names):
                yield [pa.nulls(batch.num_rows) if c.type == "null"
                       else pc.cast(batch.column(j), arrow[c.type]) for j, c in enumerate(cols)]
        except pa.ArrowInvalid as exc:
            raise DataError(f"cannot parse CSV: {exc}", path=str(path)) from None

    return TypedSource(str(path), "csv", cols, batches)


# ---------------------------------------------------------------- JSONL
def _jsonl(path: Path, limits: InputLimits) -> TypedSource:
    names: dict[str, None] = {}
    rows = 0
    with path.open("r", encoding="utf-8") as fh:
        for row, line in enumerate(fh):
            if line.strip():
                obj = _json_line(line, path, row)
                names.update(dict.fromkeys(obj))
                rows += 1
                limits.check_rows(rows, str(path))
    if not rows:
        raise DataError("file has no rows", path=str(path))
    cols = [TypedColumn(n, "json") for n in names]

    def batches() -> Iterator[list[pa.Array]]:
        block: list[dict[str, Any]] = []
        with path.open("r", encoding="utf-8") as fh:
            for row, line in enumerate(fh):
                if line.strip():
                    block.append(_json_line(line, path, row))
                if len(block) == _BATCH:
                    yield _json_block(block, cols)
                    block = []
        if block:
            yield _json_block(block, cols)

    return TypedSource(str(path), "jsonl", cols, batches)


def _json_line(line: str, path: Path, row: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", path=str(path), row=row) from None
    if not isinstance(obj, dict):
        raise DataError("each line must be a JSON object", path=str(path), row=row)
    return obj


def _json_block(block: list[dict[str, Any]], cols: list[TypedColumn]) -> list[pa.Array]:
    def cell(obj: dict[str, Any], name: str) -> str | None:
        if name not in obj:
            return None
        return json.dumps(obj[name], sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    return [pa.array([cell(o, c.name) for o in block], type=pa.large_string()) for c in cols]


# ---------------------------------------------------------------- NPZ
def _npz(path: Path, limits: InputLimits) -> TypedSource:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile, OS and format errors
        raise DataError(f"cannot read NPZ without pickle: {exc}", path=str(path)) from None
    if not arrays:
        raise DataError("NPZ holds no arrays", path=str(path))
    n = max(len(a) if a.ndim else 0 for a in arrays.values())
    limits.check_rows(n, str(path))
    rowwise = {k: a for k, a in arrays.items() if a.ndim and len(a) == n}
    cols = []
    for k, a in rowwise.items():
        if a.dtype.hasobject:
            raise DataError(f"array '{k}' holds objects", path=str(path))
        cols.append(TypedColumn(k, f"ndarray[{a.dtype.newbyteorder('<').str} {a.shape[1:]}]"))
    others = {k: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
              for k, a in arrays.items() if k not in rowwise}
    cols += [TypedColumn(f"{k} (whole array)", f"sha256:{h}") for k, h in sorted(others.items())]

    def batches() -> Iterator[list[pa.Array]]:
        for start in range(0, n, _BATCH):
            out = []
            for a in rowwise.values():
                little = a.dtype.newbyteorder("<")
                part = np.ascontiguousarray(a[start:start + _BATCH], dtype=little)
                width = part[0].nbytes if len(part) else 0
                flat = part.view(np.uint8).reshape(len(part), width)
                out.append(pa.array(list(map(bytes, flat)), type=pa.large_binary()))
            out += [pa.nulls(min(_BATCH, n - start)) for _ in others]
            yield out

    return TypedSource(str(path), "npz", cols, batches)


# ---------------------------------------------------------------- image folders
def _folder(path: Path, limits: InputLimits) -> TypedSource:
    files = sorted(str(f.relative_to(path)) for f in path.rglob("*")
                   if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts))
    if not files:
        raise DataError("folder has no files", path=str(path))
    limits.check_rows(len(files), str(path))
    cols = [TypedColumn("path", "string"), TypedColumn("class", "string"),
            TypedColumn("sha256", "binary")]

    def batches() -> Iterator[list[pa.Array]]:
        for start in range(0, len(files), _BATCH):
            part = files[start:start + _BATCH]
            digests = []
            for f in part:
                h = hashlib.sha256()
                with (path / f).open("rb") as fh:
                    while block := fh.read(1 << 20):
                        h.update(block)
                digests.append(h.digest())
            classes = [Path(f).parts[0] if len(Path(f).parts) > 1 else None for f in part]
            yield [pa.array(part, pa.large_string()), pa.array(classes, pa.large_string()),
                   pa.array(digests, pa.large_binary())]

    return TypedSource(str(path), "folder", cols, batches, files=files)


def _unique(names: list[str], path: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise DataError(f"column '{name}' appears twice", path=path)
        seen.add(name)


_READERS = {".csv": _csv, ".parquet": _parquet, ".pq": _parquet, ".jsonl": _jsonl,
            ".ndjson": _jsonl, ".npz": _npz}


def open_typed(path: str | os.PathLike[str], *, limits: InputLimits | None = None
               ) -> TypedSource:
    """The typed columns of ``path`` and a row-batch iterator over them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("id,x,label\\n007,1.5,a\\n8,2,b\\n")
    >>> [(c.name, c.type) for c in open_typed(p).columns]
    [('id', 'string'), ('x', 'float'), ('label', 'string')]
    """
    limits = limits or InputLimits()
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or directory", path=str(p))
    if p.is_dir():
        from poisonguard.data.folders import parquet_files

        files = parquet_files(p)
        return _folder(p, limits) if files is None else _parquet_folder(p, files, limits)
    size = p.stat().st_size
    limits.check_bytes(size, str(p))
    if size == 0:
        raise DataError("file is empty", path=str(p))
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        raise UsageError(f"{p}: unknown file type '{p.suffix}' (expected .csv, .parquet, "
                         ".jsonl, .npz or a folder)")
    try:
        return reader(p, limits)
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", path=str(p)) from None

