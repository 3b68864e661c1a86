"""Parameter constraints declared as data, checked in one place (scikit-learn's
``_parameter_constraints`` idea).

A class lists what each of its constructor parameters accepts::

    class LabelDetector(Detector):
        parameter_constraints = {"k": Interval(int, 1, None),
                                 "filter_by": OneOf("both", "confident_learning")}

and :func:`check_params` checks a parameter dict against it, raising one
:class:`~poisonguard.errors.UsageError` per bad value, always worded
``"<owner>: <name> must be <constraint>, got <value>"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal, Protocol

from poisonguard.errors import UsageError

__all__ = ["Constraint", "Interval", "OneOf", "SequenceOf", "check_params"]


class Constraint(Protocol):
    """What a parameter accepts: ``accepts(value)`` and a phrase for the message.

    Examples
    --------
    >>> from poisonguard.params import Interval
    >>> rule = Interval(int, 1, None)  # a Constraint
    >>> rule.accepts(3), rule.accepts(0)
    (True, False)
    """

    def accepts(self, value: Any) -> bool: ...

    def __str__(self) -> str: ...


@dataclass(frozen=True)
class Interval:
    """A number (``int`` or ``float``; never a bool) between ``low`` and ``high``.

    ``None`` leaves a side open-ended; ``closed`` says which ends belong to it.

    Examples
    --------
    >>> Interval(float, 0, 1, closed="left").accepts(1.0)
    False
    >>> str(Interval(int, 1, None))
    'an integer >= 1'
    """

    kind: type
    low: float | None
    high: float | None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if not isinstance(value, Integral if self.kind is int else Real):
            return False
        value = float(value)
        if not math.isfinite(value):
            return False
        if self.low is not None:
            low_in = self.closed in ("both", "left")
            if value < self.low or (value == self.low and not low_in):
                return False
        if self.high is not None:
            high_in = self.closed in ("both", "right")
            if value > self.high or (value == self.high and not high_in):
                return False
        return True

    def __str__(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        low_in = self.closed in ("both", "left")
        high_in = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            left, right = "[" if low_in else "(", "]" if high_in else ")"
            return f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{what} {'>=' if low_in else '>'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<=' if high_in else '<'} {self.high:g}"
        return what


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values.

    Examples
    --------
    >>> OneOf("features", "embedding_oof").accepts("features")
    True
    """

    options: tuple[Any, ...]

    def __init__(self, *options: Any) -> None:
        object.__setattr__(self, "options", tuple(options))

    def accepts(self, value: Any) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class SequenceOf:
    """A tuple or list (possibly empty) whose every item meets ``item``.

    Examples
    --------
    >>> SequenceOf(Interval(int, 2, None)).accepts((2, 3))
    True
    """

    item: Constraint

    def accepts(self, value: Any) -> bool:
        return isinstance(value, tuple | list) and all(self.item.accepts(v) for v in value)

    def __str__(self) -> str:
        return f"a sequence of {self.item}s"


def check_params(owner: str, params: Mapping[str, Any],
                 constraints: Mapping[str, Constraint]) -> None:
    """Raise :class:`UsageError` for the first parameter its constraint refuses.

    Parameters
    ----------
    owner
        Who the parameters belong to, first word of the message (``"label"``).
    params
        Parameter names and values.
    constraints
        A constraint per parameter name; every name in ``params`` must have one.

    Raises
    ------
    UsageError
        ``"<owner>: <name> must be <constraint>, got <value>"``.

    Examples
    --------
    >>> check_params("knn", {"k": 10}, {"k": Interval(int, 1, None)})
    >>> check_params("knn", {"k": 0}, {"k": Interval(int, 1, None)})
    Traceback (most recent call last):
    ...
    poisonguard.errors.UsageError: knn: k must be an integer >= 1, got 0
    """
    for name, value in params.items():
        constraint = constraints.get(name)
        if constraint is None:
            raise UsageError(f"{owner}: parameter {name} has no declared constraint")
        if not constraint.accepts(value):
            raise UsageError(f"{owner}: {name} must be {constraint}, got {value!r}")
