"""Features for detection, built once per scan and shared by every detector."""

from __future__ import annotations

import numpy as np

from poisonguard.data import Dataset
from poisonguard.errors import DataError
from poisonguard.progress import Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.tabular import mlp_representation, scale_features, scale_table

__all__ = [
    "Representation", "build_representation", "mlp_representation", "scale_features",
    "scale_table",
]


def build_representation(
    dataset: Dataset,
    *,
    embeddings: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    keep_oof_embedding: bool = True,
    threads: int | None = None,
) -> Representation:
    """The representation for ``dataset``.

    ``keep_oof_embedding=False`` lets the MLP skip the out-of-fold activations (no
    detector in the scan reads them), which saves N x 64 floats.

    ``threads`` sets torch's CPU threads for images (default: the image
    representation's own choice); BLAS threads are the caller's (``threadpool_limits``).

    ``embeddings`` (N x K, user-supplied) replace the input features for any modality.
    Tabular data and embeddings get an MLP; images get a small CNN, which needs the
    ``torch`` extra (without it an image scan stops with an error naming the extra);
    texts get an MLP on their all-MiniLM-L6-v2 sentence embeddings (the ``text``
    extra; :mod:`poisonguard.represent.text`), whose scaled vectors are the features.
    """
    if embeddings is not None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(dataset):
            raise DataError(
                f"embeddings must be {len(dataset)} x K, got shape {emb.shape}", path=dataset.source
            )
        if not np.isfinite(emb).all():
            raise DataError("embeddings have NaN or inf", path=dataset.source)
        return mlp_representation(emb, dataset.labels, dataset.n_classes, folds=folds, seed=seed,
                                  progress=progress, model_name="mlp-on-embeddings",
                                  keep_oof_embedding=keep_oof_embedding)
    if dataset.modality == "text":
        from poisonguard.represent.text import EMBEDDING_MODEL, embed_texts

        assert dataset.texts is not None
        emb = embed_texts(dataset.texts, progress=progress)
        return mlp_representation(emb, dataset.labels, dataset.n_classes, folds=folds, seed=seed,
                                  progress=progress, model_name=f"mlp-on-{EMBEDDING_MODEL}",
                                  keep_oof_embedding=keep_oof_embedding)
    if dataset.modality == "image":
        from poisonguard.represent.image import image_representation

        return image_representation(dataset, folds=folds, seed=seed, progress=progress,
                                    threads=threads)
    kinds = dataset.schema.kinds() if dataset.schema is not None else None
    return mlp_representation(dataset.matrix(), dataset.labels, dataset.n_classes, folds=folds,
                              seed=seed, progress=progress, keep_oof_embedding=keep_oof_embedding,
                              kinds=kinds)
