"""A scan's detector list with the ``influence`` detector aimed at given target inputs."""

from __future__ import annotations

from poisonguard.data import Dataset
from poisonguard.detect import Detector, DetectorSpec, get_detector, resolve_detectors
from poisonguard.influence.explain import query_rows

__all__ = ["aim_at_targets"]


def aim_at_targets(spec: DetectorSpec, dataset: Dataset, targets: Dataset, *,
                   seed: int | None = None) -> list[Detector]:
    """The detectors ``spec`` names for ``dataset``, plus ``influence`` in targeted mode.

    ``targets`` holds the inputs under attack in the data's own encoding, each
    labelled with its correct class (refused, one line, otherwise). An
    ``influence`` detector already in ``spec`` is replaced by the targeted one.
    ``seed`` (a scan's) reaches every detector built here, the targeted one too
    (:func:`~poisonguard.detect.resolve_detectors`).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> [(d.name, d.seed) for d in aim_at_targets("label", wine, wine.subset([0]), seed=3)]
    [('label', 3), ('influence', 3)]
    """
    rows, codes, _ = query_rows(dataset, targets)
    chosen = [d for d in resolve_detectors(spec, dataset.modality, seed=seed)
              if d.name != "influence"]
    aimed = get_detector("influence", target=rows, target_label=tuple(int(c) for c in codes),
                         **({} if seed is None else {"seed": seed}))
    return [*chosen, aimed]
