"""The representation every detector reads: built once per scan and shared."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from poisonguard.memo import remember

__all__ = ["EMBEDDING_MEMO", "Representation"]

#: The scan memo's name for deferred embeddings (:meth:`Representation.with_embedding`).
EMBEDDING_MEMO = "embedding"


@dataclass(frozen=True, eq=False)
class Representation:
    """What the detectors see of a dataset.

    - ``features``: N x D input-space features, scaled column by column: a typed
      table's numeric columns robustly (median and IQR,
      :func:`poisonguard.represent.scale_table`) with its 0/1 columns kept; flattened
      image pixels, arrays without a schema and user-supplied embeddings to zero mean
      and unit variance (:func:`poisonguard.represent.scale_features`).
    - ``embedding``: N x K activations of a model trained on *all* rows (the layer is
      a parameter, penultimate by default). A backdoored model separates poisoned
      rows here, which is what spectral and clustering detectors need.
    - ``proba``: N x C out-of-fold predicted probabilities: no row is scored by a
      model that saw it (confident learning, label detectors).
    - ``embedding_oof``: N x K activations of the held-out rows under their fold's
      model (deep k-NN), or None when not computed.
    - ``embed``: when not None, the embedding was deferred (``embedding`` is N x 0)
      and ``embed()`` computes it; :meth:`with_embedding` gives the representation
      with it, computed once per scan. A scan defers the MLP's embedding so that it
      does not exist before the first detector that reads it (at 1M x 50 rows:
      122 MiB, 0.6x the data).

    Examples
    --------
    >>> rep = Representation(features=np.zeros((4, 2)), embedding=np.zeros((4, 0)),
    ...                      proba=np.full((4, 2), 0.5), model="none")
    >>> rep.features.shape, rep.embedding_oof is None
    ((4, 2), True)
    """

    features: np.ndarray
    embedding: np.ndarray
    proba: np.ndarray
    embedding_oof: np.ndarray | None = None
    model: str = ""
    layer: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    embed: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        for name in ("embedding", "proba"):
            arr = getattr(self, name)
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows, features has {n}")
        if self.embedding_oof is not None and len(self.embedding_oof) != n:
            raise ValueError("embedding_oof must have one row per row")

    def with_embedding(self) -> Representation:
        """This representation with its embedding: ``self`` unless it was deferred,
        else a copy whose ``embedding`` is ``embed()``.

        Inside a scan ``embed()`` runs once: the scan's memo keeps the result under
        :data:`EMBEDDING_MEMO`, keyed on the ``embed`` function itself (held by the
        memo, so its identity is never reused), until the scan ends
        (:mod:`poisonguard.memo`). Outside a scan it runs at each call.

        Examples
        --------
        >>> from poisonguard.memo import scan_memo
        >>> calls = []
        >>> rep = Representation(features=np.zeros((4, 2)), embedding=np.zeros((4, 0)),
        ...                      proba=np.full((4, 2), 0.5),
        ...                      embed=lambda: calls.append(1) or np.ones((4, 3)))
        >>> rep.embedding.shape, rep.with_embedding().embedding.shape
        ((4, 0), (4, 3))
        >>> with scan_memo():
        ...     first, again = rep.with_embedding(), rep.with_embedding()
        >>> first.embedding is again.embedding, len(calls)  # once in the scan, once before
        (True, 2)
        """
        if self.embed is None:
            return self
        embedding = remember(EMBEDDING_MEMO, self.embed, self.embed)
        return dataclasses.replace(self, embedding=embedding, embed=None)

    @property
    def predicted(self) -> np.ndarray:
        """Out-of-fold predicted class per row."""
        return np.asarray(self.proba.argmax(axis=1))
