"""Why a table row looks unusual for its class, in the table's own values.

Categories by name with how common they are in the class ("island = Torgersen,
seen in 0.3% of Gentoo rows"), numbers as written with a robust z against the class,
missing cells with how often the class misses them. Never codes or ranks.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from poisonguard.data import Column, Dataset

__all__ = ["unusual_cells"]

_MAD_TO_SD = 1.4826


def _share_strength(share: float) -> float:
    """A share of the class mapped to a two-sided z of the same rarity."""
    return float(norm.isf(min(max(share, 1e-4), 1.0) / 2.0))


def _robust_z(value: float, ref: np.ndarray) -> float:
    med = float(np.median(ref))
    dev = np.abs(ref - med)
    mad = float(np.median(dev)) * _MAD_TO_SD
    scale = mad if mad > 1e-12 else (float(dev.mean()) * 1.2533 or 1.0)
    return (value - med) / scale


def _cell(dataset: Dataset, c: Column, row: int, members: np.ndarray,
          cls: str) -> tuple[float, str]:
    x = dataset.features
    assert x is not None
    values = dict(dataset.schema.iter_cells(x[row])) if dataset.schema is not None else {}
    shown = values.get(c.name, "")
    if c.has_missing and x[row, c.stop - 1] >= 0.5:
        share = float((x[members, c.stop - 1] >= 0.5).mean())
        return _share_strength(share), (f"{c.name} is missing, as in {100 * share:.1f}% of "
                                         f"{cls} rows")
    if c.kind == "categorical":
        j = c.start + int(np.argmax(x[row, c.start:c.start + len(c.values)]))
        share = float((x[members, j] >= 0.5).mean())
        return _share_strength(share), f"{c.name} = {shown}, seen in {100 * share:.1f}% of " \
                                       f"{cls} rows"
    width = c.width - int(c.has_missing)
    zs = [_robust_z(float(x[row, j]), x[members, j].astype(np.float64))
          for j in range(c.start, c.start + width)]
    k = int(np.argmax(np.abs(zs)))
    part = f" on {c.encoded_names()[k]}" if c.kind == "date" else ""
    return abs(zs[k]), f"{c.name} = {shown} (z {zs[k]:+.1f}{part} vs {cls})"


def unusual_cells(dataset: Dataset, row: int, *, top: int = 3,
                  sample: int = 5000, seed: int = 0) -> list[str]:
    """The ``top`` cells of ``row`` most unusual for its class, in original values."""
    if dataset.schema is None or dataset.features is None:
        return []
    label = int(dataset.labels[row])
    members = np.flatnonzero(dataset.labels == label)
    if len(members) > sample:
        members = np.sort(np.random.default_rng(seed).choice(members, sample, replace=False))
    cls = dataset.classes[label]
    scored = [_cell(dataset, c, row, members, cls) for c in dataset.schema.used]
    scored.sort(key=lambda t: -t[0])
    return [text for _, text in scored[:top]]
