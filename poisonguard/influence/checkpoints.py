"""Torch models saved at checkpoints during training, for TracIn; safetensors only.

``MODEL_DIR/checkpoints.json`` describes the folder::

    {"format": "poisonguard-checkpoints", "version": 1, "class_names": [...],
     "n_features": 64, "params": {TorchClassifier parameters},
     "checkpoints": [{"file": "checkpoint-01.safetensors", "epoch": 5, "lr": 0.003}, ...]}

Each checkpoint file holds the network's weights and the input scaling
(:meth:`~poisonguard.train.torch_estimator.TorchClassifier.state_arrays`), written
and read through :func:`poisonguard.provenance.save_model` / ``load_model`` (which
scans a file before loading it): nothing here unpickles. A ``poisonguard train``
folder holding one torch model (``--method itlm --base cnn`` or ``mlp``) is read as
a single checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import Dataset, atomic_write_text
from poisonguard.errors import DataError, IntegrityError, UsageError
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = ["CHECKPOINTS_FILE", "Checkpoints", "load_checkpoints", "train_checkpoints"]

CHECKPOINTS_FORMAT = "poisonguard-checkpoints"
CHECKPOINTS_FILE = "checkpoints.json"
_PARAMS = ("image_shape", "width", "hidden", "epochs", "target_steps", "batch_size", "lr",
           "weight_decay", "seed")


@dataclass(frozen=True, eq=False)
class Checkpoints:
    """Fitted models at successive checkpoints, each with its learning-rate weight.

    ``classes`` maps a model output column to a label code of the training data.
    """

    models: tuple[TorchClassifier, ...]
    weights: tuple[float, ...]
    classes: np.ndarray
    source: str = ""


def _image_shape(dataset: Dataset) -> tuple[int, int, int] | None:
    if dataset.images is None:
        return None
    h, w, c = dataset.images.shape[1:]
    return int(h), int(w), int(c)


def train_checkpoints(dataset: Dataset, out: str | Path | None = None, *,
                      n_checkpoints: int = 4, epochs: int | None = None, seed: int = 0,
                      width: int = 16, hidden: int = 64) -> Checkpoints:
    """Train the scan's CNN (images) or MLP (tables) and keep ``n_checkpoints`` states.

    Training runs in ``n_checkpoints`` equal segments of epochs, each a one-cycle
    AdamW run (:func:`~poisonguard.train.torch_estimator.train_net`) continuing from
    the last; a checkpoint is taken at the end of each segment and weighted by the
    segment's mean learning rate (equal segments: equal weights). When ``out`` is
    given the folder is written (safetensors + ``checkpoints.json``).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> ckpts = train_checkpoints(builtin_dataset("wine"), n_checkpoints=2, epochs=4)
    >>> len(ckpts.models), ckpts.weights
    (2, (1.0, 1.0))
    """
    if n_checkpoints < 1:
        raise UsageError("n_checkpoints must be >= 1")
    if dataset.modality == "text":
        raise UsageError("TracIn needs tabular or image data (embed text first)")
    x = np.asarray(dataset.matrix(), dtype=np.float32)
    base = TorchClassifier(image_shape=_image_shape(dataset), width=width, hidden=hidden,
                           epochs=epochs, seed=seed)
    xt, yt = base._start(x, dataset.labels)
    total = base._n_epochs(len(x))
    per = max(1, int(np.ceil(total / n_checkpoints)))
    models: list[TorchClassifier] = []
    for k in range(n_checkpoints):
        base._train(xt, yt, epochs=per, seed_offset=k)
        snapshot = TorchClassifier(**base.get_params()).restore(
            base.state_arrays(), classes=base.classes_, n_features=x.shape[1], groupnorm=False)
        models.append(snapshot)
    ckpts = Checkpoints(models=tuple(models), weights=(1.0,) * n_checkpoints,
                        classes=np.asarray(base.classes_, dtype=np.int64),
                        source=str(out or ""))
    if out is not None:
        _write(ckpts, Path(out), dataset, epochs_per_checkpoint=per)
    return ckpts


def _write(ckpts: Checkpoints, folder: Path, dataset: Dataset, *,
           epochs_per_checkpoint: int) -> None:
    from poisonguard.provenance import save_model

    folder.mkdir(parents=True, exist_ok=True)
    first = ckpts.models[0]
    params = {k: getattr(first, k) for k in _PARAMS}
    if params["image_shape"] is not None:
        params["image_shape"] = [int(v) for v in params["image_shape"]]
    entries = []
    for k, (model, weight) in enumerate(zip(ckpts.models, ckpts.weights, strict=True)):
        name = f"checkpoint-{k + 1:02d}.safetensors"
        save_model({n: np.ascontiguousarray(v) for n, v in model.state_arrays().items()},
                   folder / name)
        entries.append({"file": name, "epoch": (k + 1) * epochs_per_checkpoint,
                        "weight": weight})
    doc = {"format": CHECKPOINTS_FORMAT, "version": 1, "class_names": list(dataset.classes),
           "classes": [int(c) for c in ckpts.classes], "n_features": int(first.n_features_in_),
           "params": params, "checkpoints": entries}
    atomic_write_text(folder / CHECKPOINTS_FILE, json.dumps(doc, indent=2) + "\n")


def _restore(params: dict[str, Any], arrays: dict[str, np.ndarray], classes: np.ndarray,
             n_features: int, groupnorm: bool) -> TorchClassifier:
    params = {k: v for k, v in params.items() if k in _PARAMS}
    if params.get("image_shape") is not None:
        params["image_shape"] = tuple(int(v) for v in params["image_shape"])
    try:
        return TorchClassifier(**params).restore(arrays, classes=classes, n_features=n_features,
                                                 groupnorm=groupnorm)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise IntegrityError(f"the weights do not fit the described network ({exc})") from None


def load_checkpoints(folder: str | Path, dataset: Dataset) -> Checkpoints:
    """Read a checkpoint folder, or a ``poisonguard train`` folder with one torch model.

    Refused (one-line error): a folder that is neither, class names or input width
    that differ from ``dataset``'s, a checkpoint path leaving the folder, and any file
    :func:`poisonguard.provenance.load_model` refuses.
    """
    from poisonguard.provenance import load_model

    root = Path(folder)
    if (root / CHECKPOINTS_FILE).is_file():
        doc = _read_json(root / CHECKPOINTS_FILE)
        if doc.get("format") != CHECKPOINTS_FORMAT or doc.get("version") != 1:
            raise DataError("not a poisonguard checkpoint folder", path=str(root))
        _check_fit(doc, dataset, root)
        classes = np.asarray(doc["classes"], dtype=np.int64)
        models, weights = [], []
        for entry in doc["checkpoints"]:
            rel = Path(str(entry["file"]))
            if rel.is_absolute() or ".." in rel.parts or rel.suffix != ".safetensors":
                raise IntegrityError(f"{root}: bad checkpoint path {entry['file']!r}")
            arrays = load_model(root / rel)
            models.append(_restore(doc["params"], arrays, classes, int(doc["n_features"]),
                                   groupnorm=False))
            weights.append(float(entry.get("weight", 1.0)))
        if not models:
            raise DataError("the checkpoint folder lists no checkpoint", path=str(root))
        return Checkpoints(tuple(models), tuple(weights), classes, source=str(root))
    if (root / "model.json").is_file():
        from poisonguard.train.storage import load_model as load_trained

        model, doc = load_trained(root)
        if not isinstance(model, TorchClassifier):
            raise UsageError(f"{root}: TracIn needs a torch model (this folder holds a "
                             f"{type(model).__name__}); train one with --base cnn or mlp")
        _check_fit(doc, dataset, root)
        return Checkpoints((model,), (1.0,), np.asarray(model.classes_, dtype=np.int64),
                           source=str(root))
    raise DataError("not a model folder (no checkpoints.json or model.json)", path=str(root))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"unreadable JSON ({exc})", path=str(path)) from None
    if not isinstance(doc, dict):
        raise DataError("not a JSON object", path=str(path))
    return doc


def _check_fit(doc: dict[str, Any], dataset: Dataset, root: Path) -> None:
    if list(doc.get("class_names", [])) != list(dataset.classes):
        raise DataError("the model's classes differ from the data's", path=str(root))
    if int(doc.get("n_features", -1)) != dataset.matrix().shape[1]:
        raise DataError(f"the model takes {doc.get('n_features')} inputs, the data has "
                        f"{dataset.matrix().shape[1]}", path=str(root))
