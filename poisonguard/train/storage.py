"""Model folders in safe formats: skops for scikit-learn models, safetensors plus JSON
for torch networks, never a pickle.

``MODEL_DIR/model.json`` says what the folder holds::

    {"format": "poisonguard-trained-model", "version": 1, "method": "dpa",
     "class_names": [...], "n_features": 64, "image_shape": [8, 8, 1] or null,
     "model": {"type": "ensemble" | "single", "n_partitions", "spread", "constant",
               "members": [{"file": "members/000.skops"} or
                           {"torch": "m000", "classes": [...]} or null]},
     "torch": {"class", "params", "groupnorm"} or null}

Every file is written and read through :mod:`poisonguard.provenance`'s
``save_model`` / ``load_model`` (which scans a file before loading it and loads skops
with only skops' default-trusted types): a model holding other types (a random
forest's trees, for one) is refused when saving, not when loading. Torch weights
load into a network rebuilt from the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import atomic_write_text
from poisonguard.errors import DataError, IntegrityError, MissingDependencyError, UsageError
from poisonguard.provenance import load_model as load_model_file
from poisonguard.provenance import save_model as save_model_file
from poisonguard.train.ensemble import DPAClassifier, FAClassifier, _PartitionEnsemble
from poisonguard.train.itlm import TrimmedLossClassifier
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = ["MODEL_FILE", "load_model", "read_model_json", "save_model"]

MODEL_FORMAT = "poisonguard-trained-model"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
_TORCH_PARAMS = ("image_shape", "width", "hidden", "epochs", "target_steps", "batch_size", "lr",
                 "weight_decay", "seed")


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:
        raise MissingDependencyError("skops", "train", "saving scikit-learn models") from exc
    return sio


def _torch_config(model: TorchClassifier) -> dict[str, Any]:
    params = {k: getattr(model, k) for k in _TORCH_PARAMS}
    if params["image_shape"] is not None:
        params["image_shape"] = [int(v) for v in params["image_shape"]]
    return {"params": params, "groupnorm": bool(getattr(model, "groupnorm_", False))}


class _Writer:
    """Collects member files and torch arrays, then writes them."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.arrays: dict[str, np.ndarray] = {}
        self.torch: dict[str, Any] | None = None

    def member(self, model: Any, name: str) -> dict[str, Any]:
        if isinstance(model, TorchClassifier):
            for key, value in model.state_arrays().items():
                self.arrays[f"{name}.{key}"] = np.ascontiguousarray(value)
            self.torch = _torch_config(model)
            return {"torch": name, "classes": [int(c) for c in model.classes_]}
        rel = f"members/{name}.skops"
        path = save_model_file(model, self.out / rel)
        untrusted = _skops().get_untrusted_types(file=path)
        if untrusted:
            raise UsageError(f"{type(model).__name__} holds types skops does not trust "
                             f"({', '.join(untrusted)}); it cannot be stored safely: choose "
                             "another base model")
        return {"file": rel}


def save_model(model: Any, out: str | Path, *, method: str, class_names: list[str],
               image_shape: tuple[int, ...] | None) -> Path:
    """Write ``model`` (a DPA/FA ensemble, a trimmed-loss model or a torch classifier)
    to the folder ``out``; returns the path of ``model.json``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.datasets import load_wine
    >>> from poisonguard.train import default_estimator
    >>> x, y = load_wine(return_X_y=True)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "lr"
    >>> p = save_model(default_estimator().fit(x, y), out, method="plain",
    ...                class_names=["a", "b", "c"], image_shape=None)
    >>> p.name
    'model.json'
    """
    folder = Path(out)
    (folder / "members").mkdir(parents=True, exist_ok=True)
    writer = _Writer(folder)
    spec: dict[str, Any]
    if isinstance(model, _PartitionEnsemble):
        members = [None if m is None else writer.member(m, f"m{i:04d}")
                   for i, m in enumerate(model.members_)]
        spec = {"type": "ensemble", "n_partitions": int(model.n_partitions),
                "spread": model._spread(), "constant": [int(c) for c in model.constant_],
                "partition_sizes": [int(s) for s in model.partition_sizes_],
                "members": members}
        classes = model.classes_
    else:
        inner = model.estimator_ if isinstance(model, TrimmedLossClassifier) else model
        spec = {"type": "single", "members": [writer.member(inner, "m0000")],
                "classes": [int(c) for c in model.classes_]}
        classes = model.classes_
    if writer.arrays:
        save_model_file(writer.arrays, folder / WEIGHTS_FILE)
    doc = {"format": MODEL_FORMAT, "version": 1, "method": method,
           "class_names": list(class_names), "classes": [int(c) for c in classes],
           "n_features": int(model.n_features_in_),
           "image_shape": None if image_shape is None else [int(v) for v in image_shape],
           "model": spec, "torch": writer.torch}
    target = folder / MODEL_FILE
    atomic_write_text(target, json.dumps(doc, indent=2) + "\n")
    return target


def read_model_json(folder: str | Path) -> dict[str, Any]:
    """The parsed ``model.json`` of a model folder (refused unless it is ours)."""
    path = Path(folder) / MODEL_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("not a model folder (no model.json)", path=str(folder)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"unreadable model.json ({exc})", path=str(path)) from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT or doc.get("version") != 1:
        raise DataError("not a poisonguard trained-model file", path=str(path))
    return doc


class _Reader:
    def __init__(self, folder: Path, doc: dict[str, Any]) -> None:
        self.folder = folder
        self.doc = doc
        self.arrays: dict[str, np.ndarray] | None = None

    def member(self, spec: dict[str, Any]) -> Any:
        if "file" in spec:
            rel = Path(str(spec["file"]))
            if rel.is_absolute() or ".." in rel.parts or rel.suffix != ".skops":
                raise IntegrityError(f"{self.folder}: bad member path {spec['file']!r}")
            return load_model_file(self.folder / rel)
        if self.arrays is None:
            self.arrays = load_model_file(self.folder / WEIGHTS_FILE)
        name = str(spec["torch"])
        prefix = name + "."
        mine = {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}
        cfg = self.doc["torch"]
        params = dict(cfg["params"])
        if params.get("image_shape") is not None:
            params["image_shape"] = tuple(int(v) for v in params["image_shape"])
        model = TorchClassifier(**params)
        return model.restore(mine, classes=np.asarray(spec["classes"], dtype=np.int64),
                             n_features=int(self.doc["n_features"]),
                             groupnorm=bool(cfg["groupnorm"]))


def load_model(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """(model, model.json) from a folder written by :func:`save_model`.

    Ensembles come back as :class:`DPAClassifier` / :class:`FAClassifier` (with
    ``certify``); other methods as their fitted base model.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.datasets import load_wine
    >>> from poisonguard.train import default_estimator
    >>> x, y = load_wine(return_X_y=True)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "lr"
    >>> _ = save_model(default_estimator().fit(x, y), out, method="plain",
    ...                class_names=["a", "b", "c"], image_shape=None)
    >>> model, meta = load_model(out)
    >>> meta["method"], model.predict(x[:2]).tolist()
    ('plain', [0, 0])
    """
    root = Path(folder)
    doc = read_model_json(root)
    reader = _Reader(root, doc)
    spec = doc["model"]
    try:
        members = [None if m is None else reader.member(m) for m in spec["members"]]
        if spec["type"] != "ensemble":
            return members[0], doc
        k, d = int(spec["n_partitions"]), int(spec["spread"])
        model: _PartitionEnsemble = (DPAClassifier(n_partitions=k) if d == 1
                                     else FAClassifier(n_partitions=k, spread=d))
        if len(members) != k * d or len(spec["constant"]) != k * d:
            raise IntegrityError(f"{root}: model.json lists {len(members)} members, not {k * d}")
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{root}: model.json does not describe a model ({exc!r})") from None
    model.classes_ = np.asarray(doc["classes"], dtype=np.int64)
    model.n_features_in_ = int(doc["n_features"])
    model.members_ = members
    model.constant_ = np.asarray(spec["constant"], dtype=np.int64)
    model.partition_sizes_ = np.asarray(spec.get("partition_sizes", []), dtype=np.int64)
    return model, doc
