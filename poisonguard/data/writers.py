"""Write datasets back to files, atomically, in the format the path asks for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from poisonguard.data.dataset import Dataset
from poisonguard.data.files import atomic_path
from poisonguard.errors import UsageError

__all__ = ["dataset_to_table", "label_values", "save_dataset", "save_table"]


def label_values(dataset: Dataset, codes: np.ndarray | None = None) -> np.ndarray:
    """Labels as the user wrote them (integers where the input had integers).

    ``codes`` (default: the dataset's own labels) are label codes into its classes.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> label_values(builtin_dataset("wine"))[:3].tolist()
    [0, 0, 0]
    """
    codes = dataset.labels if codes is None else codes
    if dataset.meta.get("label_kind") == "npz-classes":
        return np.asarray(codes, dtype=np.int64)
    names = np.asarray(dataset.classes, dtype=object)[codes]
    if dataset.meta.get("label_kind") == "int":
        return names.astype(np.int64)
    return names


def dataset_to_table(dataset: Dataset) -> pd.DataFrame:
    """A tabular or text dataset as a DataFrame with its label column last.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> table = dataset_to_table(builtin_dataset("wine"))
    >>> table.shape, table.columns[-1]
    ((178, 14), 'label')
    """
    if dataset.features is not None:
        table = pd.DataFrame(dataset.features, columns=list(dataset.feature_names))
    elif dataset.texts is not None:
        table = pd.DataFrame({"text": list(dataset.texts)})
    else:
        raise UsageError("images are written as .npz, not as a table")
    table[dataset.label_column] = label_values(dataset)
    return table


def save_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a DataFrame as CSV or Parquet (by suffix), atomically.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> path = tempfile.mkdtemp() + "/t.parquet"
    >>> save_table(pd.DataFrame({"a": [1, 2], "label": ["x", "y"]}), path)
    >>> pd.read_parquet(path).shape
    (2, 2)
    """
    p = Path(path)
    suffix = p.suffix.lower()
    with atomic_path(p, suffix=suffix) as tmp:
        if suffix == ".csv":
            table.to_csv(tmp, index=False)
        elif suffix in {".parquet", ".pq"}:
            table.to_parquet(tmp, index=False)
        else:
            raise UsageError(f"{p}: tables are written as .csv or .parquet")


def _npz_x(dataset: Dataset) -> np.ndarray:
    """X as it was read: the input's shape (N x H x W stays so) and dtype."""
    x = dataset.matrix() if dataset.images is None else dataset.images
    if dataset.meta.get("npz_missing"):  # imputed on load: NaN back, indicators dropped
        cols = [int(j) for j in dataset.meta["npz_missing"].split(",")]
        width = x.shape[1] - len(cols)
        x = x[:, :width].astype(np.float64)
        x[:, cols] = np.where(dataset.matrix()[:, width:] >= 0.5, np.nan, x[:, cols])
    if dataset.images is not None and dataset.meta.get("x_ndim") == "3" and x.shape[-1] == 1:
        x = x[..., 0]
    dtype = np.dtype(dataset.meta.get("x_dtype", "float32"))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = np.clip(np.round(x), info.min, info.max)
    return np.asarray(x, dtype=dtype)


def save_dataset(dataset: Dataset, path: str | Path) -> None:
    """Write ``dataset`` to ``path``: .csv/.parquet (tabular, text), .npz, .jsonl (text).

    Parameters
    ----------
    dataset
        What to write.
    path
        The suffix picks the format.

    Examples
    --------
    >>> import tempfile
    >>> from poisonguard.data import load_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> path = tempfile.mkdtemp() + "/wine.parquet"
    >>> save_dataset(builtin_dataset("wine"), path)
    >>> len(load_dataset(path))
    178
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in {".csv", ".parquet", ".pq"}:
        save_table(dataset_to_table(dataset), p)
    elif suffix == ".npz":
        y = label_values(dataset)
        arrays: dict[str, np.ndarray] = {"X": _npz_x(dataset),
                                         "y": y.astype(str) if y.dtype == object else y}
        if dataset.features is not None:
            arrays["feature_names"] = np.asarray(dataset.feature_names[:arrays["X"].shape[1]],
                                                 dtype=str)
        if dataset.meta.get("label_kind") == "npz-classes":
            arrays["classes"] = np.asarray(dataset.classes, dtype=str)
        if dataset.meta.get("format") == "npz" and "ids" in dataset.meta.get("npz_keys", ""):
            arrays["ids"] = np.asarray(dataset.ids, dtype=str)
        with atomic_path(p, suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    elif suffix in {".jsonl", ".ndjson"}:
        if dataset.texts is None:
            raise UsageError(f"{p}: only text datasets are written as JSONL")
        values = label_values(dataset)
        lines = [
            json.dumps({"text": t, dataset.label_column: v.item() if hasattr(v, "item") else v})
            for t, v in zip(dataset.texts, values, strict=True)
        ]
        with atomic_path(p, suffix=suffix) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        raise UsageError(f"{p}: cannot write '{p.suffix}' (use .csv, .parquet, .npz or .jsonl)")
