"""The promotion gate: absolute thresholds, and no regression against the champion.

A candidate passes when, on the golden set, its accuracy, every class's accuracy and
its ECE meet the absolute thresholds, and neither its accuracy nor any class's
accuracy falls below the champion's by more than the tolerances. :func:`promote`
evaluates both models, stores the verdict with every number (a ``monitor-gate``
ledger entry), and moves the ``champion`` alias only when the gate passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from poisonguard.errors import UsageError
from poisonguard.monitor.golden import Evaluation, evaluate, get_golden, load_golden
from poisonguard.monitor.registry import (
    CHAMPION,
    AliasMove,
    ModelVersion,
    aliases,
    get_version,
    load_version,
    move_alias,
)
from poisonguard.monitor.store import LedgerLike, using_ledger

__all__ = ["GateConfig", "GateVerdict", "check_gate", "promote"]


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate (accuracies and ECE as fractions in [0, 1]).

    Examples
    --------
    >>> config = GateConfig(min_accuracy=0.95)
    >>> config.min_accuracy, config.max_ece
    (0.95, 0.1)
    """

    min_accuracy: float = 0.9
    min_class_accuracy: float = 0.8
    max_ece: float = 0.1
    tolerance: float = 0.01
    class_tolerance: float = 0.05

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not 0.0 <= float(value) <= 1.0:
                raise UsageError(f"gate {key} must be in [0, 1], got {value}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision, the reasons for a refusal, and the numbers behind it.

    Examples
    --------
    >>> from poisonguard.monitor import Evaluation
    >>> champion = Evaluation(n=100, accuracy=0.95, ece=0.03, per_class={"a": 0.95, "b": 0.95},
    ...                       class_counts={"a": 50, "b": 50})
    >>> candidate = Evaluation(n=100, accuracy=0.90, ece=0.03, per_class={"a": 0.99, "b": 0.81},
    ...                        class_counts={"a": 50, "b": 50})
    >>> verdict = check_gate(candidate, champion)
    >>> verdict.passed, verdict.reasons[0]
    (False, 'accuracy 0.900 < champion 0.950 - 0.01')
    """

    passed: bool
    reasons: tuple[str, ...]
    candidate: Evaluation
    champion: Evaluation | None
    config: GateConfig

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons),
                "candidate": self.candidate.to_dict(),
                "champion": None if self.champion is None else self.champion.to_dict(),
                "config": self.config.to_dict()}


def check_gate(candidate: Evaluation, champion: Evaluation | None,
               config: GateConfig | None = None) -> GateVerdict:
    """Judge a candidate's golden-set numbers (against the champion's, when there is one).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.monitor import evaluate, train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> x, y, golden = digits.images[:600], digits.labels[:600], digits.subset(range(1000, 1300))
    >>> old = train_classifier(x, y, digits.classes, arch="mlp", epochs=10)
    >>> new = train_classifier(x, np.where(y == 3, 8, y), digits.classes, arch="mlp", epochs=10)
    >>> verdict = check_gate(evaluate(new, golden), evaluate(old, golden))  # every 3 learnt as 8
    >>> verdict.passed, [r for r in verdict.reasons if r.startswith("class 3")]
    (False, ['class 3 accuracy 0.000 < 0.8', 'class 3 accuracy 0.000 < champion ... - 0.05'])
    """
    cfg = config or GateConfig()
    why = []
    if candidate.accuracy < cfg.min_accuracy:
        why.append(f"accuracy {candidate.accuracy:.3f} < {cfg.min_accuracy:g}")
    for cls, acc in candidate.per_class.items():
        if acc < cfg.min_class_accuracy:
            why.append(f"class {cls} accuracy {acc:.3f} < {cfg.min_class_accuracy:g}")
    if candidate.ece > cfg.max_ece:
        why.append(f"ECE {candidate.ece:.3f} > {cfg.max_ece:g}")
    if champion is not None:
        if candidate.accuracy < champion.accuracy - cfg.tolerance:
            why.append(f"accuracy {candidate.accuracy:.3f} < champion {champion.accuracy:.3f} "
                       f"- {cfg.tolerance:g}")
        for cls, acc in candidate.per_class.items():
            ref = champion.per_class.get(cls)
            if ref is not None and acc < ref - cfg.class_tolerance:
                why.append(f"class {cls} accuracy {acc:.3f} < champion {ref:.3f} "
                           f"- {cfg.class_tolerance:g}")
    return GateVerdict(passed=not why, reasons=tuple(why), candidate=candidate,
                       champion=champion, config=cfg)


def promote(name: str, *, golden: str, version: int | None = None, alias: str | None = None,
            golden_version: int | None = None, config: GateConfig | None = None,
            reason: str = "", ledger: LedgerLike = None,
            actor: str | None = None) -> tuple[GateVerdict, AliasMove | None, ModelVersion]:
    """Run the gate on a version (default: the ``candidate`` alias) and promote it if it passes.

    Returns the verdict, the ``champion`` move (None when refused) and the candidate.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import register_golden, register_model, save_model
    >>> from poisonguard.monitor import train_classifier
    >>> digits = builtin_dataset("digits")
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = tmp / "ledger.sqlite"
    >>> save_dataset(digits.subset(range(1000, 1300)), tmp / "golden.npz")
    >>> _ = register_golden(tmp / "golden.npz", name="digits-golden", ledger=ledger)
    >>> def candidate(labels, file):  # trained on the first 600 digits
    ...     model = train_classifier(digits.images[:600], labels, digits.classes, arch="mlp",
    ...                              epochs=10)
    ...     return register_model(save_model(model, tmp / file), name="digits",
    ...                           alias="candidate", ledger=ledger)
    >>> config = GateConfig(min_accuracy=0.85, min_class_accuracy=0.6)
    >>> _ = candidate(digits.labels[:600], "v1.safetensors")
    >>> verdict, move, cand = promote("digits", golden="digits-golden", config=config,
    ...                               ledger=ledger)
    >>> verdict.passed, move.action, move.to_version
    (True, 'promote', 1)
    >>> y = digits.labels[:600]
    >>> _ = candidate(np.where(y == 3, 8, y), "v2.safetensors")  # every 3 learnt as 8
    >>> verdict, move, cand = promote("digits", golden="digits-golden", config=config,
    ...                               ledger=ledger)
    >>> verdict.passed, move, cand.version, "class 3 accuracy 0.000 < 0.6" in verdict.reasons
    (False, None, 2, True)
    """
    cfg = config or GateConfig()
    with using_ledger(ledger) as led:
        if version is None and alias is None:
            alias = "candidate"
        cand = get_version(name, version=version, alias=alias, ledger=led)
        gset = get_golden(golden, version=golden_version, ledger=led)
        data = load_golden(gset)
        champ_version = aliases(name, ledger=led).get(CHAMPION)
        if champ_version == cand.version:
            raise UsageError(f"{name} v{cand.version} is already the champion")
        champ = None if champ_version is None else get_version(name, version=champ_version,
                                                               ledger=led)
        verdict = check_gate(evaluate(load_version(cand), data),
                             None if champ is None else evaluate(load_version(champ), data), cfg)
        entry = led.append(
            "monitor-gate", actor=actor,
            inputs=[{"model": name, "version": cand.version, "sha256": cand.sha256},
                    {"golden": gset.name, "version": gset.version, "root": gset.root}],
            details={"model": name, "candidate": cand.version,
                     "champion": None if champ is None else champ.version, **verdict.to_dict()})
        move = None
        if verdict.passed:
            move = move_alias(name, CHAMPION, cand.version, action="promote", gate_seq=entry.seq,
                              reason=reason or f"gate passed on {gset.name} v{gset.version}",
                              ledger=led, actor=actor)
    return verdict, move, cand
