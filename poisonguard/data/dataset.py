"""The one in-memory dataset type for every modality.

A :class:`Dataset` is valid by construction: once it exists, every part of
poisonguard may rely on its invariants (lengths agree, labels are integer codes into
``classes``, features are finite float32, exactly one modality is present).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from poisonguard.data.ids import DigestWriter, RowIds

if TYPE_CHECKING:
    from poisonguard.data.schema import TableSchema

Modality = Literal["tabular", "image", "text"]

__all__ = ["ROW_ID_PREFIX", "Dataset", "Modality", "dataset_digest", "row_ids"]

ROW_ID_PREFIX = b"poisonguard-row-v1\x00"
#: Rows converted to float32 at a time when hashing ids or reading pixels in chunks.
ID_BLOCK_ROWS = 4_096


def row_ids(
    classes: Sequence[str],
    labels: np.ndarray,
    *,
    features: np.ndarray | None = None,
    images: np.ndarray | None = None,
    texts: Sequence[str] | None = None,
) -> RowIds:
    """SHA-256 content ids, one per row (hex strings, stored as 32-byte digests:
    :class:`~poisonguard.data.ids.RowIds`).

    Canonical bytes of a row: ``b"poisonguard-row-v1\\0"``, the class name in UTF-8,
    ``b"\\0"``, then the row's values: features as little-endian float32, images as
    little-endian float32 in H x W x C order preceded by the shape, texts as UTF-8.
    The same values hash the same whatever file format they were read from. Exact
    duplicate rows (same values, same label) share an id.

    Examples
    --------
    >>> import numpy as np
    >>> ids = row_ids(("a", "b"), np.array([0, 1]), features=np.array([[1.0], [1.0]]))
    >>> len(ids), len(ids[0]), ids[0] != ids[1]  # same values, other label: another id
    (2, 64, True)
    """
    names = [c.encode("utf-8") + b"\x00" for c in classes]
    out = DigestWriter(len(labels))
    values = features if features is not None else images
    if values is not None:
        shape = b"" if features is not None else \
            ("x".join(str(s) for s in values.shape[1:]) + "\x00").encode()
        # Converted to float32 a block of rows at a time: uint8 images never exist as a
        # full float32 copy, and the bytes hashed are the same as converting at once.
        for start in range(0, len(labels), ID_BLOCK_ROWS):
            body = np.ascontiguousarray(values[start:start + ID_BLOCK_ROWS], dtype="<f4")
            for i, row in enumerate(body, start):
                out[i] = hashlib.sha256(ROW_ID_PREFIX + names[labels[i]] + shape
                                        + row.tobytes()).digest()
    elif texts is not None:
        for i, text in enumerate(texts):
            out[i] = hashlib.sha256(ROW_ID_PREFIX + names[labels[i]]
                                    + text.encode("utf-8")).digest()
    else:  # pragma: no cover - guarded by Dataset
        raise ValueError("one of features, images or texts is required")
    return out.ids()


@dataclass(frozen=True, eq=False, init=False)
class Dataset:
    """Labelled rows of one modality, with stable ids.

    Exactly one of ``features`` (N x D float32), ``images`` (N x H x W x C, values as
    given, typically 0..255 or 0..1; uint8 when given as uint8, which keeps a million
    32 x 32 x 3 images at 3 GB instead of 12, else float32) or ``texts`` (list of str)
    is set. Read pixels as float32 with :meth:`pixel_chunks` (a block of rows at a
    time) or :meth:`matrix` (all at once, a float32 copy for uint8 images), or in their
    stored dtype without a copy with :meth:`stored_matrix`.
    ``labels`` are int64 codes into ``classes``. ``ids`` are always set: the data's
    id column when it has one, else content hashes (:func:`row_ids`, kept as 32-byte
    digests and read as hex strings: :class:`~poisonguard.data.ids.RowIds`). ``schema``
    (tables only) says how the original typed columns were encoded into
    ``features`` (see :class:`~poisonguard.data.schema.TableSchema`).

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(labels=np.array([0, 1]), classes=("cat", "dog"),
    ...              features=np.array([[1.0], [2.0]]))
    >>> len(ds), ds.modality, len(ds.ids)
    (2, 'tabular', 2)
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    features: np.ndarray | None
    images: np.ndarray | None
    texts: tuple[str, ...] | None
    ids: np.ndarray | RowIds
    feature_names: tuple[str, ...]
    source: str
    label_column: str
    meta: dict[str, str]
    schema: TableSchema | None

    def __init__(
        self,
        *,
        labels: np.ndarray | Sequence[int],
        classes: Sequence[str],
        features: np.ndarray | None = None,
        images: np.ndarray | None = None,
        texts: Sequence[str] | None = None,
        ids: np.ndarray | RowIds | Sequence[str] | None = None,
        feature_names: Sequence[str] = (),
        source: str = "",
        label_column: str = "label",
        meta: dict[str, str] | None = None,
        schema: TableSchema | None = None,
    ) -> None:
        present = [x is not None for x in (features, images, texts)]
        if sum(present) != 1:
            raise ValueError("a Dataset holds exactly one of features, images or texts")
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError("labels must be a 1-D integer array")
        labels = labels.astype(np.int64, copy=False)
        classes = tuple(str(c) for c in classes)
        n = len(labels)
        if n and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError("labels must be codes into classes")
        names = tuple(str(f) for f in feature_names)
        if features is not None:
            features = np.asarray(features, dtype=np.float32)
            if features.ndim != 2 or len(features) != n:
                raise ValueError("features must be N x D with one row per label")
            if not np.isfinite(features).all():
                raise ValueError("features must be finite")
            if not names:
                names = schema.names if schema is not None else \
                    tuple(f"f{j}" for j in range(features.shape[1]))
            elif len(names) != features.shape[1]:
                raise ValueError("one feature name per column")
            if schema is not None and schema.width != features.shape[1]:
                raise ValueError("the schema's width must match the features")
        elif schema is not None:
            raise ValueError("only tabular datasets have a schema")
        if images is not None:
            images = np.asarray(images)
            if images.dtype != np.uint8:
                images = np.asarray(images, dtype=np.float32)
                if not np.isfinite(images).all():
                    raise ValueError("images must be finite")
            if images.ndim == 3:
                images = images[..., None]
            if images.ndim != 4 or len(images) != n:
                raise ValueError("images must be N x H x W x C with one image per label")
        if texts is not None:
            texts = tuple(texts)
            if len(texts) != n:
                raise ValueError("one text per label")
        if ids is None:
            ids = row_ids(classes, labels, features=features, images=images, texts=texts)
        elif isinstance(ids, RowIds):
            if len(ids) != n:
                raise ValueError("one id per row")
        else:
            ids = np.asarray(ids, dtype=object)
            if ids.shape != (n,):
                raise ValueError("one id per row")
        for arr in (labels, features, images, ids):
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False
        values = {"labels": labels, "classes": classes, "features": features, "images": images,
                  "texts": texts, "ids": ids, "feature_names": names, "source": source,
                  "label_column": label_column, "meta": dict(meta or {}), "schema": schema}
        for key, value in values.items():
            object.__setattr__(self, key, value)

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
        """Features, or images flattened to N x (H*W*C) float32; texts have no matrix.

        For uint8 images this is a full float32 copy (4x the pixels): detectors that
        can work a block of rows at a time should use :meth:`pixel_chunks`.
        """
        if self.features is not None:
            return self.features
        if self.images is not None:
            return np.asarray(self.images.reshape(len(self), -1), dtype=np.float32)
        raise ValueError("a text dataset has no feature matrix; embed it first")

    def stored_matrix(self) -> np.ndarray:
        """Features, or images flattened to N x (H*W*C) in their stored dtype (uint8 stays
        uint8); texts have no matrix.

        A view of the images when they are contiguous (a copy in the stored dtype
        otherwise); do not write to it. Its values equal :meth:`matrix`'s exactly (uint8 to
        float32 is exact), so equality tests on it decide as on the float copy.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset(labels=np.array([0, 1]), classes=("a", "b"),
        ...              images=np.zeros((2, 2, 2, 1), dtype=np.uint8))
        >>> ds.stored_matrix().shape, ds.stored_matrix().dtype.name
        ((2, 4), 'uint8')
        """
        if self.features is not None:
            return self.features
        if self.images is not None:
            return self.images.reshape(len(self), -1)
        raise ValueError("a text dataset has no feature matrix; embed it first")

    def pixel_chunks(self, rows: int = ID_BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, block)`` pairs covering :meth:`matrix` a block of rows at a time.

        ``block`` is ``rows`` x D float32 (the last one shorter), equal to
        ``matrix()[start:start + rows]`` without the full copy.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset(labels=np.array([0, 1, 1]), classes=("a", "b"),
        ...              images=np.zeros((3, 2, 2, 1), dtype=np.uint8))
        >>> [(start, block.shape, block.dtype.name) for start, block in ds.pixel_chunks(2)]
        [(0, (2, 4), 'float32'), (2, (1, 4), 'float32')]
        """
        if rows < 1:
            raise ValueError("rows must be at least 1")
        source = self.images if self.images is not None else self.features
        if source is None:
            raise ValueError("a text dataset has no pixels or features; embed it first")
        for start in range(0, len(self), rows):
            block = source[start:start + rows]
            yield start, np.asarray(block.reshape(len(block), -1), dtype=np.float32)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The rows at ``indices`` (in that order), keeping their ids."""
        idx = np.asarray(indices, dtype=np.int64)
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
            schema=self.schema,
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
            "schema": self.schema,
        }
        fields.update(changes)
        return Dataset(**fields)  # type: ignore[arg-type]

    def describe(self, j: int, value: float) -> str:
        """Feature column ``j`` at ``value`` in the user's terms ("island = Dream").

        Tables with a schema show original values (categories by name, never codes);
        other data shows ``name = value``.
        """
        if self.schema is not None:
            return self.schema.describe(j, value)
        return f"{self.feature_names[j]} = {value:.4g}"

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n_classes)


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 over the row ids in order: the dataset's content fingerprint.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> len(dataset_digest(wine)), dataset_digest(wine) == dataset_digest(wine.subset(range(178)))
    (64, True)
    """
    h = hashlib.sha256()
    step = 65_536  # same bytes as hashing id by id, in a few large updates
    for start in range(0, len(dataset.ids), step):
        chunk = dataset.ids[start:start + step]
        h.update(("\n".join(str(i) for i in chunk) + "\n").encode())
    return h.hexdigest()
