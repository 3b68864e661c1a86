"""The detector benchmark: attack x rate x detector, scored against the attack's truth.

``run_bench`` returns a :class:`BenchResult`; ``write_outputs`` writes its JSON,
markdown and PNG plots. ``score_flags`` scores any flags against a truth record.
"""

from __future__ import annotations

from pathlib import Path

from poisonguard.bench.downstream import attack_success_rate, downstream_effect, train_victim
from poisonguard.bench.metrics import (
    clean_flag_rate,
    detection_metrics,
    filter_bias,
    load_flags,
    score_flags,
)
from poisonguard.bench.runner import FUSED, BenchResult, machine_info, run_bench
from poisonguard.bench.tables import detection_rows, markdown_report, rich_tables, write_json
from poisonguard.data import atomic_write_text

__all__ = [
    "FUSED",
    "BenchResult",
    "attack_success_rate",
    "clean_flag_rate",
    "detection_metrics",
    "detection_rows",
    "downstream_effect",
    "filter_bias",
    "load_flags",
    "machine_info",
    "markdown_report",
    "rich_tables",
    "run_bench",
    "score_flags",
    "train_victim",
    "write_json",
    "write_outputs",
]


def write_outputs(result: BenchResult, out_dir: str | Path, *, command: str = "") -> list[Path]:
    """Write results.json, results.md and the PNG plots into ``out_dir``.

    Examples
    --------
    >>> import tempfile
    >>> result = BenchResult(meta={"dataset": "builtin:wine", "rows": 178,
    ...     "modality": "tabular", "train_rows": 142, "test_rows": 36, "target": 0,
    ...     "seed": 0, "detectors": [], "machine": machine_info(), "victim_model": "none"})
    >>> [p.name for p in write_outputs(result, tempfile.mkdtemp())]  # no runs: no plots
    ['results.json', 'results.md']
    """
    from poisonguard.bench.plots import write_plots

    out = Path(out_dir)
    write_json(result, out / "results.json")
    atomic_write_text(out / "results.md", markdown_report(result, command=command))
    return [out / "results.json", out / "results.md", *write_plots(result, out)]
