"""Column batches: what profile and check read, from any input poisonguard loads.

A :class:`ColumnBatch` holds a slice of rows as named columns: numeric columns as
float64 (NaN = missing), categorical columns as object arrays of str (None =
missing), and the labels as class names. CSV and Parquet keep their real column
types (strings stay categories, gaps count as missing); Parquet is read in streamed
batches (``ParquetFile.iter_batches``) so memory stays bounded. NPZ, JSONL and image
folders go through :func:`poisonguard.data.load_dataset` and become one batch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from poisonguard.data import Dataset, load_table
from poisonguard.data.folders import ParquetShard
from poisonguard.errors import DataError

__all__ = ["ColumnBatch", "DatasetSource", "Kind", "Source", "TableSource", "open_source",
           "shard_batches"]

Kind = Literal["numeric", "categorical"]
TEXT_COLUMN = "text"


@dataclass(frozen=True)
class ColumnBatch:
    """Rows ``offset .. offset + len(labels) - 1`` of a source, as columns.

    Examples
    --------
    >>> batch = next(iter(open_source("builtin:wine")))
    >>> len(batch), batch.names, sorted(batch.numeric)[:2]
    (178, ('0', '1', '2'), ['alcalinity_of_ash', 'alcohol'])
    """

    offset: int
    codes: np.ndarray  # int64 per row, into ``names``
    names: tuple[str, ...]  # the class names present in this batch
    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    hashed: dict[str, np.ndarray] = field(default_factory=dict)  # extra uint64 content hashes
    bad_type: dict[str, np.ndarray] = field(default_factory=dict)  # rows that failed coercion
    #: numeric columns stored as integers (integer or boolean dtype): only these get the
    #: "not an integer" rule; a float column stays float even when its values are whole
    integer: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def labels(self) -> np.ndarray:
        """The class name of every row (an object array)."""
        return np.asarray(self.names, dtype=object)[self.codes]

    def is_class(self, name: str) -> np.ndarray:
        """Boolean mask of the rows labelled ``name``."""
        if name not in self.names:
            return np.zeros(len(self), dtype=bool)
        return self.codes == self.names.index(name)

    @property
    def kinds(self) -> dict[str, Kind]:
        out: dict[str, Kind] = {n: "numeric" for n in self.numeric}
        out.update({n: "categorical" for n in self.categorical})
        return out


class Source:
    """A re-iterable sequence of :class:`ColumnBatch` (check reads it twice).

    Examples
    --------
    >>> source = open_source("builtin:wine")
    >>> sum(len(batch) for batch in source) == sum(len(batch) for batch in source) == 178
    True
    """

    path: str = ""
    label_column: str = "label"
    modality: str = "tabular"

    def __iter__(self) -> Iterator[ColumnBatch]:  # pragma: no cover - interface
        raise NotImplementedError


def _label_codes(values: pd.Series, path: str, offset: int) -> tuple[np.ndarray,
                                                                      tuple[str, ...]]:
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise DataError("label is missing (NaN)", path=path, row=offset + int(missing[0]))
    if pd.api.types.is_float_dtype(values):
        arr = values.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if len(bad):
            raise DataError(f"label {arr[bad[0]]!r} is not a class", path=path,
                            row=offset + int(bad[0]))
        values = values.astype(np.int64)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64), tuple(str(u) for u in uniques)


def _as_strings(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(col):
        arr = col.to_numpy(dtype=float)
        out = np.array([None if np.isnan(v) else (str(int(v)) if v == int(v) else repr(v))
                        for v in arr], dtype=object)
        return out
    mask = col.isna().to_numpy()
    out = col.astype(str).to_numpy(dtype=object)
    out[mask] = None
    return out


def frame_to_batch(frame: pd.DataFrame, *, path: str, label: str, offset: int,
                   schema: Mapping[str, Kind] | None = None,
                   exclude: Collection[str] = ()) -> ColumnBatch:
    """A DataFrame slice as a batch; ``schema`` (the baseline's kinds) coerces columns.

    ``exclude`` names columns that are not features (the id column, ignored columns).
    """
    if label not in frame.columns:
        raise DataError(f"no label column '{label}' (columns: "
                        f"{', '.join(map(str, frame.columns[:20]))})", path=path)
    codes, names = _label_codes(frame[label], path, offset)
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    hashed: dict[str, np.ndarray] = {}
    bad_type: dict[str, np.ndarray] = {}
    integer: set[str] = set()
    for name in (str(c) for c in frame.columns if c != label and str(c) not in exclude):
        col = frame[name]
        if name == TEXT_COLUMN and not pd.api.types.is_numeric_dtype(col):
            integer.update(_text_columns(col.fillna("").astype(str).tolist(), numeric, hashed))
            continue
        is_num = pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)
        want = schema.get(name) if schema else None
        if want == "numeric" and not is_num:
            coerced = pd.to_numeric(col, errors="coerce")
            bad = coerced.isna().to_numpy() & ~col.isna().to_numpy()
            bad_type[name] = offset + np.flatnonzero(bad)
            numeric[name] = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
        elif is_num and want != "categorical":
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isinf(values).any():
                row = int(np.flatnonzero(np.isinf(values))[0])
                raise DataError(f"column '{name}' has inf", path=path, row=offset + row)
            numeric[name] = values
            if _integer_typed(col.dtype):
                integer.add(name)
        else:
            categorical[name] = _as_strings(col)
    return ColumnBatch(offset, codes, names, numeric, categorical, hashed, bad_type,
                       frozenset(integer))


def _integer_typed(dtype: Any) -> bool:
    """Integer or boolean storage (a dtype, or its name as a typed schema keeps it)."""
    try:
        return bool(pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    except TypeError:  # a name pandas does not know as a dtype
        return False


def _text_columns(texts: list[str], numeric: dict[str, np.ndarray],
                  hashed: dict[str, np.ndarray]) -> tuple[str, ...]:
    """Length columns and a content hash of a text column; returns the integer columns."""
    from poisonguard.validate.sketches import string_hash

    numeric["text.chars"] = np.fromiter((len(t) for t in texts), np.float64, len(texts))
    numeric["text.words"] = np.fromiter((len(t.split()) for t in texts), np.float64, len(texts))
    hashed[TEXT_COLUMN] = string_hash(np.asarray(texts, dtype=object))
    return ("text.chars", "text.words")


class TableSource(Source):
    """CSV (read whole, served in slices), or a Parquet file or folder streamed row
    group by row group (:func:`shard_batches`)."""

    def __init__(self, path: str | Path, *, label: str = "label", batch_rows: int = 65_536,
                 schema: Mapping[str, Kind] | None = None,
                 exclude: Collection[str] = ()) -> None:
        self.path = str(path)
        self.exclude = frozenset(exclude)
        self.label_column = label
        self.batch_rows = int(batch_rows)
        self.schema = dict(schema) if schema else None
        self._suffix = Path(path).suffix.lower()
        self.modality = "tabular"

    def __iter__(self) -> Iterator[ColumnBatch]:
        if self._suffix == ".csv":
            table = load_table(self.path)
            for start in range(0, len(table), self.batch_rows):
                part = table.iloc[start:start + self.batch_rows]
                yield frame_to_batch(part, path=self.path, label=self.label_column,
                                     offset=start, schema=self.schema, exclude=self.exclude)
            return
        from poisonguard.data.folders import parquet_shards

        shards = parquet_shards(self.path)
        if not shards:
            raise DataError("file has no rows", path=self.path)
        for shard in shards:
            yield from shard_batches(shard, path=self.path, label=self.label_column,
                                     batch_rows=self.batch_rows, schema=self.schema,
                                     exclude=self.exclude)


def shard_batches(shard: ParquetShard, *, path: str, label: str, batch_rows: int = 65_536,
                  schema: Mapping[str, Kind] | None = None,
                  exclude: Collection[str] = ()) -> Iterator[ColumnBatch]:
    """The column batches of one Parquet row group (a unit of parallel work).

    Rows are numbered in the dataset (``shard.offset`` on), errors name ``path``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer=False: the default pre-buffering keeps every row group read so far
        pf = pq.ParquetFile(shard.path, pre_buffer=False, buffer_size=1 << 20)
        frames = [rb.to_pandas() for rb in
                  pf.iter_batches(batch_size=batch_rows, row_groups=[shard.row_group])]
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet: {exc}", path=shard.path) from None
    offset = shard.offset
    for frame in frames:
        yield frame_to_batch(frame, path=path, label=label, offset=offset, schema=schema,
                             exclude=exclude)
        offset += len(frame)


class DatasetSource(Source):
    """An in-memory :class:`Dataset` as one batch (images flattened to pixel columns)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.path = dataset.source
        self.label_column = dataset.label_column
        self.modality = dataset.modality

    def __iter__(self) -> Iterator[ColumnBatch]:
        d = self.dataset
        numeric: dict[str, np.ndarray] = {}
        categorical: dict[str, np.ndarray] = {}
        hashed: dict[str, np.ndarray] = {}
        integer: tuple[str, ...] = ()
        if d.texts is not None:
            integer = _text_columns(list(d.texts), numeric, hashed)
        elif d.schema is not None:
            integer = _typed_columns(d, numeric, categorical)
        else:
            matrix = d.matrix()
            x = matrix.astype(np.float64)
            for j, name in enumerate(_names(d)):
                numeric[name] = x[:, j]
            if _integer_typed(matrix.dtype):
                integer = tuple(numeric)
        yield ColumnBatch(0, d.labels, d.classes, numeric, categorical, hashed,
                          integer=frozenset(integer))


def _typed_columns(d: Dataset, numeric: dict[str, np.ndarray],
                   categorical: dict[str, np.ndarray]) -> tuple[str, ...]:
    """A typed table's columns back from its encoding: categories by name, NaN kept.

    Returns the columns stored as integers (integer dtypes, date parts)."""
    assert d.schema is not None and d.features is not None
    x = d.features.astype(np.float64)
    integer: list[str] = []
    for c in d.schema.used:
        block = x[:, c.start:c.stop]
        missing = block[:, -1] >= 0.5 if c.has_missing else np.zeros(len(x), dtype=bool)
        if c.kind == "categorical":
            names = np.asarray(c.labels, dtype=object)
            values = names[block[:, :len(c.labels)].argmax(axis=1)]
            values[missing] = None
            categorical[c.name] = values
            continue
        for k, part in enumerate(c.encoded_names()[:c.width - int(c.has_missing)]):
            numeric[part] = np.where(missing, np.nan, block[:, k])
            if c.kind == "date" or _integer_typed(c.dtype):
                integer.append(part)
    return tuple(integer)


def _names(d: Dataset) -> list[str]:
    if d.images is None:
        return list(d.feature_names)
    _, h, w, c = d.images.shape
    suffix = (lambda k: f"_c{k}") if c > 1 else (lambda k: "")
    return [f"px{r}_{col}{suffix(k)}" for r in range(h) for col in range(w) for k in range(c)]


def open_source(path: str | Path | Dataset, *, label: str = "label", batch_rows: int = 65_536,
                schema: Mapping[str, Kind] | None = None,
                exclude: Collection[str] = ()) -> Source:
    """The right :class:`Source` for a path, ``builtin:NAME``, or an in-memory Dataset.

    CSV and Parquet stream as typed columns (their own reader, so that Parquet stays
    bounded in memory); everything else opens through
    :func:`poisonguard.datasets.open_dataset`, the one opener.

    Examples
    --------
    >>> source = open_source("builtin:wine")
    >>> source.modality, sum(len(batch) for batch in source)
    ('tabular', 178)
    """
    from poisonguard.data.folders import parquet_files
    from poisonguard.datasets import BUILTIN_PREFIX, open_dataset

    if not isinstance(path, Dataset) and not str(path).startswith(BUILTIN_PREFIX):
        p = Path(path)
        if not p.exists():
            raise DataError("no such file or directory", path=str(p))
        if p.is_dir() and parquet_files(p) is not None:
            return TableSource(p, label=label, batch_rows=batch_rows, schema=schema,
                               exclude=exclude)
        if p.is_file() and p.suffix.lower() in {".csv", ".parquet", ".pq"}:
            if p.stat().st_size == 0:
                raise DataError("file is empty", path=str(p))
            return TableSource(p, label=label, batch_rows=batch_rows, schema=schema,
                               exclude=exclude)
    return DatasetSource(open_dataset(path, label=label))
