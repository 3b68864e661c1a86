"""The execution-engine seam: one small interface, an in-process implementation.

An :class:`Engine` maps a function over a list of work items and yields the results
in item order, as they complete (streamed: a consumer can reduce them one by one).
The function must be a module-level function and the items plain data (dataclasses
of paths and numbers), so that a cluster can ship them to its workers.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from poisonguard.errors import UsageError
from poisonguard.progress import NullProgress, Progress

__all__ = ["ENGINES", "Engine", "Handle", "InProcessEngine", "open_engine"]

T = TypeVar("T")
R = TypeVar("R")

#: Engine names the command line accepts (``--engine``).
ENGINES = ("local", "ray")


class Handle(Generic[T]):
    """A value every task can read (:meth:`Engine.put`): here, the value itself.

    Examples
    --------
    >>> Handle([1, 2]).get()
    [1, 2]
    """

    def __init__(self, value: T) -> None:
        self._value = value

    def get(self) -> T:
        """The value (on a cluster: fetched from its object store, arrays read-only)."""
        return self._value


class Engine(ABC):
    """Runs ``fn`` over work items; see the module docstring.

    Subclasses implement :meth:`map`; :meth:`close` releases what the engine started.
    An engine is a context manager.

    Examples
    --------
    >>> with InProcessEngine() as engine:
    ...     list(engine.map(abs, [-1, 2, -3]))
    [1, 2, 3]
    """

    name: str = "engine"

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "working",
            progress: Progress | None = None) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, in item order."""

    def map_shared(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "working",
                   progress: Progress | None = None) -> list[Handle[R]]:
        """``fn(item)`` for every item, each result kept as a :class:`Handle` for later
        tasks (in item order): for results the driver does not read, such as a
        search index per shard.

        Here (and by default) the results pass through :meth:`map` and :meth:`put`; a
        cluster keeps each result in its object store, where it was computed, so the
        driver never receives it.

        Examples
        --------
        >>> [h.get() for h in InProcessEngine().map_shared(abs, [-1, 2])]
        [1, 2]
        """
        return [self.put(result) for result in self.map(fn, items, stage=stage,
                                                         progress=progress)]

    def put(self, value: T) -> Handle[T]:
        """Share ``value`` (a large array) with every task: tasks call ``handle.get()``.

        In-process the handle holds the value; a cluster stores it once in its object
        store, where the tasks of a node read one shared, read-only copy.
        """
        return Handle(value)

    def describe(self) -> str:
        """A short human description (for progress lines and ledger entries)."""
        return self.name

    def close(self) -> None:  # noqa: B027 - engines without resources need no close
        """Release what the engine started (a local cluster); idempotent."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessEngine(Engine):
    """Runs every item here, one after the other: the reference for every other engine.

    Examples
    --------
    >>> list(InProcessEngine().map(abs, [-1, 2, -3]))
    [1, 2, 3]
    """

    name = "local"

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "working",
            progress: Progress | None = None) -> Iterator[R]:
        progress = progress or NullProgress()
        for k, item in enumerate(items):
            progress.update(f"{stage}: shard {k + 1}/{len(items)}", done=k, total=len(items))
            yield fn(item)
        progress.update(f"{stage}: done", done=len(items), total=len(items))


def open_engine(name: str = "local", *, address: str | None = None,
                num_cpus: int | None = None, **options: Any) -> Engine:
    """The engine called ``name``: ``"local"`` (in-process) or ``"ray"``.

    ``address`` is the Ray cluster to join (``ray://host:10001`` through Ray Client,
    ``auto`` or ``host:6379`` from a cluster node); without it a local Ray is started
    with ``num_cpus`` CPUs (default 2) and shut down on :meth:`Engine.close`.

    Examples
    --------
    >>> with open_engine("local") as engine:
    ...     engine.describe()
    'local'
    """
    if name == "local":
        if address is not None:
            raise UsageError("--address is for --engine ray")
        return InProcessEngine()
    if name == "ray":
        from poisonguard.engine.ray import RayEngine

        return RayEngine(address=address, num_cpus=num_cpus, **options)
    raise UsageError(f"unknown engine '{name}' (known: {', '.join(ENGINES)})")


@contextlib.contextmanager
def engine_scope(engine: Engine | None) -> Iterator[Engine]:
    """``engine`` as it is, or a fresh in-process engine closed afterwards."""
    if engine is not None:
        yield engine
        return
    with InProcessEngine() as own:
        yield own
