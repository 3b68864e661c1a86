"""Where work runs: in this process (the default) or on a Ray cluster (``--engine ray``).

The library cuts work into shards (a Parquet row group each) and maps a plain,
module-level function over them with :meth:`Engine.map`; results come back in shard
order, so every reduction runs in the same order whatever the engine, and results
are the same by construction. See docs/distributed.md.

::

    from poisonguard.engine import open_engine
    with open_engine("ray", address="ray://head:10001") as engine:
        manifest = build_manifest("data/", engine=engine)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poisonguard.engine.base import ENGINES, Engine, Handle, InProcessEngine, open_engine

__all__ = ["ENGINES", "Engine", "Handle", "InProcessEngine", "RayEngine", "open_engine"]

if TYPE_CHECKING:
    from poisonguard.engine.ray import RayEngine


def __getattr__(name: str) -> Any:
    if name == "RayEngine":  # imports no Ray until asked for
        from poisonguard.engine.ray import RayEngine

        return RayEngine
    raise AttributeError(f"module 'poisonguard.engine' has no attribute '{name}'")
