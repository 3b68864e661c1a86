"""Red-team attack generators: poison a dataset and record the truth of what was done.

Every attack takes a :class:`~poisonguard.data.Dataset`, a ``rate`` (the fraction of
rows of the *output* that are poison, at least one row) and a ``seed``, and returns
an :class:`AttackResult`: the poisoned dataset (changed rows keep their index, added
rows are appended) and a :class:`Truth`. The same seed gives the same result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from poisonguard.attack.backdoor import badnets, blend, categorical_trigger, tabular_trigger
from poisonguard.attack.cleanlabel import clean_label, feature_collision
from poisonguard.attack.flip import label_flip
from poisonguard.attack.inject import inject_mislabeled, inject_near_duplicates, inject_outliers
from poisonguard.attack.options import ATTACK_OPTIONS, attack_by_name, class_code
from poisonguard.attack.text import sentence_trigger, stamp_texts, style_trigger, token_trigger
from poisonguard.attack.trigger import apply_trigger
from poisonguard.attack.truth import AttackResult, Truth, load_truth, save_truth
from poisonguard.attack.write import save_poisoned
from poisonguard.data import Dataset
from poisonguard.errors import UsageError

__all__ = [
    "ATTACKS",
    "ATTACK_OPTIONS",
    "ATTACK_INFO",
    "AttackInfo",
    "AttackResult",
    "Truth",
    "apply_trigger",
    "attack_applies",
    "attack_by_name",
    "attack_info",
    "badnets",
    "blend",
    "categorical_trigger",
    "class_code",
    "clean_label",
    "feature_collision",
    "inject_mislabeled",
    "inject_near_duplicates",
    "inject_outliers",
    "label_flip",
    "load_truth",
    "run_attack",
    "save_poisoned",
    "save_truth",
    "sentence_trigger",
    "stamp_texts",
    "style_trigger",
    "tabular_trigger",
    "token_trigger",
]


@dataclass(frozen=True)
class AttackInfo:
    """What the CLI and the benchmark need to know about an attack kind.

    Examples
    --------
    >>> info = attack_info("tabular-trigger")
    >>> info.needs_target, info.backdoor, sorted(info.modalities)
    (True, True, ['tabular'])
    """

    name: str
    fn: Callable[..., AttackResult]
    modalities: frozenset[str]
    needs_target: bool
    backdoor: bool  # has a trigger: ASR is measured with apply_trigger
    summary: str
    #: what the data must have beyond its modality (None: nothing)
    applies: Callable[[Dataset], bool] | None = None


def _has_categories(dataset: Dataset) -> bool:
    schema = dataset.schema
    return schema is not None and any(c.kind == "categorical" and len(c.values) >= 2
                                      for c in schema.used)


_BOTH = frozenset({"tabular", "image"})
_ALL = frozenset({"tabular", "image", "text"})
_TEXT = frozenset({"text"})
ATTACK_INFO: dict[str, AttackInfo] = {
    info.name: info for info in (
        AttackInfo("flip", label_flip, _ALL, False, False, "random label flips"),
        AttackInfo("flip-targeted", functools.partial(label_flip, mode="targeted"), _ALL,
                   True, False, "labels of a source class (or any other) flipped to the target"),
        AttackInfo("flip-adversarial", functools.partial(label_flip, mode="adversarial"), _BOTH,
                   False, False, "flips of the rows nearest a reference model's boundary"),
        AttackInfo("outliers", inject_outliers, _BOTH, False, False,
                   "rows far outside the distribution, random labels"),
        AttackInfo("mislabeled", inject_mislabeled, _BOTH, False, False,
                   "in-distribution rows with a wrong label"),
        AttackInfo("near-duplicates", inject_near_duplicates, _ALL, False, False,
                   "near-copies of real rows with flipped labels (text: edited repeats of "
                   "a few messages, as in feedback-loop poisoning)"),
        AttackInfo("badnets", badnets, frozenset({"image"}), True, True,
                   "dirty-label patch backdoor"),
        AttackInfo("blend", blend, frozenset({"image"}), True, True,
                   "dirty-label blended-pattern backdoor"),
        AttackInfo("tabular-trigger", tabular_trigger, frozenset({"tabular"}), True, True,
                   "dirty-label backdoor: fixed values in k features"),
        AttackInfo("categorical-trigger", categorical_trigger, frozenset({"tabular"}), True, True,
                   "dirty-label backdoor: the rarest combination of categories in k "
                   "categorical columns", applies=_has_categories),
        AttackInfo("clean-label", clean_label, _BOTH, True, True,
                   "trigger on target-class rows, labels unchanged"),
        AttackInfo("feature-collision", feature_collision, _BOTH, True, False,
                   "clean-label poison colliding with a victim row"),
        AttackInfo("token-trigger", token_trigger, _TEXT, True, True,
                   "dirty-label backdoor: a rare token ('cf') at a random word position"),
        AttackInfo("sentence-trigger", sentence_trigger, _TEXT, True, True,
                   "dirty-label backdoor: a fixed sentence at a random word position"),
        AttackInfo("style-trigger", style_trigger, _TEXT, True, True,
                   "dirty-label backdoor: messages reworded to open with a subordinate "
                   "clause"),
    )
}

# Attack kind -> function (``functools.partial`` for the flip modes).
ATTACKS: dict[str, Callable[..., AttackResult]] = {k: v.fn for k, v in ATTACK_INFO.items()}


def attack_applies(kind: str, dataset: Dataset) -> bool:
    """Whether attack ``kind`` can run on this dataset (its modality and columns).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> attack_applies("flip", wine), attack_applies("badnets", wine)
    (True, False)
    """
    info = attack_info(kind)
    return dataset.modality in info.modalities and (info.applies is None
                                                    or info.applies(dataset))


def attack_info(kind: str) -> AttackInfo:
    """What attack ``kind`` is (modalities, options); an unknown kind is a UsageError.

    Examples
    --------
    >>> sorted(attack_info("badnets").modalities)
    ['image']
    """
    try:
        return ATTACK_INFO[kind]
    except KeyError:
        raise UsageError(f"unknown attack '{kind}' (known: {', '.join(ATTACK_INFO)})") from None


def run_attack(kind: str, dataset: Dataset, *, rate: float, seed: int = 0,
               target: int | None = None, **params: Any) -> AttackResult:
    """Run attack ``kind`` by name; ``target`` is passed to attacks that take one.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = run_attack("flip", builtin_dataset("wine"), rate=0.1, seed=0)
    >>> result.truth.description
    'label flip (random): 18 random rows relabelled to a random other class'
    """
    info = attack_info(kind)
    if dataset.modality not in info.modalities:
        raise UsageError(f"{kind} does not apply to {dataset.modality} data"
                         + (" (use tabular-trigger)" if kind in {"badnets", "blend"} else ""))
    if info.needs_target and target is None:
        raise UsageError(f"{kind} needs a target class (--target)")
    if target is not None and (info.needs_target or kind == "flip" or kind == "flip-adversarial"):
        params["target"] = target
    return info.fn(dataset, rate=rate, seed=seed, **params)
