"""Image representation (placeholder until the CNN lands: an MLP on scaled pixels)."""

from __future__ import annotations

from poisonguard.data import Dataset
from poisonguard.progress import Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.tabular import mlp_representation

__all__ = ["image_representation"]


def image_representation(
    dataset: Dataset, *, folds: int = 5, seed: int = 0, progress: Progress | None = None
) -> Representation:
    return mlp_representation(dataset.matrix(), dataset.labels, dataset.n_classes, folds=folds,
                              seed=seed, progress=progress, model_name="mlp-on-pixels")
