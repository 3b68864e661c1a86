"""Backdoor triggers: build a spec from the data, stamp it on rows.

A trigger spec is a small JSON-able dict stored in ``truth.params["trigger"]``:

- ``{"type": "patch", "size", "position", "row", "col", "value"}``: a solid square
  (BadNets); ``row``/``col`` are the top-left pixel. With ``position`` "random"
  they are null and every stamped image gets its own place, drawn from
  ``position_seed``.
- ``{"type": "blend", "alpha", "pattern_seed", "low", "high", "shape"}``: a random
  pattern (regenerated from its seed) mixed in with weight ``alpha``.
- ``{"type": "tabular", "features", "values", "names"}``: fixed values in k columns.
- ``{"type": "categorical", "columns", "values", "features", "blocks", "names",
  "rows_with_it"}``: categorical cells set to fixed categories (``columns[i] =
  values[i]``, the smallest combination of the table no row holds; ``rows_with_it``
  its natural holders, 0 unless the caller allowed more); ``blocks`` are the encoded
  ``[start, stop)`` of each column (its one-hot columns and missing indicator) and
  ``features`` the one-hot column set to 1, so the stamped row is a valid encoding of
  a real table row.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from poisonguard.attack.truth import Truth, rebuild, values_of
from poisonguard.data import Dataset
from poisonguard.data.schema import Column
from poisonguard.errors import UsageError

__all__ = ["apply_trigger", "blend_spec", "categorical_spec", "patch_spec", "stamp",
           "tabular_spec"]

POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "center", "random")


def patch_spec(images: np.ndarray, *, size: int, position: str,
               value: float | None, seed: int = 0) -> dict[str, Any]:
    """A BadNets patch spec for images of this shape."""
    h, w = images.shape[1], images.shape[2]
    if not 1 <= size <= min(h, w):
        raise UsageError(f"patch size must be between 1 and {min(h, w)}, got {size}")
    v = float(images.max()) if value is None else float(value)
    if position == "random":
        return {"type": "patch", "size": int(size), "position": position, "row": None,
                "col": None, "value": v, "position_seed": int(seed) + 104_729}
    if position == "bottom-right":
        r, c = h - size, w - size
    elif position == "bottom-left":
        r, c = h - size, 0
    elif position == "top-right":
        r, c = 0, w - size
    elif position == "top-left":
        r, c = 0, 0
    elif position == "center":
        r, c = (h - size) // 2, (w - size) // 2
    else:
        raise UsageError(f"unknown patch position '{position}' (known: {', '.join(POSITIONS)})")
    return {"type": "patch", "size": int(size), "position": position, "row": int(r),
            "col": int(c), "value": v}


def blend_spec(images: np.ndarray, *, alpha: float, seed: int) -> dict[str, Any]:
    """A blended-pattern spec: uniform noise over the data's range, from ``seed``."""
    if not 0 < alpha < 1:
        raise UsageError(f"blend alpha must be in (0, 1), got {alpha}")
    return {"type": "blend", "alpha": float(alpha), "pattern_seed": int(seed) + 7919,
            "low": float(images.min()), "high": float(images.max()),
            "shape": [int(s) for s in images.shape[1:]]}


def tabular_spec(dataset: Dataset, x: np.ndarray, *, n_features: int, values: Any,
                 rng: np.random.Generator) -> dict[str, Any]:
    """Pick ``n_features`` varying columns; their trigger value is the column max
    (in range, but the joint combination is rare) unless ``values`` are given.

    On a typed table only number and date columns are picked: setting a one-hot
    category or a missing flag alone would make a row no table can hold (use
    ``categorical-trigger`` for categories)."""
    varying = np.flatnonzero(x.std(axis=0) > 0)
    if dataset.schema is not None:
        varying = varying[np.asarray(dataset.schema.kinds())[varying] != "binary"]
    if not 1 <= n_features <= len(varying):
        raise UsageError(f"n_features must be between 1 and {len(varying)}, got {n_features}")
    cols = np.sort(rng.choice(varying, size=n_features, replace=False))
    if values is None:
        vals = x[:, cols].max(axis=0)
    else:
        vals = np.broadcast_to(np.asarray(values, dtype=np.float64), (n_features,))
    return {"type": "tabular", "features": [int(c) for c in cols],
            "values": [float(v) for v in vals],
            "names": [dataset.feature_names[c] for c in cols]}


#: Sizes of the categorical trigger combinations tried when none is given: pairs, then
#: triples (the smallest size with a combination no row holds wins).
CATEGORICAL_SIZES = (2, 3)
#: At most this many column subsets are counted per size (drawn by the seed beyond it),
#: so that a table with many categorical columns stays cheap.
MAX_COLUMN_SETS = 200


def _category_codes(x: np.ndarray, columns: Sequence[Column]) -> np.ndarray:
    """N x columns category index of every cell (-1 where missing)."""
    out = np.empty((len(x), len(columns)), dtype=np.int64)
    for k, c in enumerate(columns):
        block = x[:, c.start:c.start + len(c.values)]
        out[:, k] = np.where(block.max(axis=1) >= 0.5, block.argmax(axis=1), -1)
    return out


def _combination_counts(codes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """How many rows hold each combination of categories (rows with a missing cell hold none)."""
    present = np.all(codes >= 0, axis=1)
    flat = np.ravel_multi_index(tuple(codes[present].T), shape)
    return np.bincount(flat, minlength=int(np.prod(shape)))


def _smallest_part(codes: np.ndarray, cols: tuple[int, ...], combo: tuple[int, ...],
                   usable: Sequence[Column]) -> int:
    """Rows holding the rarest part of ``combo`` one column short (its single cells for a
    pair): the larger, the less any smaller piece of the trigger stands out."""
    if len(cols) == 1:
        return len(codes)
    held = codes[:, list(cols)] == np.asarray(combo)[None, :]
    return min(int(np.all(np.delete(held, k, axis=1), axis=1).sum())
               for k in range(len(cols)))


def categorical_spec(dataset: Dataset, x: np.ndarray, *, n_columns: int | None,
                     rng: np.random.Generator, max_holders: int = 0) -> dict[str, Any]:
    """The smallest combination of categories (of ``n_columns`` categorical columns, or
    of 2, then 3, when None) that at most ``max_holders`` rows of ``x`` hold, the fewest
    holders first; among those, the one whose rarest part one column short is held by
    the most rows (no smaller piece of it stands out), remaining ties drawn by ``rng``.
    Each stamped cell is a real category, only their combination is new.

    Raises :class:`UsageError` when every combination of those sizes has more natural
    holders than ``max_holders``: a trigger rows already carry with their true labels is
    not a backdoor (its stamped rows are targeted label flips), so the attack says so
    instead of stamping it.
    """
    schema = dataset.schema
    usable = [c for c in schema.used if c.kind == "categorical" and len(c.values) >= 2] \
        if schema is not None else []
    sizes = CATEGORICAL_SIZES if n_columns is None else (int(n_columns),)
    if not 1 <= sizes[0] <= len(usable):
        raise UsageError(f"categorical-trigger needs {sizes[0]} categorical column(s) with two "
                         f"or more categories; the data has {len(usable)}"
                         + ("" if schema is not None else " (not a typed table)"))
    codes = _category_codes(x, usable)
    rarest: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None
    tried = [k for k in sizes if k <= len(usable)]
    for size in tried:
        subsets = list(itertools.combinations(range(len(usable)), size))
        if len(subsets) > MAX_COLUMN_SETS:
            keep = np.sort(rng.choice(len(subsets), size=MAX_COLUMN_SETS, replace=False))
            subsets = [subsets[i] for i in keep]
        found: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []  # (parts, cols, combo)
        fewest = None
        for cols in subsets:
            shape = tuple(len(usable[c].values) for c in cols)
            counts = _combination_counts(codes[:, list(cols)], shape)
            low = int(counts.min())
            if fewest is None or low < fewest:
                fewest, found = low, []
            if low == fewest:
                found += [(_smallest_part(codes, cols, combo, usable), cols, combo)
                          for combo in zip(*np.unravel_index(np.flatnonzero(counts == low),
                                                             shape), strict=True)]
        assert fewest is not None
        best = max(f[0] for f in found)
        candidates = [f for f in found if f[0] == best]
        _, cols, combo = candidates[int(rng.integers(len(candidates)))]
        if rarest is None or fewest < rarest[0]:
            rarest = (fewest, cols, tuple(int(k) for k in combo))
        if fewest <= max_holders:
            break
    assert rarest is not None
    holders, cols, combo = rarest
    picked = [usable[c] for c in cols]
    names = [f"{c.name} = {c.labels[k]}" for c, k in zip(picked, combo, strict=True)]
    if holders > max_holders:
        raise UsageError(
            "categorical-trigger: every combination of "
            + " or ".join(str(k) for k in tried) + " of the categorical columns "
            + ", ".join(c.name for c in usable) + f" is held by real rows (the rarest, "
            f"{', '.join(names)}, by {holders}): real rows carry it with their own labels, "
            "so the stamped rows would be targeted label flips, not a backdoor. Declare "
            "more columns categorical or use tabular-trigger")
    return {"type": "categorical", "columns": [c.name for c in picked],
            "values": [c.labels[k] for c, k in zip(picked, combo, strict=True)],
            "features": [c.start + k for c, k in zip(picked, combo, strict=True)],
            "blocks": [[c.start, c.stop] for c in picked], "names": names,
            "rows_with_it": holders}


def stamp(values: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Rows with the trigger applied (a new array; ``values`` is not modified)."""
    out = np.array(values, dtype=np.float32)
    kind = spec.get("type")
    if kind == "patch":
        if out.ndim != 4:
            raise UsageError("a patch trigger needs image data")
        s = int(spec["size"])
        if spec.get("position") == "random":
            if s > min(out.shape[1], out.shape[2]):
                raise UsageError(f"the patch does not fit images of shape {out.shape[1:]}")
            rng = np.random.default_rng(int(spec["position_seed"]))
            rs = rng.integers(0, out.shape[1] - s + 1, size=len(out))
            cs = rng.integers(0, out.shape[2] - s + 1, size=len(out))
            for i, (r, c) in enumerate(zip(rs, cs, strict=True)):
                out[i, r:r + s, c:c + s, :] = float(spec["value"])
            return out
        r, c = int(spec["row"]), int(spec["col"])
        if r + s > out.shape[1] or c + s > out.shape[2]:
            raise UsageError(f"the patch does not fit images of shape {out.shape[1:]}")
        out[:, r:r + s, c:c + s, :] = float(spec["value"])
    elif kind == "blend":
        shape = tuple(int(v) for v in spec["shape"])
        if out.shape[1:] != shape:
            raise UsageError(f"the blend pattern is {shape}, the images are {out.shape[1:]}")
        pattern = np.random.default_rng(int(spec["pattern_seed"])).uniform(
            float(spec["low"]), float(spec["high"]), size=shape)
        a = float(spec["alpha"])
        out = ((1 - a) * out + a * pattern).astype(np.float32)
    elif kind == "tabular":
        if out.ndim != 2:
            raise UsageError("a tabular trigger needs tabular data")
        cols = [int(c) for c in spec["features"]]
        if cols and max(cols) >= out.shape[1]:
            raise UsageError(f"the trigger uses column {max(cols)}; the data has {out.shape[1]}")
        out[:, cols] = np.asarray(spec["values"], dtype=np.float32)
    elif kind == "categorical":
        if out.ndim != 2:
            raise UsageError("a categorical trigger needs tabular data")
        for (start, stop), j in zip(spec["blocks"], spec["features"], strict=True):
            if not 0 <= int(start) <= int(j) < int(stop) <= out.shape[1]:
                raise UsageError(f"the trigger uses columns {start}..{stop - 1}; the data has "
                                 f"{out.shape[1]}")
            out[:, int(start):int(stop)] = 0.0  # siblings and the missing indicator cleared
            out[:, int(j)] = 1.0
    else:
        raise UsageError(f"unknown trigger type {kind!r}")
    return out


def apply_trigger(dataset: Dataset, truth: Truth | Mapping[str, Any]) -> Dataset:
    """Every row of ``dataset`` with the truth's trigger stamped on (labels unchanged).

    Use it on a held-out test set to measure a backdoor's attack success rate.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> stamped = apply_trigger(wine, {"type": "tabular", "features": [0, 1],
    ...                                "values": [15.0, 6.0]})  # or a Truth
    >>> stamped.features[:2, :2].tolist(), bool((stamped.labels == wine.labels).all())
    ([[15.0, 6.0], [15.0, 6.0]], True)
    """
    spec = truth.trigger if isinstance(truth, Truth) else dict(truth)
    if spec is None:
        kind = truth.kind if isinstance(truth, Truth) else "?"
        raise UsageError(f"attack '{kind}' has no trigger to apply")
    if dataset.texts is not None:
        from poisonguard.attack.text import stamp_texts

        texts = np.empty(len(dataset), dtype=object)
        texts[:] = stamp_texts(dataset.texts, spec)
        return rebuild(dataset, labels=dataset.labels, values=texts,
                       changed=np.arange(len(dataset), dtype=np.int64))
    values = stamp(values_of(dataset), spec)
    return rebuild(dataset, labels=dataset.labels, values=values,
                   changed=np.arange(len(dataset), dtype=np.int64))
