"""``--engine`` and ``--address``: where scan, profile and snapshot do their work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from poisonguard.engine import Engine

__all__ = ["AddressOpt", "EngineName", "EngineOpt", "KnnName", "KnnOpt", "engine_for"]


class EngineName(StrEnum):
    local = "local"
    ray = "ray"


class KnnName(StrEnum):
    auto = "auto"
    exact = "exact"
    ivf = "ivf"


EngineOpt = Annotated[EngineName, typer.Option(
    "--engine", help="local: in this process; ray: Parquet files and folders are read and "
    "hashed row group by row group on a Ray cluster (pip install 'poisonguard[dist]'), and "
    "a scan's neighbour search runs there per shard. Same results either way.")]
KnnOpt = Annotated[KnnName, typer.Option(
    "--knn", help="The neighbour search, the same on every engine: exact (per-shard exact "
    "search, merged: the exact neighbours), ivf (approximate: one faiss IVF quantizer "
    "trained on a seeded sample, inverted lists per shard; same neighbours in-process and "
    "on Ray), auto (exact up to 50,000 rows, ivf beyond).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster to use with --engine ray: ray://HOST:10001, or auto "
    "on a cluster node (default: start a local Ray with 2 CPUs for this command).")]


@contextlib.contextmanager
def engine_for(name: EngineName, address: str | None) -> Iterator[Engine | None]:
    """The engine to pass to the library: None for local (the classic path)."""
    from poisonguard.engine import open_engine

    if name is EngineName.local:
        open_engine("local", address=address)  # refuses --address without --engine ray
        yield None
        return
    with open_engine(name.value, address=address) as engine:
        yield engine
