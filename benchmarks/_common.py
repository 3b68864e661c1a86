"""Shared helpers of the scan benchmarks: machine facts, versions, tables, output files.

Metrics come from :mod:`poisonguard.bench.metrics` (``detection_metrics``) and the
machine's CPU facts from :func:`poisonguard.bench.machine_info`; this module only adds
what the benchmark pages need beside them (RAM, load, package versions, the command).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from poisonguard.bench import machine_info as _cpu_info
from poisonguard.bench.tables import fmt
from poisonguard.data import atomic_write_text

__all__ = [
    "RESULTS",
    "command_line",
    "fmt",
    "machine",
    "md_table",
    "parse_floats",
    "parse_ints",
    "parse_names",
    "versions",
    "write_results",
]

#: Where the benchmark pages go by default.
RESULTS = Path(__file__).resolve().parent / "results"


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU count and model, RAM, Python, platform and the load average right now."""
    info = dict(_cpu_info())
    info["ram_gib"] = _ram_gib()
    info["load_avg"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return info


def versions(extra: Sequence[str] = ()) -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (None = not installed)."""
    names = ("poisonguard", "numpy", "scikit-learn", "torch", "cleanlab",
             "adversarial-robustness-toolbox", *extra)
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def command_line(script: str | Path, argv: Sequence[str] | None) -> str:
    """The command that reproduces a run, as a shell line from the repository root."""
    path = Path(script).resolve()
    try:
        shown = str(path.relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        shown = str(path)
    args = list(sys.argv[1:] if argv is None else argv)
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in
           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ]
    return " ".join([*env, ".venv/bin/python", shlex.quote(shown), *(shlex.quote(a) for a in args)])


def md_table(columns: Sequence[str], rows: Sequence[dict[str, Any]],
             headers: Sequence[str] | None = None) -> list[str]:
    """A markdown table of ``rows`` (dicts) over ``columns`` ('-' where undefined)."""
    head = list(headers or columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return lines


def write_results(stem: str, markdown: str, payload: dict[str, Any],
                  out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` atomically; return both paths."""
    out = Path(out_dir) if out_dir is not None else RESULTS
    md_path, json_path = out / f"{stem}.md", out / f"{stem}.json"
    atomic_write_text(json_path, json.dumps(payload, indent=1, default=_jsonable) + "\n")
    atomic_write_text(md_path, markdown)
    return md_path, json_path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def parse_names(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']."""
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_floats(text: str) -> list[float]:
    return [float(t) for t in parse_names(text)]


def parse_ints(text: str) -> list[int]:
    return [int(float(t)) for t in parse_names(text)]
