"""The markdown page of the speed benchmark: times, stage breakdown, memory, targets."""

from __future__ import annotations

from typing import Any

from benchmarks._common import md_table

__all__ = ["TIME_TARGETS", "speed_markdown"]

#: Rows -> the scan-time target in seconds (issue 2), on 2 CPU cores.
TIME_TARGETS = {100_000: 30.0, 1_000_000: 300.0}
MEMORY_TARGET = 3.0  # peak memory over the baseline, as a multiple of the data's size


def _size_row(r: dict[str, Any]) -> dict[str, Any]:
    s, d = r["scan"], r["datalab"]
    limit = TIME_TARGETS.get(r["rows"])
    time_ok = None if limit is None or s["status"] != "ok" else (
        "yes" if s["seconds"] < limit else "NO")
    mem_ok = None if s["status"] != "ok" else (
        "yes" if s["ratio_to_data"] < MEMORY_TARGET else "NO")
    return {
        "rows": r["rows"], "data_mib": s.get("data_mib"),
        "scan_s": s.get("seconds", s["status"]), "target_s": limit, "time_ok": time_ok,
        "dataset_s": s.get("dataset_seconds"), "peak_mib": s.get("peak_mib"),
        "over_mib": s.get("over_baseline_mib"), "ratio": s.get("ratio_to_data"), "mem_ok": mem_ok,
        "datalab_s": d.get("seconds", d["status"]), "datalab_over_mib": d.get("over_baseline_mib"),
    }


def speed_markdown(payload: dict[str, Any]) -> str:
    """The whole result as a markdown page."""
    meta = payload["meta"]
    mach = meta["machine"]
    sizes = payload["sizes"]
    out = ["# Scan speed and memory", ""]
    if meta.get("note"):
        out += [f"**{meta['note']}**", ""]
    out += [
        f"Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach.get('ram_gib')} GiB RAM, "
        f"Python {mach['python']}; each measurement pinned to "
        f"{meta['cores'] or 'all available'} cores. Load average before {meta['load_avg_start']}"
        f", after {mach.get('load_avg')}. Total {meta['seconds']} s.",
        "Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in
                                  meta["versions"].items()) + ".",
        "", "Command:", "", "```", meta["command"], "```", "",
        f"Data: poisonguard.datasets.synthetic (make_classification, {meta['features']} "
        "features, 5 classes), float32 features + int64 labels. Each size runs in a fresh "
        "subprocess; memory is ru_maxrss. `over baseline` = peak minus the peak right after "
        "the imports (so it includes the data itself); `x data` = that over the data's bytes "
        f"(target < {MEMORY_TARGET:g}x; meaningless at small sizes, where the model and "
        "lazily imported libraries dominate). `dataset s` = building the Dataset (row-id "
        "hashing), not part of the scan time. Datalab runs in its own subprocess on the "
        "scan's out-of-fold probabilities and features, so its time excludes training a "
        "model.", "",
        "## Time and memory", "",
    ]
    cols = ["rows", "data_mib", "scan_s", "target_s", "time_ok", "dataset_s", "peak_mib",
            "over_mib", "ratio", "mem_ok", "datalab_s", "datalab_over_mib"]
    out += md_table(cols, [_size_row(r) for r in sizes], headers=[
        "rows", "data MiB", "scan s", "target s", "time ok", "dataset s", "peak MiB",
        "over baseline MiB", "x data", "memory ok", "Datalab s", "Datalab over baseline MiB"])
    stages: list[str] = []
    for r in sizes:
        for k in r["scan"].get("stages", {}):
            if k not in stages:
                stages.append(k)
    out += ["", "## Where the scan's time goes (seconds)", ""]
    rows = [{"rows": r["rows"], **r["scan"].get("stages", {})} for r in sizes]
    out += md_table(["rows", *stages], rows)
    notes = [f"- {r['rows']} rows, {part}: {r[part]['status']}: {r[part].get('note', '')}"
             for r in sizes for part in ("scan", "datalab") if r[part]["status"] != "ok"]
    if notes:
        out += ["", "## Skips and failures", "", *notes]
    return "\n".join(out) + "\n"
