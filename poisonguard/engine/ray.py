"""The Ray engine: shards run as Ray Data ``map_batches`` tasks, results stream back.

Each work item becomes one Ray Data block and one task (``map_batches`` with one
item per batch), so a task's memory is one shard's (a Parquet row group), the
streaming executor keeps only a bounded window of results in flight
(backpressure), and a task whose worker dies is run again on another worker (Ray
Data's default for tasks, ``max_retries=-1``: until it succeeds), so the job still
finishes with the same result. Results come back in item order
(``preserve_order``), which keeps every reduction in the same order as in-process.

Through Ray Client (``ray://host:port``) the driver cannot run Ray Data's streaming
executor (Ray 2.60), so each item runs as a plain Ray task instead, with the same
properties: a bounded window in flight, retried when its worker dies, results in
item order.

Ray ships work to workers with pickle: the cluster is a trust boundary, like the
machine that runs poisonguard (docs/distributed.md). Inputs from users are never
unpickled: workers read them from the paths in the work items.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from poisonguard.engine.base import Engine, Handle
from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.progress import NullProgress, Progress

__all__ = ["RayEngine"]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CPUS = 2


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("ray[data]", "dist", "--engine ray") from exc
    return ray


def _run_one(batch: dict[str, np.ndarray], *, fn: Callable[[Any], Any]) -> dict[str, np.ndarray]:
    """One Ray Data batch (one work item) -> its result, as a one-row object column,
    with the id of the node that ran it."""
    out = np.empty(len(batch["item"]), dtype=object)
    for k, item in enumerate(batch["item"]):
        out[k] = fn(item)
    node = _ray().get_runtime_context().get_node_id()
    return {"index": np.asarray(batch["index"]), "result": out,
            "node": np.full(len(out), node, dtype=object)}


def _run_task(fn: Callable[[Any], Any], item: Any) -> tuple[Any, str]:
    """One work item as a plain Ray task (through Ray Client): its result and node."""
    return fn(item), _ray().get_runtime_context().get_node_id()


class _RayHandle(Handle[Any]):
    """A value in the Ray object store; ``get`` in a worker maps it without a copy."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def get(self) -> Any:
        return _ray().get(self.ref)


class RayEngine(Engine):
    """Run shards on a Ray cluster (``address``) or on a local Ray started on demand.

    Parameters
    ----------
    address
        ``ray://host:10001`` (Ray Client), ``auto`` or ``host:6379`` (on a cluster
        node); None starts a local Ray with ``num_cpus`` CPUs, shut down on
        :meth:`close`. When Ray is already initialised in this process, that
        cluster is used and left running.
    num_cpus
        CPUs of the local Ray (default 2); ignored when joining a cluster.
    object_store_memory
        Bytes of the local Ray's object store (default: Ray's own).

    Examples
    --------
    Ray starts (or is joined) on the first :meth:`map` or :meth:`put`, which takes
    seconds; ``open_engine("ray", address=...)`` or ``--engine ray`` select this
    engine, and every result equals the in-process engine's, in the same order.

    >>> from poisonguard.engine import InProcessEngine, open_engine
    >>> engine = open_engine("ray", num_cpus=2)  # nothing started yet
    >>> type(engine).__name__, engine.num_cpus, engine.describe()
    ('RayEngine', 2, 'ray (local...)')
    >>> list(InProcessEngine().map(abs, [-1, 2]))  # what engine.map(abs, [-1, 2]) yields too
    [1, 2]
    >>> engine.close()  # shuts down a Ray it started; here, none
    >>> RayEngine(num_cpus=0)
    Traceback (most recent call last):
    ...
    poisonguard.errors.UsageError: num_cpus must be at least 1
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None,
                 object_store_memory: int | None = None) -> None:
        if num_cpus is not None and num_cpus < 1:
            raise UsageError("num_cpus must be at least 1")
        self.address = address
        self.num_cpus = num_cpus or DEFAULT_CPUS
        self.object_store_memory = object_store_memory
        self._started = False
        #: seconds Ray took to start or connect (0 when it was already running)
        self.startup_seconds = 0.0
        #: tasks run per node id, over every :meth:`map` of this engine
        self.tasks_per_node: dict[str, int] = {}

    def _ensure(self) -> Any:
        ray = _ray()
        if ray.is_initialized():
            return ray
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": "ERROR"}
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=self.num_cpus,
                         object_store_memory=self.object_store_memory, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ray.init raises bare Exception on timeouts
            with contextlib.suppress(Exception):
                ray.shutdown()
            where = self.address or "a local Ray"
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
            why = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # not Ray's
            raise UsageError(f"cannot start or reach {where}: {why}") from None  # traceback
        self._started = True
        self.startup_seconds = time.perf_counter() - t0
        return ray

    def put(self, value: T) -> Handle[T]:
        return _RayHandle(self._ensure().put(value))

    def describe(self) -> str:
        where = self.address or "local"
        ray = _ray()
        if not ray.is_initialized():
            return f"ray ({where})"
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        cpus = int(ray.cluster_resources().get("CPU", 0))
        return f"ray ({where}, {nodes} node{'s' if nodes != 1 else ''}, {cpus} CPUs)"

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "working",
            progress: Progress | None = None) -> Iterator[R]:
        progress = progress or NullProgress()
        if not items:
            return
        ray = self._ensure()
        results = (self._tasks(ray, fn, items) if self.address and self.address.startswith("ray://")
                   else self._batches(ray, fn, items))
        total, where = len(items), self.describe()
        progress.update(f"{stage} on {where}: shard 0/{total}", done=0, total=total)
        nodes: set[str] = set()
        for k, (result, node) in enumerate(results):
            nodes.add(node)
            self.tasks_per_node[node] = self.tasks_per_node.get(node, 0) + 1
            progress.update(f"{stage} on {where}: shard {k + 1}/{total}", done=k + 1,
                            total=total)
            yield result
        progress.update(f"{stage} on {where}: {total} shards ran on {len(nodes)} "
                        f"node{'s' if len(nodes) != 1 else ''}", done=total, total=total)

    def map_shared(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "working",
                   progress: Progress | None = None) -> list[Handle[R]]:
        """Each item as a plain Ray task whose result stays in the object store (owned
        by this driver, rebuilt from its task if lost; retried until it succeeds when
        its worker dies), spread over the nodes: the driver receives only the nodes
        that ran them."""
        progress = progress or NullProgress()
        if not items:
            return []
        ray = self._ensure()
        task = ray.remote(num_cpus=1, max_retries=-1, num_returns=2,
                          scheduling_strategy="SPREAD")(_run_task)  # results over the nodes
        refs = [task.remote(fn, item) for item in items]
        total, where = len(items), self.describe()
        nodes: set[str] = set()
        for k, (_, node_ref) in enumerate(refs):
            node = str(ray.get(node_ref))
            nodes.add(node)
            self.tasks_per_node[node] = self.tasks_per_node.get(node, 0) + 1
            progress.update(f"{stage} on {where}: shard {k + 1}/{total}", done=k + 1,
                            total=total)
        progress.update(f"{stage} on {where}: {total} shards ran on {len(nodes)} "
                        f"node{'s' if len(nodes) != 1 else ''}", done=total, total=total)
        return [_RayHandle(result_ref) for result_ref, _ in refs]

    @staticmethod
    def _batches(ray: Any, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[R, str]]:
        """Ray Data: one block and one ``map_batches`` task per item, in item order."""
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # reductions run in row order
        ctx.enable_progress_bars = False  # our progress says which shard
        ds = ray.data.from_items([{"index": k, "item": item} for k, item in enumerate(items)],
                                 override_num_blocks=len(items))
        ds = ds.map_batches(functools.partial(_run_one, fn=fn), batch_size=1,
                            batch_format="numpy", num_cpus=1)
        for k, row in enumerate(ds.iter_rows()):
            if int(row["index"]) != k:  # never reduce out of order: results would differ
                raise RuntimeError(f"Ray returned shard {row['index']} where {k} was due")
            yield row["result"], str(row["node"])

    @staticmethod
    def _tasks(ray: Any, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[R, str]]:
        """Plain Ray tasks, for Ray Client (``ray://``), whose driver cannot run Ray
        Data's streaming executor (Ray 2.60: "'Worker' object has no attribute
        'core_worker'"): at most two tasks per cluster CPU in flight (bounded memory),
        each retried until it succeeds when its worker dies, results in item order."""
        task = ray.remote(num_cpus=1, max_retries=-1)(_run_task)
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        pending: collections.deque[Any] = collections.deque()
        for item in items:
            pending.append(task.remote(fn, item))
            if len(pending) >= window:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
            self._started = False
