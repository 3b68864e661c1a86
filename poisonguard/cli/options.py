"""The options every command shares, spelled and explained once.

``--id`` names the id column everywhere (``--id-column`` is still accepted for old
scripts: :func:`normalize_option` maps it to ``--id`` before parsing, so help shows
one spelling); ``--threads`` is always the CPU threads of the command's numeric work
(BLAS/OpenMP, and torch's threads where torch runs); ``--progress`` chooses how
long work is shown.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "CategoricalOpt",
    "DataArg",
    "IdOpt",
    "IgnoreOpt",
    "JsonOpt",
    "LabelOpt",
    "LedgerOpt",
    "NoLedgerOpt",
    "ProgressMode",
    "ProgressOpt",
    "QuietOpt",
    "ThreadsOpt",
    "column_list",
    "normalize_option",
]

#: Old option names still accepted, mapped to the one shown in --help (without the
#: leading dashes: click hands :func:`normalize_option` the bare name).
HIDDEN_ALIASES = {"id-column": "id"}

DataArg = Annotated[str, typer.Argument(
    help="CSV, Parquet, a folder of Parquet files, NPZ, JSONL, image folder, or builtin:NAME.")]
LabelOpt = Annotated[str, typer.Option("--label", help="Label column (tables, JSONL).")]
IdOpt = Annotated[str | None, typer.Option(
    "--id", help="Column holding stable row ids (not a feature).")]
CategoricalOpt = Annotated[str | None, typer.Option(
    "--categorical", help="Comma-separated columns to treat as categories (e.g. integer "
    "codes).")]
IgnoreOpt = Annotated[str | None, typer.Option(
    "--ignore", help="Comma-separated columns to leave out of the features.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for the numeric work (BLAS/OpenMP and torch; "
    "default 1 for scans: their many small fits run faster single-threaded).")]
LedgerOpt = Annotated[str | None, typer.Option(
    "--ledger", help="Ledger file or SQLAlchemy URL (default: $POISONGUARD_LEDGER or "
    ".poisonguard/ledger.sqlite).")]
NoLedgerOpt = Annotated[bool, typer.Option("--no-ledger", help="Do not record in the ledger.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="Print nothing but errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
OutPath = Annotated[Path, typer.Option("--out", help="Where to write the output.")]


class ProgressMode(StrEnum):
    auto = "auto"
    rich = "rich"
    plain = "plain"
    none = "none"


ProgressOpt = Annotated[ProgressMode, typer.Option(
    "--progress", help="auto: a bar on a terminal, timestamped lines on stderr otherwise; "
    "rich, plain or none to choose.")]


def column_list(value: str | None) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``; None -> ()."""
    if not value:
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def normalize_option(token: str) -> str:
    """Map a hidden old option name to the one --help shows (click's
    ``token_normalize_func``: click calls it on each option name, dashes removed,
    before parsing).

    Examples
    --------
    >>> normalize_option("id-column")
    'id'
    >>> normalize_option("label")
    'label'
    """
    return HIDDEN_ALIASES.get(token, token)
