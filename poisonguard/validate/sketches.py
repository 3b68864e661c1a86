"""Mergeable sketches: moments, a content-keyed bottom-k row sample, row fingerprints.

Every sketch here merges *exactly* (up to float rounding in the moments):

- :class:`Moments` per class and column: count, missing, mean, M2, min, max, and
  whether every value was an integer; merged with Chan's parallel formula.
- :class:`RowSample` per class: the ``k`` rows with the smallest 64-bit content key
  (a hash of the row's values and label). The bottom-k of a union is the bottom-k of
  the parts' bottom-k, so ``merge(sample(A), sample(B)) == sample(A + B)``; and since
  the key is a hash, the kept rows are a uniform random sample of the class.
- :class:`Fingerprints`: distinct ``(row hash, label)`` pairs, capped by keeping the
  smallest hashes (coordinated sampling: a row of a new batch is covered exactly
  when its hash is below ``threshold``, whatever partition it came from).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Fingerprints",
    "Moments",
    "RowSample",
    "decode_array",
    "encode_array",
    "mix64",
    "row_fingerprints",
    "sample_keys",
    "string_hash",
]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_NAN_BITS = np.uint64(0x7FC00000)
_NONE_HASH = np.uint64(0x5A5A5A5A5A5A5A5A)
ALL = 2**64 - 1


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (a new array)."""
    z = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
    return z


def _str64(text: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8)
                                    .digest(), "little"))


def string_hash(values: np.ndarray) -> np.ndarray:
    """Stable 64-bit hashes of strings (None hashes to a fixed constant)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    table = np.array([_str64(str(u)) for u in uniques] + [_NONE_HASH], dtype=np.uint64)
    return table[np.where(codes < 0, len(uniques), codes)]


def _float_bits(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 becomes 0.0
    bits = v.view(np.uint32).astype(np.uint64)
    return np.where(np.isnan(v), _NAN_BITS, bits)


def row_fingerprints(numeric: Mapping[str, np.ndarray], categorical: Mapping[str, np.ndarray],
                     hashed: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """A 64-bit hash of each row's values (numbers as float32), columns in name order."""
    h = np.zeros(n, dtype=np.uint64)
    for name in sorted({*numeric, *categorical, *hashed}):
        if name in numeric:
            col = _float_bits(numeric[name])
        elif name in categorical:
            col = string_hash(categorical[name])
        else:
            col = np.asarray(hashed[name], dtype=np.uint64)
        with np.errstate(over="ignore"):
            h = mix64(h * _GOLD ^ mix64(col ^ _str64(name)))
    return h


def sample_keys(fingerprints: np.ndarray, names: tuple[str, ...],
                codes: np.ndarray) -> np.ndarray:
    """Sampling keys from content: same row and label, same key, in any partition."""
    label_hash = string_hash(np.asarray(names, dtype=object))[codes]
    return mix64(fingerprints ^ mix64(label_hash ^ _GOLD))


def _pair_keys(hashes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return mix64(hashes ^ mix64(labels.astype(np.uint64) + _GOLD))


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A numeric array as JSON: dtype, shape, zlib-compressed little-endian base64."""
    arr = np.ascontiguousarray(a)
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return {"dtype": arr.dtype.str.lstrip("<>|="), "shape": list(arr.shape),
            "data": base64.b64encode(zlib.compress(le.tobytes(), 1)).decode("ascii")}


def decode_array(d: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array` (raises ValueError / KeyError on bad input)."""
    dtype = np.dtype(str(d["dtype"])).newbyteorder("<")
    if dtype.kind not in "biuf":
        raise ValueError(f"unsupported dtype {d['dtype']!r}")
    raw = zlib.decompress(base64.b64decode(str(d["data"]), validate=True))
    shape = tuple(int(s) for s in d["shape"])
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


@dataclass
class Moments:
    """Per-column running statistics (arrays of length D), mergeable."""

    count: np.ndarray
    missing: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    integer: np.ndarray  # bool

    @classmethod
    def empty(cls, d: int) -> Moments:
        z = np.zeros(d)
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), np.full(d, np.inf),
                   np.full(d, -np.inf), np.ones(d, dtype=bool))

    @classmethod
    def of(cls, x: np.ndarray, integer_typed: np.ndarray | None = None) -> Moments:
        """Moments of an N x D float64 matrix (NaN = missing).

        ``integer`` is true for a column whose values are all whole AND that is stored
        as integers (``integer_typed``, default: every column): a float column whose
        values happen to be whole stays float.
        """
        valid = ~np.isnan(x)
        n = valid.sum(axis=0).astype(float)
        safe = np.where(valid, x, 0.0)
        mean = np.divide(safe.sum(axis=0), n, out=np.zeros(x.shape[1]), where=n > 0)
        m2 = (np.where(valid, x - mean, 0.0) ** 2).sum(axis=0)
        integer = (np.where(valid, np.round(x), 0.0) == safe).all(axis=0)
        if integer_typed is not None:
            integer &= integer_typed
        return cls(n, (~valid).sum(axis=0).astype(float), mean, m2,
                   np.where(valid, x, np.inf).min(axis=0, initial=np.inf),
                   np.where(valid, x, -np.inf).max(axis=0, initial=-np.inf), integer)

    def merge(self, other: Moments) -> Moments:
        n = self.count + other.count
        delta = other.mean - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(n > 0, other.count / np.where(n > 0, n, 1.0), 0.0)
            mean = self.mean + delta * w
            m2 = self.m2 + other.m2 + delta**2 * self.count * w
        return Moments(n, self.missing + other.missing, mean, m2,
                       np.minimum(self.min, other.min), np.maximum(self.max, other.max),
                       self.integer & other.integer)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.divide(self.m2, self.count - 1, out=np.zeros_like(self.m2),
                                 where=self.count > 1))

    def to_dict(self) -> dict[str, Any]:
        def fl(a: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {"count": fl(self.count), "missing": fl(self.missing), "mean": fl(self.mean),
                "m2": fl(self.m2), "min": fl(self.min), "max": fl(self.max),
                "integer": [bool(v) for v in self.integer]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Moments:
        def arr(key: str, fill: float) -> np.ndarray:
            return np.array([fill if v is None else float(v) for v in d[key]], dtype=float)

        return cls(arr("count", 0), arr("missing", 0), arr("mean", 0), arr("m2", 0),
                   arr("min", np.inf), arr("max", -np.inf),
                   np.array([bool(v) for v in d["integer"]], dtype=bool))


@dataclass
class RowSample:
    """The ``k`` rows of one class with the smallest content keys."""

    keys: np.ndarray  # uint64, sorted ascending
    numeric: np.ndarray  # n x d_num float32
    categorical: np.ndarray  # n x d_cat object (str or None)
    index: np.ndarray  # int64 row positions in the source (-1 when unknown)

    @classmethod
    def empty(cls, d_num: int, d_cat: int) -> RowSample:
        return cls(np.empty(0, np.uint64), np.empty((0, d_num), np.float32),
                   np.empty((0, d_cat), object), np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def merge(self, other: RowSample, k: int) -> RowSample:
        keys = np.concatenate([self.keys, other.keys])
        order = np.argsort(keys, kind="stable")[:k]
        return RowSample(keys[order], np.concatenate([self.numeric, other.numeric])[order],
                         np.concatenate([self.categorical, other.categorical])[order],
                         np.concatenate([self.index, other.index])[order])

    def to_dict(self) -> dict[str, Any]:
        return {"keys": encode_array(self.keys), "numeric": encode_array(self.numeric),
                "categorical": self.categorical.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], d_num: int, d_cat: int) -> RowSample:
        keys = decode_array(d["keys"]).astype(np.uint64)
        num = decode_array(d["numeric"]).astype(np.float32).reshape(len(keys), d_num)
        cat = np.empty((len(keys), d_cat), dtype=object)
        if d_cat:
            cat[:] = [[None if v is None else str(v) for v in row] for row in d["categorical"]]
        return cls(keys, num, cat, np.full(len(keys), -1, np.int64))


@dataclass
class Fingerprints:
    """Distinct (row hash, class code) pairs with hash < ``threshold`` (at most ``cap``)."""

    hashes: np.ndarray  # uint64, sorted by (hash, label)
    labels: np.ndarray  # int64 class codes
    threshold: int = ALL  # rows whose hash is >= threshold are not covered
    cap: int = 1_000_000

    def add(self, hashes: np.ndarray, labels: np.ndarray) -> Fingerprints:
        """The union with more pairs, deduplicated and capped."""
        h = np.concatenate([self.hashes, np.asarray(hashes, np.uint64)])
        lab = np.concatenate([self.labels, np.asarray(labels, np.int64)])
        keep = h < np.uint64(self.threshold) if self.threshold < ALL else slice(None)
        h, lab = h[keep], lab[keep]
        order = np.lexsort((lab, h))
        h, lab = h[order], lab[order]
        first = np.ones(len(h), dtype=bool)
        first[1:] = (h[1:] != h[:-1]) | (lab[1:] != lab[:-1])
        h, lab = h[first], lab[first]
        threshold = self.threshold
        if len(h) > self.cap:
            threshold = int(h[self.cap])
            h, lab = h[h < np.uint64(threshold)], lab[h < np.uint64(threshold)]
        return Fingerprints(h, lab, threshold, self.cap)

    @property
    def coverage(self) -> float:
        """The fraction of the hash space covered (1.0 when nothing was dropped)."""
        return 1.0 if self.threshold >= ALL else self.threshold / float(2**64)

    def conflicts(self) -> int:
        """How many hashes appear with two or more labels (rows that disagree)."""
        if len(self.hashes) < 2:
            return 0
        return int(np.count_nonzero(self.hashes[1:] == self.hashes[:-1]))

    def lookup(self, hashes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row: (seen with the same label, seen with another label)."""
        h = np.asarray(hashes, np.uint64)
        order = np.argsort(h)  # sorted needles search much faster in a big array
        n_entries = np.empty(len(h), dtype=np.int64)
        n_entries[order] = (np.searchsorted(self.hashes, h[order], side="right")
                            - np.searchsorted(self.hashes, h[order], side="left"))
        pairs = self.__dict__.get("_pairs")
        if pairs is None or len(pairs) != len(self.hashes):
            pairs = self.__dict__["_pairs"] = np.sort(_pair_keys(self.hashes, self.labels))
        keys = _pair_keys(h, np.asarray(labels, np.int64))
        if not len(pairs):
            return np.zeros(len(h), dtype=bool), n_entries > 0
        ko = np.argsort(keys)
        pos = np.empty(len(h), dtype=np.int64)
        pos[ko] = np.minimum(np.searchsorted(pairs, keys[ko]), len(pairs) - 1)
        same = (n_entries > 0) & (pairs[pos] == keys)
        return same, n_entries > same.astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"hashes": encode_array(self.hashes), "labels": encode_array(
            self.labels.astype(np.uint16 if self.labels.max(initial=0) < 2**16 else np.int64)),
            "threshold": str(self.threshold), "cap": self.cap}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fingerprints:
        return cls(decode_array(d["hashes"]).astype(np.uint64),
                   decode_array(d["labels"]).astype(np.int64), int(d["threshold"]), int(d["cap"]))
