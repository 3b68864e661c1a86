"""What ``poisonguard train`` and ``poisonguard certify`` do, as library calls.

:func:`train_dataset` splits off a held-out test set (stratified, seeded), trains one
method on the rest, measures held-out accuracy, and returns the model with its card
and (for trimmed loss and ABL) the suspect rows as findings. :func:`write_model`
stores it safely (:mod:`poisonguard.train.storage`). :func:`certify_dataset` loads a
DPA/FA folder and gives each row's prediction and certified radius.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from poisonguard.data import Dataset, atomic_write_text
from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings, Reason, RowFinding, save_findings
from poisonguard.train.abl import ABLClassifier
from poisonguard.train.certify import RADII, certified_accuracy
from poisonguard.train.dp import DPSGDClassifier
from poisonguard.train.ensemble import DPAClassifier, FAClassifier, default_estimator
from poisonguard.train.itlm import TrimmedLossClassifier
from poisonguard.train.storage import load_model, save_model
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = ["BASES", "METHODS", "Certificates", "TrainResult", "certify_dataset",
           "train_dataset", "write_model"]

METHODS = ("dpa", "fa", "itlm", "abl", "dp")
BASES = ("auto", "logistic", "cnn", "mlp")
CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class TrainResult:
    """A trained model, its card (JSON-able) and the rows it set aside, if any.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = train_dataset(builtin_dataset("wine"), "dpa", partitions=3)
    >>> type(result.model).__name__, result.findings is None
    ('DPAClassifier', True)
    """

    model: Any
    card: dict[str, Any]
    findings: Findings | None = None
    image_shape: tuple[int, int, int] | None = None
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Certificates:
    """Per-row predictions and certified radii, and certified accuracy per radius.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m"
    >>> _ = write_model(train_dataset(wine, "dpa", partitions=3), out, data={})
    >>> c = certify_dataset(out, wine, radii=(0, 1))
    >>> c.method, sorted(c.accuracy), list(c.table.columns)
    ('dpa', [0, 1], ['index', 'id', 'label', 'prediction', 'radius', 'correct'])
    """

    table: pd.DataFrame
    accuracy: dict[int, float] = field(default_factory=dict)
    method: str = ""


def _matrix(dataset: Dataset) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    if dataset.modality == "text":
        raise UsageError("robust training needs tabular or image data (text: embed it first)")
    shape = None
    if dataset.images is not None:
        h, w, c = dataset.images.shape[1:]
        shape = (int(h), int(w), int(c))
    return np.asarray(dataset.matrix(), dtype=np.float32), shape


def _base(base: str, shape: tuple[int, int, int] | None, seed: int,
          epochs: int | None) -> Any:
    if base not in BASES:
        raise UsageError(f"unknown base model '{base}' (known: {', '.join(BASES)})")
    if base == "auto":
        base = "cnn" if shape is not None else "logistic"
    if base == "logistic":
        return default_estimator()
    if base == "cnn" and shape is None:
        raise UsageError("--base cnn needs image data (use mlp for tables)")
    return TorchClassifier(image_shape=shape if base == "cnn" else None, seed=seed,
                           epochs=epochs)


def _build(method: str, params: Mapping[str, Any], shape: tuple[int, int, int] | None) -> Any:
    seed, epochs = int(params["seed"]), params.get("epochs")
    torch_shape = None if params["base"] == "mlp" else shape
    if method == "dpa":
        return DPAClassifier(_base(params["base"], shape, seed, epochs),
                             n_partitions=int(params["partitions"]))
    if method == "fa":
        return FAClassifier(_base(params["base"], shape, seed, epochs),
                            n_partitions=int(params["partitions"]), spread=int(params["spread"]))
    if method == "itlm":
        return TrimmedLossClassifier(_base(params["base"], shape, seed, epochs),
                                     trim_fraction=float(params["trim_fraction"]))
    if method == "abl":
        return ABLClassifier(image_shape=torch_shape, seed=seed, epochs=epochs,
                             isolation_fraction=float(params["isolation_fraction"]))
    if method == "dp":
        return DPSGDClassifier(image_shape=torch_shape, seed=seed, epochs=epochs,
                               epsilon=float(params["epsilon"]),
                               delta=params.get("delta"))
    raise UsageError(f"unknown method '{method}' (known: {', '.join(METHODS)})")


def _split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < test_size < 0.9:
        raise UsageError("--test-size must be between 0 and 0.9")
    idx = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    try:
        train, test = train_test_split(idx, test_size=test_size, random_state=seed,
                                       stratify=stratify)
    except ValueError as exc:
        raise UsageError(f"cannot split {len(y)} rows for a held-out test ({exc})") from None
    return np.sort(train), np.sort(test)


def _findings(dataset: Dataset, rows: np.ndarray, scores: np.ndarray, flagged: np.ndarray,
              detector: str, detail: str) -> Findings:
    """Findings over the training rows (``rows`` are input indices)."""
    ids = np.asarray(dataset.ids)
    out = [RowFinding(index=int(r), id=str(ids[r]), score=float(s), flagged=bool(f),
                      action="review" if f else "keep",
                      reasons=(Reason(detector, float(s), detail),) if f else ())
           for r, s, f in zip(rows, scores, flagged, strict=True)]
    by_class = np.bincount(dataset.labels[rows[flagged]], minlength=dataset.n_classes)
    summary = {"flagged": int(flagged.sum()), "scored_rows": len(rows),
               "by_class": {dataset.classes[c]: int(n) for c, n in enumerate(by_class) if n},
               "suspected_attacks": [], "note": "rows of the held-out split are not scored"}
    return Findings(dataset={"path": dataset.source, "rows": len(dataset),
                             "modality": dataset.modality},
                    detectors=(detector,), rows=tuple(out), summary=summary)


def _rank(values: np.ndarray) -> np.ndarray:
    """Scores in [0, 1] by rank: the largest value gets 1."""
    order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.asarray(order / max(len(values) - 1, 1))


def file_sha256(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes (None for folders and built-in datasets)."""
    p = Path(path)
    if not p.is_file():
        return None
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def train_dataset(dataset: Dataset, method: str, *, partitions: int = 10, spread: int = 4,
                  epsilon: float = 3.0, delta: float | None = None, base: str = "auto",
                  trim_fraction: float = 0.1, isolation_fraction: float = 0.05,
                  epochs: int | None = None, test_size: float = 0.2,
                  seed: int = 0) -> TrainResult:
    """Train ``method`` (dpa, fa, itlm, abl, dp) on ``dataset`` minus a held-out split.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = train_dataset(builtin_dataset("breast_cancer"), "dpa", partitions=5)
    >>> result.card["held_out_accuracy"] > 0.8
    True
    """
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}' (known: {', '.join(METHODS)})")
    if partitions < 1 or spread < 1:
        raise UsageError("--partitions and --spread must be at least 1")
    if method in ("abl", "dp") and base not in ("auto", "cnn", "mlp"):
        raise UsageError(f"{method} trains torch networks: --base auto, cnn or mlp")
    x, shape = _matrix(dataset)
    y = dataset.labels
    params: dict[str, Any] = {"base": base, "seed": seed, "epochs": epochs}
    if method in ("dpa", "fa"):
        params["partitions"] = partitions
    if method == "fa":
        params["spread"] = spread
    if method == "itlm":
        params["trim_fraction"] = trim_fraction
    if method == "abl":
        params["isolation_fraction"] = isolation_fraction
    if method == "dp":
        params.update(epsilon=epsilon, delta=delta)
    model = _build(method, params, shape)
    train, test = _split(y, test_size, seed)
    started = time.perf_counter()
    try:
        model.fit(x[train], y[train])
    except ValueError as exc:
        raise DataError(f"training failed: {exc}", path=dataset.source) from None
    seconds = time.perf_counter() - started
    card: dict[str, Any] = {
        "format": "poisonguard-model-card", "version": 1, "method": method,
        "parameters": {**params, "estimator": type(model).__name__,
                       "estimator_params": _jsonable(model.get_params(deep=False))},
        "split": {"train_rows": len(train), "test_rows": len(test), "test_size": test_size,
                  "seed": seed, "stratified": True},
        "train_seconds": round(seconds, 2),
    }
    card["held_out_accuracy"] = float((model.predict(x[test]) == y[test]).mean())
    findings = None
    if method in ("dpa", "fa"):
        pred, radius = model.certify(x[test])
        card["certified_accuracy"] = {str(r): v for r, v in
                                      certified_accuracy(pred, radius, y[test]).items()}
        card["partition_sizes"] = {"min": int(model.partition_sizes_.min()),
                                   "max": int(model.partition_sizes_.max())}
    if method == "itlm":
        flagged = np.isin(np.arange(len(train)), model.trimmed_)
        findings = _findings(dataset, train, _rank(model.losses_), flagged, "itlm",
                             "left out by trimmed-loss training (among the highest losses)")
    if method == "abl":
        flagged = np.isin(np.arange(len(train)), model.isolated_)
        findings = _findings(dataset, train, _rank(-model.isolation_losses_), flagged, "abl",
                             "isolated by anti-backdoor learning (loss fell abnormally low)")
    if method == "dp":
        card.update(epsilon=model.epsilon_, delta=model.delta_,
                    noise_multiplier=model.noise_multiplier_)
    if findings is not None:
        card["flagged_rows"] = int(findings.summary["flagged"])
    return TrainResult(model=model, card=card, findings=findings, image_shape=shape,
                       class_names=dataset.classes)


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None or isinstance(v, bool | int | float | str):
            out[k] = v
        elif isinstance(v, tuple | list):
            out[k] = [x if isinstance(x, int | float | str) else repr(x) for x in v]
        else:
            out[k] = repr(clone(v)) if hasattr(v, "get_params") else repr(v)
    return out


def write_model(result: TrainResult, out: str | Path, *,
                data: Mapping[str, Any]) -> dict[str, Any]:
    """Write the model folder (model, ``model_card.json``, findings) and return the card.

    ``data`` describes the training input for the card: path, sha256, root, rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m"
    >>> result = train_dataset(builtin_dataset("wine"), "dpa", partitions=3)
    >>> card = write_model(result, out, data={"path": "builtin:wine"})
    >>> sorted(p.name for p in out.iterdir())
    ['members', 'model.json', 'model_card.json']
    """
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise UsageError(f"--out {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(f"--out {target} is not empty; give a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        card = _write_folder(result, folder, data)
        if target.is_dir():
            target.rmdir()
        folder.rename(target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return card


def _write_folder(result: TrainResult, folder: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    os.chmod(folder, 0o777 & ~_umask())
    model_json = save_model(result.model, folder, method=result.card["method"],
                            class_names=list(result.class_names), image_shape=result.image_shape)
    card = {**result.card, "data": dict(data)}
    if result.findings is not None:
        save_findings(result.findings, folder / "findings.json")
    card["files"] = {str(p.relative_to(folder)): file_sha256(p)
                     for p in sorted(folder.rglob("*")) if p.is_file()}
    card["model_file"] = model_json.name
    atomic_write_text(folder / CARD_FILE, _dumps(card))
    return card


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def certify_dataset(model_dir: str | Path, dataset: Dataset,
                    radii: tuple[int, ...] = RADII) -> Certificates:
    """Each row's prediction and certified radius under a DPA/FA model folder.

    Labels are matched to the model's classes by name; a label the model never saw
    is never predicted correctly.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m"
    >>> _ = write_model(train_dataset(wine, "dpa", partitions=3), out, data={})
    >>> bool(certify_dataset(out, wine, radii=(0, 1)).table["radius"].min() >= 0)
    True
    """
    model, doc = load_model(model_dir)
    if not hasattr(model, "certify"):
        raise UsageError(f"{model_dir}: a {doc['method']} model has no certificate "
                         "(certify needs a model trained with --method dpa or fa)")
    x, shape = _matrix(dataset)
    want = doc.get("image_shape")
    if (list(shape) if shape else None) != want or x.shape[1] != int(doc["n_features"]):
        raise DataError(f"the data has rows of shape {shape or x.shape[1]}, the model expects "
                        f"{want or doc['n_features']}", path=dataset.source)
    names = list(doc["class_names"])
    code = {n: i for i, n in enumerate(names)}
    labels = np.array([code.get(dataset.classes[c], -1) for c in dataset.labels], dtype=np.int64)
    pred, radius = model.certify(x)
    table = pd.DataFrame({
        "index": np.arange(len(dataset), dtype=np.int64),
        "id": [str(i) for i in np.asarray(dataset.ids)],
        "label": [dataset.classes[c] for c in dataset.labels],
        "prediction": [names[int(p)] for p in pred],
        "radius": np.asarray(radius, dtype=np.int64),
        "correct": pred == labels,
    })
    return Certificates(table=table, accuracy=certified_accuracy(pred, radius, labels, radii),
                        method=str(doc["method"]))
