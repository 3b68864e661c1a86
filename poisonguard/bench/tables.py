"""The benchmark's tables: flat rows, markdown, rich, and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from poisonguard.bench.runner import BenchResult
from poisonguard.data import atomic_write_text

__all__ = ["detection_rows", "markdown_report", "rich_tables", "write_json"]

DETECTION_COLUMNS = ("attack", "rate", "poisoned", "detector", "flagged", "precision", "recall",
                     "f1", "auroc", "ap", "fpr", "fp_bias")
DOWNSTREAM_COLUMNS = ("attack", "rate", "dropped", "poisoned_accuracy", "cleaned_accuracy",
                      "clean_model_asr", "poisoned_asr", "cleaned_asr")


def fmt(value: Any) -> str:
    """Numbers for people: 3 decimals, '-' for undefined."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def detection_rows(result: BenchResult) -> list[dict[str, Any]]:
    """One flat row per attack x rate x detector (fused last).

    Examples
    --------
    >>> run = {"attack": "flip", "rate": 0.1, "poisoned": 14, "downstream": {"dropped": 12},
    ...        "detectors": {"duplicate": {"flagged": 12, "precision": 0.75, "recall": 0.64}}}
    >>> result = BenchResult(meta={}, runs=[run])
    >>> rows = detection_rows(result)
    >>> rows[0]["detector"], rows[0]["recall"]
    ('duplicate', 0.64)
    """
    rows = []
    for run in result.runs:
        for name, m in run["detectors"].items():
            rows.append({"attack": run["attack"], "rate": run["rate"],
                         "poisoned": run["poisoned"], "detector": name,
                         **{k: m.get(k) for k in ("flagged", "precision", "recall", "f1",
                                                  "auroc", "ap", "fpr")},
                         "fp_bias": (m.get("filter_bias") or {}).get("bias")})
    return rows


def _downstream_rows(result: BenchResult) -> list[dict[str, Any]]:
    return [{"attack": r["attack"], "rate": r["rate"], **r["downstream"]} for r in result.runs]


def _clean_rows(result: BenchResult) -> list[dict[str, Any]]:
    return [{"detector": name, "clean_fpr": c["clean_fpr"],
             "max_class_fpr": c["filter_bias"]["max_class_fpr"],
             "fp_bias": c["filter_bias"]["bias"]} for name, c in result.clean.items()]


def _md(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return lines


def markdown_report(result: BenchResult, *, command: str = "") -> str:
    """The whole result as a markdown page.

    Examples
    --------
    >>> from poisonguard.bench import machine_info
    >>> meta = {"dataset": "builtin:wine", "rows": 178, "modality": "tabular",
    ...         "train_rows": 142, "test_rows": 36, "target": 0, "seed": 0,
    ...         "detectors": ["duplicate"], "machine": machine_info(),
    ...         "victim_model": "logistic regression"}
    >>> run = {"attack": "flip", "rate": 0.1, "poisoned": 14, "downstream": {"dropped": 12},
    ...        "detectors": {"duplicate": {"flagged": 12, "precision": 0.75, "recall": 0.64}}}
    >>> result = BenchResult(meta=meta, runs=[run])
    >>> page = markdown_report(result, command="poisonguard bench builtin:wine")
    >>> page.splitlines()[0]
    '# Red-team benchmark: builtin:wine'
    >>> "| flip | 0.100 | 14 | duplicate | 12 | 0.750 | 0.640 |" in page
    True
    """
    m = result.meta
    mach = m["machine"]
    out = [
        f"# Red-team benchmark: {m['dataset']}", "",
        f"{m['rows']} rows ({m['modality']}), split {m['train_rows']} train / {m['test_rows']} "
        f"held-out test before poisoning; target class {m['target']}; seed {m['seed']}.",
        f"Detectors: {', '.join(m['detectors'])} (+ fused scan).",
        f"Machine: {mach['nproc']} CPUs, {mach['cpu']}, Python {mach['python']}; "
        f"wall {m.get('seconds', '?')} s, CPU time {m.get('cpu_seconds', '?')} s.",
    ]
    if command:
        out += ["", "Command:", "", "```", command, "```"]
    out += ["", "## Detection on the poisoned train split", "",
            "precision/recall/F1/FPR from each detector's own flags; AUROC/AP from its scores; "
            "fp_bias = total-variation distance between the classes of false positives and of "
            "clean rows (0 = spread like the data).", ""]
    out += _md(detection_rows(result), DETECTION_COLUMNS)
    out += ["", "## Flags on the unpoisoned train split (every flag is a false positive)", ""]
    out += _md(_clean_rows(result), ("detector", "clean_fpr", "max_class_fpr", "fp_bias"))
    out += ["", "## Downstream: victim model (" + m["victim_model"] + ")", "",
            f"Clean model accuracy on the held-out test split: {fmt(m.get('clean_accuracy'))}. "
            "'cleaned' = retrained after dropping the fused scan's flagged rows. ASR = share "
            "of triggered test inputs (true class != target) classified as the target "
            "(feature collision: whether the held-out victim row is).", ""]
    out += _md(_downstream_rows(result), DOWNSTREAM_COLUMNS)
    if result.skipped:
        out += ["", "## Skipped", ""]
        out += [f"- {s['attack']}" + (f" at rate {s['rate']:g}" if s["rate"] else "")
                + f": {s['reason']}" for s in result.skipped]
    if result.errors:
        out += ["", "## Detector errors", ""]
        out += [f"- {e['detector']} on {e['where']}: {e['error']}" for e in result.errors]
    return "\n".join(out) + "\n"


def rich_tables(result: BenchResult) -> list[Table]:
    """Tables for the terminal: detection, clean-data flags, downstream.

    Examples
    --------
    >>> run = {"attack": "flip", "rate": 0.1, "poisoned": 14, "downstream": {"dropped": 12},
    ...        "detectors": {"label": {"flagged": 12, "precision": 0.75, "recall": 0.64}}}
    >>> for table in rich_tables(BenchResult(meta={}, runs=[run])):
    ...     print(table.title, len(table.rows))
    Detection on the poisoned train split 1
    Flags on unpoisoned data 0
    Downstream (victim model) 1
    """
    tables = []
    for title, rows, cols in (
        ("Detection on the poisoned train split", detection_rows(result), DETECTION_COLUMNS),
        ("Flags on unpoisoned data", _clean_rows(result),
         ("detector", "clean_fpr", "max_class_fpr", "fp_bias")),
        ("Downstream (victim model)", _downstream_rows(result), DOWNSTREAM_COLUMNS),
    ):
        table = Table(title=title, title_justify="left")
        for c in cols:
            table.add_column(c, justify="left" if c in {"attack", "detector"} else "right")
        for r in rows:
            table.add_row(*(fmt(r.get(c)) for c in cols))
        tables.append(table)
    return tables


def write_json(result: BenchResult, path: str | Path) -> None:
    """Write ``result.to_dict()`` as indented JSON, atomically.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> write_json(BenchResult(meta={"dataset": "builtin:wine"}), path)
    >>> json.loads(path.read_text())["meta"]
    {'dataset': 'builtin:wine'}
    """
    atomic_write_text(path, json.dumps(result.to_dict(), indent=1) + "\n")
