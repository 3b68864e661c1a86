"""The typed tabular encoder: table columns <-> the numeric matrix detectors read.

:meth:`TableSchema.infer` looks at each feature column once and decides its kind:

- ``numeric``: numbers (integers stay numbers); a missing cell is filled with the
  column median and a ``COL (missing)`` indicator column is added;
- ``categorical``: strings, booleans, pandas categories, or any column named in
  ``categorical``; one 0/1 column per category (``COL = VALUE``), never a rank; a
  missing cell is its own ``COL (missing)`` column;
- ``date``: datetimes, or strings that all look like ISO dates; split into
  ``COL.year``, ``COL.month``, ``COL.day``, ``COL.weekday`` (and ``COL.hour`` when
  times are present), plus a missing indicator when needed;
- ``excluded``: named in ``ignore``, unique per row (an undeclared id or a row
  number: in a file sorted by class it would leak the label), an id rows share (a
  group key: its integers are codes, not a measurement), free text or
  high-cardinality strings, or an empty column. Each has a ``note`` saying why.

:meth:`TableSchema.encode` builds the float32 matrix, :meth:`TableSchema.decode`
turns encoded rows back into cells of the original dtypes (what ``attack`` writes),
and :meth:`TableSchema.describe` renders an encoded value in the user's terms
("island = Torgersen"), never as a code.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["MAX_CATEGORIES", "Column", "ColumnKind", "TableSchema"]

ColumnKind = Literal["numeric", "categorical", "date", "excluded"]

#: A string column with more distinct values than this (or than half its rows) is
#: treated as free text / an identifier and excluded from the features.
MAX_CATEGORIES = 100
#: A text column whose cells are numbers but for at most this share of them gets a
#: note naming the cells that are not (a stray "x" or "?" turns a number column into
#: categories, or excludes it, and the user should know which cell did it).
STRAY_SHARE = 0.05
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_DATE_PARTS = ("year", "month", "day", "weekday")


@dataclass(frozen=True)
class Column:
    """One original column and where its encoding sits in the feature matrix.

    ``start:stop`` is the encoded slice (empty for excluded columns). ``values`` are
    the categories in the original Python type (``labels`` as shown to people).

    Examples
    --------
    >>> import pandas as pd
    >>> from poisonguard.data import table_to_dataset
    >>> t = pd.DataFrame({"island": ["A", "B", "A"], "mass": [1.0, 2.0, 3.0],
    ...                   "species": ["x", "y", "x"]})
    >>> col = table_to_dataset(t, path="<frame>", label="species").schema.columns[0]
    >>> col.name, col.kind, col.labels, (col.start, col.stop)
    ('island', 'categorical', ('A', 'B'), (0, 2))
    """

    name: str
    kind: ColumnKind
    dtype: str
    start: int = 0
    stop: int = 0
    values: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()
    has_missing: bool = False
    fill: float = 0.0
    date_format: str = ""
    note: str = ""

    @property
    def width(self) -> int:
        return self.stop - self.start

    def encoded_names(self) -> list[str]:
        if self.kind == "numeric":
            names = [self.name]
        elif self.kind == "categorical":
            names = [f"{self.name} = {label}" for label in self.labels]
        elif self.kind == "date":
            names = [f"{self.name}.{p}" for p in self._parts()]
        else:
            return []
        return names + ([f"{self.name} (missing)"] if self.has_missing else [])

    def _parts(self) -> tuple[str, ...]:
        return _DATE_PARTS + (("hour",) if "%H" in self.date_format else ())


def _is_date_strings(values: pd.Series) -> bool:
    if not len(values) or not all(isinstance(v, str) for v in values):
        return False
    return bool(values.str.match(_ISO_DATE).all())


def _date_format(values: pd.Series) -> str:
    sample = str(values.iloc[0])
    if len(sample) == 10:
        return "%Y-%m-%d"
    sep = "T" if "T" in sample else " "
    return f"%Y-%m-%d{sep}%H:%M" + (":%S" if sample.count(":") >= 2 else "")


_INDEX_NAME = re.compile(r"^(|unnamed: ?\d+|index|idx|row|rowid|row_id|id|.*[_ ]id)$", re.I)


#: A column named as an identifier: ``id`` or a household's (``hid``, ``hhid``), alone
#: or after a separator, or ``ID`` after a lower-case letter (``customer_id``,
#: ``Ketchup.hid``, ``CustomerID``); never ``paid``, ``lipid`` or anes96's ``PID`` (party
#: identification, a 0-6 scale).
_ID_NAME = re.compile(r"^(?:.*[_ .\-])?(?i:(?:hh|h)?id)$|^.*[a-z0-9]I[dD]$")


def _group_key(name: str, col: pd.Series) -> bool:
    """An identifier's name over integers some rows share: a group key (a customer, a
    household, a patient), whose numbers are codes, not a measurement.

    Read as a number it ranks households by their code, and where a household always
    buys one brand it marks the brand (untouched Ecdat Yogurt: household 70's 127
    purchases, all of one brand, were "a backdoor" to it; RESULTS.md, session 24).

    Examples
    --------
    >>> import pandas as pd
    >>> _group_key("id", pd.Series([1, 1, 2, 2, 3])), _group_key("CustomerID", pd.Series([7, 7]))
    (True, True)
    >>> _group_key("paid", pd.Series([1, 1, 2])), _group_key("id", pd.Series([1.5, 1.5]))
    (False, False)
    """
    return bool(_ID_NAME.match(name) and pd.api.types.is_integer_dtype(col)
                and not col.is_unique)


def _row_number(name: str, col: pd.Series) -> bool:
    """An index-like name over distinct, consecutive integers: a row number."""
    if not _INDEX_NAME.match(name) or not pd.api.types.is_integer_dtype(col) \
            or len(col) < 20 or col.isna().any():
        return False
    return bool(col.is_unique and int(col.max()) - int(col.min()) + 1 == len(col))


def _infer_column(name: str, col: pd.Series, *, categorical: bool, ignored: bool) -> Column:
    dtype = str(col.dtype)
    present = col.dropna()
    if ignored:
        return Column(name, "excluded", dtype, note="ignored as asked")
    if not len(present):
        return Column(name, "excluded", dtype, note="every cell is missing")
    missing = bool(len(present) < len(col))
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if pd.api.types.is_datetime64_any_dtype(col):
        fmt = "%Y-%m-%d %H:%M:%S" if (present.dt.normalize() != present).any() else "%Y-%m-%d"
        return Column(name, "date", dtype, has_missing=missing, date_format=fmt)
    if numeric and not categorical:
        if _row_number(name, col):
            return Column(name, "excluded", dtype,
                          note="every value distinct and consecutive: a row number (use --id)")
        if _group_key(name, col):
            return Column(name, "excluded", dtype,
                          note="an id that rows share (a group key such as a customer): "
                               "codes, not a measurement (name it in --categorical to use "
                               "its values as categories)")
        return Column(name, "numeric", dtype, has_missing=missing,
                      fill=float(np.median(present.to_numpy(dtype=np.float64))))
    if not numeric and not categorical and not isinstance(col.dtype, pd.CategoricalDtype) \
            and not pd.api.types.is_bool_dtype(col):
        if _is_date_strings(present):
            return Column(name, "date", dtype, has_missing=missing,
                          date_format=_date_format(present))
        distinct = present.nunique()
        if distinct == len(present) and len(present) >= 20:
            return Column(name, "excluded", dtype,
                          note="unique in every row: an id? (use --id to say so)")
        if distinct > MAX_CATEGORIES or distinct > max(10, len(present) // 2):
            return Column(name, "excluded", dtype,
                          note=f"free text or high-cardinality ({distinct} distinct values)")
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = list(col.cat.categories)
    else:
        cats = sorted(present.unique().tolist(), key=lambda v: (str(type(v)), v))
    return Column(name, "categorical", dtype, values=tuple(cats),
                  labels=tuple(str(c) for c in cats), has_missing=missing)


def _stray_cells(name: str, col: pd.Series, kind: str) -> str | None:
    """A note when ``col`` is text whose present cells are numbers but for a few
    (at most :data:`STRAY_SHARE` of them): which rows (0-based, as in every message
    and the findings) hold what, and what the column was read as because of them.
    None otherwise.

    Examples
    --------
    >>> import pandas as pd
    >>> print(_stray_cells("b", pd.Series(["6", "x"] + ["7"] * 30), "categorical"))
    ... # doctest: +NORMALIZE_WHITESPACE
    column 'b' holds numbers but 1 cell is not (row 1: 'x'), so it is read as categories;
    fix or blank that cell to use the column as numbers
    """
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) \
            or isinstance(col.dtype, pd.CategoricalDtype):
        return None
    present = col.notna().to_numpy()
    cells = col.astype(str).str.strip()
    stray = present & pd.to_numeric(cells, errors="coerce").isna().to_numpy()
    n_stray = int(stray.sum())
    if not n_stray or n_stray > STRAY_SHARE * int(present.sum()):
        return None
    rows = np.flatnonzero(stray)
    shown = ", ".join(f"row {r}: {str(col.iloc[r])[:40]!r}" for r in rows[:3])
    more = f" and {n_stray - 3} more" if n_stray > 3 else ""
    cell = "1 cell is" if n_stray == 1 else f"{n_stray} cells are"
    read = {"categorical": "is read as categories", "date": "is read as dates"}.get(
        kind, "is not used as a feature")
    which = "that cell" if n_stray == 1 else "those cells"
    return (f"column '{name}' holds numbers but {cell} not ({shown}{more}), so it {read}; "
            f"fix or blank {which} to use the column as numbers")


@dataclass(frozen=True)
class TableSchema:
    """How a table's feature columns map to the encoded matrix, and back.

    Examples
    --------
    >>> import pandas as pd
    >>> from poisonguard.data import table_to_dataset
    >>> t = pd.DataFrame({"island": ["A", "B", "A"], "mass": [1.0, None, 3.0],
    ...                   "species": ["x", "y", "x"]})
    >>> schema = table_to_dataset(t, path="<frame>", label="species").schema
    >>> schema.names
    ('island = A', 'island = B', 'mass', 'mass (missing)')
    """

    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def infer(cls, frame: pd.DataFrame, *, categorical: Collection[str] = (),
              ignore: Collection[str] = ()) -> TableSchema:
        """Decide every column's kind and lay out the encoded columns in order."""
        columns: list[Column] = []
        notes: list[str] = []
        start = 0
        for raw in frame.columns:
            name = str(raw)
            col = _infer_column(name, frame[raw], categorical=name in categorical,
                                ignored=name in ignore)
            width = len(col.encoded_names())
            col = replace(col, start=start, stop=start + width)
            start += width
            columns.append(col)
            stray = None if name in categorical or name in ignore \
                else _stray_cells(name, frame[raw], col.kind)
            if stray is not None:
                notes.append(stray)
            elif col.kind == "excluded" and col.note != "ignored as asked":
                notes.append(f"column '{name}' is not used as a feature: {col.note}")
        return cls(tuple(columns), tuple(notes))

    @property
    def width(self) -> int:
        return self.columns[-1].stop if self.columns else 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for c in self.columns for n in c.encoded_names())

    @property
    def used(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.kind != "excluded")

    def column_of(self, j: int) -> Column:
        """The original column that encoded column ``j`` belongs to."""
        for c in self.columns:
            if c.start <= j < c.stop:
                return c
        raise IndexError(j)

    def kinds(self) -> list[str]:
        """Per encoded column: 'numeric', 'binary' (one-hot, indicators) or 'date'."""
        out: list[str] = []
        for c in self.used:
            body = {"numeric": ["numeric"], "categorical": ["binary"] * len(c.values),
                    "date": ["numeric"] * len(c._parts())}[c.kind]
            out += body + (["binary"] if c.has_missing else [])
        return out

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The N x width float32 matrix of ``frame`` (which has this schema's columns).

        Filled column by column: one column's float64 values exist at a time (a
        float64 copy of the whole table would be twice the float32 matrix).
        """
        out = np.empty((len(frame), self.width), dtype=np.float32)
        for c in self.used:
            out[:, c.start:c.stop] = _encode_column(c, frame[_key(frame, c.name)])
        return out

    def decode(self, x: np.ndarray, like: pd.DataFrame) -> pd.DataFrame:
        """Encoded rows back to cells of ``like``'s dtypes (excluded columns: NaN/None)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.width)
        out: dict[str, Any] = {}
        for c in self.columns:
            original = like[_key(like, c.name)]
            values = _decode_column(c, x[:, c.start:c.stop], len(x))
            out[c.name] = _as_dtype(values, original)
        return pd.DataFrame(out, columns=[c.name for c in self.columns])

    def describe(self, j: int, value: float) -> str:
        """Encoded column ``j`` at ``value`` in the user's terms ("island = Dream")."""
        c = self.column_of(j)
        local = j - c.start
        if c.has_missing and local == c.width - 1:
            return f"{c.name} is {'missing' if value >= 0.5 else 'present'}"
        if c.kind == "categorical":
            return f"{c.name} {'=' if value >= 0.5 else '≠'} {c.labels[local]}"
        if c.kind == "date":
            return f"{c.name}.{c._parts()[local]} = {value:.0f}"
        return f"{c.name} = {value:.4g}"

    def iter_cells(self, row: np.ndarray) -> Iterator[tuple[str, str]]:
        """(column, original value as text) for one encoded row; excluded columns skipped."""
        for c in self.used:
            cell = _decode_column(c, np.asarray(row, dtype=np.float64)[None, c.start:c.stop], 1)[0]
            yield c.name, "missing" if _is_missing(cell) else _text(cell)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [{"name": c.name, "kind": c.kind, "dtype": c.dtype,
                             "categories": list(c.labels), "missing": c.has_missing,
                             "note": c.note} for c in self.columns]}


def _key(frame: pd.DataFrame, name: str) -> Any:
    if name in frame.columns:
        return name
    for raw in frame.columns:  # non-string column names (ints from a DataFrame)
        if str(raw) == name:
            return raw
    raise KeyError(name)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


def _text(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat() if value != value.normalize() else value.date().isoformat()
    return str(value)


def _encode_column(c: Column, col: pd.Series) -> np.ndarray:
    missing = col.isna().to_numpy()
    if c.kind == "numeric":
        body = col.to_numpy(dtype=np.float64, na_value=np.nan)[:, None]
        body = np.where(np.isnan(body), c.fill, body)
    elif c.kind == "categorical":
        index = {v: k for k, v in enumerate(c.values)}
        body = np.zeros((len(col), len(c.values)))
        codes = np.fromiter((index.get(v, -1) if not m else -1
                             for v, m in zip(col.tolist(), missing, strict=True)),
                            dtype=np.int64, count=len(col))
        hit = codes >= 0
        body[np.flatnonzero(hit), codes[hit]] = 1.0
    else:
        stamps = pd.to_datetime(col, errors="coerce", format="ISO8601") \
            if not pd.api.types.is_datetime64_any_dtype(col) else col
        stamps = pd.Series(stamps)
        parts = [stamps.dt.year, stamps.dt.month, stamps.dt.day, stamps.dt.day_of_week]
        if "%H" in c.date_format:
            parts.append(stamps.dt.hour)
        body = np.column_stack([p.to_numpy(dtype=np.float64, na_value=np.nan) for p in parts])
        missing = missing | np.isnan(body).any(axis=1)
        fill = np.nanmedian(body, axis=0) if (~missing).any() else np.zeros(body.shape[1])
        body = np.where(np.isnan(body), np.round(fill), body)
    if c.has_missing:
        body = np.column_stack([body, missing.astype(np.float64)])
    return np.asarray(body, dtype=np.float64)


def _decode_column(c: Column, block: np.ndarray, n: int) -> list[Any]:
    if c.kind == "excluded":
        return [None] * n
    missing = (block[:, -1] >= 0.5) if c.has_missing else np.zeros(n, dtype=bool)
    body = block[:, :-1] if c.has_missing else block
    if c.kind == "numeric":  # the shortest decimal that the float32 encoding holds
        return [None if m else float(np.format_float_positional(np.float32(v), unique=True))
                for v, m in zip(body[:, 0], missing, strict=True)]
    if c.kind == "categorical":
        if not len(c.values):
            return [None] * n
        best = body.argmax(axis=1)
        return [None if m else c.values[k] for k, m in zip(best, missing, strict=True)]
    out: list[Any] = []
    for row, m in zip(body, missing, strict=True):
        if m:
            out.append(None)
            continue
        year, month = int(round(row[0])), int(np.clip(round(row[1]), 1, 12))
        first = pd.Timestamp(year=year, month=month, day=1)
        day = int(np.clip(round(row[2]), 1, first.days_in_month))
        hour = int(np.clip(round(row[4]), 0, 23)) if len(row) > 4 else 0
        out.append(pd.Timestamp(year=year, month=month, day=day, hour=hour))
    return out


def _as_dtype(values: Sequence[Any], original: pd.Series) -> pd.Series:
    """Cells in ``original``'s dtype: ints rounded, dates formatted like the input."""
    dtype = original.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return pd.Series(pd.to_datetime(list(values)), dtype=dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(values, categories=dtype.categories,
                                        ordered=dtype.ordered))
    if pd.api.types.is_bool_dtype(dtype) and not any(_is_missing(v) for v in values):
        return pd.Series([bool(v) for v in values], dtype=dtype)
    if pd.api.types.is_integer_dtype(dtype):
        if any(_is_missing(v) for v in values):
            if isinstance(dtype, np.dtype):  # numpy ints hold no NaN: use the median row
                values = [v if not _is_missing(v) else original.median() for v in values]
            else:
                return pd.Series([None if _is_missing(v) else int(round(float(v)))
                                  for v in values], dtype=dtype)
        info = np.iinfo(np.dtype(str(dtype).lower()))
        ints = np.clip(np.round(np.asarray(values, dtype=np.float64)), info.min, info.max)
        return pd.Series(ints.astype(np.dtype(str(dtype).lower())), dtype=dtype)
    if pd.api.types.is_float_dtype(dtype):
        return pd.Series([np.nan if _is_missing(v) else float(v) for v in values], dtype=dtype)
    # object / string columns: dates back in the input's text format, others as they are
    if any(isinstance(v, pd.Timestamp) for v in values):
        fmt = "%Y-%m-%d"
        sample = original.dropna()
        if len(sample):
            fmt = _date_format(sample.astype(str))
        values = [v.strftime(fmt) if isinstance(v, pd.Timestamp) else v for v in values]
    return pd.Series([None if _is_missing(v) else v for v in values], dtype=dtype)
