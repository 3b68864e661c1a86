"""Build a profile from data files (streamed), in-memory datasets or saved profiles."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from poisonguard.data import Dataset, check_classes
from poisonguard.data.folders import ParquetShard, parquet_shards
from poisonguard.engine import Engine
from poisonguard.errors import DataError, UsageError
from poisonguard.progress import NullProgress, Progress
from poisonguard.validate.profile import (
    BatchProfile,
    Profile,
    Profiler,
    load_profile,
    merge_profiles,
)
from poisonguard.validate.sources import Source, TableSource, open_source, shard_batches

__all__ = ["ProfileTask", "profile_data", "profile_shard"]


@dataclass(frozen=True)
class ProfileTask:
    """Profile one Parquet row group, batch by batch (see :func:`profile_shard`)."""

    shard: ParquetShard
    path: str
    label: str
    batch_rows: int
    exclude: frozenset[str]
    sample_per_class: int
    max_fingerprints: int


def profile_shard(task: ProfileTask) -> list[BatchProfile]:
    """The batch profiles of one shard (runs on a worker); merged in order by the
    driver they give the same profile as the streamed in-process pass."""
    profiler = Profiler(sample_per_class=task.sample_per_class,
                        max_fingerprints=task.max_fingerprints)
    return [profiler.profile_batch(batch) for batch in shard_batches(
        task.shard, path=task.path, label=task.label, batch_rows=task.batch_rows,
        exclude=task.exclude)]


def profile_data(data: str | Path | Dataset | Source | Sequence[str | Path | Dataset | Source],
                 *, label: str = "label", sample_per_class: int = 1000,
                 max_fingerprints: int = 1_000_000, batch_rows: int = 65_536,
                 progress: Progress | None = None, id_column: str | None = None,
                 ignore: Collection[str] = (), engine: Engine | None = None) -> Profile:
    """Profile one input or several (merged); a ``.json`` input is a saved profile.

    Parquet (a file or a folder of files) is read row group by row group in batches
    of ``batch_rows``; each batch is profiled and merged into the running profile,
    so memory stays bounded by the sketches' sizes. With an ``engine``
    (:mod:`poisonguard.engine`) the row groups are profiled there and merged here in
    row order: the same profile as without it. ``id_column`` and ``ignore`` name
    columns that are not features; the profile records them so that ``check``
    leaves them out too.

    Examples
    --------
    >>> prof = profile_data("builtin:wine")
    >>> prof.rows
    178
    """
    items = [data] if isinstance(data, str | Path | Dataset | Source) else list(data)
    if not items:
        raise UsageError("nothing to profile")
    prog = progress or NullProgress()
    parts: list[Profile] = []
    for item in items:
        if isinstance(item, str | Path) and Path(item).suffix.lower() == ".json":
            parts.append(load_profile(item))
            continue
        exclude = {*ignore, *([id_column] if id_column else [])}
        source = item if isinstance(item, Source) else open_source(
            item, label=label, batch_rows=batch_rows, exclude=exclude)
        profiler = Profiler(sample_per_class=sample_per_class,
                            max_fingerprints=max_fingerprints)
        if engine is not None:
            _profile_on(engine, source, profiler, sample_per_class=sample_per_class,
                        max_fingerprints=max_fingerprints, batch_rows=batch_rows,
                        exclude=exclude, progress=prog)
        else:
            rows = 0
            for batch in source:
                profiler.update(batch)
                rows += len(batch)
                prog.update(f"profiling {Path(source.path).name}", done=rows, total=rows)
        part = profiler.result(sources=[source.path], label_column=source.label_column,
                               modality=source.modality)
        check_classes(len(part.classes), part.rows, label=part.label_column, path=source.path)
        part.id_column, part.ignored = id_column, sorted(ignore)
        parts.append(part)
    return parts[0] if len(parts) == 1 else merge_profiles(parts)


def _profile_on(engine: Engine, source: Source, profiler: Profiler, *, sample_per_class: int,
                max_fingerprints: int, batch_rows: int, exclude: set[str],
                progress: Progress) -> None:
    is_parquet = isinstance(source, TableSource) and Path(source.path).suffix.lower() != ".csv"
    if not is_parquet:
        raise UsageError(f"{source.path}: a distributed profile reads Parquet files and "
                         "folders (use the local engine for other inputs)")
    shards = parquet_shards(source.path)
    if not shards:
        raise DataError("file has no rows", path=source.path)
    tasks = [ProfileTask(s, source.path, source.label_column, batch_rows, frozenset(exclude),
                         sample_per_class, max_fingerprints) for s in shards]
    for batches in engine.map(profile_shard, tasks, stage="profiling", progress=progress):
        for part in batches:
            profiler.add(part)
