"""Trigger canaries: stamp known or suspected triggers on golden inputs, watch for collapse.

A trigger comes from the attack library (BadNets patches at every position, a blended
pattern), from an attack's truth file, or from a scan's findings (the trigger
detector's pixels and values). Each is stamped on the golden inputs the model gets
right; for every class ``c`` the canary measures the share of those inputs of other
classes that the model now calls ``c`` (the attack success rate, ASR). A canary
fires when the largest share reaches ``threshold``: the predictions collapsed onto
one class, which is what a backdoor does and a clean model does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.attack.trigger import POSITIONS, blend_spec, patch_spec, stamp
from poisonguard.data import Dataset
from poisonguard.errors import DataError, UsageError
from poisonguard.monitor.model import ImageClassifier

__all__ = ["CanaryResult", "Trigger", "findings_triggers", "library_triggers", "run_canaries",
           "truth_triggers"]


@dataclass(frozen=True)
class Trigger:
    """A trigger to stamp: a spec for :func:`poisonguard.attack.trigger.stamp`.

    Examples
    --------
    >>> trigger = library_triggers(np.zeros((4, 8, 8, 1), dtype=np.float32))[0]
    >>> trigger.name, trigger.source
    ('badnets-2x2-bottom-right', 'attack-library')
    """

    name: str
    spec: Mapping[str, Any]
    source: str

    def apply(self, images: np.ndarray) -> np.ndarray:
        if self.spec.get("type") == "tabular":  # flat pixel indices (findings)
            flat = images.reshape(len(images), -1)
            return stamp(flat, self.spec).reshape(images.shape)
        return stamp(images, self.spec)


@dataclass(frozen=True)
class CanaryResult:
    """One trigger's effect on the golden set.

    Examples
    --------
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> golden = digits.subset(range(200, 300))
    >>> result = run_canaries(model, golden, library_triggers(golden.images, sizes=(2,)))[0]
    >>> result.trigger, result.source, 0 <= result.asr <= 1
    ('badnets-2x2-bottom-right', 'attack-library', True)
    """

    trigger: str
    source: str
    target: str
    asr: float
    n: int
    fired: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def library_triggers(images: np.ndarray, *, sizes: Sequence[int] = (2, 3),
                     blend_alpha: float = 0.2) -> list[Trigger]:
    """The attack library's triggers for images like ``images``: BadNets squares of each
    size at each position (value: the data max), and a blended noise pattern.

    Examples
    --------
    >>> triggers = library_triggers(np.zeros((4, 8, 8, 1), dtype=np.float32), sizes=(2,))
    >>> len(triggers), triggers[0].name, triggers[-1].name
    (7, 'badnets-2x2-bottom-right', 'blend-0.2')
    """
    out = [Trigger(f"badnets-{s}x{s}-{pos}", patch_spec(images, size=s, position=pos,
                                                        value=None), "attack-library")
           for s in sizes for pos in POSITIONS if s <= min(images.shape[1:3])]
    out.append(Trigger(f"blend-{blend_alpha:g}", blend_spec(images, alpha=blend_alpha, seed=0),
                       "attack-library"))
    return out


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the {what} ({exc.strerror})", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"the {what} is not JSON ({exc})", path=str(path)) from None


def truth_triggers(path: str | Path) -> list[Trigger]:
    """The trigger recorded in an attack's truth file (``poisonguard attack --truth``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.attack import badnets, save_truth
    >>> from poisonguard.datasets import builtin_dataset
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "truth.json"
    >>> save_truth(badnets(builtin_dataset("digits"), rate=0.05, target=0).truth, path)
    >>> [(t.name, t.spec["type"]) for t in truth_triggers(path)]
    [('truth-badnets', 'patch')]
    """
    obj = _read_json(path, "truth file")
    spec = obj.get("params", {}).get("trigger") if isinstance(obj, dict) else None
    if not isinstance(spec, dict) or "type" not in spec:
        raise DataError("the truth file records no trigger", path=str(path))
    return [Trigger(f"truth-{obj.get('kind', 'attack')}", spec, f"truth:{Path(path).name}")]


def findings_triggers(path: str | Path) -> list[Trigger]:
    """Triggers a scan suspected: the trigger detector's pixels and values per class.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "findings.json"
    >>> found = {"class": 0, "features": [3, 7], "values": [1.0, 0.0]}
    >>> _ = path.write_text(json.dumps(
    ...     {"detector_results": {"trigger": {"meta": {"triggers": [found]}}}}))
    >>> [(t.name, t.spec["features"]) for t in findings_triggers(path)]
    [('findings-0-class-0', [3, 7])]
    """
    obj = _read_json(path, "findings")
    results = obj.get("detector_results", {}) if isinstance(obj, dict) else {}
    meta = results.get("trigger", {}).get("meta", {}) if isinstance(results, dict) else {}
    found = meta.get("triggers", []) if isinstance(meta, dict) else []
    out = []
    for i, t in enumerate(found if isinstance(found, list) else []):
        feats, vals = t.get("features"), t.get("values")
        if not (isinstance(feats, list) and isinstance(vals, list) and len(feats) == len(vals)
                and all(isinstance(f, int) for f in feats)):
            raise DataError(f"suspected trigger {i} has no readable features/values",
                            path=str(path))
        spec = {"type": "tabular", "features": feats, "values": [float(v) for v in vals]}
        out.append(Trigger(f"findings-{i}-class-{t.get('class', '?')}", spec,
                           f"findings:{Path(path).name}"))
    return out


def run_canaries(model: ImageClassifier, golden: Dataset, triggers: Sequence[Trigger], *,
                 threshold: float = 0.5) -> list[CanaryResult]:
    """Stamp each trigger on the golden inputs; report the ASR and whether it fired.

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
    >>> results = run_canaries(model, golden, library_triggers(golden.images, sizes=(2,)))
    >>> [(r.trigger, r.target) for r in results if r.fired]  # 6 patches and a blend tried
    [('badnets-2x2-bottom-right', '0')]
    """
    if not 0 < threshold <= 1:
        raise UsageError(f"the canary threshold must be in (0, 1], got {threshold}")
    if golden.images is None:
        raise UsageError("trigger canaries need an image golden set")
    images = np.asarray(golden.images, dtype=np.float32)
    y = np.asarray(golden.labels)
    right = model.predict(images) == y
    out = []
    for trig in triggers:
        pred = model.predict(trig.apply(images[right]))
        yr = y[right]
        rates = np.array([float((pred[yr != c] == c).mean()) if (yr != c).any() else 0.0
                          for c in range(len(model.classes))])
        c = int(rates.argmax())
        out.append(CanaryResult(trigger=trig.name, source=trig.source, target=model.classes[c],
                                asr=float(rates[c]), n=int((yr != c).sum()),
                                fired=bool(rates[c] >= threshold)))
    return out
