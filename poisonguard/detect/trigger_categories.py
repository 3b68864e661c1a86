"""Trigger candidates from categorical columns: rare combinations of common categories.

A categorical backdoor sets two or more categorical cells of a typed table to
categories the column already has ("PID = 5" and "educ = 1"), so that only their
*combination* is rare. Each category alone is held by many rows, so the item mining
of :func:`~poisonguard.detect.trigger_search.mine_triggers` (items whose row sets
almost coincide) never links them. :func:`category_combinations` mines in the order
the ``categorical-trigger`` attack builds them: every pair of categories of two
different columns per class (one sparse product per class), then triples grown from
the pairs that do not explain themselves (one sparse product per class over the
pair-holder columns; a table where every pair exists, such as fair's marriage rating
x religiousness x husband's occupation, only has new triples). Each combination held
by enough rows, mostly of one class, is a
:class:`~poisonguard.detect.trigger_search.TriggerCandidate`, with the binomial tail
of its majority class, for the ``trigger`` detector's label and masking tests. It
also returns how many combinations it examined, so that the detector's Bonferroni
family counts every one of them. Plain functions, usable alone.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import sparse
from scipy.stats import binom

from poisonguard.data.schema import TableSchema
from poisonguard.detect.trigger_search import TriggerCandidate, rows_matching

__all__ = ["MAX_PAIRS_EXTENDED", "category_combinations"]

#: At most this many category pairs (the largest in the size range) grow into triples.
MAX_PAIRS_EXTENDED = 2_000
#: A one-class pair whose majority-class rows share a third category this often is
#: reported as the triple.
SHARED_THIRD = 0.9


def _category_columns(schema: TableSchema) -> tuple[np.ndarray, np.ndarray]:
    """(encoded column, original column number) of every category one-hot column."""
    cols: list[int] = []
    owner: list[int] = []
    for k, c in enumerate(schema.used):
        if c.kind == "categorical" and len(c.values) >= 2:
            cols += range(c.start, c.start + len(c.values))
            owner += [k] * len(c.values)
    return np.asarray(cols, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def _candidate(x: np.ndarray, items: tuple[int, ...], by_class: np.ndarray,
               singles: np.ndarray, pair_total: np.ndarray, base: np.ndarray,
               cols: np.ndarray) -> TriggerCandidate:
    """The trigger candidate of the category items ``items`` (positions into ``cols``)."""
    n = len(x)
    c = int(by_class.argmax())
    together = int(by_class.sum())
    features = tuple(int(cols[i]) for i in items)
    expected = float(np.prod(singles[list(items)].astype(np.float64))) / max(n, 1) ** (
        len(items) - 1)
    jaccards = [pair_total[i, j] / max(singles[i] + singles[j] - pair_total[i, j], 1)
                for i, j in itertools.combinations(items, 2)]
    return TriggerCandidate(
        core=features, features=features, values=(1.0,) * len(items),
        rows=rows_matching(x, features, (1.0,) * len(items)), label=c,
        n_label=int(by_class[c]), label_p=float(binom.sf(by_class[c] - 1, together, base[c])),
        jaccard=float(np.median(jaccards)),
        log10_lift=float(np.log10(together / max(expected, 1e-300))),
        outside=float(np.median(singles[list(items)] - together)) / together)


def _narrowed(x: np.ndarray, y: np.ndarray, held: sparse.csr_matrix, owner: np.ndarray,
              pair: tuple[int, int], by_class: np.ndarray, singles: np.ndarray,
              pair_total: np.ndarray, base: np.ndarray, cols: np.ndarray,
              n_classes: int) -> TriggerCandidate:
    """A one-class pair, or the triple it narrows to: when at least
    :data:`SHARED_THIRD` of the pair's majority-class rows also share one category of a
    third column, the trigger is that triple (a triple stamped where the pair was rare
    makes the pair one class too; the pair would also name its natural holders)."""
    i, j = pair
    c = int(by_class.argmax())
    rows = (held[:, i].multiply(held[:, j])).toarray().ravel() > 0
    third = np.asarray(held[rows & (y == c)].sum(axis=0)).ravel()
    third[(owner == owner[i]) | (owner == owner[j])] = -1
    k = int(third.argmax())
    if third[k] < SHARED_THIRD * by_class[c]:
        return _candidate(x, pair, by_class, singles, pair_total, base, cols)
    narrow = rows & (held[:, k].toarray().ravel() > 0)
    return _candidate(x, tuple(sorted((i, j, k))), np.bincount(y[narrow], minlength=n_classes),
                      singles, pair_total, base, cols)


def category_combinations(x: np.ndarray, labels: np.ndarray, n_classes: int,
                          schema: TableSchema | None, *, min_rows: int = 5,
                          max_fraction: float = 0.2, min_purity: float = 0.8,
                          max_pairs: int = MAX_PAIRS_EXTENDED
                          ) -> tuple[list[TriggerCandidate], int]:
    """Pairs, then triples, of categories (of different columns) held together by
    ``min_rows`` to ``max_fraction`` of the rows, as trigger candidates; and the number
    of combinations examined.

    Only combinations whose rows are at least ``min_purity`` one class become
    candidates (the detector tests no others); every one in the size range counts as
    examined. A one-class pair whose majority-class rows (nearly all, ``SHARED_THIRD``)
    share a third category is reported as that triple. A triple is examined only when
    none of its three pairs is itself such a one-class candidate (the smaller
    combination explains those rows); triples grow from at most the ``max_pairs``
    largest pairs (the cost bound).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from poisonguard.datasets import open_dataset
    >>> t = pd.DataFrame({"a": ["u", "v"] * 50, "b": ["p", "q", "r", "s"] * 25,
    ...                   "label": ["x", "y"] * 50})
    >>> ds = open_dataset(t, label="label")
    >>> found, examined = category_combinations(ds.matrix(), ds.labels, 2, ds.schema,
    ...                                         max_fraction=0.5)
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
    members = [np.flatnonzero(y == k) for k in range(n_classes)]
    counts = np.stack([(held[m].T @ held[m]).toarray() for m in members])  # C x I x I
    total = counts.sum(axis=0)
    singles = np.diag(total)
    base = np.bincount(y, minlength=n_classes) / max(n, 1)
    i_idx, j_idx = np.nonzero(np.triu(total, k=1))
    enough = (owner[i_idx] != owner[j_idx]) & (total[i_idx, j_idx] >= lo)
    i_idx, j_idx = i_idx[enough], j_idx[enough]
    size = total[i_idx, j_idx]
    in_range = size <= hi
    examined = int(in_range.sum())
    pure = in_range & (counts[:, i_idx, j_idx].max(axis=0) >= min_purity * size)
    pure_pair = np.zeros_like(total, dtype=bool)
    pure_pair[i_idx[pure], j_idx[pure]] = True
    out = [_narrowed(x, y, held, owner, (i, j), counts[:, i, j], singles, total, base, cols,
                     n_classes)
           for i, j in zip(i_idx[pure].tolist(), j_idx[pure].tolist(), strict=True)]
    # Triples (columns in schema order) grown from every pair held by enough rows that
    # is not itself a candidate (a triple's rows are a subset of each of its pairs').
    grow = np.flatnonzero(~pure)
    grow = grow[np.argsort(-size[grow], kind="stable")][:max_pairs]
    if len(grow) and len(np.unique(owner)) >= 3:
        a, b = i_idx[grow], j_idx[grow]
        both = held[:, a].multiply(held[:, b]).tocsc()  # N x pairs: rows holding each pair
        triple = [(both[m].T @ held[m]).tocsr() for m in members]  # C sparse P x I
        t_total = sum(triple[1:], triple[0]).tocoo()
        p_idx, k_idx, size = t_total.row, t_total.col, t_total.data
        ok = (owner[k_idx] > owner[b[p_idx]]) & (size >= lo) & (size <= hi) \
            & ~pure_pair[a[p_idx], k_idx] & ~pure_pair[b[p_idx], k_idx]
        p_idx, k_idx, size = p_idx[ok], k_idx[ok], size[ok]
        examined += len(p_idx)
        by_class = np.stack([np.asarray(t[p_idx, k_idx]).ravel() for t in triple]) \
            if len(p_idx) else np.zeros((n_classes, 0))
        one_class = np.flatnonzero(by_class.max(axis=0, initial=0) >= min_purity * size)
        out += [_candidate(x, (int(a[p_idx[q]]), int(b[p_idx[q]]), int(k_idx[q])),
                           by_class[:, q], singles, total, base, cols)
                for q in one_class.tolist()]
    out.sort(key=lambda t: (t.label_p, -t.n_rows))
    return out, examined
