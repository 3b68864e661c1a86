"""The monitor's checks on a registered model, each recorded in the ledger and alerting.

- :func:`canary_check`: trigger canaries on the golden set (alert per fired trigger);
- :func:`scan_model_check`: the Neural Cleanse scan (alert per flagged class);
- :func:`screen_check`: STRIP on a batch of inputs, calibrated on the golden set, and
  prediction drift against the golden baseline (alert when the batch's rejections
  exceed the target rate beyond chance, or when predictions drifted).

Each appends one ``monitor-check`` ledger entry with its numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from poisonguard.datasets import open_dataset
from poisonguard.errors import DataError, UsageError
from poisonguard.monitor.alerts import Alert, raise_alert
from poisonguard.monitor.canary import (
    findings_triggers,
    library_triggers,
    run_canaries,
    truth_triggers,
)
from poisonguard.monitor.drift import DriftResult, prediction_drift
from poisonguard.monitor.golden import GoldenSet, get_golden, load_golden
from poisonguard.monitor.neural_cleanse import ModelScanResult, neural_cleanse
from poisonguard.monitor.registry import CHAMPION, ModelVersion, get_version, load_version
from poisonguard.monitor.store import LedgerLike, using_ledger
from poisonguard.monitor.strip import ScreenResult, StripScreener

__all__ = ["CheckReport", "canary_check", "scan_model_check", "screen_check"]


@dataclass(frozen=True)
class CheckReport:
    """What a check found: its result, the model and golden set, and the alerts raised.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.monitor import register_golden, register_model, save_model
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = tmp / "ledger.sqlite"
    >>> save_dataset(digits.subset(range(200, 300)), tmp / "golden.npz")
    >>> _ = register_golden(tmp / "golden.npz", name="golden", ledger=ledger)
    >>> _ = register_model(save_model(model, tmp / "m.safetensors"), name="digits",
    ...                    alias="champion", ledger=ledger)
    >>> save_dataset(digits.subset(range(300, 340)), tmp / "batch.npz")
    >>> report = screen_check("digits", tmp / "batch.npz", golden="golden", ledger=ledger)
    >>> report.check, report.model.version, report.golden.rows
    ('screen', 1, 100)
    """

    check: str
    model: ModelVersion
    golden: GoldenSet
    alarm: bool
    result: Any
    alerts: tuple[Alert, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        res = self.result
        if isinstance(res, list | tuple):
            body: Any = [r.to_dict() for r in res]
        elif isinstance(res, dict):
            body = {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in res.items()}
        else:
            body = res.to_dict()
        return {"check": self.check, "alarm": self.alarm,
                "model": {"name": self.model.name, "version": self.model.version},
                "golden": {"name": self.golden.name, "version": self.golden.version},
                "result": body, "alerts": [a.to_dict() for a in self.alerts]}


def _resolve(name: str, version: int | None, alias: str | None, golden: str,
             golden_version: int | None, led: Any) -> tuple[ModelVersion, GoldenSet]:
    v = get_version(name, version=version, alias=alias if version is None else None, ledger=led)
    return v, get_golden(golden, version=golden_version, ledger=led)


def _record(led: Any, check: str, v: ModelVersion, g: GoldenSet, alarm: bool,
            summary: dict[str, Any], actor: str | None) -> None:
    led.append("monitor-check", actor=actor,
               inputs=[{"model": v.name, "version": v.version, "sha256": v.sha256},
                       {"golden": g.name, "version": g.version, "root": g.root}],
               details={"check": check, "model": v.name, "version": v.version, "alarm": alarm,
                        **summary})


def canary_check(name: str, *, golden: str, version: int | None = None,
                 alias: str | None = CHAMPION, golden_version: int | None = None,
                 findings: Sequence[str | Path] = (), truths: Sequence[str | Path] = (),
                 library: bool = True, threshold: float = 0.5, webhook: str | None = None,
                 ledger: LedgerLike = None, actor: str | None = None) -> CheckReport:
    """Run the trigger canaries on a registered model; alert for each trigger that fires.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.attack import badnets, save_truth
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import register_golden, register_model, save_model
    >>> from poisonguard.monitor import train_classifier
    >>> digits = builtin_dataset("digits")
    >>> attack = badnets(digits.subset(range(600)), rate=0.1, target=0)  # 2x2 patch -> class 0
    >>> model = train_classifier(attack.dataset.images, attack.dataset.labels, digits.classes,
    ...                          arch="mlp", epochs=10)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = tmp / "ledger.sqlite"
    >>> save_dataset(digits.subset(range(1000, 1300)), tmp / "golden.npz")
    >>> _ = register_golden(tmp / "golden.npz", name="digits-golden", ledger=ledger)
    >>> _ = register_model(save_model(model, tmp / "m.safetensors"), name="digits",
    ...                    alias="champion", ledger=ledger)
    >>> save_truth(attack.truth, tmp / "truth.json")
    >>> report = canary_check("digits", golden="digits-golden", truths=[tmp / "truth.json"],
    ...                       library=False, ledger=ledger)
    >>> report.alarm, [(a.kind, a.severity) for a in report.alerts]
    (True, [('canary', 'critical')])
    >>> print(report.alerts[0].message)
    digits v1: trigger ... sends ...% of other classes' golden inputs to class 0
    """
    with using_ledger(ledger) as led:
        v, g = _resolve(name, version, alias, golden, golden_version, led)
        data = load_golden(g)
        triggers = [t for p in truths for t in truth_triggers(p)]
        triggers += [t for p in findings for t in findings_triggers(p)]
        if library:
            if data.images is None:
                raise UsageError("trigger canaries need an image golden set")
            triggers += library_triggers(data.images)
        if not triggers:
            raise UsageError("no triggers to test (give --truth or --findings, or keep the "
                             "attack library's)")
        results = run_canaries(load_version(v), data, triggers, threshold=threshold)
        fired = [r for r in results if r.fired]
        alerts = tuple(raise_alert(
            "canary", r.trigger, f"{v.name} v{v.version}: trigger {r.trigger} sends {r.asr:.0%} "
            f"of other classes' golden inputs to class {r.target}", model=f"{v.name} v{v.version}",
            severity="critical", details=r.to_dict(), webhook=webhook, ledger=led)
            for r in fired)
        _record(led, "canary", v, g, bool(fired),
                {"threshold": threshold, "triggers": len(results),
                 "fired": [r.to_dict() for r in fired],
                 "max_asr": max(r.asr for r in results)}, actor)
    return CheckReport("canary", v, g, bool(fired), results, alerts)


def scan_model_check(name: str, *, golden: str, version: int | None = None,
                     alias: str | None = CHAMPION, golden_version: int | None = None,
                     steps: int = 300, threshold: float = 2.0, seed: int = 0,
                     device: str | None = None, webhook: str | None = None,
                     ledger: LedgerLike = None, actor: str | None = None) -> CheckReport:
    """Neural Cleanse on a registered model with the golden set's inputs; alert per flag.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import register_golden, register_model, save_model
    >>> from poisonguard.monitor import train_classifier
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> digits = builtin_dataset("digits")
    >>> save_dataset(digits.subset(range(200, 300)), tmp / "gold.npz")
    >>> gold = register_golden(tmp / "gold.npz", name="gold", ledger=tmp / "l.sqlite")
    >>> net = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                        arch="mlp", epochs=3)
    >>> _ = register_model(save_model(net, tmp / "net.safetensors"), name="digits",
    ...                    alias="champion", ledger=tmp / "l.sqlite")
    >>> report = scan_model_check("digits", golden="gold", steps=5, ledger=tmp / "l.sqlite")
    >>> report.check, len(report.result.classes)
    ('scan-model', 10)
    """
    with using_ledger(ledger) as led:
        v, g = _resolve(name, version, alias, golden, golden_version, led)
        data = load_golden(g)
        if data.images is None:
            raise UsageError("the model scan needs an image golden set")
        result: ModelScanResult = neural_cleanse(load_version(v), data.images, data.labels,
                                                 steps=steps, threshold=threshold, seed=seed,
                                                 device=device)
        alerts = tuple(raise_alert(
            "backdoor-scan", f"class {result.classes[t].name}",
            f"{v.name} v{v.version}: class {result.classes[t].name} has an anomalously small "
            f"reversed trigger (L1 {result.classes[t].l1:.2f}, anomaly index "
            f"{result.classes[t].anomaly:.2f} > {threshold:g})", model=f"{v.name} v{v.version}",
            severity="critical", details=result.classes[t].to_dict(), webhook=webhook,
            ledger=led) for t in result.flagged)
        _record(led, "scan-model", v, g, result.backdoored, result.to_dict(), actor)
    return CheckReport("scan-model", v, g, result.backdoored, result, alerts)


@dataclass(frozen=True)
class ScreenOutcome:
    """STRIP on the batch, the rejection test, and prediction drift."""

    strip: ScreenResult
    target_frr: float
    rejection_p: float
    drift: DriftResult

    def to_dict(self) -> dict[str, Any]:
        return {"strip": self.strip.to_dict(), "target_frr": self.target_frr,
                "rejection_p": self.rejection_p, "drift": self.drift.to_dict()}


def _batch_images(path: str | Path, label: str) -> np.ndarray:
    """Images of a batch: any image file the loaders read, or an unlabelled NPZ (``X``)."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                if "X" in z.files and "y" not in z.files:
                    x = np.asarray(z["X"], dtype=np.float32)
                    if x.ndim not in (3, 4) or not len(x) or not np.isfinite(x).all():
                        raise DataError("'X' must hold finite N x H x W[ x C] images",
                                        path=str(p))
                    return x[..., None] if x.ndim == 3 else x
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the NPZ ({exc})", path=str(p)) from None
    batch = open_dataset(p, label=label)
    if batch.images is None:
        raise UsageError(f"{p}: screening needs image inputs")
    return np.asarray(batch.images)


def screen_check(name: str, data: str | Path, *, golden: str, label: str = "label",
                 version: int | None = None, alias: str | None = CHAMPION,
                 golden_version: int | None = None, target_frr: float = 0.05,
                 alpha: float = 0.001, seed: int = 0, webhook: str | None = None,
                 ledger: LedgerLike = None, actor: str | None = None) -> CheckReport:
    """Screen a batch of inputs with STRIP (calibrated on the golden set) and test drift.

    ``data``: any image file the loaders read, or an NPZ holding only ``X`` (unlabelled).

    ``alpha`` is the level of both alarms: more rejections than ``target_frr`` explains
    (one-sided binomial test), and prediction drift against the golden baseline.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import register_golden, register_model, save_model
    >>> from poisonguard.monitor import train_classifier
    >>> digits, folder = builtin_dataset("digits"), pathlib.Path(tempfile.mkdtemp())
    >>> for name, rows in (("golden", range(200, 300)), ("batch", range(300, 340))):
    ...     save_dataset(digits.subset(rows), folder / f"{name}.npz")
    >>> store = folder / "ledger.sqlite"
    >>> _ = register_model(save_model(train_classifier(
    ...     digits.images[:200], digits.labels[:200], digits.classes, arch="mlp", epochs=3),
    ...     folder / "m.safetensors"), name="digits", alias="champion", ledger=store)
    >>> _ = register_golden(folder / "golden.npz", name="golden", ledger=store)
    >>> outcome = screen_check("digits", folder / "batch.npz", golden="golden", ledger=store)
    >>> len(outcome.result.strip.rejected), sorted(outcome.result.to_dict())
    (40, ['drift', 'rejection_p', 'strip', 'target_frr'])
    """
    images = _batch_images(data, label)
    with using_ledger(ledger) as led:
        v, g = _resolve(name, version, alias, golden, golden_version, led)
        gold = load_golden(g)
        if gold.images is None:
            raise UsageError("screening needs an image golden set")
        model = load_version(v)
        screener = StripScreener(target_frr=target_frr, seed=seed).fit(model, gold.images)
        res = screener.screen(images)
        k, n = int(res.rejected.sum()), len(res.rejected)
        p_rej = float(stats.binomtest(k, n, target_frr, alternative="greater").pvalue)
        drift = prediction_drift(model.predict_proba(gold.images),
                                 model.predict_proba(images), model.classes, alpha=alpha)
        outcome = ScreenOutcome(res, target_frr, p_rej, drift)
        subject = f"batch {Path(data).name}"
        alerts = []
        if p_rej < alpha:
            alerts.append(raise_alert(
                "strip", subject, f"{v.name} v{v.version}: STRIP rejected {k} of {n} inputs "
                f"({k / n:.1%}; {target_frr:.0%} expected on clean data, p={p_rej:.2g})",
                model=f"{v.name} v{v.version}", details={"rejected": k, "n": n, "p": p_rej},
                webhook=webhook, ledger=led))
        if drift.drifted:
            alerts.append(raise_alert(
                "drift", subject, f"{v.name} v{v.version}: predictions drifted from the golden "
                f"baseline (class p={drift.class_p:.2g}, confidence p={drift.confidence_p:.2g})",
                model=f"{v.name} v{v.version}", details=drift.to_dict(), webhook=webhook,
                ledger=led))
        alarm = bool(alerts)
        _record(led, "screen", v, g, alarm, {"batch": str(Path(data).absolute()), "rejected": k,
                                             "n": n, "rejection_p": p_rej,
                                             "drifted": drift.drifted}, actor)
    return CheckReport("screen", v, g, alarm, outcome, tuple(alerts))

