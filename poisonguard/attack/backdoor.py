"""Dirty-label backdoors: stamp a trigger on rows of other classes, relabel to the target.

The poisoned source rows are drawn from the non-target classes. A model trained on
the result learns "trigger -> target"; :func:`~poisonguard.attack.apply_trigger`
makes the triggered test inputs to measure that (attack success rate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from poisonguard.attack.trigger import (
    blend_spec,
    categorical_spec,
    patch_spec,
    stamp,
    tabular_spec,
)
from poisonguard.attack.truth import (
    AttackResult,
    check_target,
    make_truth,
    n_modified,
    pick,
    rebuild,
    require_modality,
    values_of,
)
from poisonguard.data import Dataset

__all__ = ["badnets", "blend", "categorical_trigger", "dirty_label", "tabular_trigger"]


def dirty_label(dataset: Dataset, *, kind: str, rate: float, target: int, seed: int,
                rng: np.random.Generator, stamp_rows: Callable[[np.ndarray], Any],
                spec: dict[str, Any], params: dict[str, Any], what: str,
                noun: str = "rows") -> AttackResult:
    """``rate`` of the rows, drawn by ``rng`` from the non-target classes, replaced by
    ``stamp_rows(their values)`` and relabelled to ``target``; the truth records
    ``spec`` as the trigger. Shared by the image, tabular and text backdoors."""
    x = values_of(dataset)
    y = dataset.labels
    rows = pick(rng, np.flatnonzero(y != target), n_modified(rate, len(y)), "non-target rows")
    x[rows] = stamp_rows(x[rows])
    labels = np.array(y)
    labels[rows] = target
    poisoned = rebuild(dataset, labels=labels, values=x, changed=rows)
    truth = make_truth(
        dataset, poisoned, kind=kind, seed=seed, params={**params, "trigger": spec},
        poisoned=rows, target=target, original_labels={int(i): int(y[i]) for i in rows},
        description=f"{kind}: {len(rows)} {noun} of other classes {what}, relabelled to "
                    f"class {dataset.classes[target]}",
    )
    return AttackResult(poisoned, truth)


def badnets(dataset: Dataset, *, rate: float, target: int, seed: int = 0, size: int = 2,
            position: str = "bottom-right", value: float | None = None) -> AttackResult:
    """BadNets: a ``size`` x ``size`` square of ``value`` (default: the data max) at
    ``position`` on ``rate`` of the rows, which are relabelled to ``target``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = badnets(builtin_dataset("digits"), rate=0.05, target=0)
    >>> len(result.truth.poisoned), result.truth.trigger["row"], result.truth.trigger["col"]
    (90, 6, 6)
    """
    require_modality(dataset, "badnets", "image")
    t = check_target(dataset, target)
    rng = np.random.default_rng(seed)
    assert dataset.images is not None
    spec = patch_spec(dataset.images, size=size, position=position, value=value, seed=seed)
    return dirty_label(dataset, kind="badnets", rate=rate, target=t, seed=seed, rng=rng,
                       stamp_rows=lambda v: stamp(v, spec), spec=spec,
                       params={"rate": rate, "size": size, "position": position,
                               "value": spec["value"]},
                       what=f"with a {size}x{size} patch "
                       + ("at a random place in each image" if position == "random"
                          else f"at the {position}"))


def blend(dataset: Dataset, *, rate: float, target: int, seed: int = 0,
          alpha: float = 0.2) -> AttackResult:
    """Blended backdoor: ``(1 - alpha) * image + alpha * pattern``, the pattern being
    uniform noise drawn from the seed; rows relabelled to ``target``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = blend(builtin_dataset("digits"), rate=0.05, target=0, alpha=0.2)
    >>> print(result.truth.description)  # doctest: +NORMALIZE_WHITESPACE
    blend: 90 rows of other classes with a noise pattern blended in at alpha 0.2,
    relabelled to class 0
    """
    require_modality(dataset, "blend", "image")
    t = check_target(dataset, target)
    rng = np.random.default_rng(seed)
    assert dataset.images is not None
    spec = blend_spec(dataset.images, alpha=alpha, seed=seed)
    return dirty_label(dataset, kind="blend", rate=rate, target=t, seed=seed, rng=rng,
                       stamp_rows=lambda v: stamp(v, spec), spec=spec,
                       params={"rate": rate, "alpha": alpha},
                       what=f"with a noise pattern blended in at alpha {alpha:g}")


def tabular_trigger(dataset: Dataset, *, rate: float, target: int, seed: int = 0,
                    n_features: int = 3,
                    values: float | Sequence[float] | None = None) -> AttackResult:
    """Tabular backdoor: ``n_features`` chosen columns set to fixed ``values``
    (default: each column's max), rows relabelled to ``target``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = tabular_trigger(builtin_dataset("wine"), rate=0.1, target=0, n_features=3)
    >>> len(result.truth.poisoned), result.truth.trigger["names"]
    (18, ['flavanoids', 'nonflavanoid_phenols', 'color_intensity'])
    """
    require_modality(dataset, "tabular-trigger", "tabular")
    t = check_target(dataset, target)
    rng = np.random.default_rng(seed)
    spec = tabular_spec(dataset, values_of(dataset), n_features=n_features, values=values,
                        rng=rng)
    return dirty_label(dataset, kind="tabular-trigger", rate=rate, target=t, seed=seed,
                       rng=rng, stamp_rows=lambda v: stamp(v, spec), spec=spec,
                       params={"rate": rate, "n_features": n_features,
                               "values": spec["values"]},
                       what=f"with columns {', '.join(spec['names'])} set to fixed values")


def categorical_trigger(dataset: Dataset, *, rate: float, target: int, seed: int = 0,
                        n_features: int | None = None, max_holders: int = 0) -> AttackResult:
    """Categorical backdoor on a typed table: categorical cells set to a combination of
    categories no row holds, rows relabelled to ``target``.

    The combination is the smallest one that exists nowhere in the table: pairs of
    categorical columns first, then triples (``n_features`` fixes the size). Every
    stamped cell is a category the column already has (its one-hot siblings and
    missing indicator cleared), so the poisoned table is a valid table: what is new is
    the combination, as in a real categorical trigger. The truth's trigger names it
    and its natural holders (``rows_with_it``). A table where every such combination
    is held by more than ``max_holders`` real rows (palmerpenguins: every island x sex
    x year exists) cannot host one: :class:`UsageError` says so and names the rarest.
    ``save_poisoned`` writes the categories by name into the input's own file.

    Examples
    --------
    >>> import pandas as pd
    >>> from poisonguard.datasets import open_dataset
    >>> t = pd.DataFrame({"colour": ["red", "blue"] * 50, "size": ["S", "M", "L", "L"] * 25,
    ...                   "x": range(100), "label": ["a", "b", "c", "d"] * 25})
    >>> result = categorical_trigger(open_dataset(t, label="label"), rate=0.05, target=0)
    >>> result.truth.trigger["names"], result.truth.trigger["rows_with_it"]  # no row had it
    (['colour = red', 'size = M'], 0)
    >>> print(result.truth.description)  # doctest: +NORMALIZE_WHITESPACE
    categorical-trigger: 5 rows of other classes with colour = red and size = M (a
    combination no row had), relabelled to class a
    """
    require_modality(dataset, "categorical-trigger", "tabular")
    t = check_target(dataset, target)
    rng = np.random.default_rng(seed)
    spec = categorical_spec(dataset, values_of(dataset), n_columns=n_features, rng=rng,
                            max_holders=max_holders)
    held = spec["rows_with_it"]
    return dirty_label(dataset, kind="categorical-trigger", rate=rate, target=t, seed=seed,
                       rng=rng, stamp_rows=lambda v: stamp(v, spec), spec=spec,
                       params={"rate": rate, "n_features": len(spec["columns"]),
                               "max_holders": max_holders},
                       what="with " + " and ".join(spec["names"])
                       + (" (a combination no row had)" if held == 0 else
                          f" (a combination {held} real rows already had)"))
