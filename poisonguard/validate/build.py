"""Build a profile from data files (streamed), in-memory datasets or saved profiles."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from poisonguard.data import Dataset, check_classes
from poisonguard.errors import UsageError
from poisonguard.progress import NullProgress, Progress
from poisonguard.validate.profile import Profile, Profiler, load_profile, merge_profiles
from poisonguard.validate.sources import Source, open_source

__all__ = ["profile_data"]


def profile_data(data: str | Path | Dataset | Source | Sequence[str | Path | Dataset | Source],
                 *, label: str = "label", sample_per_class: int = 1000,
                 max_fingerprints: int = 1_000_000, batch_rows: int = 65_536,
                 progress: Progress | None = None, id_column: str | None = None,
                 ignore: Collection[str] = ()) -> Profile:
    """Profile one input or several (merged); a ``.json`` input is a saved profile.

    Parquet is read in batches of ``batch_rows``; each batch is profiled and merged
    into the running profile, so memory stays bounded by the sketches' sizes.
    ``id_column`` and ``ignore`` name columns that are not features; the profile
    records them so that ``check`` leaves them out too.

    Example
    -------
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
