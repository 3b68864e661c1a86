"""Detectors: each scores every row; importing this package registers the built-ins."""

from collections.abc import Sequence

from poisonguard.data import Modality
from poisonguard.detect import (  # noqa: F401  (each module registers its detectors)
    activation,
    cleanlabel,
    duplicate,
    influence,
    knn,
    label,
    outlier,
    spectral,
    token,
    trigger,
)
from poisonguard.detect.base import (
    Detector,
    DetectorResult,
    available_detectors,
    get_detector,
    register_detector,
)
from poisonguard.errors import UsageError

# What a scan runs when no detectors are named (those registered, in this order).
# "activation" is registered but not a default: in benchmarks/results/detectors-backdoor.md
# it found no backdoor on digits (images or tabular), found the breast-cancer tabular
# trigger at 5-10% that "trigger" also finds, and flagged natural sub-clusters of clean
# classes (27 clean digits "1"s, 1.5% of digits-tabular). Name it to run it.
# "spectral" left the defaults in issue 12: it flagged no row in any measured case
# (digits clean / badnets / blend at 1-10%, breast cancer clean / tabular trigger;
# docs/detectors-backdoor.md) and ranks below "spectre", which reads the same embedding
# (AUROC 0.975 vs 1.000 on digits badnets 5%, 0.69 vs 1.00 on blend 5%).
# "influence" is registered but not a default either (docs/influence.md).
DEFAULT_DETECTORS: tuple[str, ...] = tuple(
    name
    for name in ("label", "knn", "outlier", "duplicate", "spectre", "trigger", "cleanlabel")
    if name in available_detectors()
)

#: The defaults for text. On real tweets (benchmarks/RESULTS.md, "Text": 800 clean
#: training tweets, 3 seeds) label, knn, spectral and spectre flagged 4.6%, 1.9%, 12%
#: and up to 5.5% of the clean rows (sentiment labels disagree, the six topics form
#: clusters); token, duplicate and outlier flagged none. Name the others to run them.
TEXT_DEFAULT_DETECTORS: tuple[str, ...] = ("token", "duplicate", "outlier")

DetectorSpec = str | Sequence[str | Detector] | None


def _named(name: str, seed: int | None) -> Detector:
    """``get_detector(name)``, with ``seed`` when given and the detector takes one."""
    cls = available_detectors().get(name)
    if seed is not None and cls is not None and "seed" in cls.constraints():
        return get_detector(name, seed=seed)
    return get_detector(name)


def resolve_detectors(spec: DetectorSpec, modality: Modality, *,
                      seed: int | None = None) -> list[Detector]:
    """Detector instances for a scan or a benchmark of ``modality`` data.

    Parameters
    ----------
    spec
        ``None`` or ``"default"``: the :data:`DEFAULT_DETECTORS` that support the
        modality (text: :data:`TEXT_DEFAULT_DETECTORS`). ``"all"``: every registered
        detector that supports it. A comma separated string or a sequence of names
        and :class:`Detector` instances: exactly those, each of which must support the
        modality.
    modality
        ``"tabular"``, ``"image"`` or ``"text"``.
    seed
        Given to every detector built here by name that takes a ``seed`` (a scan's
        seed reaches every detector); instances in ``spec`` keep their own.

    Raises
    ------
    UsageError
        An unknown name, a detector that does not support the modality, or none chosen.

    Examples
    --------
    >>> [d.name for d in resolve_detectors("label, knn", "tabular")]
    ['label', 'knn']
    >>> "trigger" in [d.name for d in resolve_detectors("all", "text")]
    False
    >>> resolve_detectors("outlier", "tabular", seed=3)[0].seed
    3
    """
    if isinstance(spec, str):
        words = [s.strip() for s in spec.split(",") if s.strip()]
        if words == ["all"]:
            every = [_named(n, seed) for n, cls in available_detectors().items()
                     if modality in cls.modalities]
            if not every:
                raise UsageError(f"no registered detector supports {modality} data")
            return every
        spec = None if words in ([], ["default"]) else words
    if spec is None:
        names = TEXT_DEFAULT_DETECTORS if modality == "text" else DEFAULT_DETECTORS
        chosen = [_named(n, seed) for n in names if n in available_detectors()]
        return [d for d in chosen if modality in d.modalities]
    detectors: list[Detector] = []
    for item in spec:
        det = _named(item, seed) if isinstance(item, str) else item
        if modality not in det.modalities:
            raise UsageError(f"detector '{det.name}' does not support {modality} data")
        detectors.append(det)
    if not detectors:
        raise UsageError("no detectors chosen")
    return detectors


__all__ = [
    "DEFAULT_DETECTORS",
    "Detector",
    "DetectorResult",
    "DetectorSpec",
    "TEXT_DEFAULT_DETECTORS",
    "available_detectors",
    "get_detector",
    "register_detector",
    "resolve_detectors",
]
