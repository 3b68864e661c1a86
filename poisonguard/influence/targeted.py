"""A scan's detector list with the ``influence`` detector aimed at given target inputs."""

from __future__ import annotations

from poisonguard.data import Dataset
from poisonguard.detect import Detector, DetectorSpec, get_detector, resolve_detectors
from poisonguard.influence.explain import query_rows

__all__ = ["aim_at_targets"]


def aim_at_targets(spec: DetectorSpec, dataset: Dataset, targets: Dataset) -> list[Detector]:
    """The detectors ``spec`` names for ``dataset``, plus ``influence`` in targeted mode.

    ``targets`` holds the inputs under attack in the data's own encoding, each
    labelled with its correct class (refused, one line, otherwise). An
    ``influence`` detector already in ``spec`` is replaced by the targeted one.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> [d.name for d in aim_at_targets("label", wine, wine.subset([0]))]
    ['label', 'influence']
    """
    rows, codes, _ = query_rows(dataset, targets)
    chosen = [d for d in resolve_detectors(spec, dataset.modality) if d.name != "influence"]
    aimed = get_detector("influence", target=rows, target_label=tuple(int(c) for c in codes))
    return [*chosen, aimed]
