"""A folder of Parquet files is one dataset: its files in name order, rows in file order.

Spark, Dask, Ray and pyarrow write a table as ``part-00000.parquet, part-00001...``;
poisonguard reads such a folder as the concatenation of its files. Rules (fail
closed): the folder holds only ``.parquet``/``.pq`` files directly (names starting
with ``.`` or ``_`` are skipped, as Spark's ``_SUCCESS`` and ``.crc`` files); every
file has the same column names and Arrow types as the first; sub-folders are
refused (partition folders ``key=value`` would hide a column in their names). A
folder without Parquet files is not a Parquet folder (it may be an image folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from poisonguard.data.ids import RowIds
from poisonguard.errors import DataError

__all__ = [
    "PARQUET_SUFFIXES",
    "ParquetShard",
    "RowIdTask",
    "parquet_files",
    "parquet_shards",
    "read_parquet_folder",
    "shard_row_ids",
]

PARQUET_SUFFIXES = {".parquet", ".pq"}


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_"))


def parquet_files(folder: str | Path) -> list[Path] | None:
    """The Parquet files of a Parquet folder in name order, or None if it holds none.

    Raises DataError for a folder that mixes Parquet files with other entries, or
    whose files disagree on the columns or their types.

    Examples
    --------
    >>> import tempfile, pandas as pd, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for k in range(2):
    ...     pd.DataFrame({"x": [k], "label": ["a"]}).to_parquet(d / f"part-{k}.parquet")
    >>> [p.name for p in parquet_files(d)]
    ['part-0.parquet', 'part-1.parquet']
    """
    root = Path(folder)
    entries = sorted((e for e in root.iterdir() if _visible(e)), key=lambda e: e.name)
    files = [e for e in entries if e.is_file() and e.suffix.lower() in PARQUET_SUFFIXES]
    if not files:
        return None
    for e in entries:
        if e not in files:
            kind = "sub-folder" if e.is_dir() else "file"
            raise DataError(f"a Parquet folder holds only .parquet files; found the {kind} "
                            f"'{e.name}'", path=str(root))
    _check_same_schema(files)
    return files


def _schema(path: Path) -> object:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).remove_metadata()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet: {exc}", path=str(path)) from None


def _check_same_schema(files: list[Path]) -> None:
    first = _schema(files[0])
    for f in files[1:]:
        schema = _schema(f)
        if schema != first:
            raise DataError(f"its columns differ from {files[0].name}'s ({_describe(schema)} "
                            f"vs {_describe(first)}); every file of a Parquet folder needs "
                            "the same columns and types", path=str(f))


def _describe(schema: object) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)  # type: ignore[attr-defined]


def read_parquet_folder(folder: str | Path, files: list[Path] | None = None) -> pd.DataFrame:
    """All rows of a Parquet folder as one DataFrame (files in name order).

    Examples
    --------
    >>> import tempfile, pandas as pd, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for k in range(3):
    ...     pd.DataFrame({"x": [k, k], "label": ["a", "b"]}).to_parquet(d / f"{k}.parquet")
    >>> read_parquet_folder(d)["x"].tolist()
    [0, 0, 1, 1, 2, 2]
    """
    files = files if files is not None else parquet_files(folder)
    if not files:
        raise DataError("folder has no Parquet files", path=str(folder))
    frames = []
    for f in files:
        try:
            frames.append(pd.read_parquet(f))
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"cannot read Parquet: {exc}", path=str(f)) from None
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(table) == 0:
        raise DataError("the Parquet folder has no rows", path=str(folder))
    return table


@dataclass(frozen=True)
class ParquetShard:
    """Row group ``row_group`` of ``path``: rows ``offset .. offset + rows - 1`` of the
    dataset (``file_offset`` within the file)."""

    path: str
    row_group: int
    offset: int
    file_offset: int
    rows: int


def parquet_shards(source: str | Path) -> list[ParquetShard]:
    """The row groups of a Parquet file or folder, in dataset row order.

    Row groups are the unit of parallel work: each is read alone, in any order, by any
    worker, and its rows keep their place in the dataset through ``offset``.

    Examples
    --------
    >>> import tempfile, pandas as pd, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"x": range(5), "label": ["a"] * 5}).to_parquet(d / "t.parquet",
    ...                                                              row_group_size=2)
    >>> [(s.offset, s.rows) for s in parquet_shards(d / "t.parquet")]
    [(0, 2), (2, 2), (4, 1)]
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(source)
    files = parquet_files(p) if p.is_dir() else [p]
    if not files:
        raise DataError("folder has no Parquet files", path=str(p))
    shards: list[ParquetShard] = []
    offset = 0
    for f in files:
        try:
            meta = pq.ParquetFile(f).metadata
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Parquet: {exc}", path=str(f)) from None
        file_offset = 0
        for g in range(meta.num_row_groups):
            rows = meta.row_group(g).num_rows
            if rows:
                shards.append(ParquetShard(str(f), g, offset, file_offset, rows))
            offset += rows
            file_offset += rows
    return shards


@dataclass(frozen=True)
class RowIdTask:
    """Content ids of one shard's rows (see :func:`shard_row_ids`)."""

    shard: ParquetShard
    label: str
    columns: tuple[str, ...]  # the feature columns, in the table's order
    numeric: tuple[bool, ...]  # how the whole table hashes each of them


def shard_row_ids(task: RowIdTask) -> RowIds:
    """The row ids of one Parquet row group, exactly as :func:`table_row_ids` gives
    them for the whole table (runs on a worker)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from poisonguard.data.tables import label_codes, table_row_ids

    try:
        frame = pq.ParquetFile(task.shard.path).read_row_group(task.shard.row_group).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet: {exc}", path=task.shard.path) from None
    frame = frame.rename(columns={c: str(c) for c in frame.columns})
    codes, classes, _ = label_codes(frame[task.label], task.shard.path, label=task.label)
    return table_row_ids(frame[list(task.columns)], classes, codes, numeric=list(task.numeric))
