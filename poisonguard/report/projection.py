"""2-D projections of the representation for the scatter view, sampled for large data.

The plotted rows are every flagged row (the highest-scoring ``max_flagged``) plus a
fixed-seed sample of ``max_background`` other rows, so a million-row scan still
draws about ten thousand points. PCA is fitted on at most ``fit_rows`` rows; UMAP
(when the ``umap-learn`` package is installed) runs on the plotted rows only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from poisonguard.report.context import ReportContext

__all__ = ["Projection", "project", "sample_rows"]


@dataclass(frozen=True, eq=False)
class Projection:
    """``coords[method]`` is an M x 2 array for the rows at ``positions``.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.report import build_context, project
    >>> wine = builtin_dataset("wine")
    >>> ctx = build_context(poisonguard.scan(wine, detectors="outlier"), dataset=wine)
    >>> projection = project(ctx)
    >>> projection.positions.shape, projection.coords["PCA"].shape, projection.n_flagged_total
    ((178,), (178, 2), 0)
    """

    positions: np.ndarray
    coords: dict[str, np.ndarray]
    source: str
    n_flagged_total: int
    n_flagged_shown: int


def sample_rows(ctx: ReportContext, *, max_flagged: int = 5000, max_background: int = 5000,
                seed: int = 0) -> np.ndarray:
    """Positions to plot: top flagged rows, then a seeded sample of the others."""
    flagged = ctx.top_flagged(max_flagged)
    rest = np.flatnonzero(~ctx.flagged)
    if len(rest) > max_background:
        rest = np.sort(np.random.default_rng(seed).choice(rest, max_background, replace=False))
    return np.concatenate([rest, flagged])


def _source_matrix(ctx: ReportContext) -> tuple[np.ndarray, str] | None:
    if ctx.embedding is not None:
        return ctx.embedding, "the given embedding"
    if ctx.dataset is None or ctx.dataset.modality == "text":
        return None
    return ctx.dataset.matrix(), "the standardised input features"


def project(ctx: ReportContext, *, max_flagged: int = 5000, max_background: int = 5000,
            fit_rows: int = 20_000, seed: int = 0, umap: bool | None = None) -> Projection | None:
    """PCA (and UMAP when available) of the sampled rows, or None without a matrix.

    Examples
    --------
    >>> import poisonguard
    >>> from poisonguard.report import build_context
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"))
    >>> project(ctx) is None  # no dataset given: nothing to project
    True
    >>> ctx = build_context(poisonguard.scan("builtin:wine", detectors="outlier"),
    ...                     dataset=poisonguard.open_dataset("builtin:wine"))
    >>> projection = project(ctx, umap=False)
    >>> list(projection.coords), projection.source
    (['PCA'], 'the standardised input features')
    """
    found = _source_matrix(ctx)
    if found is None:
        return None
    matrix, source = found
    positions = sample_rows(ctx, max_flagged=max_flagged, max_background=max_background,
                            seed=seed)
    rows = ctx.index[positions]
    x = np.asarray(matrix[rows], dtype=np.float64).reshape(len(rows), -1)
    n_all = len(matrix)
    fit_idx = (np.arange(n_all) if n_all <= fit_rows
               else np.random.default_rng(seed + 1).choice(n_all, fit_rows, replace=False))
    fit = np.asarray(matrix[np.sort(fit_idx)], dtype=np.float64).reshape(len(fit_idx), -1)
    mean, sd = fit.mean(axis=0), fit.std(axis=0)
    sd[sd < 1e-12] = 1.0
    fit, x = (fit - mean) / sd, (x - mean) / sd
    coords = {"PCA": _pca(fit, x, seed)}
    if umap is None:
        umap = importlib.util.find_spec("umap") is not None
    if umap and len(x) >= 10:
        coords["UMAP"] = _umap(x, seed)
    return Projection(positions=positions, coords=coords, source=source,
                      n_flagged_total=ctx.n_flagged,
                      n_flagged_shown=int(ctx.flagged[positions].sum()))


def _pca(fit: np.ndarray, x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = min(2, fit.shape[1], fit.shape[0])
    out = np.zeros((len(x), 2))
    if k == 0:
        return out
    pca = PCA(n_components=k, random_state=seed).fit(fit)
    out[:, :k] = pca.transform(x)
    return out


def _umap(x: np.ndarray, seed: int) -> np.ndarray:  # pragma: no cover - optional package
    import umap

    reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(x) - 1))
    return np.asarray(reducer.fit_transform(x), dtype=np.float64)
