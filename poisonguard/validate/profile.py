"""Profiles: mergeable statistics of a trusted baseline, stored as JSON.

A :class:`Profile` holds, per class: column moments (numeric), category counts
(categorical), and a content-keyed bottom-k row sample; plus label counts and row
fingerprints. Everything else (quantiles, histograms, the global view) is derived
from those, so ``merge(profile(A), profile(B))`` equals ``profile(A + B)`` (the
moments up to float rounding). :class:`Profiler` builds one from column batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.data import atomic_write_text
from poisonguard.errors import DataError, UsageError
from poisonguard.validate.sketches import (
    ALL,
    Fingerprints,
    Moments,
    RowSample,
    row_fingerprints,
    sample_keys,
)
from poisonguard.validate.sources import ColumnBatch

__all__ = ["FORMAT", "BatchProfile", "Profile", "Profiler", "load_profile", "merge_profiles",
           "save_profile"]

FORMAT = "poisonguard-profile"
VERSION = 1


def class_order(names: Iterable[str]) -> list[str]:
    """Class names sorted as the loaders do: integers numerically, then strings."""
    def key(s: str) -> tuple[int, int, str]:
        try:
            return (0, int(s), "")
        except ValueError:
            return (1, 0, s)

    return sorted(set(names), key=key)


@dataclass
class Profile:
    """Statistics of a dataset; see the module docstring and docs/validate.md.

    Examples
    --------
    >>> from poisonguard.validate import profile_data
    >>> profile = profile_data("builtin:wine")
    >>> profile.rows, profile.classes, len(profile.numeric)
    (178, ['0', '1', '2'], 13)
    """

    classes: list[str]
    label_counts: np.ndarray
    numeric: list[str]
    categorical: list[str]
    moments: list[Moments]  # per class, over the numeric columns
    categories: list[list[dict[str, int]]]  # per class, per categorical column
    cat_missing: np.ndarray  # C x d_cat
    samples: list[RowSample]  # per class
    fingerprints: Fingerprints
    rows: int = 0
    sample_per_class: int = 1000
    hashed: list[str] = field(default_factory=list)
    label_column: str = "label"
    modality: str = "tabular"
    sources: list[str] = field(default_factory=list)
    id_column: str | None = None  # left out of the features; check leaves it out too
    ignored: list[str] = field(default_factory=list)  # columns left out as asked

    @property
    def kinds(self) -> dict[str, str]:
        return {**{n: "numeric" for n in self.numeric}, **{n: "categorical" for n in
                                                          self.categorical}}

    def global_moments(self) -> Moments:
        out = Moments.empty(len(self.numeric))
        for m in self.moments:
            out = out.merge(m)
        return out

    def category_totals(self, j: int) -> dict[str, int]:
        total: dict[str, int] = {}
        for per_class in self.categories:
            for cat, n in per_class[j].items():
                total[cat] = total.get(cat, 0) + n
        return total

    def sample_matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All sampled rows (numeric), their class codes, and weights N_c / n_c."""
        xs = [s.numeric for s in self.samples]
        codes = np.concatenate([np.full(len(s), c) for c, s in enumerate(self.samples)]
                               or [np.empty(0, int)])
        w = np.concatenate([np.full(len(s), self.label_counts[c] / max(len(s), 1))
                            for c, s in enumerate(self.samples)] or [np.empty(0)])
        x = np.concatenate(xs) if xs else np.empty((0, len(self.numeric)), np.float32)
        return x.astype(np.float64), codes.astype(np.int64), w

    def merge(self, other: Profile) -> Profile:
        return merge_profiles([self, other])

    def to_dict(self) -> dict[str, Any]:
        from poisonguard.validate.summary import summarize

        return {
            "format": FORMAT, "version": VERSION, "rows": self.rows,
            "label_column": self.label_column, "modality": self.modality,
            "sources": list(self.sources), "sample_per_class": self.sample_per_class,
            "id_column": self.id_column, "ignored": list(self.ignored),
            "classes": list(self.classes), "label_counts": [int(v) for v in self.label_counts],
            "columns": [{"name": n, "kind": "numeric"} for n in self.numeric]
            + [{"name": n, "kind": "categorical"} for n in self.categorical],
            "hashed": list(self.hashed),
            "per_class": [
                {"class": c, "moments": self.moments[i].to_dict(),
                 "categories": dict(zip(self.categorical, self.categories[i], strict=True)),
                 "missing_categorical": [int(v) for v in self.cat_missing[i]],
                 "sample": self.samples[i].to_dict()}
                for i, c in enumerate(self.classes)],
            "fingerprints": self.fingerprints.to_dict(),
            "summary": summarize(self),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, path: str = "") -> Profile:
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise DataError("not a poisonguard profile (no \"format\": \"poisonguard-profile\")",
                            path=path)
        if d.get("version") != VERSION:
            raise DataError(f"profile version {d.get('version')!r} is not supported", path=path)
        try:
            cols = d["columns"]
            num = [str(c["name"]) for c in cols if c["kind"] == "numeric"]
            cat = [str(c["name"]) for c in cols if c["kind"] == "categorical"]
            per = d["per_class"]
            return cls(
                classes=[str(p["class"]) for p in per],
                label_counts=np.array([int(v) for v in d["label_counts"]], dtype=np.int64),
                numeric=num, categorical=cat,
                moments=[Moments.from_dict(p["moments"]) for p in per],
                categories=[[{str(k): int(v) for k, v in p["categories"][n].items()}
                             for n in cat] for p in per],
                cat_missing=np.array([[int(v) for v in p["missing_categorical"]] for p in per],
                                     dtype=np.int64).reshape(len(per), len(cat)),
                samples=[RowSample.from_dict(p["sample"], len(num), len(cat)) for p in per],
                fingerprints=Fingerprints.from_dict(d["fingerprints"]),
                rows=int(d["rows"]), sample_per_class=int(d["sample_per_class"]),
                hashed=[str(h) for h in d.get("hashed", [])],
                label_column=str(d["label_column"]), modality=str(d["modality"]),
                sources=[str(s) for s in d.get("sources", [])],
                id_column=None if d.get("id_column") is None else str(d["id_column"]),
                ignored=[str(c) for c in d.get("ignored", [])],
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(f"malformed profile: {type(exc).__name__}: {exc}", path=path) from None


@dataclass
class BatchProfile:
    """One batch's profile, row fingerprints, class names and per-row codes into them."""

    profile: Profile
    fingerprints: np.ndarray
    names: tuple[str, ...]
    codes: np.ndarray
    offset: int = 0


class Profiler:
    """Accumulates a :class:`Profile` from column batches (one pass, bounded memory).

    Examples
    --------
    >>> from poisonguard.validate import open_source
    >>> profiler = Profiler(sample_per_class=50)
    >>> for batch in open_source("builtin:wine"):
    ...     _ = profiler.update(batch)
    >>> profiler.result(sources=["builtin:wine"]).rows
    178
    """

    def __init__(self, *, sample_per_class: int = 1000, max_fingerprints: int = 1_000_000,
                 keep_index: bool = False) -> None:
        if sample_per_class < 1 or max_fingerprints < 0:
            raise UsageError("sample size must be >= 1 and max fingerprints >= 0")
        self.sample_per_class = sample_per_class
        self.max_fingerprints = max_fingerprints
        self.keep_index = keep_index
        self._p: Profile | None = None
        # fingerprints wait in batches and are sorted and capped only now and then, so
        # that memory does not churn once per batch
        self._fps = Fingerprints(np.empty(0, np.uint64), np.empty(0, np.int64),
                                 threshold=ALL if max_fingerprints else 0, cap=max_fingerprints)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._names: list[str] = []

    def update(self, batch: ColumnBatch, fp: np.ndarray | None = None) -> np.ndarray:
        """Add a batch; returns its row fingerprints (computed unless given)."""
        part = self.profile_batch(batch, fp)
        self.add(part)
        return part.fingerprints

    def profile_batch(self, batch: ColumnBatch, fp: np.ndarray | None = None) -> BatchProfile:
        """The profile of one batch alone (pure: a worker can compute it; see :meth:`add`)."""
        if fp is None:
            fp = row_fingerprints(batch.numeric, batch.categorical, batch.hashed, len(batch))
        return BatchProfile(self._profile_batch(batch, fp), fp, batch.names,
                            batch.codes.astype(np.int32), batch.offset)

    def add(self, part: BatchProfile) -> None:
        """Merge a batch's profile; in batch order, the same as :meth:`update`."""
        p = part.profile
        if self._p is not None and (p.numeric != self._p.numeric
                                    or p.categorical != self._p.categorical):
            raise DataError("the columns changed between batches", row=part.offset)
        self._p = p if self._p is None else merge_profiles([self._p, p])
        if self.max_fingerprints:
            for n in part.names:
                if n not in self._names:
                    self._names.append(n)
            pos = np.array([self._names.index(n) for n in part.names], dtype=np.int64)
            self._pending.append((part.fingerprints, pos[part.codes].astype(np.int32)))
            if sum(len(h) for h, _ in self._pending) > max(self.max_fingerprints, 1 << 20):
                self._flush()

    def result(self, *, sources: Sequence[str] = (), label_column: str = "label",
               modality: str = "tabular") -> Profile:
        if self._p is None:
            raise DataError("no rows to profile", path=", ".join(sources))
        self._flush()
        order = {n: self._p.classes.index(n) for n in self._names}
        remap = np.array([order[n] for n in self._names] or [0], dtype=np.int64)
        f = self._fps
        self._p.fingerprints = Fingerprints(f.hashes, remap[f.labels], f.threshold, f.cap)
        self._p.sources = list(sources)
        self._p.label_column = label_column
        self._p.modality = modality
        return self._p

    def _flush(self) -> None:
        if self._pending:
            self._fps = self._fps.add(np.concatenate([h for h, _ in self._pending]),
                                      np.concatenate([c for _, c in self._pending]))
            self._pending = []

    def _profile_batch(self, batch: ColumnBatch, fp: np.ndarray) -> Profile:
        num, cat = list(batch.numeric), list(batch.categorical)
        classes = class_order(batch.names)
        codes = np.array([classes.index(n) for n in batch.names], dtype=np.int64)[batch.codes]
        x = (np.column_stack([batch.numeric[n] for n in num]) if num
             else np.empty((len(batch), 0)))
        keys = sample_keys(fp, batch.names, batch.codes)
        index = batch.offset + np.arange(len(batch)) if self.keep_index else \
            np.full(len(batch), -1)
        moments, categories, samples = [], [], []
        cat_missing = np.zeros((len(classes), len(cat)), dtype=np.int64)
        typed = np.array([n in batch.integer for n in num], dtype=bool)
        for c in range(len(classes)):
            rows = np.flatnonzero(codes == c)
            moments.append(Moments.of(x[rows], integer_typed=typed))
            per_col = []
            for j, name in enumerate(cat):
                vals = pd.Series(batch.categorical[name][rows], dtype=object)
                cat_missing[c, j] = int(vals.isna().sum())
                per_col.append({str(k): int(v) for k, v in vals.value_counts().items()})
            categories.append(per_col)
            top = rows[np.argsort(keys[rows], kind="stable")[:self.sample_per_class]]
            catm = (np.column_stack([batch.categorical[n][top] for n in cat]) if cat
                    else np.empty((len(top), 0), dtype=object))
            samples.append(RowSample(keys[top], x[top].astype(np.float32), catm, index[top]))
        fps = Fingerprints(np.empty(0, np.uint64), np.empty(0, np.int64),
                           threshold=ALL if self.max_fingerprints else 0,
                           cap=self.max_fingerprints)  # filled in by result()
        return Profile(classes, np.bincount(codes, minlength=len(classes)), num, cat, moments,
                       categories, cat_missing, samples, fps, rows=len(batch),
                       sample_per_class=self.sample_per_class, hashed=sorted(batch.hashed))


def merge_profiles(profiles: Sequence[Profile]) -> Profile:
    """One profile of the union of the profiled rows (same columns required).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.validate import profile_data
    >>> wine = builtin_dataset("wine")
    >>> a, b = profile_data(wine.subset(range(100))), profile_data(wine.subset(range(100, 178)))
    >>> merge_profiles([a, b]).rows
    178
    """
    if not profiles:
        raise UsageError("nothing to merge")
    first = profiles[0]
    for p in profiles[1:]:
        if p.kinds != first.kinds or p.hashed != first.hashed:
            diff = sorted(set(p.kinds.items()) ^ set(first.kinds.items()))
            what = f"column '{diff[0][0]}'" if diff else "hashed columns"
            raise UsageError(f"cannot merge profiles with different columns ({what} differs)")
    num, cat = first.numeric, first.categorical
    classes = class_order(c for p in profiles for c in p.classes)
    k = min(p.sample_per_class for p in profiles)
    cap = min(p.fingerprints.cap for p in profiles)
    counts = np.zeros(len(classes), dtype=np.int64)
    moments = [Moments.empty(len(num)) for _ in classes]
    categories: list[list[dict[str, int]]] = [[{} for _ in cat] for _ in classes]
    cat_missing = np.zeros((len(classes), len(cat)), dtype=np.int64)
    samples = [RowSample.empty(len(num), len(cat)) for _ in classes]
    fps = Fingerprints(np.empty(0, np.uint64), np.empty(0, np.int64),
                       threshold=min(p.fingerprints.threshold for p in profiles), cap=cap)
    for p in profiles:
        remap = np.array([classes.index(c) for c in p.classes], dtype=np.int64)
        cols_num = [p.numeric.index(n) for n in num]
        cols_cat = [p.categorical.index(n) for n in cat]
        for i, c in enumerate(remap):
            counts[c] += p.label_counts[i]
            m = p.moments[i]
            moments[c] = moments[c].merge(Moments(*(getattr(m, f)[cols_num] for f in (
                "count", "missing", "mean", "m2", "min", "max", "integer"))))
            for j, jj in enumerate(cols_cat):
                for cat_name, n in p.categories[i][jj].items():
                    categories[c][j][cat_name] = categories[c][j].get(cat_name, 0) + n
                cat_missing[c, j] += p.cat_missing[i, jj]
            s = p.samples[i]
            samples[c] = samples[c].merge(RowSample(s.keys, s.numeric[:, cols_num],
                                                    s.categorical[:, cols_cat], s.index), k)
        fps = fps.add(p.fingerprints.hashes, remap[p.fingerprints.labels])
    return Profile(classes, counts, list(num), list(cat), moments, categories, cat_missing,
                   samples, fps, rows=sum(p.rows for p in profiles), sample_per_class=k,
                   hashed=list(first.hashed), label_column=first.label_column,
                   modality=first.modality, sources=[s for p in profiles for s in p.sources],
                   id_column=first.id_column, ignored=list(first.ignored))


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write the profile as JSON, atomically.

    Examples
    --------
    >>> import tempfile
    >>> from poisonguard.validate import profile_data
    >>> path = tempfile.mkdtemp() + "/wine.profile.json"
    >>> save_profile(profile_data("builtin:wine"), path)
    >>> load_profile(path).rows
    178
    """
    atomic_write_text(path, json.dumps(profile.to_dict(), separators=(",", ":")))


def load_profile(path: str | Path) -> Profile:
    """Read a profile written by :func:`save_profile` (DataError names the file).

    Examples
    --------
    >>> load_profile("missing.profile.json")
    Traceback (most recent call last):
    ...
    poisonguard.errors.DataError: missing.profile.json: ...
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("no such file", path=str(p)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not JSON: {exc}", path=str(p)) from None
    return Profile.from_dict(data, path=str(p))
