"""Image classifiers the monitor can run: small torch nets saved as safetensors.

A model file is one safetensors file: the weights, and the architecture as JSON in
the header's ``__metadata__["poisonguard"]`` (``format``, ``arch`` ("mlp" or
"cnn"), ``input_shape`` (H, W, C), ``classes``, ``offset`` / ``scale`` (inputs are
``(x - offset) / scale``), ``width``, ``hidden``). Loading never unpickles: the
file is checked and read by :func:`poisonguard.provenance.load_model` (which scans
it first), and the tensors must match the architecture exactly (names and shapes),
else the file is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import atomic_path
from poisonguard.errors import DataError, MissingDependencyError, UsageError

__all__ = ["MODEL_FORMAT", "ImageClassifier", "NetConfig", "load_model", "save_model",
           "train_classifier"]

MODEL_FORMAT = "poisonguard-image-classifier"
_ARCHS = ("mlp", "cnn")


def torch_module() -> Any:
    """The ``torch`` module, or :class:`MissingDependencyError` naming the extra."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "running image models") from exc
    return torch


@dataclass(frozen=True)
class NetConfig:
    """The architecture of a small image classifier (what the model file records).

    Examples
    --------
    >>> config = NetConfig(arch="cnn", input_shape=(8, 8, 1), classes=("a", "b"))
    >>> config.width, config.hidden
    (16, 64)
    """

    arch: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    offset: float = 0.0
    scale: float = 1.0
    width: int = 16
    hidden: int = 64

    def __post_init__(self) -> None:
        if self.arch not in _ARCHS:
            raise UsageError(f"unknown architecture {self.arch!r} (known: {', '.join(_ARCHS)})")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise UsageError(f"input_shape must be (H, W, C), got {self.input_shape}")
        if len(self.classes) < 2:
            raise UsageError("a classifier needs at least two classes")
        if not self.scale > 0 or self.width < 1 or self.hidden < 1:
            raise UsageError("scale, width and hidden must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetConfig:
        if d.get("format") != MODEL_FORMAT or d.get("version") != 1:
            raise ValueError("not a poisonguard image classifier (format/version)")
        h, w, c = (int(v) for v in d["input_shape"])
        return cls(arch=str(d["arch"]), input_shape=(h, w, c),
                   classes=tuple(str(c) for c in d["classes"]), offset=float(d["offset"]),
                   scale=float(d["scale"]), width=int(d["width"]), hidden=int(d["hidden"]))


def _build(torch: Any, cfg: NetConfig) -> Any:
    nn = torch.nn
    h, w, c = cfg.input_shape
    k = len(cfg.classes)
    if cfg.arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(h * w * c, cfg.hidden), nn.ReLU(),
                             nn.Linear(cfg.hidden, k))
    return nn.Sequential(
        nn.Conv2d(c, cfg.width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(cfg.width, 2 * cfg.width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * cfg.width * (h // 2) * (w // 2), cfg.hidden), nn.ReLU(),
        nn.Linear(cfg.hidden, k))


class ImageClassifier:
    """A torch image classifier taking N x H x W x C arrays in data units.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> model.classes[:3], model.config.input_shape
    (('0', '1', '2'), (8, 8, 1))
    >>> model.predict(digits.images[:5]).shape, model.predict_proba(digits.images[:5]).shape
    ((5,), (5, 10))
    >>> model.predict(np.zeros((1, 28, 28), np.float32))  # images of another shape: refused
    Traceback (most recent call last):
    ...
    poisonguard.errors.UsageError: the model takes images of shape (8, 8, 1), got (28, 28, 1)
    """

    def __init__(self, config: NetConfig, net: Any) -> None:
        self.config = config
        self.net = net.eval()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.config.classes

    def _check(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[..., None]
        if x.shape[1:] != self.config.input_shape:
            raise UsageError(f"the model takes images of shape {self.config.input_shape}, "
                             f"got {tuple(x.shape[1:])}")
        return x

    def logits(self, x: Any) -> Any:
        """Logits for a torch tensor N x H x W x C in data units (differentiable)."""
        z = (x - self.config.offset) / self.config.scale
        return self.net(z.permute(0, 3, 1, 2))

    def predict_proba(self, images: np.ndarray, *, batch: int = 2048) -> np.ndarray:
        """Class probabilities, N x K float64."""
        torch = torch_module()
        x = self._check(images)
        device = next(self.net.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(x), batch):
                xb = torch.as_tensor(np.array(x[start:start + batch]), device=device)
                out.append(torch.softmax(self.logits(xb).double(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_proba(images).argmax(axis=1))

    def to(self, device: str) -> ImageClassifier:
        self.net = self.net.to(device)
        return self


def train_classifier(images: np.ndarray, labels: np.ndarray, classes: Sequence[str], *,
                     arch: str = "cnn", epochs: int = 30, seed: int = 0, width: int = 16,
                     hidden: int = 64, lr: float = 3e-3, batch_size: int = 64) -> ImageClassifier:
    """Train a small classifier (tests, benchmarks and the docs' example use it).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> model.config.arch, model.config.input_shape, len(model.classes)
    ('mlp', (8, 8, 1), 10)
    >>> model.predict_proba(digits.images[:2]).shape
    (2, 10)
    """
    torch = torch_module()
    x = np.asarray(images, dtype=np.float32)
    x = x[..., None] if x.ndim == 3 else x
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 4 or len(x) != len(y):
        raise UsageError("train_classifier needs N x H x W x C images and N labels")
    cfg = NetConfig(arch=arch, input_shape=(int(x.shape[1]), int(x.shape[2]), int(x.shape[3])),
                    classes=tuple(str(c) for c in classes), offset=float(x.mean()),
                    scale=float(x.std()) or 1.0, width=width, hidden=hidden)
    torch.manual_seed(seed)
    net = _build(torch, cfg)
    model = ImageClassifier(cfg, net)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(np.array(x)), torch.as_tensor(np.array(y))
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(model.logits(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    return model


def save_model(model: ImageClassifier, path: str | Path) -> Path:
    """Write ``model`` as one safetensors file (weights + architecture in the header).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> path = save_model(model, pathlib.Path(tempfile.mkdtemp()) / "digits.safetensors")
    >>> path.suffix, path.read_bytes()[8:9]  # a safetensors JSON header follows its length
    ('.safetensors', b'{')
    """
    torch_module()
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    meta = {"poisonguard": json.dumps(model.config.to_dict(), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_model(path: str | Path, *, device: str = "cpu") -> ImageClassifier:
    """Load a model written by :func:`save_model`; refuse anything else.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> saved = save_model(model, pathlib.Path(tempfile.mkdtemp()) / "digits.safetensors")
    >>> again = load_model(saved)
    >>> bool((again.predict(digits.images[:50]) == model.predict(digits.images[:50])).all())
    True
    """
    from poisonguard.provenance import load_model as load_safe

    torch = torch_module()
    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        raise DataError("the monitor runs safetensors models (.safetensors)", path=str(p))
    tensors = load_safe(p, framework="pt")  # scans the file first; refuses anything unsafe
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(p), framework="pt") as fh:
            cfg = NetConfig.from_dict(json.loads((fh.metadata() or {})["poisonguard"]))
    except (KeyError, ValueError, TypeError, OSError, SafetensorError) as exc:
        raise DataError(f"not a poisonguard model file ({exc})", path=str(p)) from None
    except UsageError as exc:
        raise DataError(f"bad model architecture ({exc})", path=str(p)) from None
    net = _build(torch, cfg)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        raise DataError("the tensors do not match the recorded architecture", path=str(p))
    net.load_state_dict(tensors)
    return ImageClassifier(cfg, net).to(device)


def train_on_file(data: str | Path, out: str | Path, *, label: str = "label",
                  arch: str = "cnn", epochs: int = 30, seed: int = 0, holdout: float = 0.0,
                  holdout_out: str | Path | None = None) -> tuple[ImageClassifier, int, int]:
    """Train a small classifier on an image file and save it; returns (model, trained, held).

    ``holdout`` rows (a seeded permutation of row positions, so the same for every file
    with as many rows, e.g. a poisoned copy) are left out of training and, when
    ``holdout_out`` is given, written there: a clean held-out set makes a golden set.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import open_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> model, trained, held = train_on_file("builtin:digits", tmp / "clean.safetensors",
    ...                                      arch="mlp", epochs=2, holdout=0.4,
    ...                                      holdout_out=tmp / "golden.npz")
    >>> trained, held, len(open_dataset(tmp / "golden.npz"))
    (1078, 719, 719)
    >>> load_model(tmp / "clean.safetensors").classes == model.classes
    True
    """
    from poisonguard.data import save_dataset
    from poisonguard.datasets import open_dataset

    if not 0 <= holdout < 1 or epochs < 1:
        raise UsageError("holdout must be in [0, 1) and epochs >= 1")
    ds = open_dataset(str(data), label=label)
    if ds.images is None:
        raise UsageError(f"{data}: the monitor's models take images")
    order = np.random.default_rng(seed).permutation(len(ds))
    n_held = int(round(holdout * len(ds)))
    held, train = np.sort(order[:n_held]), np.sort(order[n_held:])
    part = ds.subset(train)
    assert part.images is not None
    model = train_classifier(part.images, part.labels, ds.classes, arch=arch, epochs=epochs,
                             seed=seed)
    save_model(model, out)
    if holdout_out is not None:
        if not n_held:
            raise UsageError("--holdout-out needs --holdout > 0")
        save_dataset(ds.subset(held), holdout_out)
    return model, len(train), n_held
