"""The detector interface, its result type and the registry.

A detector is a small estimator-like object: parameters in ``__init__`` (keyword
only), then ``score(dataset, representation) -> DetectorResult``. It never sees the
truth of an attack and never needs the poison rate: thresholds come from the data.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from poisonguard.data import Dataset, Modality
from poisonguard.detect.thresholds import FLAG_SCORE
from poisonguard.errors import UsageError
from poisonguard.params import Constraint, check_params
from poisonguard.represent.base import Representation

__all__ = [
    "Detector",
    "DetectorResult",
    "available_detectors",
    "get_detector",
    "register_detector",
]


@dataclass(frozen=True, eq=False)
class DetectorResult:
    """Per-row scores in [0, 1] (higher = more suspicious), flags and reasons.

    The score convention is enforced here, for every detector: a row is flagged
    exactly when its score is at least :data:`FLAG_SCORE` (0.5). Flagged rows scoring
    less are raised to 0.5 and unflagged rows scoring 0.5 or more are lowered to just
    below it, so a detector maps its statistic to a score and sets its flags without
    clamping either by hand.

    ``reasons`` maps a flagged row index to one short human sentence.
    ``suggested_labels`` maps a row index to the label code the detector believes.
    ``review`` maps an unflagged row the detector questions to a short sentence: a
    label that natural class overlap explains, for a person to look at, not a claim
    of poisoning (the fused action of such a row is ``review``).
    ``hypotheses`` are dataset-level sentences ("backdoor -> class 0: 54 rows share
    a 2x2 patch at the image corner"). ``clean_classes`` is derived, never given: of
    the classes the detector examined (``examined``, default every class of
    ``dataset``), those holding no flagged row. A result built without ``dataset``
    reports no class clean.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> flags = np.zeros(len(wine), dtype=bool)
    >>> flags[0] = True
    >>> r = DetectorResult("demo", np.full(len(wine), 0.3), flags,
    ...                    reasons={0: "listed"}, dataset=wine)
    >>> float(r.scores[0]), r.clean_classes
    (0.5, (1, 2))
    """

    detector: str
    scores: np.ndarray
    flags: np.ndarray
    reasons: Mapping[int, str] = field(default_factory=dict)
    suggested_labels: Mapping[int, int] = field(default_factory=dict)
    review: Mapping[int, str] = field(default_factory=dict)
    hypotheses: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    clean_classes: tuple[int, ...] = field(init=False)
    dataset: InitVar[Dataset | None] = None
    examined: InitVar[Iterable[int] | None] = None

    def __post_init__(self, dataset: Dataset | None, examined: Iterable[int] | None) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        flags = np.asarray(self.flags, dtype=bool)
        if scores.ndim != 1 or flags.shape != scores.shape:
            raise ValueError(f"{self.detector}: scores and flags must be 1-D and the same length")
        if not np.isfinite(scores).all() or scores.min(initial=0) < 0 or scores.max(initial=0) > 1:
            raise ValueError(f"{self.detector}: scores must be finite and in [0, 1]")
        scores = np.where(flags, np.maximum(scores, FLAG_SCORE),
                          np.minimum(scores, _BELOW_FLAG))
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "reasons", {int(k): str(v) for k, v in self.reasons.items()})
        object.__setattr__(
            self, "suggested_labels", {int(k): int(v) for k, v in self.suggested_labels.items()}
        )
        object.__setattr__(self, "review", {int(k): str(v) for k, v in self.review.items()
                                            if not flags[int(k)]})
        object.__setattr__(self, "clean_classes", _clean_classes(flags, dataset, examined))

    @property
    def threshold(self) -> float:
        """The score at which a row is flagged: :data:`FLAG_SCORE` for every detector."""
        return FLAG_SCORE

    @property
    def n_flagged(self) -> int:
        """How many rows are flagged."""
        return int(self.flags.sum())

    def to_dict(self) -> dict[str, Any]:
        """The dataset-level part (no per-row arrays), as plain JSON types."""
        return {
            "detector": self.detector,
            "flagged": self.n_flagged,
            "review": len(self.review),
            "threshold": self.threshold,
            "hypotheses": list(self.hypotheses),
            "clean_classes": list(self.clean_classes),
            "meta": dict(self.meta),
        }


#: The largest score an unflagged row can have: below :data:`FLAG_SCORE` also at the
#: findings' 6 decimals (the float just below 0.5 rounds to 0.5 there and tied
#: unflagged rows with flagged ones in the ranking).
_BELOW_FLAG = FLAG_SCORE - 1e-6


def _clean_classes(flags: np.ndarray, dataset: Dataset | None,
                   examined: Iterable[int] | None) -> tuple[int, ...]:
    if dataset is None:
        if examined is not None:
            raise ValueError("a result needs the dataset to report examined classes")
        return ()
    if len(dataset) != len(flags):
        raise ValueError(f"{len(flags)} flags for {len(dataset)} rows")
    classes = range(dataset.n_classes) if examined is None else sorted(set(examined))
    dirty = set(np.unique(dataset.labels[flags]).tolist())
    return tuple(int(c) for c in classes if c not in dirty)


class Detector(ABC):
    """Base class of every detector. Subclasses set ``name`` and implement ``score``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.represent import build_representation
    >>> wine = builtin_dataset("wine")
    >>> result = get_detector("outlier").score(wine, build_representation(wine))
    >>> result.n_flagged, result.clean_classes
    (0, (0, 1, 2))

    ``needs`` names the parts of the representation used ("features", "embedding",
    "proba", "embedding_oof") so that the scan builds only what is needed;
    ``modalities`` lists the data kinds the detector supports;
    ``finds_label_flips`` says whether it can find label flips;
    ``parameter_constraints`` declares what each constructor parameter accepts
    (:mod:`poisonguard.params`; merged along the class hierarchy). ``score`` checks
    the parameters against them before it runs, with one message format.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset({"features"})
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {}
    #: True when the detector's evidence is the label itself (it can find label flips);
    #: a scan with none of these says label flips were not tested.
    finds_label_flips: ClassVar[bool] = False
    #: True when ``score`` searches the features' neighbours
    #: (:func:`~poisonguard.detect.neighbours.nearest_neighbours`): a scan keeps the
    #: search in its memo until the last such detector has run, then frees it.
    searches_neighbours: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("score")
        if own is not None and not getattr(own, "_checks_params", False):
            cls.score = _checking_params(own)  # type: ignore[method-assign,assignment]

    @classmethod
    def constraints(cls) -> dict[str, Constraint]:
        """The declared constraint of every parameter, base classes first."""
        out: dict[str, Constraint] = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("parameter_constraints", {}))
        return out

    def check_params(self) -> None:
        """Raise :class:`UsageError` if a parameter breaks its declared constraint."""
        declared = self.constraints()
        check_params(self.name, {k: v for k, v in self.get_params().items() if k in declared},
                     declared)

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters and their values."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def requires(self) -> frozenset[str]:
        """The parts of the representation this instance reads (``needs`` by default)."""
        return self.needs

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @abstractmethod
    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        """Score every row of ``dataset``; must not modify its inputs."""


def _checking_params(
    score: Callable[[Any, Dataset, Representation], DetectorResult],
) -> Callable[[Any, Dataset, Representation], DetectorResult]:
    @functools.wraps(score)
    def checked(self: Detector, dataset: Dataset, representation: Representation
                ) -> DetectorResult:
        self.check_params()
        return score(self, dataset, representation)

    checked._checks_params = True  # type: ignore[attr-defined]
    return checked


_REGISTRY: dict[str, type[Detector]] = {}
D = TypeVar("D", bound=type[Detector])


def register_detector(cls: D) -> D:
    """Class decorator: make a detector findable by its ``name``.

    Examples
    --------
    >>> import poisonguard
    >>> @register_detector
    ... class FarFromMean(Detector):  # flags rows z standard deviations from a feature's mean
    ...     name = "far-from-mean"
    ...     def __init__(self, *, z: float = 4.0) -> None:
    ...         self.z = z
    ...     def score(self, dataset, representation):
    ...         x = representation.features
    ...         worst = (np.abs(x - x.mean(axis=0)) / x.std(axis=0)).max(axis=1)
    ...         return DetectorResult(self.name, worst / (worst + self.z), worst > self.z,
    ...                               dataset=dataset)
    >>> findings = poisonguard.scan("builtin:wine", detectors="far-from-mean")
    >>> findings.detectors, findings.flagged_indices()  # row 95: 4.4 sd, the next 3.7
    (('far-from-mean',), [95])
    """
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name '{cls.name}' is taken by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def available_detectors() -> dict[str, type[Detector]]:
    """Registered detectors by name (importing ``poisonguard.detect`` registers the built-ins).

    Returns
    -------
    dict
        Name -> detector class, sorted by name.

    Examples
    --------
    >>> import poisonguard
    >>> "spectral" in poisonguard.available_detectors()
    True
    """
    return dict(sorted(_REGISTRY.items()))


def get_detector(name: str, **params: Any) -> Detector:
    """A new detector instance by registered name.

    Parameters
    ----------
    name
        A registered name (:func:`available_detectors`).
    **params
        Constructor parameters; they are checked against the detector's declared
        constraints when it scores.

    Raises
    ------
    UsageError
        Unknown name.

    Examples
    --------
    >>> import poisonguard
    >>> poisonguard.get_detector("knn", k=5).get_params()["k"]
    5
    """
    factory: Callable[..., Detector] | None = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UsageError(f"unknown detector '{name}' (known: {known})")
    return factory(**params)
