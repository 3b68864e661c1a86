"""The one in-memory dataset type for every modality.

A :class:`Dataset` is valid by construction: once it exists, every part of
poisonguard may rely on its invariants (lengths agree, labels are integer codes into
``classes``, features are finite float32, exactly one modality is present).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Modality = Literal["tabular", "image", "text"]

__all__ = ["Dataset", "Modality", "row_ids"]

_ID_PREFIX = b"poisonguard-row-v1\x00"


def row_ids(
    classes: Sequence[str],
    labels: np.ndarray,
    *,
    features: np.ndarray | None = None,
    images: np.ndarray | None = None,
    texts: Sequence[str] | None = None,
) -> np.ndarray:
    """SHA-256 content ids, one per row (hex strings).

    Canonical bytes of a row: ``b"poisonguard-row-v1\\0"``, the class name in UTF-8,
    ``b"\\0"``, then the row's values: features as little-endian float32, images as
    little-endian float32 in H x W x C order preceded by the shape, texts as UTF-8.
    The same values hash the same whatever file format they were read from. Exact
    duplicate rows (same values, same label) share an id.
    """
    names = [c.encode("utf-8") + b"\x00" for c in classes]
    out = np.empty(len(labels), dtype=object)
    if features is not None:
        body = np.ascontiguousarray(features, dtype="<f4")
        for i in range(len(labels)):
            h = hashlib.sha256(_ID_PREFIX + names[labels[i]] + body[i].tobytes())
            out[i] = h.hexdigest()
    elif images is not None:
        body = np.ascontiguousarray(images, dtype="<f4")
        shape = ("x".join(str(s) for s in body.shape[1:]) + "\x00").encode()
        for i in range(len(labels)):
            h = hashlib.sha256(_ID_PREFIX + names[labels[i]] + shape + body[i].tobytes())
            out[i] = h.hexdigest()
    elif texts is not None:
        for i, text in enumerate(texts):
            h = hashlib.sha256(_ID_PREFIX + names[labels[i]] + text.encode("utf-8"))
            out[i] = h.hexdigest()
    else:  # pragma: no cover - guarded by Dataset
        raise ValueError("one of features, images or texts is required")
    return out


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled rows of one modality, with stable ids.

    Exactly one of ``features`` (N x D float32), ``images`` (N x H x W x C float32,
    values as given, typically 0..255 or 0..1) or ``texts`` (list of str) is set.
    ``labels`` are int64 codes into ``classes``. ``ids`` default to content hashes
    (:func:`row_ids`) unless the data brought an id column.
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    features: np.ndarray | None = None
    images: np.ndarray | None = None
    texts: tuple[str, ...] | None = None
    ids: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    source: str = ""
    label_column: str = "label"
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        present = [x is not None for x in (self.features, self.images, self.texts)]
        if sum(present) != 1:
            raise ValueError("a Dataset holds exactly one of features, images or texts")
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError("labels must be a 1-D integer array")
        labels = labels.astype(np.int64, copy=False)
        n = len(labels)
        if n and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError("labels must be codes into classes")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if self.features is not None:
            x = np.asarray(self.features, dtype=np.float32)
            if x.ndim != 2 or len(x) != n:
                raise ValueError("features must be N x D with one row per label")
            if not np.isfinite(x).all():
                raise ValueError("features must be finite")
            object.__setattr__(self, "features", x)
            if not self.feature_names:
                names = tuple(f"f{j}" for j in range(x.shape[1]))
                object.__setattr__(self, "feature_names", names)
            elif len(self.feature_names) != x.shape[1]:
                raise ValueError("one feature name per column")
        if self.images is not None:
            im = np.asarray(self.images, dtype=np.float32)
            if im.ndim == 3:
                im = im[..., None]
            if im.ndim != 4 or len(im) != n:
                raise ValueError("images must be N x H x W x C with one image per label")
            if not np.isfinite(im).all():
                raise ValueError("images must be finite")
            object.__setattr__(self, "images", im)
        if self.texts is not None:
            texts = tuple(self.texts)
            if len(texts) != n:
                raise ValueError("one text per label")
            object.__setattr__(self, "texts", texts)
        if self.ids is None:
            ids = row_ids(
                self.classes,
                labels,
                features=self.features,
                images=self.images,
                texts=self.texts,
            )
            object.__setattr__(self, "ids", ids)
        else:
            ids = np.asarray(self.ids, dtype=object)
            if len(ids) != n:
                raise ValueError("one id per row")
            object.__setattr__(self, "ids", ids)
        for arr in (self.labels, self.features, self.images, self.ids):
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def modality(self) -> Modality:
        if self.features is not None:
            return "tabular"
        if self.images is not None:
            return "image"
        return "text"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def matrix(self) -> np.ndarray:
        """Features, or images flattened to N x (H*W*C); texts have no matrix."""
        if self.features is not None:
            return self.features
        if self.images is not None:
            return self.images.reshape(len(self), -1)
        raise ValueError("a text dataset has no feature matrix; embed it first")

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The rows at ``indices`` (in that order), keeping their ids."""
        idx = np.asarray(indices, dtype=np.int64)
        assert self.ids is not None
        return Dataset(
            labels=self.labels[idx],
            classes=self.classes,
            features=None if self.features is None else self.features[idx],
            images=None if self.images is None else self.images[idx],
            texts=None if self.texts is None else tuple(self.texts[i] for i in idx),
            ids=self.ids[idx],
            feature_names=self.feature_names,
            source=self.source,
            label_column=self.label_column,
            meta=dict(self.meta),
        )

    def replace(self, **changes: object) -> Dataset:
        """A copy with some fields changed; ids are recomputed unless given."""
        fields = {
            "labels": self.labels,
            "classes": self.classes,
            "features": self.features,
            "images": self.images,
            "texts": self.texts,
            "ids": None,
            "feature_names": self.feature_names,
            "source": self.source,
            "label_column": self.label_column,
            "meta": dict(self.meta),
        }
        fields.update(changes)
        return Dataset(**fields)  # type: ignore[arg-type]

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n_classes)
