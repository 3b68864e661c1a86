"""Trigger search in input space: small sets of features whose shared values mark a subset.

A backdoor trigger stamps the same values on the same few features of every poisoned
row (a BadNets patch, fixed values in k tabular columns). In clean data, exact
values on several features rarely coincide, so the trigger shows as a set of
(feature, value) *items* whose row sets are almost identical (Jaccard near 1), far
beyond what independence predicts. :func:`mine_triggers` finds such item sets with
one sparse co-occurrence product; the detectors (``trigger``, ``cleanlabel``) then
decide which of them are backdoors. Plain functions, usable alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.stats import binom

from poisonguard.data import Dataset
from poisonguard.detect.item_pairs import similar_pairs
from poisonguard.detect.overlap import tarone_family
from poisonguard.memo import content_key, remember
from poisonguard.params import Constraint, Interval

__all__ = [
    "MINING_CONSTRAINTS",
    "TriggerCandidate",
    "category_blocks",
    "covers_most_columns",
    "describe_features",
    "held_elsewhere",
    "in_marking_range",
    "label_family",
    "label_floor",
    "marked_share",
    "marking_purity",
    "mine_triggers",
    "named_by_category",
    "needed_matches",
    "piled_ends",
    "rows_matching",
    "share_with_copies",
    "single_value_families",
    "single_values",
    "table_columns",
]

#: Rows (or, for per-column work, columns) read at a time: the search reads the data
#: in its stored dtype (uint8 pixels stay uint8) and never makes a full-size copy.
CHUNK = 4_096

#: Constraints of the parameters that the detectors built on :func:`mine_triggers`
#: (``trigger``, ``cleanlabel``) share: the mining ones, the level of the label test
#: and the purity of a subset.
MINING_CONSTRAINTS: dict[str, Constraint] = {
    "alpha": Interval(float, 0, 1, closed="neither"),
    "min_purity": Interval(float, 0, 1, closed="right"),
    "min_rows": Interval(int, 2, None),
    "max_fraction": Interval(float, 0, 1, closed="right"),
    "min_jaccard": Interval(float, 0, 1, closed="right"),
    "max_rows": Interval(int, 100, None),
    "seed": Interval(int, 0, None),
}


@dataclass(frozen=True, eq=False)
class TriggerCandidate:
    """An item set (features with shared values) and the rows of the whole data carrying it.

    ``core`` features define ``rows``; ``features``/``values`` add the columns that
    (almost) every one of those rows also shares at an unusual value (the full patch).
    ``label`` is the majority class of ``rows``; ``label_p`` the binomial tail
    probability of that many rows of the class given its base rate (uncorrected).
    ``jaccard`` is the median Jaccard index between the core items' row sets;
    ``log10_lift`` compares the rows carrying every core item to independence;
    ``outside`` is how many rows outside the subset hold a core value (median over
    the core items), per row of the subset.
    """

    core: tuple[int, ...]
    features: tuple[int, ...]
    values: tuple[float, ...]
    rows: np.ndarray
    label: int
    n_label: int
    label_p: float
    jaccard: float
    log10_lift: float
    outside: float

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def purity(self) -> float:
        return self.n_label / max(len(self.rows), 1)


def needed_matches(k: int) -> int:
    """How many of ``k`` core items a row must carry to belong to a candidate.

    Small item sets (a few pixels or columns) must match entirely; large ones (a
    blended pattern, which survives only where the image was blank) by half. A 3x3
    patch is large by this count: :func:`mine_triggers` also keeps the rows that carry
    all of a large set, as a second candidate.
    """
    return k if k <= 4 else max(4, -(-k // 2))


def rows_matching(x: np.ndarray, features: tuple[int, ...], values: tuple[float, ...],
                  min_match: int | None = None) -> np.ndarray:
    """Indices of the rows of ``x`` equal to ``values`` on at least ``min_match`` of
    ``features`` (default: all of them). Values are compared exactly whatever the
    dtype of ``x``; rows are read :data:`CHUNK` at a time."""
    need = len(features) if min_match is None else min_match
    return np.flatnonzero(_match_counts(x, features, values) >= need)


def _match_counts(x: np.ndarray, features: tuple[int, ...],
                  values: tuple[float, ...]) -> np.ndarray:
    """How many of ``features`` each row of ``x`` holds at ``values`` (exactly)."""
    cols = list(features)
    want = np.asarray(values, dtype=np.float64)
    hits = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), CHUNK):
        hits[start:start + CHUNK] = (x[start:start + CHUNK][:, cols] == want).sum(axis=1)
    return hits


def _value_counts(column: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(column, return_inverse=True, return_counts=True)``, by counting for
    uint8 (no sort)."""
    if column.dtype != np.uint8:
        return np.unique(column, return_inverse=True, return_counts=True)
    every = np.bincount(column, minlength=256)
    uniq = np.flatnonzero(every)
    rank = np.zeros(256, dtype=np.int64)
    rank[uniq] = np.arange(len(uniq))
    return uniq.astype(np.uint8), rank[column], every[uniq]


def _items(x: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, sparse.csc_matrix]:
    """(feature, value) items whose count lies in [lo, hi], as an N x I binary matrix.

    Every such item is kept: a cap on the number of items (keeping the rarest) drops
    exactly the patch pixels of images whose natural values are as frequent.
    """
    feats: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    # Each item's rows (ascending), item after item, written into one int32 buffer: a
    # row holds at most one item per feature, so N x D entries bound it (pages never
    # written are never touched); no per-feature pieces to concatenate.
    indices = np.empty(x.shape[0] * x.shape[1], dtype=np.int32)
    filled = 0
    width = CHUNK // 64 or 1  # columns read at a time (contiguous, then one by one)
    for j in range(x.shape[1]):
        if j % width == 0:
            block = np.ascontiguousarray(x[:, j:j + width].T)
        uniq, inverse, cnt = _value_counts(block[j % width])
        keep = (cnt >= lo) & (cnt <= hi)
        if not keep.any():
            continue
        code = np.full(len(uniq), -1, dtype=np.int64)
        code[keep] = np.arange(int(keep.sum()))
        item_of_row = code[inverse.ravel()]
        hit = np.flatnonzero(item_of_row >= 0)
        indices[filled:filled + len(hit)] = hit[np.argsort(item_of_row[hit], kind="stable")]
        filled += len(hit)
        sizes.append(cnt[keep])
        feats.append(np.full(int(keep.sum()), j))
        vals.append(uniq[keep])
    if not feats:
        return np.zeros(0, int), np.zeros(0), sparse.csc_matrix((len(x), 0))
    feat = np.concatenate(feats)
    val = np.concatenate(vals)
    # Built in CSC form directly (int32 row indices, sorted within each item): the
    # same matrix as from (row, item) pairs, without their int64 copies.
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(sizes))])
    b = sparse.csc_matrix((np.ones(filled, dtype=np.float32), indices[:filled], indptr),
                          shape=(len(x), len(feat)))
    return feat, val, b


def _peel(members: list[int], jac: np.ndarray, b: sparse.csc_matrix, lo: int) -> list[int]:
    """Drop the least-connected item until the rows carrying every item number >= lo."""
    members = list(members)
    while len(members) >= 2:
        hits = np.asarray(b[:, members].sum(axis=1)).ravel()
        all_rows = hits >= needed_matches(len(members))
        if all_rows.sum() >= lo:
            return members
        sub = jac[np.ix_(members, members)]
        members.pop(int(np.argmin(sub.sum(axis=1))))
    return []


def _extend(x: np.ndarray, rows: np.ndarray, core: tuple[int, ...], core_vals: tuple[float, ...],
            share: float, common: float) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Core features plus the columns on which ``share`` of ``rows`` hold one unusual value.

    Read a block of columns (of ``rows``), then a block of rows, at a time."""
    d = x.shape[1]
    step = max(1, CHUNK // 64)
    mode_vals = np.empty(d, dtype=np.float64)
    share_mode = np.empty(d, dtype=np.float64)
    for j in range(0, d, step):
        sub = x[rows, j:j + step]
        mode_vals[j:j + step] = np.median(sub, axis=0)
        share_mode[j:j + step] = (sub == mode_vals[j:j + step]).mean(axis=0)
    wide = np.flatnonzero(share_mode >= share)
    wide = wide[~np.isin(wide, core)]
    equal = np.zeros(len(wide), dtype=np.int64)
    for start in range(0, len(x), CHUNK):
        equal += (x[start:start + CHUNK][:, wide] == mode_vals[wide]).sum(axis=0)
    usual = equal / max(len(x), 1)
    feats = list(core) + [int(j) for j in wide[usual <= common]]
    vals = list(core_vals) + [float(mode_vals[j]) for j in wide[usual <= common]]
    order = np.argsort(feats)
    return tuple(int(feats[k]) for k in order), tuple(vals[k] for k in order)


def _component_jaccard(b: sparse.csc_matrix, members: list[int], cnt: np.ndarray,
                       min_jaccard: float, lo: int) -> np.ndarray:
    """Exact pairwise Jaccard of the member items, zero below the linking thresholds."""
    sub = b[:, members]
    shared = np.asarray((sub.T @ sub).toarray(), dtype=np.float64)
    c = cnt[members]
    jac = shared / np.maximum(c[:, None] + c[None, :] - shared, 1)
    jac[(jac < min_jaccard) | (shared < lo)] = 0.0
    np.fill_diagonal(jac, 0.0)
    return jac


def mine_triggers(
    x: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    min_rows: int = 5,
    min_fraction: float = 0.001,
    max_fraction: float = 0.2,
    min_jaccard: float = 0.5,
    max_rows: int = 50_000,
    seed: int = 0,
) -> list[TriggerCandidate]:
    """Item sets of two or more features whose shared exact values mark one subset.

    Items (feature, value) held by between ``max(min_rows, min_fraction * n)`` and
    ``max_fraction * n`` rows are linked when their row sets overlap with Jaccard
    index >= ``min_jaccard`` (:func:`~poisonguard.detect.item_pairs.similar_pairs`);
    each connected group of linked items is a candidate, held by the rows that carry
    enough of its items (:func:`needed_matches`); where a large group is carried in
    part by more rows than carry all of it, the rows carrying all of it are a second
    candidate (a blend matched by half, a 3x3 patch in whole). Mining runs on a random
    sample of ``max_rows`` rows and never looks at the labels; candidates are then
    matched on every row of ``x``. Roughly linear in rows. Within a scan, a repeated
    call on the same values and settings returns the same candidates without mining
    again (:func:`poisonguard.memo.remember`).
    """
    x = np.asarray(x)
    y = np.asarray(labels)
    params = (n_classes, min_rows, min_fraction, max_fraction, min_jaccard, max_rows, seed)
    return list(remember("mine_triggers", content_key((x, y), params),
                         lambda: _mine(x, y, *params)))


def _mine(x: np.ndarray, y: np.ndarray, n_classes: int, min_rows: int, min_fraction: float,
          max_fraction: float, min_jaccard: float, max_rows: int,
          seed: int) -> list[TriggerCandidate]:
    """:func:`mine_triggers`, computed."""
    n = len(x)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=max_rows, replace=False)) if n > max_rows else np.arange(n)
    xs = x if len(sample) == n else x[sample]  # the stored values, not a copy
    lo = max(int(min_rows), int(np.ceil(min_fraction * len(xs))))
    hi = int(max_fraction * len(xs))
    if hi < lo:
        return []
    feat, val, b = _items(xs, lo, hi)
    if b.shape[1] < 2:
        return []
    cnt = np.asarray(b.sum(axis=0)).ravel()
    a_idx, b_idx, _, jac_val = similar_pairs(b, min_jaccard=min_jaccard, min_shared=lo,
                                             seed=seed)
    if not len(a_idx):
        return []
    m = b.shape[1]
    graph = sparse.coo_matrix((jac_val, (a_idx, b_idx)), shape=(m, m)).tocsr()
    graph = graph + graph.T
    n_comp, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp, minlength=n_comp)
    base = np.bincount(y, minlength=n_classes) / max(n, 1)
    out: list[TriggerCandidate] = []
    for k in np.flatnonzero(sizes >= 2):
        members = [int(i) for i in np.flatnonzero(comp == k)]
        local = _component_jaccard(b, members, cnt, min_jaccard, lo)
        # Items of one feature cannot co-occur; keep the most connected item per feature.
        best: dict[int, int] = {}
        for pos, item in enumerate(members):
            f = int(feat[item])
            if f not in best or local[pos].sum() > local[best[f]].sum():
                best[f] = pos
        chosen = sorted(best.values())
        if len(chosen) < 2:
            continue
        members = [members[p] for p in chosen]
        jac = local[np.ix_(chosen, chosen)]
        kept = _peel(list(range(len(members))), jac, b[:, members], lo)
        if len(kept) < 2:
            continue
        items = [members[i] for i in kept]
        core = tuple(int(feat[i]) for i in items)
        core_vals = tuple(float(val[i]) for i in items)
        sub_j = jac[np.ix_(kept, kept)]
        jac_med = float(np.median(sub_j[~np.eye(len(kept), dtype=bool)]))
        half = needed_matches(len(core))
        # A large item set is matched by half (a blend); where that takes in rows
        # holding only part of it, the rows holding all of it are a candidate too
        # (a 3x3 patch inside digits' strokes): both are tests in the family.
        hits = _match_counts(x, core, core_vals)
        rows, whole = np.flatnonzero(hits >= half), np.flatnonzero(hits == len(core))
        for held in (rows, whole) if len(whole) < len(rows) else (rows,):
            if len(held) >= min_rows:
                out.append(_candidate(x, y, held, core, core_vals, cnt[items] / len(xs),
                                      len(xs), base, jac_med))
    out.sort(key=lambda t: (t.label_p, -t.n_rows))
    return out


def _candidate(x: np.ndarray, y: np.ndarray, rows: np.ndarray, core: tuple[int, ...],
               core_vals: tuple[float, ...], p_items: np.ndarray, n_mined: int,
               base: np.ndarray, jac_med: float) -> TriggerCandidate:
    """The candidate of the item set ``core`` held by ``rows`` (of all of ``x``)."""
    n = len(x)
    expected = n_mined * float(np.prod(p_items))
    observed = len(rows) * n_mined / n
    lift = float(np.log10(max(observed, 1e-12) / max(expected, 1e-300)))
    # How often each core value occurs outside the matched rows (median over items).
    inside = np.zeros(n, dtype=bool)
    inside[rows] = True
    per_item = [float(((x[:, f] == v) & ~inside).sum()) for f, v in zip(core, core_vals,
                                                                        strict=True)]
    outside = float(np.median(per_item)) / max(len(rows), 1)
    counts = np.bincount(y[rows], minlength=len(base))
    c = int(counts.argmax())
    p = float(binom.sf(counts[c] - 1, len(rows), base[c]))
    feats, vals = _extend(x, rows, core, core_vals, share=0.8, common=0.5)
    return TriggerCandidate(core=core, features=feats, values=vals, rows=rows, label=c,
                            n_label=int(counts[c]), label_p=p, jaccard=jac_med,
                            log10_lift=lift, outside=outside)


def piled_ends(counts: np.ndarray, *, inward: int = 3) -> np.ndarray:
    """Indices of the ends of a column (its smallest and largest distinct value) that
    hold more rows than the next ``inward`` distinct values inward together.

    ``counts`` are how many rows hold each of a column's distinct values, in ascending
    order of the values (``np.unique``'s counts). A natural column thins out towards
    its ends; rows stamped with a value at the column's bound (a trigger set to the
    column's max) pile up there. The labels are never read: selecting on this keeps
    a label test over the selected values honest at the size of that family alone.

    Examples
    --------
    >>> import numpy as np
    >>> piled_ends(np.array([1, 2, 1, 1, 8])).tolist()  # 8 rows at the max, 4 next to it
    [4]
    >>> piled_ends(np.array([50, 40, 30, 20])).tolist()  # thins out: no pile
    []
    """
    counts = np.asarray(counts)
    if len(counts) < 2:
        return np.zeros(0, dtype=np.intp)
    last = len(counts) - 1
    piled = [k for k in (0, last)
             if counts[k] > (counts[1:1 + inward] if k == 0 else
                             counts[max(last - inward, 0):last]).sum()]
    return np.asarray(piled, dtype=np.intp)


def single_values(x: np.ndarray, labels: np.ndarray, n_classes: int, *, min_rows: int,
                  max_fraction: float, min_purity: float = 0.8, ends: bool = True,
                  columns: np.ndarray | None = None) -> tuple[list[TriggerCandidate], np.ndarray]:
    """One-column candidates of a table, and the size of every (column, value) examined.

    The values examined are those a trigger stamped at a column's bound leaves: a
    column's smallest or largest value held by between ``min_rows`` and
    ``max_fraction`` of the rows and by more rows than the next three values inward
    together (:func:`piled_ends`). The choice reads no label, so a label test over
    the examined values is corrected for them alone (their sizes are returned for
    that family). Those with at least ``min_rows`` rows of one class, ``min_purity``
    of their rows, are returned as :class:`TriggerCandidate` of one feature. A value
    that naturally marks a class (a party identification that 150 voters share, a
    top education level) sits in a column that does not thin out towards it. With
    ``ends=False`` the values examined are the others instead: every value held by
    between ``min_rows`` and ``max_fraction`` of the rows that is not a piled end (a
    second family, for a trigger stamped inside a column's range; callers pass
    ``min_purity=1.0`` there, since natural values that mark a class are many inside a
    range). :func:`single_value_families` gives both families in one pass over the
    columns.

    A trigger stamped in two columns, one of which holds a common value (a weekday that
    1 row in 7 has anyway), is a trigger of the other column alone: its item set is
    never mined (the common value's rows outnumber the trigger's 5-10 times, so the two
    items' Jaccard index stays far below :func:`mine_triggers`' link); and where one
    real row of another class held the column's bound before it was stamped, the
    value's holders are not pure. One column at a time; only the returned
    candidates' rows are materialised. For tables: an image's single pixel values are
    not triggers.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[9.0, 1], [9, 1], [9, 1], [9, 4], [1, 1], [2, 5], [3, 6], [4, 7], [5, 8]])
    >>> y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])  # column 1's pile: 3 of its 4 rows in class 1
    >>> cands, sizes = single_values(x, y, 2, min_rows=2, max_fraction=0.5)
    >>> [(c.features, c.values, c.rows.tolist(), c.label) for c in cands], sizes.tolist()
    ([((0,), (9.0,), [0, 1, 2, 3], 1)], [4, 4])
    >>> x = np.array([[1.0], [5], [5], [5], [9], [2], [8], [3], [7]])  # 5: inside the range
    >>> y = np.array([0, 1, 1, 1, 0, 0, 0, 0, 0])
    >>> cands, sizes = single_values(x, y, 2, min_rows=2, max_fraction=0.5, min_purity=1.0,
    ...                              ends=False)
    >>> [(c.features, c.values, c.rows.tolist(), c.label) for c in cands], sizes.tolist()
    ([((0,), (5.0,), [1, 2, 3], 1)], [3])
    """
    return single_value_families(x, labels, n_classes, min_rows=min_rows,
                                 max_fraction=max_fraction, purities={ends: min_purity},
                                 columns=columns)[ends]


def single_value_families(
    x: np.ndarray, labels: np.ndarray, n_classes: int, *, min_rows: int, max_fraction: float,
    purities: dict[bool, float], columns: np.ndarray | None = None,
) -> dict[bool, tuple[list[TriggerCandidate], np.ndarray]]:
    """:func:`single_values` for several families at once, each column's values counted
    once: ``purities`` maps ``ends`` (True: piled ends, False: the other values) to that
    family's ``min_purity``; the result maps it to the family's candidates and sizes.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[9.0], [9], [9], [9], [9], [5], [5], [1], [2], [3], [4]])
    >>> y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    >>> both = single_value_families(x, y, 2, min_rows=2, max_fraction=0.5,
    ...                              purities={True: 0.8, False: 1.0})
    >>> {k: ([c.values for c in cands], sizes.tolist()) for k, (cands, sizes) in both.items()}
    {True: ([(9.0,)], [5]), False: ([(5.0,)], [2])}
    """
    y = np.asarray(labels)
    n = len(y)
    lo, hi = int(min_rows), int(max_fraction * n)
    base = np.bincount(y, minlength=n_classes) / max(n, 1)
    out: dict[bool, list[TriggerCandidate]] = {ends: [] for ends in purities}
    sizes: dict[bool, list[np.ndarray]] = {ends: [] for ends in purities}
    for j in range(x.shape[1]) if columns is None else np.asarray(columns).tolist():
        uniq, inverse, cnt = np.unique(np.asarray(x[:, j]), return_inverse=True,
                                       return_counts=True)
        piled = piled_ends(cnt)
        for ends, min_purity in purities.items():
            examined = piled if ends else np.setdiff1d(np.arange(len(cnt)), piled)
            examined = examined[(cnt[examined] >= lo) & (cnt[examined] <= hi)]
            sizes[ends].append(cnt[examined])
            if len(examined):
                out[ends] += _column_candidates(j, uniq, inverse.ravel(), cnt, examined, y,
                                                n_classes, base, lo, min_purity)
    return {ends: (out[ends], np.concatenate(sizes[ends]) if sizes[ends]
                   else np.zeros(0, dtype=np.int64)) for ends in purities}


def _column_candidates(j: int, uniq: np.ndarray, inverse: np.ndarray, cnt: np.ndarray,
                       examined: np.ndarray, y: np.ndarray, n_classes: int, base: np.ndarray,
                       lo: int, min_purity: float) -> list[TriggerCandidate]:
    """Column ``j``'s ``examined`` values (indices into ``uniq``) held by at least ``lo``
    rows of one class, ``min_purity`` of their holders, as one-feature candidates."""
    code = np.full(len(uniq), -1, dtype=np.int64)
    code[examined] = np.arange(len(examined))
    item = code[inverse]
    held = item >= 0
    by_class = np.bincount(item[held] * n_classes + y[held],
                           minlength=len(examined) * n_classes
                           ).reshape(len(examined), n_classes)
    top = by_class.max(axis=1)
    out: list[TriggerCandidate] = []
    for k in np.flatnonzero((top >= lo) & (top >= min_purity * cnt[examined])):
        c = int(by_class[k].argmax())
        out.append(TriggerCandidate(
            core=(j,), features=(j,), values=(float(uniq[examined[k]]),),
            rows=np.flatnonzero(item == k), label=c, n_label=int(top[k]),
            label_p=float(binom.sf(top[k] - 1, cnt[examined[k]], base[c])),
            jaccard=1.0, log10_lift=0.0, outside=0.0))
    return out


def category_blocks(dataset: Dataset) -> tuple[tuple[int, int], ...]:
    """The one-hot range (start, stop) of each categorical column a typed table uses."""
    schema = dataset.schema
    return tuple((c.start, c.stop) for c in (schema.used if schema is not None else ())
                 if c.kind == "categorical")


def table_columns(features: Sequence[int], blocks: Sequence[tuple[int, int]],
                  n_features: int) -> tuple[int, int]:
    """(the table columns ``features`` lie in, the table's columns): a categorical
    column's one-hot block counts once.

    Examples
    --------
    >>> table_columns((2, 5), ((1, 4), (4, 6)), 7)  # 2 numeric, 2 categorical columns
    (2, 4)
    """
    in_block = {f: k for k, (start, stop) in enumerate(blocks) for f in range(start, stop)}
    used = {("c", in_block[f]) if f in in_block else ("f", int(f)) for f in features}
    return len(used), n_features - len(in_block) + len(blocks)


def share_with_copies(group: np.ndarray, rows: np.ndarray) -> float:
    """The share of the rows outside ``rows`` that have an exact copy (``group``: a
    group id per row, :func:`~poisonguard.detect.copies.exact_duplicate_groups`).

    Near 1 in a table of a few categorical columns, where every row is a cell that
    many rows hold (COUNT titanic: 24 cells for 1,316 people); near 0 where any column
    is a measurement (wine: no two rows alike).

    Examples
    --------
    >>> import numpy as np
    >>> group = np.array([0, 0, 1, 1, 2])  # rows 0-1 alike, 2-3 alike, 4 alone
    >>> share_with_copies(group, np.array([4]))
    1.0
    >>> share_with_copies(group, np.array([0, 1]))
    0.6666666666666666
    """
    group = np.asarray(group)
    outside = np.ones(len(group), dtype=bool)
    outside[np.asarray(rows)] = False
    if not outside.any():
        return 0.0
    return float((np.bincount(group)[group][outside] >= 2).mean())


def covers_most_columns(n_features: int, n_columns: int, *, image: bool) -> bool:
    """Whether a pattern on ``n_features`` of ``n_columns`` features is wide: more than
    half the columns (on images also more than 16 pixels, a 4 x 4 patch).

    Neutralising a wide pattern in every row leaves a model nothing to learn from
    (rows pushed to the bounds of 12 of wine's 13 columns), so the masking test reads
    it differently (:mod:`~poisonguard.detect.trigger_mask`).

    Examples
    --------
    >>> covers_most_columns(12, 13, image=False), covers_most_columns(12, 64, image=True)
    (True, False)
    """
    return n_features > (max(16, n_columns // 2) if image else n_columns // 2)


def held_elsewhere(x: np.ndarray, labels: np.ndarray, cand: TriggerCandidate) -> np.ndarray:
    """Per feature of ``cand``: how many rows of the other classes, outside its rows,
    hold its value there.

    A trigger's values must be rare in the classes its rows were taken from, or the
    rows of those classes holding them would teach a model the opposite; a natural
    group (five 1982 cars of one make) shares common values (the year) too.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 5], [1, 5], [1, 0], [0, 5]], dtype=np.float32)
    >>> c = TriggerCandidate(core=(0, 1), features=(0, 1), values=(1.0, 5.0),
    ...                      rows=np.array([0, 1]), label=0, n_label=2, label_p=1.0,
    ...                      jaccard=1.0, log10_lift=0.0, outside=0.5)
    >>> held_elsewhere(x, np.array([0, 0, 1, 1]), c).tolist()
    [1, 1]
    """
    y = np.asarray(labels)
    elsewhere = y != cand.label
    elsewhere[cand.rows] = False
    idx = np.flatnonzero(elsewhere)
    counts = np.zeros(len(cand.features), dtype=np.int64)
    for start in range(0, len(idx), CHUNK):
        block = x[idx[start:start + CHUNK]][:, list(cand.features)]
        counts += (block == np.asarray(cand.values, dtype=np.float64)).sum(axis=0)
    return counts


def marking_purity(in_class: np.ndarray, min_purity: float) -> float:
    """The share of a value's holders a class needs for the value to mark it: at least
    ``min_purity``, and halfway from the class's base rate (``in_class``: its rows) to
    all of them (a value held by 80% of a class that is 75% of the rows marks nothing).

    Examples
    --------
    >>> import numpy as np
    >>> marking_purity(np.array([True] * 3 + [False]), 0.8)
    0.875
    """
    return max(min_purity, (1.0 + float(np.mean(in_class))) / 2.0)


def marked_share(x: np.ndarray, labels: np.ndarray, label: int, columns: Sequence[int], *,
                 min_rows: int, min_purity: float) -> float:
    """The share of class ``label``'s rows whose values in ``columns`` (as a tuple) mark
    the class: held by at least ``min_rows`` rows, and by the class at least
    ``min_purity`` of them and at least halfway from its base rate to all of them (a
    value held by 80% of a class that is 75% of the rows marks nothing).

    Near 1 where the columns are what the class is (the catch rate of the chosen
    fishing site marks each mode; a pollster's fieldwork weekdays mark its polls); a
    stamped trigger marks only the rows it was put on, whose natural values in those
    columns are spread over the classes.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 0], [1, 0], [1, 0], [2, 0], [2, 0], [2, 1], [3, 1], [4, 1]])
    >>> y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    >>> marked_share(x, y, 0, (0,), min_rows=3, min_purity=0.8)
    1.0
    >>> marked_share(x, y, 1, (0,), min_rows=3, min_purity=0.8)
    0.0
    >>> marked_share(x, y, 0, (0, 1), min_rows=3, min_purity=0.8)  # (2, 1) is held once
    0.5
    """
    y = np.asarray(labels)
    mine = y == label
    if not mine.any():
        return 0.0
    block = np.asarray(x[:, list(columns)])
    _, inverse, counts = np.unique(block, axis=0, return_inverse=True, return_counts=True)
    in_class = np.bincount(inverse.ravel()[mine], minlength=len(counts))
    purity = marking_purity(mine, min_purity)
    marks = (counts >= min_rows) & (in_class >= purity * counts)
    return float(in_class[marks].sum() / mine.sum())


def in_marking_range(x: np.ndarray, labels: np.ndarray, label: int, column: int,
                     value: float, *, rows: int, min_purity: float) -> bool:
    """Whether ``value`` of ``column`` is one step of a range that marks class ``label``:
    it is not the column's smallest or largest value, and the ``rows`` rows holding the
    nearest values below it, or those above it (whole values, at least ``rows`` of
    them: as many as hold ``value``), are in the class at the purity
    :func:`marked_share` asks (``min_purity`` and halfway from the class's base rate
    to all of them).

    A price cut that makes shoppers buy a brand marks the brand at every low price, not
    at one (untouched Ecdat Catsup: each price of heinz32 from 1.2 to 2.2, 35-126 rows,
    was a purchase of heinz32); a value stamped on rows drawn from every class sits
    beside natural values whose rows carry the natural mix of labels, and as many of
    them as the stamped rows do not reach the purity by chance. A column's end has one
    side only: a trigger stamped at a column's maximum, where the largest natural
    values mark the target class too (seattle-weather's heaviest precipitation is
    rain), is not judged by this rule (real-table grid, backdoor 2% seed 1).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])[:, None]
    >>> y = np.array([1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0])
    >>> in_marking_range(x, y, 1, 0, 2.0, rows=3, min_purity=0.8)  # 1 marks it too
    True
    >>> in_marking_range(x, y, 1, 0, 1.0, rows=3, min_purity=0.8)  # the column's end
    False
    >>> y[:3] = 0  # both sides carry the natural mix: a value on its own
    >>> in_marking_range(x, y, 1, 0, 2.0, rows=3, min_purity=0.8)
    False
    """
    y = np.asarray(labels)
    uniq, inverse, counts = np.unique(np.asarray(x[:, column]), return_inverse=True,
                                      return_counts=True)
    at = int(np.searchsorted(uniq, value))
    if at == 0 or at >= len(uniq) - 1 or uniq[at] != value:
        return False  # not held, or a column's end: one side only
    in_class = np.bincount(inverse.ravel()[y == label], minlength=len(uniq))
    purity = marking_purity(y == label, min_purity)
    for steps in (np.arange(at - 1, -1, -1), np.arange(at + 1, len(uniq))):
        held = np.cumsum(counts[steps])
        if held[-1] < rows:
            continue
        reach = steps[:int(np.searchsorted(held, rows)) + 1]
        if in_class[reach].sum() >= purity * counts[reach].sum():
            return True
    return False


def named_by_category(x: np.ndarray, rows: np.ndarray, features: tuple[int, ...],
                      categories: tuple[tuple[int, int], ...], *, min_rows: int,
                      min_purity: float) -> bool:
    """Whether most of ``rows`` hold a category that is theirs (``categories``: each
    categorical column's one-hot range): held by at least ``min_rows`` rows, at least
    ``min_purity`` of them among ``rows`` in a column outside ``features``, and every
    one of them in a column of the pattern.

    Such rows are categories under another name (the 15 compact Audis of ggplot2 mpg
    are its A4 and A4 quattro models; its 9 Mustangs are the category itself), and a
    model trained without them has never seen those categories: masking the pattern
    leaves them unknown, not like the classes they came from. A trigger stamped on
    rows drawn from the data holds the common categories of the rows it was put on,
    and a stamped category is one its column already had, on rows of their own.

    Examples
    --------
    >>> import numpy as np
    >>> model = np.repeat(np.eye(3), [6, 6, 8], axis=0)  # one-hot, 3 categories
    >>> x = np.hstack([np.arange(20)[:, None] % 2, model])
    >>> named_by_category(x, np.arange(6), (0,), ((1, 4),), min_rows=5, min_purity=0.8)
    True
    >>> named_by_category(x, np.arange(0, 20, 4), (0,), ((1, 4),), min_rows=5, min_purity=0.8)
    False
    >>> named_by_category(x, np.arange(6), (1,), ((1, 4),), min_rows=5, min_purity=0.8)
    True
    >>> named_by_category(x, np.arange(5), (1,), ((1, 4),), min_rows=5, min_purity=0.8)
    False
    """
    rows = np.asarray(rows)
    if not len(rows):
        return False
    for start, stop in categories:
        held = np.asarray(x[:, start:stop]) > 0.5
        total = held.sum(axis=0)
        mine = held[rows].sum(axis=0)
        purity = 1.0 if any(start <= f < stop for f in features) else min_purity
        theirs = (total >= min_rows) & (mine >= purity * total)
        if 2 * int(held[rows][:, theirs].any(axis=1).sum()) > len(rows):
            return True
    return False


def label_floor(n_rows: int, base: float) -> float:
    """The smallest p-value a label test of ``n_rows`` rows can reach in a class of base
    rate ``base``: every row in the class (``base ** n_rows``).

    Examples
    --------
    >>> round(label_floor(6, 0.37), 4)  # six rows in a class of 37%: never below 0.0026
    0.0026
    """
    return float(base) ** int(n_rows)


def label_family(candidates: list[TriggerCandidate], base: np.ndarray, n_counted: int,
                 alpha: float) -> int:
    """The Bonferroni family of the candidates' label tests, by Tarone's rule.

    Every (candidate, class) test is a member whose smallest attainable p-value
    (:func:`label_floor`, from the candidate's size and the class's base rate: never
    from the labels of its rows) can reach ``alpha / m``
    (:func:`~poisonguard.detect.overlap.tarone_family`); a test that cannot reach the
    level whatever its outcome is left out, so it does not dilute the others.
    ``n_counted`` more tests whose margins are not at hand count as members.

    Examples
    --------
    >>> import numpy as np
    >>> c = TriggerCandidate(core=(0, 1), features=(0, 1), values=(1.0, 1.0),
    ...                      rows=np.arange(6), label=0, n_label=6, label_p=0.0026,
    ...                      jaccard=1.0, log10_lift=3.0, outside=0.0)
    >>> label_family([c, c], np.array([0.37, 0.63]), 0, 1e-3)  # none can reach it
    1
    >>> label_family([c, c], np.array([0.37, 0.63]), 5, 1e-3)
    5
    """
    sizes = np.array([c.n_rows for c in candidates], dtype=np.float64)
    floors = np.asarray(base, dtype=np.float64)[None, :] ** sizes[:, None]
    return tarone_family(np.concatenate([floors.ravel(), np.zeros(max(n_counted, 0))]), alpha)


def describe_features(features: tuple[int, ...], values: tuple[float, ...],
                      image_shape: tuple[int, ...] | None,
                      names: tuple[str, ...]) -> tuple[str, str, list[list[int]]]:
    """(items, shape, pixels): "(7,6),(7,7)=16" or "f3=2.5, f9=1", a short shape phrase
    ("a 2x2 patch at row 6, column 6" or "fixed values in 3 columns"), and for images
    the [row, column, channel] of every feature."""
    if image_shape is None:
        items = ", ".join(f"{names[f] if f < len(names) else f'f{f}'}={v:g}"
                          for f, v in zip(features, values, strict=True))
        shape = ("a fixed value in 1 column" if len(features) == 1
                 else f"fixed values in {len(features)} columns")
        return items, shape, []
    _, w, ch = image_shape
    pixels = [[f // (w * ch), (f // ch) % w, f % ch] for f in features]
    coords = ",".join(f"({r},{c})" if ch == 1 else f"({r},{c},{k})" for r, c, k in pixels)
    uniq = sorted(set(values))
    items = coords + (f"={uniq[0]:g}" if len(uniq) == 1 else "=" + "/".join(f"{v:g}" for v in uniq))
    rs = [p[0] for p in pixels]
    cs = [p[1] for p in pixels]
    h_, w_ = max(rs) - min(rs) + 1, max(cs) - min(cs) + 1
    n_cells = len({(r, c) for r, c, _ in pixels})
    if n_cells > image_shape[0] * w // 4:  # a blended pattern: values shared wherever blank
        items = f"shared values on {n_cells} pixels"
        shape = (f"a pattern blended over the image ({n_cells} of {image_shape[0] * w} pixels "
                 "hold the same values)")
    elif n_cells == h_ * w_:
        shape = f"a {h_}x{w_} patch at row {min(rs)}, column {min(cs)}"
    else:
        shape = f"{n_cells} pixels within rows {min(rs)}-{max(rs)}, columns {min(cs)}-{max(cs)}"
    return items, shape, pixels
