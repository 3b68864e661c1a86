"""Backdoor triggers: build a spec from the data, stamp it on rows.

A trigger spec is a small JSON-able dict stored in ``truth.params["trigger"]``:

- ``{"type": "patch", "size", "position", "row", "col", "value"}``: a solid square
  (BadNets); ``row``/``col`` are the top-left pixel. With ``position`` "random"
  they are null and every stamped image gets its own place, drawn from
  ``position_seed``.
- ``{"type": "blend", "alpha", "pattern_seed", "low", "high", "shape"}``: a random
  pattern (regenerated from its seed) mixed in with weight ``alpha``.
- ``{"type": "tabular", "features", "values", "names"}``: fixed values in k columns.
- ``{"type": "categorical", "columns", "values", "features", "blocks", "names"}``:
  categorical cells set to fixed categories (``columns[i] = values[i]``, the rarest
  combination of the table); ``blocks`` are the encoded ``[start, stop)`` of each
  column (its one-hot columns and missing indicator) and ``features`` the one-hot
  column set to 1, so the stamped row is a valid encoding of a real table row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from poisonguard.attack.truth import Truth, rebuild, values_of
from poisonguard.data import Dataset
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


def categorical_spec(dataset: Dataset, x: np.ndarray, *, n_columns: int,
                     rng: np.random.Generator) -> dict[str, Any]:
    """Pick ``n_columns`` categorical columns and the combination of their categories
    that the fewest rows of ``x`` hold (ties drawn by ``rng``): the trigger a row gets
    is a set of real cells, only their combination is rare."""
    schema = dataset.schema
    usable = [c for c in schema.used if c.kind == "categorical" and len(c.values) >= 2] \
        if schema is not None else []
    if not 1 <= n_columns <= len(usable):
        raise UsageError(f"categorical-trigger needs {n_columns} categorical column(s) with two "
                         f"or more categories; the data has {len(usable)}"
                         + ("" if schema is not None else " (not a typed table)"))
    picked = sorted(rng.choice(len(usable), size=n_columns, replace=False).tolist())
    cols = [usable[i] for i in picked]
    codes = []
    for c in cols:  # the category of each row (-1 when the cell is missing)
        block = x[:, c.start:c.start + len(c.values)]
        codes.append(np.where(block.max(axis=1) >= 0.5, block.argmax(axis=1), -1))
    shape = tuple(len(c.values) for c in cols)
    present = np.all(np.column_stack(codes) >= 0, axis=1)
    counts = np.bincount(np.ravel_multi_index(tuple(k[present] for k in codes), shape),
                         minlength=int(np.prod(shape)))
    rarest = np.flatnonzero(counts == counts.min())
    combo = np.unravel_index(int(rng.choice(rarest)), shape)
    return {"type": "categorical", "columns": [c.name for c in cols],
            "values": [c.labels[int(k)] for c, k in zip(cols, combo, strict=True)],
            "features": [c.start + int(k) for c, k in zip(cols, combo, strict=True)],
            "blocks": [[c.start, c.stop] for c in cols],
            "names": [f"{c.name} = {c.labels[int(k)]}" for c, k in zip(cols, combo, strict=True)],
            "rows_with_it": int(counts.min())}


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
