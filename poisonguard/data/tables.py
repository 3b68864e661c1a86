"""A typed table (CSV, Parquet or a DataFrame) -> a valid :class:`Dataset`.

The label column becomes class codes (a missing label is an error: every row needs
one), the id column becomes the row ids, a ``text`` column makes the data text, and
the other columns go through the typed encoder (:mod:`poisonguard.data.schema`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection

import numpy as np
import pandas as pd

from poisonguard.data.dataset import ROW_ID_PREFIX, Dataset, row_ids
from poisonguard.data.ids import DigestWriter, RowIds
from poisonguard.data.schema import TableSchema
from poisonguard.errors import DataError, UsageError

__all__ = [
    "MAX_CLASS_SHARE", "check_classes", "label_codes", "numeric_columns", "table_row_ids",
    "table_to_dataset",
]

#: A label with more classes than this share of the rows (or more than 1,000) is not
#: a class label: most classes would hold one row.
MAX_CLASS_SHARE = 0.5
MAX_CLASSES = 1000


def label_codes(values: pd.Series | np.ndarray, path: str, *,
                label: str = "label") -> tuple[np.ndarray, tuple[str, ...], str]:
    """Integer codes, class names, and the label kind ('int' or 'str').

    Examples
    --------
    >>> import pandas as pd
    >>> codes, classes, kind = label_codes(pd.Series(["b", "a", "b"]), "<frame>")
    >>> codes.tolist(), classes, kind
    ([1, 0, 1], ('a', 'b'), 'str')
    """
    series = pd.Series(values)
    missing = np.flatnonzero(series.isna().to_numpy())
    if len(missing):
        raise DataError(f"the label ('{label}') is empty; every row needs a label",
                        path=path, row=int(missing[0]))
    if series.dtype == object:  # Parquet list/struct cells are not class labels
        scalar = series.map(lambda v: isinstance(v, str | int | float | np.generic))
        bad = np.flatnonzero(~scalar.to_numpy(dtype=bool))
        if len(bad):
            kind = {"ndarray": "list", "dict": "struct"}.get(
                type(series.iloc[bad[0]]).__name__, type(series.iloc[bad[0]]).__name__)
            raise DataError(f"the label ('{label}') must be a string or a number, got a "
                            f"{kind}", path=path, row=int(bad[0]))
    if pd.api.types.is_float_dtype(series):
        arr = series.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if len(bad):
            raise DataError(f"label {float(arr[bad[0]])} is not a class", path=path,
                            row=int(bad[0]))
        series = series.astype(np.int64)
    if pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        ints = series.to_numpy(dtype=np.int64)
        uniq = np.unique(ints)
        codes = np.searchsorted(uniq, ints)
        return codes, tuple(str(u) for u in uniq), "int"
    strings = series.astype(str).to_numpy()
    uniq_s = np.unique(strings)
    return np.searchsorted(uniq_s, strings), tuple(uniq_s.tolist()), "str"


def check_classes(n_classes: int, n_rows: int, *, label: str, path: str) -> None:
    """Refuse a label column that cannot be a class label (one class per row or so).

    Examples
    --------
    >>> check_classes(3, 178, label="label", path="wine.csv")  # fine: nothing returned
    >>> check_classes(150, 178, label="id", path="wine.csv")
    Traceback (most recent call last):
    ...
    poisonguard.errors.DataError: wine.csv: the label column 'id' has 150 distinct values ...
    """
    if n_classes > MAX_CLASSES or (n_rows >= 20 and n_classes > MAX_CLASS_SHARE * n_rows):
        raise DataError(
            f"the label column '{label}' has {n_classes} distinct values in {n_rows} rows: "
            "that is not a class label (name the label column with --label)", path=path)


def table_row_ids(frame: pd.DataFrame, classes: tuple[str, ...], codes: np.ndarray, *,
                  numeric: list[bool] | None = None) -> RowIds:
    """Content ids from the typed cells of every feature column (not the encoding).

    Bytes per row: the prefix, the class name, then each column in order: numbers
    (and booleans) as little-endian float32, anything else as ``0xff``, its text in
    UTF-8 and ``0x00``, a missing cell as ``0xfe``. A purely numeric table hashes
    exactly like its feature matrix (:func:`row_ids`), so the same values give the
    same ids from CSV, Parquet or NPZ; options such as ``ignore`` do not change ids.
    ``numeric`` (one flag per column, default from the dtypes) lets a part of a table
    hash exactly like the whole (:func:`numeric_columns` of the whole).
    """
    if numeric is None:
        numeric = numeric_columns(frame)
    if all(numeric):
        x = frame.to_numpy(dtype=np.float64, na_value=np.nan).astype("<f4")
        return row_ids(classes, codes, features=x)
    parts: list[list[bytes]] = []
    for c, is_num in zip(frame.columns, numeric, strict=True):
        col = frame[c]
        if is_num:
            body = col.to_numpy(dtype=np.float64, na_value=np.nan).astype("<f4")
            parts.append([v.tobytes() for v in body])
        else:
            gone = col.isna().to_numpy()
            text = col.astype(str).tolist()
            parts.append([b"\xfe" if m else b"\xff" + t.encode("utf-8") + b"\x00"
                          for t, m in zip(text, gone, strict=True)])
    names = [c.encode("utf-8") + b"\x00" for c in classes]
    out = DigestWriter(len(frame))
    for i, row in enumerate(zip(*parts, strict=True)):
        out[i] = hashlib.sha256(ROW_ID_PREFIX + names[codes[i]] + b"".join(row)).digest()
    return out.ids()


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns :func:`table_row_ids` hashes as numbers."""
    return [bool(pd.api.types.is_numeric_dtype(frame[c])) for c in frame.columns]


def _check_names(table: pd.DataFrame, names: Collection[str], option: str, path: str) -> None:
    have = {str(c) for c in table.columns}
    for name in names:
        if name not in have:
            raise UsageError(f"{path}: no column '{name}' ({option}); columns: "
                             f"{', '.join(sorted(have)[:20])}")


def table_to_dataset(
    table: pd.DataFrame,
    *,
    path: str,
    label: str = "label",
    id_column: str | None = None,
    text_column: str = "text",
    categorical: Collection[str] = (),
    ignore: Collection[str] = (),
    fmt: str | None = None,
    row_ids: np.ndarray | RowIds | None = None,
) -> Dataset:
    """Turn a table into a Dataset: a ``text`` column makes it text, else tabular.

    Feature columns are encoded by type (:class:`TableSchema`): numbers as numbers,
    categories one-hot, dates split into parts, missing cells imputed with an
    indicator column. ``categorical`` and ``ignore`` name columns to treat as
    categories or to leave out. Columns left out for a reason (ids, free text) are
    listed in ``dataset.schema.notes``. ``fmt`` names the source format (default: the
    path's suffix); ``row_ids`` are content ids already computed with
    :func:`table_row_ids` (for instance shard by shard on a cluster).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"island": ["A", "B", None], "mass": [1.0, None, 3.0],
    ...                   "species": ["x", "y", "x"]})
    >>> ds = table_to_dataset(t, path="<frame>", label="species")
    >>> ds.feature_names
    ('island = A', 'island = B', 'island (missing)', 'mass', 'mass (missing)')
    """
    table = table.rename(columns={c: str(c) for c in table.columns})
    if label not in table.columns:
        raise DataError(
            f"no label column '{label}' (columns: {', '.join(map(str, table.columns[:20]))})",
            path=path,
        )
    if id_column is not None and id_column not in table.columns:
        raise DataError(f"no id column '{id_column}'", path=path)
    _check_names(table, categorical, "--categorical", path)
    _check_names(table, ignore, "--ignore", path)
    codes, classes, kind = label_codes(table[label], path, label=label)
    check_classes(len(classes), len(table), label=label, path=path)
    ids: np.ndarray | RowIds | None = None
    if id_column is not None:
        missing = np.flatnonzero(table[id_column].isna().to_numpy())
        if len(missing):
            raise DataError(f"the id ('{id_column}') is empty", path=path, row=int(missing[0]))
        ids = table[id_column].astype(str).to_numpy(dtype=object)
    if fmt is None:
        fmt = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else "frame"
    meta = {"label_kind": kind, "format": fmt,
            "options": json.dumps({"label": label, "id": id_column,
                                   "categorical": sorted(categorical), "ignore": sorted(ignore)})}
    if id_column is not None:
        meta["id_column"] = id_column
    rest = [c for c in table.columns if c not in {label, id_column}]
    if text_column in table.columns and text_column not in ignore:
        texts = table[text_column]
        bad = np.flatnonzero(texts.isna().to_numpy())
        if len(bad):
            raise DataError(f"'{text_column}' is missing", path=path, row=int(bad[0]))
        blank = np.flatnonzero(texts.astype(str).str.strip().eq("").to_numpy())
        if len(blank):
            raise DataError(f"'{text_column}' is empty", path=path, row=int(blank[0]))
        return Dataset(
            labels=codes, classes=classes, texts=tuple(texts.astype(str)), ids=ids,
            source=path, label_column=label, meta=meta,
        )
    if not rest:
        raise DataError("no feature columns besides the label", path=path)
    for name in rest:
        col = table[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.flatnonzero(np.isinf(values))
            if len(bad):
                raise DataError(f"column '{name}' has {float(values[bad[0]])} (inf is not "
                                "allowed; leave the cell empty if it is unknown)",
                                path=path, row=int(bad[0]))
    schema = TableSchema.infer(table[rest], categorical=categorical, ignore=ignore)
    if ids is None and row_ids is not None:
        if len(row_ids) != len(table):
            raise UsageError(f"{len(row_ids)} row ids for {len(table)} rows")
        ids = row_ids if isinstance(row_ids, RowIds) else np.asarray(row_ids, dtype=object)
    if ids is None:
        ids = table_row_ids(table[rest], classes, codes)
    if not schema.used:
        raise DataError("no usable feature columns: " + "; ".join(schema.notes), path=path)
    return Dataset(
        labels=codes, classes=classes, features=schema.encode(table[rest]), ids=ids,
        source=path, label_column=label, meta=meta, schema=schema,
    )
