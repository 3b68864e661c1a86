"""Row-level screening of a new batch against a baseline, batch by batch.

One streaming pass records, for every column, the rows that break what the
baseline says (out of its range, not an integer, a new category, missing, not
parseable as a number), rows with an unknown class, and rows that duplicate a
baseline row (with the same or another label). Counts are exact; the kept row
indices are capped at ``max_rows`` per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from poisonguard.validate.profile import Profile
from poisonguard.validate.sketches import row_fingerprints
from poisonguard.validate.sources import ColumnBatch

__all__ = ["RowSet", "RowScreen", "collect_rows"]


@dataclass
class RowSet:
    """An exact count of rows and the first ``cap`` of their indices."""

    cap: int
    count: int = 0
    rows: list[int] = field(default_factory=list)

    def add(self, indices: np.ndarray) -> None:
        self.count += len(indices)
        room = self.cap - len(self.rows)
        if room > 0 and len(indices):
            self.rows.extend(int(i) for i in indices[:room])


class RowScreen:
    """Collects rule violations of a new batch against ``baseline``."""

    def __init__(self, baseline: Profile, *, max_rows: int) -> None:
        self.base = baseline
        self.cap = max_rows
        g = baseline.global_moments()
        self._lo = dict(zip(baseline.numeric, g.min, strict=True))
        self._hi = dict(zip(baseline.numeric, g.max, strict=True))
        self._int = dict(zip(baseline.numeric, g.integer, strict=True))
        self._cats = {n: set(baseline.category_totals(j))
                      for j, n in enumerate(baseline.categorical)}
        self._classes = {c: i for i, c in enumerate(baseline.classes)}
        self.sets: dict[tuple[str, str], RowSet] = {}
        self.valid: dict[str, int] = {}
        self.rows = 0
        self.fingerprinted = 0

    def _set(self, kind: str, name: str = "") -> RowSet:
        return self.sets.setdefault((kind, name), RowSet(self.cap))

    def get(self, kind: str, name: str = "") -> RowSet:
        return self.sets.get((kind, name), RowSet(self.cap))

    def update(self, batch: ColumnBatch) -> np.ndarray | None:
        """Screen a batch; returns its row fingerprints when it has the baseline's columns."""
        off = batch.offset
        self.rows += len(batch)
        for name, values in batch.numeric.items():
            ok = ~np.isnan(values)
            self.valid[name] = self.valid.get(name, 0) + int(ok.sum())
            self._set("missing", name).add(off + np.flatnonzero(~ok))
            if name not in self._lo:
                continue
            with np.errstate(invalid="ignore"):
                out = (values < self._lo[name]) | (values > self._hi[name])
            self._set("range", name).add(off + np.flatnonzero(out))
            if self._int[name]:
                self._set("integer", name).add(off + np.flatnonzero(ok & (values !=
                                                                          np.round(values))))
        for name, values in batch.categorical.items():
            none = pd.isna(pd.Series(values, dtype=object)).to_numpy()
            self.valid[name] = self.valid.get(name, 0) + int((~none).sum())
            self._set("missing", name).add(off + np.flatnonzero(none))
            if name in self._cats:
                known = self._cats[name]
                new = ~none & ~pd.Series(values, dtype=object).isin(known).to_numpy()
                self._set("category", name).add(off + np.flatnonzero(new))
        for name, rows in batch.bad_type.items():
            self._set("type", name).add(rows)
        codes = np.array([self._classes.get(c, -1) for c in batch.names],
                         dtype=np.int64)[batch.codes]
        self._set("class").add(off + np.flatnonzero(codes < 0))
        return self._duplicates(batch, codes)

    def _duplicates(self, batch: ColumnBatch, codes: np.ndarray) -> np.ndarray | None:
        base = self.base
        need = set(base.numeric) | set(base.categorical) | set(base.hashed)
        have = set(batch.numeric) | set(batch.categorical) | set(batch.hashed)
        if need != have or not len(base.fingerprints.hashes):
            return None
        fp = row_fingerprints({n: batch.numeric[n] for n in base.numeric},
                              {n: batch.categorical[n] for n in base.categorical},
                              {n: batch.hashed[n] for n in base.hashed}, len(batch))
        covered = fp < np.uint64(base.fingerprints.threshold) \
            if base.fingerprints.threshold < 2**64 - 1 else np.ones(len(fp), dtype=bool)
        self.fingerprinted += int(covered.sum())
        same, other = base.fingerprints.lookup(fp, codes)
        self._set("duplicate").add(batch.offset + np.flatnonzero(same & covered))
        self._set("conflict").add(batch.offset + np.flatnonzero(other & covered))
        return fp


def collect_rows(batches: Iterable[ColumnBatch],
                 predicates: dict[str, Callable[[ColumnBatch], np.ndarray]],
                 *, max_rows: int) -> dict[str, RowSet]:
    """A second pass: the rows where each predicate (a boolean mask per batch) holds."""
    out = {key: RowSet(max_rows) for key in predicates}
    if not predicates:
        return out
    for batch in batches:
        for key, pred in predicates.items():
            out[key].add(batch.offset + np.flatnonzero(pred(batch)))
    return out
