"""Write a poisoned dataset as the user's own file: same type, schema, order and dtypes.

A table attack changes cells of the encoded matrix; this module carries only those
changes back into the original table. Untouched cells are the input's own values
(read again from the file, never decoded), changed cells are decoded into the
column's dtype (categories by name, integers as integers, dates as dates), added
rows get fresh ids and, for the columns the features leave out (free text, ids),
the values of the nearest real row. NPZ keeps the input's shape and dtype.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from poisonguard.attack.truth import AttackResult
from poisonguard.data import (
    Dataset,
    label_codes,
    load_table,
    save_dataset,
    save_table,
)
from poisonguard.data.loaders import TABLE_SUFFIXES
from poisonguard.errors import DataError, UsageError

__all__ = ["check_output", "poisoned_table", "save_poisoned"]


def _is_table_file(dataset: Dataset) -> bool:
    return dataset.schema is not None and Path(dataset.source).suffix.lower() in TABLE_SUFFIXES \
        and Path(dataset.source).is_file()


def check_output(dataset: Dataset, out: str | Path) -> None:
    """Refuse an output the poisoned data cannot be written to faithfully."""
    suffix = Path(out).suffix.lower()
    if _is_table_file(dataset):
        want = Path(dataset.source).suffix.lower()
        if suffix != want:
            raise UsageError(f"{out}: attack writes the input's file type ({want}), so that "
                             "the poisoned file keeps its schema")
        return
    allowed = {"image": {".npz"}, "text": {*TABLE_SUFFIXES, ".jsonl", ".ndjson"}}.get(
        dataset.modality, {*TABLE_SUFFIXES, ".npz"})
    if suffix not in allowed:
        raise UsageError(f"{out}: {dataset.modality} data is written as "
                         f"{' or '.join(sorted(allowed))}")


def _label_values(column: pd.Series, dataset: Dataset, codes: np.ndarray) -> pd.Series:
    """Class codes as cells of the label column, in its own dtype."""
    original, classes, _ = label_codes(column, dataset.source, label=dataset.label_column)
    if classes != dataset.classes:
        raise DataError("the file changed since it was loaded", path=dataset.source)
    first = {int(c): i for i, c in reversed(list(enumerate(original)))}
    picks = column.iloc[[first[int(c)] for c in codes]]
    return pd.Series(picks.to_numpy(), dtype=column.dtype)


def _fresh_ids(column: pd.Series, n: int) -> pd.Series:
    if pd.api.types.is_integer_dtype(column):
        start = int(column.max()) + 1
        return pd.Series(np.arange(start, start + n), dtype=column.dtype)
    taken = set(column.astype(str))
    out: list[str] = []
    k = 0
    while len(out) < n:
        k += 1
        name = f"poison-{k}"
        if name not in taken:
            out.append(name)
    return pd.Series(out, dtype=column.dtype)


def _nearest(original: np.ndarray, added: np.ndarray) -> np.ndarray:
    """Index of the nearest original row (standardised features) for each added row."""
    from sklearn.neighbors import NearestNeighbors

    sd = original.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    nn = NearestNeighbors(n_neighbors=1).fit(original / sd)
    return np.asarray(nn.kneighbors(added / sd, return_distance=False)[:, 0])


def poisoned_table(table: pd.DataFrame, original: Dataset, result: AttackResult) -> pd.DataFrame:
    """``table`` with the attack's changes: changed cells, then appended rows."""
    schema, poisoned = original.schema, result.dataset
    if schema is None or original.features is None or poisoned.features is None:
        raise UsageError("only typed tables are written back cell by cell")
    n0 = len(original)
    label = original.label_column
    id_col = next((c for c in table.columns if str(c) == original.meta.get("id_column")), None)
    rest = [c for c in table.columns if c != label and c != id_col]
    out = table.copy()
    moved = np.flatnonzero(poisoned.labels[:n0] != original.labels)
    if len(moved):
        values = _label_values(table[label], original, poisoned.labels[moved])
        col = out[label].copy()
        col.iloc[moved] = values.to_numpy()
        out[label] = col
    diff = np.abs(poisoned.features[:n0] - original.features) > 0
    for c in schema.used:
        rows = np.flatnonzero(diff[:, c.start:c.stop].any(axis=1))
        if not len(rows):
            continue
        decoded = schema.decode(poisoned.features[rows], table[rest])[c.name]
        col = out[_column(table, c.name)].copy()
        col.iloc[rows] = decoded.to_numpy()
        out[_column(table, c.name)] = col.astype(table[_column(table, c.name)].dtype)
    added = len(poisoned) - n0
    if not added:
        return out
    new = schema.decode(poisoned.features[n0:], table[rest])
    nearest = _nearest(original.features, poisoned.features[n0:])
    extra: dict[object, pd.Series] = {}
    for col_name in table.columns:
        if col_name == label:
            extra[col_name] = _label_values(table[label], original, poisoned.labels[n0:])
        elif col_name == id_col:
            extra[col_name] = _fresh_ids(table[col_name], added)
        elif schema.columns[rest.index(col_name)].kind == "excluded":
            extra[col_name] = table[col_name].iloc[nearest].reset_index(drop=True)
        else:
            extra[col_name] = new[str(col_name)]
    appended = pd.DataFrame(extra, columns=table.columns)
    both = pd.concat([out, appended], ignore_index=True)
    return both.astype(table.dtypes.to_dict())


def _column(table: pd.DataFrame, name: str) -> object:
    return next(c for c in table.columns if str(c) == name)


def save_poisoned(result: AttackResult, original: Dataset, out: str | Path) -> None:
    """Write the poisoned data to ``out`` in the input's own form (atomic).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.attack import run_attack
    >>> from poisonguard.datasets import open_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> table = pd.DataFrame({"length": [float(i % 9) for i in range(60)],
    ...                       "island": ["north", "south", "west"] * 20,
    ...                       "species": ["adelie", "gentoo"] * 30})
    >>> table.to_csv(tmp / "birds.csv", index=False)
    >>> ds = open_dataset(tmp / "birds.csv", label="species")
    >>> save_poisoned(run_attack("flip", ds, rate=0.1), ds, tmp / "poisoned.csv")
    >>> poisoned = pd.read_csv(tmp / "poisoned.csv")
    >>> list(poisoned.columns), int((poisoned["species"] != table["species"]).sum())
    (['length', 'island', 'species'], 6)
    >>> poisoned.drop(columns="species").equals(table.drop(columns="species"))
    True
    """
    check_output(original, out)
    if _is_table_file(original):
        table = load_table(original.source)
        if len(table) != len(original):
            raise DataError("the file changed since it was loaded", path=original.source)
        save_table(poisoned_table(table, original, result), out)
        return
    save_dataset(result.dataset, out)
