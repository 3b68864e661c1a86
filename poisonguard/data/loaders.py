"""Strict loaders: every file type poisonguard reads becomes a valid :class:`Dataset`.

Errors are :class:`~poisonguard.errors.DataError` naming the file and the row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from poisonguard.data.dataset import Dataset
from poisonguard.data.folders import parquet_files, read_parquet_folder
from poisonguard.data.tables import check_classes, label_codes, table_to_dataset
from poisonguard.errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "TABLE_SUFFIXES",
    "load_dataset",
    "load_embeddings",
    "load_table",
    "table_to_dataset",
]

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def load_dataset(
    path: str | Path,
    *,
    label: str = "label",
    id_column: str | None = None,
    text_column: str = "text",
    categorical: Collection[str] = (),
    ignore: Collection[str] = (),
) -> Dataset:
    """Load CSV, Parquet, NPZ, JSONL, a Parquet folder or an image folder.

    A folder of ``.parquet`` files is one table, its files in name order
    (:mod:`poisonguard.data.folders`); any other folder is an image folder
    ``root/<class>/<file>.png``.

    Tables are encoded by column type (see :func:`table_to_dataset`); ``categorical``
    and ``ignore`` name table columns to treat as categories or to leave out.

    Parameters
    ----------
    path
        The file or image folder.
    label, id_column, text_column
        The label column, an optional column of stable row ids, and the text column
        (a table with it is text data).
    categorical, ignore
        Table columns to treat as categories, or to leave out.

    Raises
    ------
    DataError
        One line naming the file (and the row) for anything it cannot load exactly.

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/pets.csv"
    >>> rows = ["weight,label", "4.1,cat", "30.2,dog", "3.8,cat"]
    >>> _ = open(path, "w").write("".join(r + chr(10) for r in rows))
    >>> ds = load_dataset(path)
    >>> len(ds), ds.classes
    (3, ('cat', 'dog'))
    """
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or directory", path=str(p))
    if p.is_dir():
        files = parquet_files(p)
        if files is None:
            return _load_image_folder(p)
        return table_to_dataset(
            read_parquet_folder(p, files), path=str(p), label=label, id_column=id_column,
            text_column=text_column, categorical=categorical, ignore=ignore, fmt="parquet",
        )
    suffix = p.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        table = load_table(p)
        return table_to_dataset(
            table, path=str(p), label=label, id_column=id_column, text_column=text_column,
            categorical=categorical, ignore=ignore,
        )
    if suffix == ".npz":
        return _load_npz(p)
    if suffix in {".jsonl", ".ndjson"}:
        return _load_jsonl(p, label=label, text_column=text_column)
    raise DataError(
        f"unknown file type '{p.suffix}' "
        "(expected .csv, .parquet, .npz, .jsonl or an image folder)",
        path=str(p),
    )


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is, with strict parsing.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text(chr(10).join(["a,label", "1.5,x", "2.5,y"]))
    >>> load_table(path).shape
    (2, 2)
    """
    p = Path(path)
    if p.stat().st_size == 0:
        raise DataError("file is empty", path=str(p))
    if p.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(p)
        except pd.errors.EmptyDataError:
            raise DataError("file is empty", path=str(p)) from None
        except pd.errors.ParserError as exc:
            m = _RAGGED.search(str(exc))
            if m:
                expected, line, saw = m.groups()
                raise DataError(
                    f"line {line}: expected {expected} fields, saw {saw}",
                    path=str(p),
                    row=int(line) - 2,
                ) from None
            raise DataError(f"cannot parse CSV: {exc}", path=str(p)) from None
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason})", path=str(p)) from None
        _refuse_short_records(p, table)
    else:
        try:
            table = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"cannot read Parquet: {exc}", path=str(p)) from None
    if len(table) == 0:
        raise DataError("file has no rows", path=str(p))
    return table


def _refuse_short_records(p: Path, table: pd.DataFrame) -> None:
    """Raise for a CSV record with fewer fields than the header.

    pandas refuses a record with too many fields but fills a short one's missing
    cells with NaN, as if they were empty: a ragged file would be imputed silently.
    A short record leaves its last cell missing, so the records are counted only
    when some row's last cell is (blank lines are skipped, as pandas does).
    """
    if len(table.columns) < 2 or not table.iloc[:, -1].isna().any():
        return
    width = len(table.columns)
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader, None)  # the header
        row = 0
        for record in reader:
            if not record:
                continue
            if len(record) < width:
                raise DataError(f"line {reader.line_num}: expected {width} fields, saw "
                                f"{len(record)}", path=str(p), row=row)
            row += 1


def _load_npz(p: Path) -> Dataset:
    path = str(p)
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise DataError(f"cannot read NPZ without pickle: {exc}", path=path) from None
    except Exception as exc:  # zipfile / OS errors for corrupt files
        raise DataError(f"cannot read NPZ: {exc}", path=path) from None
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"NPZ needs arrays 'X' and 'y' (has {sorted(arrays)})", path=path)
    x, y = arrays["X"], arrays["y"]
    if y.ndim != 1:
        raise DataError(f"'y' must be 1-D, got shape {y.shape}", path=path)
    if len(x) != len(y):
        raise DataError(f"'X' has {len(x)} rows but 'y' has {len(y)}", path=path,
                        row=min(len(x), len(y)))
    if len(y) == 0:
        raise DataError("file has no rows", path=path)
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        raise DataError(f"'X' must be numeric, got {x.dtype}", path=path)
    flat = x.reshape(len(x), -1).astype(np.float64)
    bad = np.flatnonzero(np.isinf(flat).any(axis=1))
    if len(bad):
        raise DataError("'X' has inf", path=path, row=int(bad[0]))
    missing = np.isnan(flat)
    if missing.any() and x.ndim != 2:
        raise DataError("'X' has NaN pixels (a missing pixel cannot be imputed)", path=path,
                        row=int(np.flatnonzero(missing.any(axis=1))[0]))
    codes, classes, kind = label_codes(y, path)
    if "classes" in arrays and kind == "int":
        names = [str(c) for c in arrays["classes"].tolist()]
        uniq = [int(c) for c in classes]
        if uniq and max(uniq) < len(names) and min(uniq) >= 0:
            codes = np.asarray(uniq)[codes]
            classes = tuple(names)
            kind = "npz-classes"  # written back as int codes plus the 'classes' array
    check_classes(len(classes), len(y), label="y", path=path)
    ids = arrays["ids"].astype(str).astype(object) if "ids" in arrays else None
    # what a writer needs to give the same arrays back: X's dtype and shape
    meta = {"label_kind": kind, "format": "npz", "x_dtype": str(x.dtype),
            "x_ndim": str(x.ndim), "npz_keys": ",".join(sorted(arrays))}
    if x.ndim == 2:
        names_arr = arrays.get("feature_names")
        names_t = tuple(str(n) for n in names_arr) if names_arr is not None else ()
        if missing.any():
            x, names_t, meta["npz_missing"] = _impute_missing(flat, names_t, path)
        return Dataset(labels=codes, classes=classes, features=x, ids=ids,
                       feature_names=names_t, source=path, meta=meta)
    if x.ndim in (3, 4):
        return Dataset(labels=codes, classes=classes, images=x, ids=ids, source=path, meta=meta)
    raise DataError(f"'X' must be N x D, N x H x W or N x H x W x C, got shape {x.shape}",
                    path=path)


def _impute_missing(x: np.ndarray, names: tuple[str, ...], path: str
                   ) -> tuple[np.ndarray, tuple[str, ...], str]:
    """NaN in an N x D feature matrix, handled as tables handle missing cells.

    Each column with NaN gets its median in the empty cells and an indicator column
    ``"NAME (missing)"`` (1.0 where the cell was missing), appended after the D
    columns. Returns the matrix, the names and the indices of the columns that had
    NaN (comma-separated: the NPZ writer puts NaN back from the indicators).

    Examples
    --------
    >>> x = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]])
    >>> filled, names, cols = _impute_missing(x, ("a", "b"), "<x>")
    >>> filled[0].tolist(), names, cols
    ([1.0, 6.0, 1.0], ('a', 'b', 'b (missing)'), '1')
    """
    names = names or tuple(f"f{j}" for j in range(x.shape[1]))
    missing = np.isnan(x)
    cols = np.flatnonzero(missing.any(axis=0))
    empty = [int(j) for j in cols if missing[:, j].all()]
    if empty:
        raise DataError(f"'X' column {names[empty[0]]} has no values (every cell is NaN)",
                        path=path)
    fill = np.nanmedian(x[:, cols], axis=0)
    filled = x.copy()
    filled[:, cols] = np.where(missing[:, cols], fill, x[:, cols])
    matrix = np.hstack([filled, missing[:, cols].astype(x.dtype)])
    return (matrix, (*names, *(f"{names[j]} (missing)" for j in cols)),
            ",".join(str(int(j)) for j in cols))


def _load_jsonl(p: Path, *, label: str, text_column: str) -> Dataset:
    """One JSON object per line with a non-empty string text and a scalar label."""
    path = str(p)
    texts: list[str] = []
    labels: list[object] = []
    lines: list[int] = []
    for row, raw in enumerate(p.read_bytes().split(b"\n")):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason})", path=path, row=row) from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, row=row) from None
        if not isinstance(obj, dict) or text_column not in obj or label not in obj:
            raise DataError(f"each line needs '{text_column}' and '{label}'", path=path,
                            row=row)
        text, value = obj[text_column], obj[label]
        if not isinstance(text, str):
            raise DataError(f"'{text_column}' must be a string", path=path, row=row)
        if not text.strip():
            raise DataError(f"'{text_column}' is empty", path=path, row=row)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise DataError(f"'{label}' must be a string or a number, got "
                            f"{type(value).__name__}", path=path, row=row)
        texts.append(text)
        labels.append(value)
        lines.append(row)
    if not texts:
        raise DataError("file has no rows", path=path)
    if len({isinstance(v, str) for v in labels}) > 1:
        first = next(i for i, v in enumerate(labels) if isinstance(v, str) != isinstance(
            labels[0], str))
        raise DataError(f"'{label}' mixes strings and numbers", path=path, row=lines[first])
    codes, classes, kind = label_codes(pd.Series(labels), path, label=label)
    check_classes(len(classes), len(labels), label=label, path=path)
    return Dataset(labels=codes, classes=classes, texts=tuple(texts), source=path,
                   label_column=label, meta={"label_kind": kind, "format": "jsonl"})


def _load_image_folder(root: Path) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError("image folder has no class sub-folders (expected root/<class>/<file>.png)",
                        path=str(root))
    images: list[np.ndarray] = []
    labels: list[int] = []
    files: list[str] = []
    shape: tuple[int, ...] | None = None
    for code, d in enumerate(class_dirs):
        for f in sorted(d.iterdir()):
            if f.name.startswith(".") or f.is_dir():
                continue
            row = len(images)
            try:
                with Image.open(f) as im:
                    arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
            except (UnidentifiedImageError, OSError):
                raise DataError("not a readable image", path=str(f), row=row) from None
            if arr.ndim == 2:
                arr = arr[..., None]
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(f"image is {arr.shape}, others are {shape}", path=str(f), row=row)
            images.append(arr)
            labels.append(code)
            files.append(str(f.relative_to(root)))
    if not images:
        raise DataError("image folder has no images", path=str(root))
    return Dataset(
        labels=np.asarray(labels), classes=tuple(d.name for d in class_dirs),
        images=np.stack(images), source=str(root),
        meta={"label_kind": "str", "format": "folder", "files": json.dumps(files)},
    )


def load_embeddings(path: str | Path, n_rows: int) -> np.ndarray:
    """User-supplied embeddings: a .npy array or an .npz with one array, N x K, no pickle.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> path = tempfile.mkdtemp() + "/emb.npy"
    >>> np.save(path, np.zeros((4, 2)))
    >>> load_embeddings(path, 4).shape
    (4, 2)
    """
    p = Path(path)
    if not p.exists():
        raise DataError("no such embeddings file", path=str(p))
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = loaded.files
                key = "embeddings" if "embeddings" in keys else None
                if key is None and len(keys) == 1:
                    key = keys[0]
                if key is None:
                    raise DataError(f"NPZ needs one array or 'embeddings' (has {keys})",
                                    path=str(p))
                arr = loaded[key]
        else:
            arr = loaded
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read embeddings without pickle: {exc}", path=str(p)) from None
    if arr.ndim != 2 or len(arr) != n_rows:
        raise DataError(f"embeddings must be {n_rows} x K, got shape {arr.shape}", path=str(p))
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"embeddings must be numeric, got {arr.dtype}", path=str(p))
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise DataError("embeddings have NaN or inf", path=str(p), row=int(bad[0]))
    return np.asarray(arr, dtype=np.float32)
