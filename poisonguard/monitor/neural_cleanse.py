"""Model-level backdoor scan in the style of Neural Cleanse (Wang et al., S&P 2019).

For every class ``t`` it searches the smallest mask ``m`` (H x W, in [0, 1]) and a
pattern ``p`` (H x W x C, in the data's range) such that ``(1 - m) * x + m * p``
sends clean inputs ``x`` of the other classes to ``t``. A backdoored class needs a
far smaller mask than the rest (the trigger is a shortcut). The mask's L1 norm per
class is compared with the median of all classes by the anomaly index
``(median - L1_t) / (1.4826 * MAD)``; a class whose index exceeds ``threshold``
(2, as in the paper) is flagged.

The cost weight ``lambda`` is adapted as in the paper: raised while the reversed
trigger reaches ``target_asr`` on the batch, lowered while it does not; the
smallest mask that reached ``target_asr`` is kept. A class whose search never reached
it gets its last mask's norm and ``reached=False`` in the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.monitor.model import ImageClassifier, torch_module

__all__ = ["ClassTrigger", "ModelScanResult", "anomaly_index", "neural_cleanse"]

_MAD_CONSISTENCY = 1.4826


@dataclass(frozen=True)
class ClassTrigger:
    """The reversed trigger for one target class.

    Examples
    --------
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> first = neural_cleanse(model, digits.images[:64], digits.labels[:64], steps=5).classes[0]
    >>> first.name, first.mask.shape, sorted(first.to_dict())
    ('0', (8, 8), ['anomaly_index', 'asr', 'class', 'l1', 'label', 'reached'])
    """

    label: int
    name: str
    l1: float
    asr: float
    reached: bool
    anomaly: float
    mask: np.ndarray = field(repr=False)
    pattern: np.ndarray = field(repr=False)

    def to_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "class": self.name, "l1": self.l1,
                               "asr": self.asr, "reached": self.reached,
                               "anomaly_index": self.anomaly}
        if arrays:
            out["mask"] = np.round(self.mask, 4).tolist()
            out["pattern"] = np.round(self.pattern, 4).tolist()
        return out


@dataclass(frozen=True)
class ModelScanResult:
    """Per-class reversed triggers, the anomaly indices, and the flagged classes.

    Examples
    --------
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> scan = neural_cleanse(model, digits.images[:64], digits.labels[:64], steps=5)
    >>> len(scan.classes), scan.threshold, scan.backdoored == bool(scan.flagged)
    (10, 2.0, True)
    """

    classes: tuple[ClassTrigger, ...]
    threshold: float
    flagged: tuple[int, ...]
    seconds: float
    params: dict[str, Any]

    @property
    def backdoored(self) -> bool:
        return bool(self.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {"backdoored": self.backdoored,
                "flagged": [{"label": i, "class": self.classes[i].name} for i in self.flagged],
                "threshold": self.threshold, "seconds": self.seconds, "params": self.params,
                "classes": [c.to_dict() for c in self.classes]}


def anomaly_index(norms: np.ndarray) -> np.ndarray:
    """How far below the median each norm lies, in robust standard deviations (MAD).

    Examples
    --------
    >>> anomaly_index(np.array([10.0, 11.0, 9.0, 10.5, 2.0])).round(1).tolist()
    [0.0, -0.7, 0.7, -0.3, 5.4]
    """
    v = np.asarray(norms, dtype=np.float64)
    med = float(np.median(v))
    mad = _MAD_CONSISTENCY * float(np.median(np.abs(v - med)))
    return np.asarray((med - v) / max(mad, 1e-12 * max(med, 1.0)))


def _reverse_all(torch: Any, model: ImageClassifier, x: Any, y: Any, *, steps: int,
                 lr: float, lam: float, target_asr: float, lo: float, hi: float,
                 gen: Any) -> list[tuple[float, float, bool, np.ndarray, np.ndarray]]:
    """Optimise every class's mask and pattern at once (one batched forward per step)."""
    h, w, c = model.config.input_shape
    k, dev = len(model.classes), x.device
    mask_p = (torch.randn((k, 1, h, w, 1), generator=gen) * 0.1 - 2.0).to(dev)
    pattern_p = (torch.randn((k, 1, h, w, c), generator=gen) * 0.1).to(dev)
    mask_p.requires_grad_(True)
    pattern_p.requires_grad_(True)
    opt = torch.optim.Adam([mask_p, pattern_p], lr=lr, betas=(0.5, 0.9))
    targets = torch.arange(k, device=dev)
    target_of = targets[:, None].expand(k, len(x)).reshape(-1)
    counts = (y[None, :] != targets[:, None]).float()  # only other classes' inputs count
    weight = counts / counts.sum(dim=1, keepdim=True)
    cost = torch.full((k,), lam, device=dev)
    best_norm = np.full(k, np.inf)
    best_asr = np.zeros(k)
    best_mask = np.zeros((k, h, w))
    best_pattern = np.zeros((k, h, w, c))
    asr = np.zeros(k)
    for step in range(steps):
        mask = torch.sigmoid(mask_p)
        pattern = lo + (hi - lo) * torch.sigmoid(pattern_p)
        stamped = (1 - mask) * x[None] + mask * pattern  # k x n x h x w x c
        logits = model.logits(stamped.reshape(-1, h, w, c))
        ce = torch.nn.functional.cross_entropy(logits, target_of, reduction="none")
        l1 = mask.reshape(k, -1).sum(dim=1)
        loss = ((ce.reshape(k, -1) * weight).sum(dim=1) + cost * l1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            hits = (logits.argmax(1) == target_of).float().reshape(k, -1)
            asr = (hits * weight).sum(dim=1).cpu().numpy()
            norms = l1.detach().cpu().numpy()
            ok = asr >= target_asr
            better = ok & (norms < best_norm)
            if better.any():
                idx = np.flatnonzero(better)
                best_norm[idx], best_asr[idx] = norms[idx], asr[idx]
                best_mask[idx] = mask.detach().cpu().numpy()[idx, 0, ..., 0]
                best_pattern[idx] = pattern.detach().cpu().numpy()[idx, 0]
            up = torch.as_tensor(ok, device=dev)
            if step > steps // 10:
                cost = torch.where(up, cost * 1.05, cost / 1.05)
            else:
                cost = torch.where(up, cost * 1.05, cost)
    last_mask = torch.sigmoid(mask_p).detach().cpu().numpy()[:, 0, ..., 0]
    last_pattern = (lo + (hi - lo) * torch.sigmoid(pattern_p)).detach().cpu().numpy()[:, 0]
    out = []
    for t in range(k):
        if np.isfinite(best_norm[t]):
            out.append((float(best_norm[t]), float(best_asr[t]), True, best_mask[t],
                        best_pattern[t]))
        else:
            out.append((float(last_mask[t].sum()), float(asr[t]), False, last_mask[t],
                        last_pattern[t]))
    return out


def neural_cleanse(model: ImageClassifier, images: np.ndarray, labels: np.ndarray, *,
                   steps: int = 300, lr: float = 0.1, lam: float = 1e-2,
                   target_asr: float = 0.9, threshold: float = 2.0, max_images: int = 256,
                   seed: int = 0, device: str | None = None) -> ModelScanResult:
    """Reverse-engineer a trigger per class and flag classes with an anomalously small one.

    Parameters
    ----------
    model : ImageClassifier
        The model to scan (runs on CUDA when present unless ``device`` says otherwise).
    images, labels : numpy.ndarray
        Clean inputs (the golden set) in data units, and their labels. For target
        ``t`` only inputs of other classes are used.
    steps, lr, lam : int, float, float
        Optimisation steps per class, Adam's learning rate, the initial mask-cost weight.
    target_asr : float
        The share of inputs a reversed trigger must send to ``t`` to count.
    threshold : float
        Anomaly index above which a class is flagged (2 in the paper).

    Examples
    --------
    >>> from poisonguard.attack import badnets
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import train_classifier
    >>> digits = builtin_dataset("digits")
    >>> attack = badnets(digits.subset(range(600)), rate=0.1, target=0)  # 2x2 patch -> class 0
    >>> model = train_classifier(attack.dataset.images, attack.dataset.labels, digits.classes,
    ...                          arch="mlp", epochs=10)
    >>> golden = digits.subset(range(1000, 1300))
    >>> result = neural_cleanse(model, golden.images, golden.labels, steps=100, max_images=64)
    >>> [model.classes[i] for i in result.flagged]  # the backdoor's target class
    ['0']
    >>> bool(result.classes[0].l1 < min(c.l1 for c in result.classes[1:]) / 2)  # tiny trigger
    True
    """
    if steps < 1 or not 0 < target_asr <= 1 or threshold <= 0 or max_images < 2:
        raise UsageError("steps >= 1, 0 < target_asr <= 1, threshold > 0, max_images >= 2")
    torch = torch_module()
    x_all = np.asarray(images, dtype=np.float32)
    x_all = x_all[..., None] if x_all.ndim == 3 else x_all
    y_all = np.asarray(labels)
    if len(x_all) != len(y_all) or len(x_all) < 2:
        raise UsageError("neural_cleanse needs at least two labelled images")
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    original = next(model.net.parameters()).device
    model.to(dev)
    for p in model.net.parameters():
        p.requires_grad_(False)
    lo, hi = float(x_all.min()), float(x_all.max())
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    take = np.sort(rng.choice(len(x_all), size=min(max_images, len(x_all)), replace=False))
    started = time.perf_counter()
    try:
        found = _reverse_all(torch, model, torch.as_tensor(x_all[take], device=dev),
                             torch.as_tensor(np.asarray(y_all[take], dtype=np.int64),
                                             device=dev),
                             steps=steps, lr=lr, lam=lam, target_asr=target_asr, lo=lo, hi=hi,
                             gen=gen)
    finally:
        for p in model.net.parameters():
            p.requires_grad_(True)
        model.to(str(original))
    norms = np.array([f[0] for f in found])
    index = anomaly_index(norms)
    triggers = tuple(ClassTrigger(label=t, name=model.classes[t], l1=float(f[0]),
                                  asr=float(f[1]), reached=bool(f[2]), anomaly=float(index[t]),
                                  mask=f[3], pattern=f[4]) for t, f in enumerate(found))
    flagged = tuple(int(t) for t in np.argsort(-index) if index[t] > threshold
                    and triggers[t].reached)
    return ModelScanResult(classes=triggers, threshold=threshold, flagged=flagged,
                           seconds=time.perf_counter() - started,
                           params={"steps": steps, "lr": lr, "lambda": lam,
                                   "target_asr": target_asr, "max_images": max_images,
                                   "seed": seed, "device": dev})
