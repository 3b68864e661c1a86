"""Features for detection, built once per scan and shared by every detector."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from poisonguard.data import Dataset
from poisonguard.errors import DataError
from poisonguard.progress import Progress
from poisonguard.represent.base import Representation
from poisonguard.represent.tabular import mlp_representation, scale_features, scale_table

__all__ = [
    "Representation", "build_representation", "feature_representation", "mlp_representation",
    "scale_features", "scale_table",
]


#: Parts of a representation that need a trained model.
_MODEL_PARTS = frozenset({"embedding", "proba", "embedding_oof"})


def _checked_embeddings(dataset: Dataset, embeddings: np.ndarray) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or len(emb) != len(dataset):
        raise DataError(
            f"embeddings must be {len(dataset)} x K, got shape {emb.shape}", path=dataset.source
        )
    if not np.isfinite(emb).all():
        raise DataError("embeddings have NaN or inf", path=dataset.source)
    return emb


def feature_representation(dataset: Dataset, *,
                           embeddings: np.ndarray | None = None) -> Representation:
    """Only the scaled input features: no model is trained.

    The features are those :func:`build_representation` would build (user-supplied
    ``embeddings`` or a text's sentence embeddings standardised; a typed table
    robustly scaled; images and plain arrays standardised). ``embedding`` and
    ``proba`` are N x 0: a detector that reads them fails loudly instead of reading
    made-up values.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> rep = feature_representation(builtin_dataset("wine"))
    >>> rep.features.shape, rep.proba.shape, rep.model
    ((178, 13), (178, 0), 'none (features only)')
    """
    if embeddings is None and dataset.modality == "text":
        from poisonguard.represent.text import embed_texts

        assert dataset.texts is not None
        embeddings = embed_texts(dataset.texts)
    if embeddings is not None:
        x = scale_features(_checked_embeddings(dataset, embeddings))
    elif dataset.schema is not None and dataset.modality == "tabular":
        x = scale_table(dataset.matrix(), dataset.schema.kinds())
    else:
        x = scale_features(dataset.matrix())
    empty = np.zeros((len(x), 0), dtype=np.float32)
    return Representation(features=x, embedding=empty, proba=empty.astype(np.float64),
                          model="none (features only)")


def build_representation(
    dataset: Dataset,
    *,
    embeddings: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    keep_oof_embedding: bool = True,
    threads: int | None = None,
    needs: Collection[str] | None = None,
    defer_embedding: bool = False,
    reproducible: bool = False,
) -> Representation:
    """The representation for ``dataset``.

    ``needs`` names the parts the caller will read (``Detector.requires``: features,
    embedding, proba, embedding_oof; default all). Without ``embedding``, ``proba``
    and ``embedding_oof`` no model is trained: only the scaled input features are
    built (:func:`feature_representation`). Without ``embedding_oof`` the model
    skips the out-of-fold activations, which saves N x 64 floats (as does
    ``keep_oof_embedding=False``).

    ``defer_embedding`` leaves the embedding (the activations of the model trained on
    all rows, an MLP's or a CNN's) to ``Representation.embed``
    (:meth:`Representation.with_embedding`): that model is trained when it is read.

    ``threads`` sets torch's CPU threads for images (default: the image
    representation's own choice); BLAS threads are the caller's (``threadpool_limits``).
    ``reproducible=True`` trains the image CNN on the CPU with kernels that give the
    same bits on any x86-64 CPU with AVX2 or AVX-512 (:func:`image_representation`;
    about twice the CNN's CPU time); other modalities are not affected.

    ``embeddings`` (N x K, user-supplied) replace the input features for any modality.
    Tabular data and embeddings get an MLP; images get a small CNN, which needs the
    ``torch`` extra (without it an image scan stops with an error naming the extra);
    texts get an MLP on their all-MiniLM-L6-v2 sentence embeddings (the ``text``
    extra; :mod:`poisonguard.represent.text`), whose scaled vectors are the features.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> rep = build_representation(builtin_dataset("wine"), needs={"features"})
    >>> rep.features.shape, rep.proba.shape, rep.model  # no detector reads a model: none
    ((178, 13), (178, 0), 'none (features only)')
    """
    if needs is not None:
        if not set(needs):  # the detectors read only the data (the token detector: texts)
            empty = np.zeros((len(dataset), 0), dtype=np.float32)
            return Representation(features=empty, embedding=empty,
                                  proba=empty.astype(np.float64), model="none (not read)")
        if not set(needs) & _MODEL_PARTS:
            return feature_representation(dataset, embeddings=embeddings)
        keep_oof_embedding = keep_oof_embedding and "embedding_oof" in needs
    if embeddings is not None:
        emb = _checked_embeddings(dataset, embeddings)
        return mlp_representation(emb, dataset.labels, dataset.n_classes, folds=folds, seed=seed,
                                  progress=progress, model_name="mlp-on-embeddings",
                                  keep_oof_embedding=keep_oof_embedding,
                                  defer_embedding=defer_embedding)
    if dataset.modality == "text":
        from poisonguard.represent.text import EMBEDDING_MODEL, embed_texts

        assert dataset.texts is not None
        emb = embed_texts(dataset.texts, progress=progress)
        return mlp_representation(emb, dataset.labels, dataset.n_classes, folds=folds, seed=seed,
                                  progress=progress, model_name=f"mlp-on-{EMBEDDING_MODEL}",
                                  keep_oof_embedding=keep_oof_embedding,
                                  defer_embedding=defer_embedding)
    if dataset.modality == "image":
        from poisonguard.represent.image import image_representation

        return image_representation(dataset, folds=folds, seed=seed, progress=progress,
                                    threads=threads, defer_embedding=defer_embedding,
                                    reproducible=reproducible)
    kinds = dataset.schema.kinds() if dataset.schema is not None else None
    return mlp_representation(dataset.matrix(), dataset.labels, dataset.n_classes, folds=folds,
                              seed=seed, progress=progress, keep_oof_embedding=keep_oof_embedding,
                              kinds=kinds, defer_embedding=defer_embedding)
