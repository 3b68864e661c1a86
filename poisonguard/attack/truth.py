"""The truth record of an attack, its result type, and the helpers every attack shares.

A :class:`Truth` says exactly what an attack did: which rows of the poisoned
dataset were changed or added, their original labels, the attack's parameters and
seed (enough to reproduce it bit for bit) and, for backdoors, the trigger spec
that :func:`~poisonguard.attack.apply_trigger` stamps on test inputs.
Detectors never see it; the benchmark and ``poisonguard score`` do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import Dataset, atomic_write_text, row_ids
from poisonguard.errors import DataError, UsageError

__all__ = [
    "AttackResult",
    "Truth",
    "load_truth",
    "save_truth",
]

TRUTH_FORMAT = "poisonguard-truth"
TRUTH_VERSION = 1


@dataclass(frozen=True, eq=False)
class Truth:
    """What an attack did to a dataset (indices refer to the *poisoned* dataset).

    ``poisoned`` are the sorted row indices that were changed or added; the last
    ``n_added`` rows of the poisoned dataset are the added ones. ``original_labels``
    maps each relabelled row to its label code before the attack. ``params`` hold
    every parameter (including the trigger spec under ``"trigger"`` for backdoors).

    Examples
    --------
    >>> truth = Truth(kind="flip", seed=0, params={"rate": 0.2}, poisoned=np.array([3, 1]),
    ...               n_rows=10, original_labels={1: 0, 3: 2})
    >>> truth.poisoned.tolist(), truth.n_added
    ([1, 3], 0)
    """

    kind: str
    seed: int
    params: Mapping[str, Any]
    poisoned: np.ndarray
    n_rows: int
    target: int | None = None
    original_labels: Mapping[int, int] = field(default_factory=dict)
    n_added: int = 0
    modality: str = ""
    classes: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        idx = np.unique(np.asarray(self.poisoned, dtype=np.int64))
        if len(idx) and (idx[0] < 0 or idx[-1] >= self.n_rows):
            raise ValueError("poisoned indices must lie inside the poisoned dataset")
        if not 0 <= self.n_added <= self.n_rows:
            raise ValueError("n_added must be between 0 and n_rows")
        idx.flags.writeable = False
        object.__setattr__(self, "poisoned", idx)
        object.__setattr__(
            self, "original_labels", {int(k): int(v) for k, v in self.original_labels.items()}
        )
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask over the poisoned dataset: True where the row is poison."""
        out = np.zeros(self.n_rows, dtype=bool)
        out[self.poisoned] = True
        return out

    @property
    def added(self) -> np.ndarray:
        """Indices of the appended rows."""
        return np.arange(self.n_rows - self.n_added, self.n_rows, dtype=np.int64)

    @property
    def trigger(self) -> dict[str, Any] | None:
        """The trigger spec of a backdoor, or None."""
        spec = self.params.get("trigger")
        return dict(spec) if isinstance(spec, Mapping) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "kind": self.kind,
            "seed": self.seed,
            "target": self.target,
            "params": _jsonable(self.params),
            "n_rows": self.n_rows,
            "n_added": self.n_added,
            "modality": self.modality,
            "classes": list(self.classes),
            "description": self.description,
            "poisoned": [int(i) for i in self.poisoned],
            "original_labels": {str(k): v for k, v in sorted(self.original_labels.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, path: str = "") -> Truth:
        if not isinstance(d, Mapping) or d.get("format") != TRUTH_FORMAT:
            raise DataError("not a poisonguard truth file (no 'format: poisonguard-truth')",
                            path=path)
        try:
            target = d.get("target")
            return cls(
                kind=str(d["kind"]), seed=int(d["seed"]), params=dict(d["params"]),
                poisoned=np.asarray([int(i) for i in d["poisoned"]], dtype=np.int64),
                n_rows=int(d["n_rows"]), target=None if target is None else int(target),
                original_labels={int(k): int(v) for k, v in dict(d["original_labels"]).items()},
                n_added=int(d.get("n_added", 0)), modality=str(d.get("modality", "")),
                classes=tuple(str(c) for c in d.get("classes", ())),
                description=str(d.get("description", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a valid truth record ({exc})", path=path) from None


@dataclass(frozen=True, eq=False)
class AttackResult:
    """The poisoned dataset and the truth of what was done to it.

    Examples
    --------
    >>> from poisonguard.attack import label_flip
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> result = label_flip(wine, rate=0.1, seed=0)
    >>> int((result.dataset.labels != wine.labels).sum()), len(result.truth.poisoned)
    (18, 18)
    """

    dataset: Dataset
    truth: Truth


def save_truth(truth: Truth, path: str | Path) -> None:
    """Write ``truth`` as JSON, atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "truth.json"
    >>> save_truth(Truth(kind="flip", seed=0, params={}, poisoned=np.array([1]), n_rows=4), path)
    >>> load_truth(path).poisoned.tolist()
    [1]
    """
    atomic_write_text(path, json.dumps(truth.to_dict(), indent=1) + "\n")


def load_truth(path: str | Path) -> Truth:
    """Read and validate a truth file; :class:`DataError` naming the file on garbage.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "truth.json"
    >>> save_truth(Truth(kind="outliers", seed=1, params={}, poisoned=np.array([4]), n_rows=5,
    ...                  n_added=1), path)
    >>> truth = load_truth(path)
    >>> truth.kind, truth.n_added
    ('outliers', 1)
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("no such truth file", path=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=str(p)) from None
    return Truth.from_dict(data, path=str(p))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------- shared helpers
def check_rate(rate: float) -> None:
    if not 0 < rate <= 0.5:
        raise UsageError(f"rate must be in (0, 0.5], got {rate}")


def n_modified(rate: float, n_rows: int) -> int:
    """Rows to change so that ``rate`` of the (same-sized) output is poison."""
    check_rate(rate)
    return max(1, int(round(rate * n_rows)))


def n_injected(rate: float, n_rows: int) -> int:
    """Rows to append so that ``rate`` of the output (n_rows + m) is poison."""
    check_rate(rate)
    return max(1, int(round(rate * n_rows / (1.0 - rate))))


def check_target(dataset: Dataset, target: int | None, what: str = "target") -> int:
    if target is None:
        raise UsageError(f"this attack needs a {what} class")
    t = int(target)
    if not 0 <= t < dataset.n_classes:
        raise UsageError(f"{what} {target} is not a class code (0..{dataset.n_classes - 1})")
    return t


def require_modality(dataset: Dataset, kind: str, *allowed: str) -> None:
    if dataset.modality not in allowed:
        hint = " (use tabular-trigger for tabular data)" if "image" in allowed else ""
        raise UsageError(f"{kind} does not apply to {dataset.modality} data{hint}")


def pick(rng: np.random.Generator, pool: np.ndarray, k: int, what: str) -> np.ndarray:
    """``k`` distinct rows from ``pool`` (sorted), or UsageError if there are too few."""
    if k > len(pool):
        raise UsageError(f"the attack needs {k} {what} but the data has only {len(pool)}")
    return np.sort(rng.choice(pool, size=k, replace=False)).astype(np.int64)


def rebuild(
    dataset: Dataset,
    *,
    labels: np.ndarray,
    values: np.ndarray,
    changed: np.ndarray,
    added_labels: np.ndarray | None = None,
    added_values: np.ndarray | None = None,
) -> Dataset:
    """A poisoned copy: ``values`` (features, images, or texts as an object array of
    str: :func:`values_of`) and ``labels`` replace the originals, rows in ``changed``
    get fresh content ids, added rows are appended.

    Unchanged rows keep their ids, so an id column the data brought survives.
    """
    labels = np.asarray(labels, dtype=np.int64)
    text = dataset.texts is not None
    values = np.asarray(values, dtype=object if text else np.float32)
    ids = np.array(dataset.ids, dtype=object)
    if added_values is not None and added_labels is not None:
        labels = np.concatenate([labels, np.asarray(added_labels, dtype=np.int64)])
        values = np.concatenate([values, np.asarray(added_values,
                                                    dtype=object if text else np.float32)])
        ids = np.concatenate([ids, np.empty(len(added_labels), dtype=object)])
    fresh = np.concatenate([np.asarray(changed, dtype=np.int64),
                            np.arange(len(dataset), len(labels), dtype=np.int64)])
    if text:
        texts = tuple(str(t) for t in values)
        if len(fresh):
            ids[fresh] = row_ids(dataset.classes, labels[fresh],
                                 texts=[texts[i] for i in fresh])
        return dataset.replace(labels=labels, ids=ids, texts=texts)
    if len(fresh):
        key = "features" if dataset.features is not None else "images"
        ids[fresh] = row_ids(dataset.classes, labels[fresh], **{key: values[fresh]})
    return dataset.replace(
        labels=labels, ids=ids,
        features=values if dataset.features is not None else None,
        images=values if dataset.images is not None else None,
    )


def values_of(dataset: Dataset) -> np.ndarray:
    """A writable copy of the features or images, or the texts as an object array."""
    if dataset.features is not None:
        return np.array(dataset.features, dtype=np.float32)
    if dataset.images is not None:
        return np.array(dataset.images, dtype=np.float32)
    assert dataset.texts is not None
    out = np.empty(len(dataset.texts), dtype=object)
    out[:] = dataset.texts
    return out


def make_truth(
    dataset: Dataset, poisoned_ds: Dataset, *, kind: str, seed: int, params: Mapping[str, Any],
    poisoned: np.ndarray, target: int | None = None,
    original_labels: Mapping[int, int] | None = None, n_added: int = 0, description: str = "",
) -> Truth:
    return Truth(
        kind=kind, seed=int(seed), params=_jsonable(dict(params)), poisoned=poisoned,
        n_rows=len(poisoned_ds), target=target, original_labels=dict(original_labels or {}),
        n_added=n_added, modality=dataset.modality, classes=dataset.classes,
        description=description,
    )
