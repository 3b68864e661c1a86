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
    speedup = None
    if s["status"] == "ok" and d["status"] == "ok" and s["seconds"] > 0:
        speedup = round(d["seconds"] / s["seconds"], 1)
    return {
        "rows": r["rows"], "data_mib": s.get("data_mib"),
        "scan_s": s.get("seconds", s["status"]), "scan_cpu_s": s.get("cpu_seconds"),
        "target_s": limit, "time_ok": time_ok,
        "dataset_s": s.get("dataset_seconds"), "peak_mib": s.get("peak_mib"),
        "over_mib": s.get("over_baseline_mib"), "ratio": s.get("ratio_to_data"), "mem_ok": mem_ok,
        "f1": s.get("f1"),
        "datalab_s": d.get("seconds", d["status"]), "datalab_cpu_s": d.get("cpu_seconds"),
        "speedup": speedup, "datalab_f1": d.get("f1"),
        "datalab_over_mib": d.get("over_baseline_mib"),
    }


def _images_markdown(images: list[dict[str, Any]]) -> list[str]:
    """The image cases: totals, then wall and CPU seconds per stage."""
    if not images:
        return []
    out = ["", "## Images (benchmarks/device_images.py, one fresh process per case)", "",
           "`x uint8` = peak memory over the baseline taken before the images were made, "
           "over the uint8 image array's bytes (so it counts the images themselves).", ""]
    cols = ["case", "rows", "shape", "seconds", "cpu_seconds", "f1", "flagged", "poisoned",
            "uint8_mib", "over_baseline_mib", "over_baseline_ratio", "plan", "epochs", "folds",
            "load_avg"]
    rows = [{k: (r.get(k) if r.get("status") == "ok" else (r.get(k) or r.get("status")))
             for k in cols} for r in images]
    out += md_table(cols, rows, headers=[
        "case", "rows", "H x W x C", "scan s (wall)", "scan CPU s", "F1", "flagged",
        "poisoned", "uint8 MiB", "over baseline MiB", "x uint8", "CNN plan", "epochs",
        "folds", "load after"])
    for key, title in (("stages", "wall seconds"), ("cpu_stages", "CPU seconds")):
        names: list[str] = []
        for r in images:
            for k in r.get(key, {}):
                if k not in names:
                    names.append(k)
        out += ["", f"Images, {title} per stage:", ""]
        out += md_table(["case", *names], [{"case": r["case"], **r.get(key, {})}
                                           for r in images])
    return out


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
        f"{meta['cores'] or 'all available'} cores, the scan with {meta.get('threads', 1)} "
        f"thread(s). Load average before {meta['load_avg_start']}"
        f", after {mach.get('load_avg')}. Total {meta['seconds']} s.",
        "Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in
                                  meta["versions"].items()) + ".",
        "", "Command:", "", "```", meta["command"], "```", "",
        f"Data: poisonguard.datasets.synthetic (make_classification, {meta['features']} "
        f"features, 5 classes), float32 features + int64 labels, {meta.get('flip', 0):.0%} of "
        "the labels flipped (poisonguard.attack.label_flip; F1 on those rows). CPU s = user "
        "+ system seconds of the scan (all threads). Each size runs in a fresh "
        "subprocess; memory is ru_maxrss. `over baseline` = peak minus the peak right after "
        "the imports (so it includes the data itself); `x data` = that over the data's bytes "
        f"(target < {MEMORY_TARGET:g}x; meaningless at small sizes, where the model and "
        "lazily imported libraries dominate). `dataset s` = building the Dataset (row-id "
        "hashing), not part of the scan time. Datalab runs in its own subprocess on the "
        "scan's out-of-fold probabilities and features, so its time excludes training a "
        "model.", "",
        "## Time and memory", "",
    ]
    cols = ["rows", "data_mib", "scan_s", "scan_cpu_s", "target_s", "time_ok", "dataset_s",
            "peak_mib", "over_mib", "ratio", "mem_ok", "f1", "datalab_s", "datalab_cpu_s",
            "speedup", "datalab_f1", "datalab_over_mib"]
    out += md_table(cols, [_size_row(r) for r in sizes], headers=[
        "rows", "data MiB", "scan s", "scan CPU s", "target s", "time ok", "dataset s",
        "peak MiB", "over baseline MiB", "x data", "memory ok", "scan F1", "Datalab s",
        "Datalab CPU s", "Datalab s / scan s", "Datalab F1", "Datalab over baseline MiB"])
    stages: list[str] = []
    for r in sizes:
        for k in r["scan"].get("stages", {}):
            if k not in stages:
                stages.append(k)
    for key, title in (("stages", "wall seconds"), ("cpu_stages", "CPU seconds")):
        out += ["", f"## Where the scan's time goes ({title})", ""]
        rows = [{"rows": r["rows"], **r["scan"].get(key, {})} for r in sizes]
        out += md_table(["rows", *stages], rows)
    out += ["", "Peak memory over the baseline (MiB) reached when each stage began:", ""]
    marks: list[str] = []
    for r in sizes:
        for k in r["scan"].get("peaks_by_stage", {}):
            if k not in marks:
                marks.append(k)
    out += md_table(["rows", *marks], [{"rows": r["rows"], **r["scan"].get("peaks_by_stage", {})}
                                       for r in sizes])
    out += _images_markdown(payload.get("images", []))
    notes = [f"- {r['rows']} rows, {part}: {r[part]['status']}: {r[part].get('note', '')}"
             for r in sizes for part in ("scan", "datalab") if r[part]["status"] != "ok"]
    notes += [f"- {r['case']}: {r['status']}: {r.get('note', '')}"
              for r in payload.get("images", []) if r["status"] != "ok"]
    if notes:
        out += ["", "## Skips and failures", "", *notes]
    return "\n".join(out) + "\n"
