"""Trigger candidates from categorical columns: rare combinations of common categories.

A categorical backdoor sets two or more categorical cells of a typed table to
categories the column already has ("PID = 5" and "educ = 1"), so that only their
*combination* is rare. Each category alone is held by many rows, so the item mining
of :func:`~poisonguard.detect.trigger_search.mine_triggers` (items whose row sets
almost coincide) never links them. :func:`category_pairs` counts every pair of
categories of two different columns per class (one sparse product per class) and
returns each pair held by enough rows as a
:class:`~poisonguard.detect.trigger_search.TriggerCandidate`, with the binomial tail
of its majority class, for the ``trigger`` detector's label and masking tests. It
also returns how many pairs it examined, so that the detector's Bonferroni family
counts every one of them. Plain functions, usable alone.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.stats import binom

from poisonguard.data.schema import TableSchema
from poisonguard.detect.trigger_search import TriggerCandidate, rows_matching

__all__ = ["category_pairs"]


def _category_columns(schema: TableSchema) -> tuple[np.ndarray, np.ndarray]:
    """(encoded column, original column number) of every category one-hot column."""
    cols: list[int] = []
    owner: list[int] = []
    for k, c in enumerate(schema.used):
        if c.kind == "categorical" and len(c.values) >= 2:
            cols += range(c.start, c.start + len(c.values))
            owner += [k] * len(c.values)
    return np.asarray(cols, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def category_pairs(x: np.ndarray, labels: np.ndarray, n_classes: int,
                   schema: TableSchema | None, *, min_rows: int = 5, max_fraction: float = 0.2,
                   min_purity: float = 0.8) -> tuple[list[TriggerCandidate], int]:
    """Pairs of categories (two different columns) held together by ``min_rows`` to
    ``max_fraction`` of the rows, as trigger candidates; and the number of pairs examined.

    Only pairs whose rows are at least ``min_purity`` one class become candidates (the
    detector tests no others); every pair in the size range counts as examined.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from poisonguard.datasets import open_dataset
    >>> t = pd.DataFrame({"a": ["u", "v"] * 50, "b": ["p", "q", "r", "s"] * 25,
    ...                   "label": ["x", "y"] * 50})
    >>> ds = open_dataset(t, label="label")
    >>> found, examined = category_pairs(ds.matrix(), ds.labels, 2, ds.schema, max_fraction=0.5)
    >>> examined, [ds.feature_names[f] for f in found[0].features], found[0].n_rows
    (4, ['a = u', 'b = p'], 25)
    """
    if schema is None:
        return [], 0
    cols, owner = _category_columns(schema)
    x = np.asarray(x)
    y = np.asarray(labels)
    n = len(x)
    lo, hi = max(int(min_rows), 2), int(max_fraction * n)
    if len(np.unique(owner)) < 2 or hi < lo:
        return [], 0
    held = sparse.csr_matrix((x[:, cols] >= 0.5).astype(np.int32))
    per_class = []
    for k in range(n_classes):
        part = held[y == k]
        per_class.append((part.T @ part).toarray())
    counts = np.stack(per_class)  # classes x items x items
    total = counts.sum(axis=0)
    i_idx, j_idx = np.nonzero(np.triu(total, k=1))
    keep = (owner[i_idx] != owner[j_idx]) & (total[i_idx, j_idx] >= lo) \
        & (total[i_idx, j_idx] <= hi)
    i_idx, j_idx = i_idx[keep], j_idx[keep]
    examined = len(i_idx)
    pure = counts[:, i_idx, j_idx].max(axis=0) >= min_purity * total[i_idx, j_idx]
    i_idx, j_idx = i_idx[pure], j_idx[pure]
    base = np.bincount(y, minlength=n_classes) / max(n, 1)
    singles = np.diag(total)
    out: list[TriggerCandidate] = []
    for i, j in zip(i_idx.tolist(), j_idx.tolist(), strict=True):
        by_class = counts[:, i, j]
        c = int(by_class.argmax())
        together = int(total[i, j])
        features = (int(cols[i]), int(cols[j]))
        rows = rows_matching(x, features, (1.0, 1.0))
        expected = singles[i] * singles[j] / max(n, 1)
        out.append(TriggerCandidate(
            core=features, features=features, values=(1.0, 1.0), rows=rows, label=c,
            n_label=int(by_class[c]),
            label_p=float(binom.sf(by_class[c] - 1, together, base[c])),
            jaccard=together / max(singles[i] + singles[j] - together, 1),
            log10_lift=float(np.log10(together / max(expected, 1e-300))),
            outside=float(np.median([singles[i] - together, singles[j] - together]))
            / together))
    out.sort(key=lambda t: (t.label_p, -t.n_rows))
    return out, examined
