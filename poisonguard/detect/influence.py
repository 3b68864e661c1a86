"""Detector ``influence``: rows the model can only fit by bending towards them, and,
given an input under attack, the rows that push it to the wrong class.

Two modes, both from softmax-regression influence functions on at most
``max_dims`` principal components of the standardised rows
(:mod:`poisonguard.influence.audit`):

- untargeted (default): each row's leave-one-out loss of its own label, estimated
  as its loss plus its self-influence ``g_i . H^-1 g_i / n``. A row is flagged when
  that loss reaches ``tau`` (the model, without the row, gives its label a
  probability of at most ``exp(-tau)``; 1.8% by default). Mislabelled rows are
  what this finds; a backdoor, which the model fits easily, it does not (see
  docs/influence.md). The rows' estimated harm to a held-out half (two-fold
  cross-fitting) is reported in ``meta`` and in reasons, not used to flag: on the
  built-in sets it separates poison from clean rows no better than chance.
- targeted (``target`` rows and their correct classes ``target_label``): each
  row's push of each target away from its correct class. Flagged: the ``top``
  hardest pushers of each target whose push is also at least ``z_flag`` robust
  standard deviations above the typical row's (most rows barely move a given
  input). Pushes have no natural gap between poison and the target's clean
  neighbours (on digits, feature-collision poison and the nearest clean rows
  interleave at z 80-200), so this mode gives a review list, not a verdict, and
  claims no class clean.

Registered but not a default detector: it has not earned its place yet
(benchmarks/RESULTS.md, "Influence").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.thresholds import robust_z, scores_from_z
from poisonguard.influence.audit import heldout_harm, reduce, targeted_harm
from poisonguard.influence.logistic import fit_softmax
from poisonguard.params import Interval, SequenceOf
from poisonguard.represent.base import Representation

__all__ = ["InfluenceDetector"]


@dataclass(frozen=True)
class _OptionalRows:
    """None, or a non-empty 2-D array (or sequence of rows) of finite numbers."""

    def accepts(self, value: Any) -> bool:
        if value is None:
            return True
        if not isinstance(value, np.ndarray | list | tuple):
            return False
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        return arr.ndim == 2 and arr.size > 0 and bool(np.isfinite(arr).all())

    def __str__(self) -> str:
        return "None or a 2-D array of rows"


@register_detector
class InfluenceDetector(Detector):
    """Self-influence (leave-one-out loss) and, given targets, targeted influence.

    Parameters
    ----------
    tau : float
        Estimated leave-one-out loss of a row's own label at which it is flagged.
    l2 : float
        Softmax-regression penalty.
    max_dims : int
        Principal components kept (the model has classes x (max_dims + 1) parameters).
    target : array of rows or None
        Inputs under attack, in the data's own values (one row per input, as
        ``dataset.matrix()``); switches to the targeted mode.
    target_label : sequence of int
        The correct class code of each target row.
    z_flag : float
        Targeted mode: robust z of a row's push (against all rows' pushes) below
        which it is never flagged.
    top : int
        Targeted mode: at most this many rows are flagged per target, the hardest
        pushers (a review list: see the module docstring).
    seed : int
        Seed of the principal components (a randomised solver on wide, many-row data)
        and of the two folds of the held-out harm.
    """

    name = "influence"
    needs = frozenset({"features"})
    modalities = frozenset({"tabular", "image"})
    parameter_constraints = {
        "tau": Interval(float, 0, None, closed="neither"),
        "l2": Interval(float, 0, None, closed="neither"),
        "max_dims": Interval(int, 1, None),
        "target": _OptionalRows(),
        "target_label": SequenceOf(Interval(int, 0, None)),
        "z_flag": Interval(float, 0, None, closed="neither"),
        "top": Interval(int, 1, None),
        "seed": Interval(int, 0, None),
    }

    def __init__(self, *, tau: float = 4.0, l2: float = 1e-2, max_dims: int = 64,
                 target: Any = None, target_label: Sequence[int] = (),
                 z_flag: float = 8.0, top: int = 20, seed: int = 0) -> None:
        self.tau = tau
        self.l2 = l2
        self.max_dims = max_dims
        self.target = target
        self.target_label = target_label
        self.z_flag = z_flag
        self.top = top
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        if self.target is not None:
            return self._targeted(dataset)
        (x,) = reduce(dataset.matrix(), max_dims=self.max_dims, seed=self.seed)
        y = dataset.labels
        model = fit_softmax(x, y, n_classes=dataset.n_classes, l2=self.l2)
        n = len(y)
        own = np.maximum(model.proba(x)[np.arange(n), y], 1e-300)
        loo = -np.log(own) + model.self_influence() / n
        harm = heldout_harm(x, y, dataset.n_classes, l2=self.l2, seed=self.seed)
        flags = loo >= self.tau
        scores = scores_from_z(loo, self.tau, width=max(self.tau / 4, 1e-6))
        names = dataset.classes
        reasons = {
            int(i): (f"class {names[y[i]]}: without this row the model would give its label "
                     f"probability {np.exp(-loo[i]):.2g} (self-influence); held-out harm "
                     f"z {robust_z(harm)[i]:+.1f}")
            for i in np.flatnonzero(flags)
        }
        return DetectorResult(
            detector=self.name, scores=scores, flags=flags, reasons=reasons, dataset=dataset,
            meta={"mode": "self", "tau": self.tau, "dims": int(x.shape[1]),
                  "train_accuracy": float((model.predict(x) == y).mean()),
                  "heldout_harm_max_z": float(robust_z(harm).max(initial=0.0))},
        )

    def _targeted(self, dataset: Dataset) -> DetectorResult:
        from poisonguard.errors import UsageError

        targets = np.asarray(self.target, dtype=np.float64)
        labels = np.asarray(self.target_label, dtype=np.int64)
        width = dataset.matrix().shape[1]
        if targets.shape[1] != width:
            raise UsageError(f"{self.name}: target rows have {targets.shape[1]} values, the "
                             f"data's rows {width}")
        if len(labels) != len(targets) or (labels >= dataset.n_classes).any():
            raise UsageError(f"{self.name}: target_label needs one class code of the data "
                             "per target row")
        x, xt = reduce(dataset.matrix(), targets, max_dims=self.max_dims, seed=self.seed)
        push = targeted_harm(x, dataset.labels, dataset.n_classes, xt, labels, l2=self.l2)
        per_target = np.stack([robust_z(p) for p in push])
        ranks = np.argsort(np.argsort(-push, axis=1, kind="stable"), axis=1)
        listed = (per_target >= self.z_flag) & (ranks < self.top)
        z, which = per_target.max(axis=0), per_target.argmax(axis=0)
        flags = np.asarray(listed.any(axis=0), dtype=bool)
        names = dataset.classes
        reasons = {
            int(i): (f"among the {self.top} rows pushing target {int(which[i])} hardest away "
                     f"from its class {names[labels[which[i]]]} (robust z {z[i]:.1f} of all "
                     "rows' push)")
            for i in np.flatnonzero(flags)
        }
        hypotheses = tuple(
            f"targeted poisoning? {int(flags[np.flatnonzero(which == t)].sum())} rows push "
            f"target {t} away from class {names[labels[t]]}"
            for t in range(len(targets)) if flags[np.flatnonzero(which == t)].any())
        return DetectorResult(
            detector=self.name, scores=scores_from_z(z, self.z_flag), flags=flags,
            reasons=reasons, hypotheses=hypotheses, dataset=dataset, examined=(),
            meta={"mode": "targeted", "targets": len(targets), "z_flag": self.z_flag},
        )
