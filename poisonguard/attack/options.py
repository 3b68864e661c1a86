"""Attack options by name: which attack takes which option, and class names in.

The command line passes every option it parsed (None when not given); this module
decides what each attack receives, so the CLI never branches on the attack kind.
"""

from __future__ import annotations

from typing import Any

from poisonguard.attack.truth import AttackResult
from poisonguard.data import Dataset
from poisonguard.errors import UsageError

__all__ = ["ATTACK_OPTIONS", "attack_by_name", "class_code"]

#: The options (beyond rate, seed and target) each attack kind takes.
ATTACK_OPTIONS: dict[str, frozenset[str]] = {
    "flip-targeted": frozenset({"source"}),
    "badnets": frozenset({"size", "position", "value"}),
    "blend": frozenset({"alpha"}),
    "tabular-trigger": frozenset({"n_features"}),
    "categorical-trigger": frozenset({"n_features", "max_holders"}),
    "clean-label": frozenset({"size", "position", "alpha", "n_features", "trigger",
                              "perturb"}),
    "token-trigger": frozenset({"token"}),
    "sentence-trigger": frozenset({"sentence"}),
}


def class_code(dataset: Dataset, value: str, what: str = "target") -> int:
    """The label code of class ``value`` as the user writes labels (e.g. '0' or 'cat').

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> class_code(builtin_dataset("wine"), "2")
    2
    """
    if value in dataset.classes:
        return dataset.classes.index(value)
    shown = ", ".join(dataset.classes[:20]) + (" ..." if dataset.n_classes > 20 else "")
    raise UsageError(f"{what} '{value}' is not a class (classes: {shown})")


def attack_by_name(kind: str, dataset: Dataset, *, rate: float, seed: int = 0,
                   target: str | None = None, **options: Any) -> AttackResult:
    """Run attack ``kind`` with class names and only the options it takes.

    ``options`` set to None count as not given; a given option the attack does not
    take is a :class:`UsageError` (``--alpha does not apply to flip``).

    Examples
    --------
    >>> from poisonguard.datasets import open_dataset
    >>> ds = open_dataset("builtin:wine")
    >>> result = attack_by_name("flip-targeted", ds, rate=0.05, target="1", source="0")
    >>> result.truth.description
    'label flip (targeted): 9 class 0 relabelled to 1'
    """
    from poisonguard.attack import run_attack

    given = {k: v for k, v in options.items() if v is not None}
    allowed = ATTACK_OPTIONS.get(kind, frozenset())
    for name in given:
        if name not in allowed:
            flag = "--" + name.replace("_", "-")
            only = sorted(k for k, v in ATTACK_OPTIONS.items() if name in v)
            raise UsageError(f"{flag} does not apply to {kind}"
                             + (f" (only to {', '.join(only)})" if only else ""))
    if "source" in given:
        given["source"] = class_code(dataset, str(given["source"]), "source")
    code = None if target is None else class_code(dataset, target)
    return run_attack(kind, dataset, rate=rate, seed=seed, target=code, **given)
