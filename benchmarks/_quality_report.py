"""The markdown page of the scan-quality benchmark: comparison, targets, details."""

from __future__ import annotations

from typing import Any

from benchmarks._common import fmt, md_table

__all__ = ["BACKDOORS", "quality_markdown", "target_checks"]

#: Dirty-label backdoors (the F1 >= 0.9 target covers these and injected outliers).
BACKDOORS = frozenset({"badnets", "blend", "tabular-trigger"})
SHORT = {"datalab": "Datalab", "art_activation": "ART AC", "art_spectral": "ART SS",
         "art_spectral_oracle": "ART SS (oracle)"}
FAIR = ("datalab", "art_activation", "art_spectral")  # references given no ground truth


def _f1(case: dict[str, Any], method: str) -> float | None:
    m = case["methods"].get(method)
    return None if m is None else m["f1"]


def _best_ref(case: dict[str, Any], refs: tuple[str, ...]) -> tuple[str | None, float]:
    scored = [(r, _f1(case, r) or 0.0) for r in refs if r in case["methods"]]
    return max(scored, key=lambda t: t[1]) if scored else (None, 0.0)


def target_checks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: met or not, and the cases that miss it."""
    cases = payload["cases"]
    out = []

    def check(name: str, chosen: list[dict[str, Any]], ok: Any, shown: Any) -> None:
        misses = [f"{c['dataset']} {c['attack']} {c['rate']:g}: {shown(c)}" for c in chosen
                  if not ok(c)]
        out.append({"target": name, "cases": len(chosen), "met": len(chosen) - len(misses),
                    "misses": misses})

    def scan_f1(c: dict[str, Any]) -> str:
        return f"F1 {fmt(_f1(c, 'scan'))}"

    check("F1 >= 0.9 on dirty-label backdoors and injected outliers at >= 1% poison",
          [c for c in cases if (c["attack"] in BACKDOORS or c["attack"] == "outliers")
           and c["rate"] >= 0.01], lambda c: (_f1(c, "scan") or 0) >= 0.9, scan_f1)
    check("F1 >= 0.85 on random label flips at 10%",
          [c for c in cases if c["attack"] == "flip" and abs(c["rate"] - 0.1) < 1e-9],
          lambda c: (_f1(c, "scan") or 0) >= 0.85, scan_f1)
    clean = [{**c, "attack": "clean", "rate": 0.0} for c in payload["clean"]]
    check("clean-data FPR <= 1%", clean, lambda c: c["methods"]["scan"]["fpr"] <= 0.01,
          lambda c: f"FPR {fmt(c['methods']['scan']['fpr'])}")
    for refs, label in ((FAIR, "every reference"),
                        (tuple(SHORT), "every reference incl. the oracle-tuned ART SS")):
        check(f"better F1 than {label}", [c for c in cases if any(r in c["methods"] for r in refs)],
              lambda c, refs=refs: (_f1(c, "scan") or 0) > _best_ref(c, refs)[1],
              lambda c, refs=refs: _versus(c, refs))
    return out


def _versus(case: dict[str, Any], refs: tuple[str, ...]) -> str:
    best, best_f1 = _best_ref(case, refs)
    return f"scan F1 {fmt(_f1(case, 'scan'))} vs {SHORT.get(best or '', '-')} {fmt(best_f1)}"


def _comparison_rows(payload: dict[str, Any], refs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for c in payload["cases"]:
        s = c["methods"]["scan"]
        row = {"dataset": c["dataset"], "attack": c["attack"], "rate": f"{c['rate']:g}",
               "poisoned": c["poisoned"], "P": s["precision"], "R": s["recall"], "F1": s["f1"],
               "AUROC": s["auroc"], "FPR": s["fpr"], "s": s["seconds"]}
        for r in refs:
            row[r] = _f1(c, r)
        best, best_f1 = _best_ref(c, FAIR)
        row["wins"] = "-" if best is None else ("yes" if (s["f1"] or 0) > best_f1 else "NO")
        rows.append(row)
    return rows


def _method_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in payload["cases"]:
        for name, m in c["methods"].items():
            rows.append({"dataset": c["dataset"], "attack": c["attack"],
                         "rate": f"{c['rate']:g}", "method": SHORT.get(name, name), **m})
    return rows


def _header(payload: dict[str, Any]) -> list[str]:
    meta = payload["meta"]
    mach, ver = meta["machine"], meta["versions"]
    load = mach.get("load_avg")
    return [
        "# Scan quality vs the references", "",
        f"Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach.get('ram_gib')} GiB RAM, "
        f"Python {mach['python']}; load average at the end {load}. Total {meta['seconds']} s.",
        "Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in ver.items()) + ".",
        "", "Command:", "", "```", meta["command"], "```", "",
        f"Datasets: {', '.join(meta['datasets'])}"
        + (f" (synthetic = make_classification, {meta['synthetic_rows']} rows x 50 features, "
           "5 classes)" if "synthetic" in meta["datasets"] else "")
        + ". Poison rates "
        f"{', '.join(f'{r:g}' for r in meta['rates'])}; backdoor/targeted target class "
        f"{meta['target']}; seed {meta['seed']}. The scan is `scan_dataset(data)` with the "
        "default detectors; its flags are the fused flags and its AUROC uses the fused "
        "score. References run on the scan's own representation (out-of-fold probabilities, "
        "input features, penultimate activations): see benchmarks/_references.py. "
        "'ART SS (oracle)' is told the true poison rate, which the scan never is; 'wins' "
        "compares with the references that are not told (Datalab, ART AC, ART SS). "
        "ART AC has no per-row score, so no AUROC.",
    ]


def quality_markdown(payload: dict[str, Any]) -> str:
    """The whole result as a markdown page."""
    refs = [r for r in SHORT if any(r in c["methods"] for c in payload["cases"])]
    out = _header(payload)
    out += ["", "## Targets", ""]
    for t in target_checks(payload):
        status = "met" if t["met"] == t["cases"] and t["cases"] else "NOT met"
        out.append(f"- {t['target']}: {status} ({t['met']}/{t['cases']} cases)")
        out += [f"  - miss: {m}" for m in t["misses"]]
    out += ["", "## Scan vs references (F1)", ""]
    cols = ["dataset", "attack", "rate", "poisoned", "P", "R", "F1", "AUROC", "FPR", "s",
            *refs, "wins"]
    out += md_table(cols, _comparison_rows(payload, refs),
                    headers=[*cols[:10], *(f"{SHORT[r]} F1" for r in refs), "wins"])
    out += ["", "## Clean data (every flag is a false positive)", ""]
    clean_rows = [{"dataset": c["dataset"], "rows": c["rows"],
                   **{SHORT.get(n, n): m["fpr"] for n, m in c["methods"].items()}}
                  for c in payload["clean"]]
    out += md_table(["dataset", "rows", "scan", *(SHORT[r] for r in refs)], clean_rows)
    out += ["", "## Scan detectors, one by one (F1 of each detector's own flags)", ""]
    names = sorted({d for c in payload["cases"] for d in c["detectors"]})
    det_rows = [{"dataset": c["dataset"], "attack": c["attack"], "rate": f"{c['rate']:g}",
                 **{d: c["detectors"].get(d, {}).get("f1") for d in names}}
                for c in payload["cases"]]
    out += md_table(["dataset", "attack", "rate", *names], det_rows)
    out += ["", "## Every method in full", ""]
    out += md_table(["dataset", "attack", "rate", "method", "flagged", "poisoned", "precision",
                     "recall", "f1", "auroc", "ap", "fpr", "seconds"], _method_rows(payload))
    notes = [f"- reference {n} skipped: {p} not installed"
             for n, p in payload["references_missing"].items()]
    notes += [f"- {c['dataset']} {c['attack']} {c['rate']:g}: {n} failed: {e}"
              for c in payload["cases"] for n, e in c["reference_errors"].items()]
    notes += [f"- ERROR {e['dataset']} {e['attack']} {e.get('rate', '')}: {e['error']}"
              for e in payload["errors"]]
    if notes:
        out += ["", "## Skips and errors", "", *notes]
    return "\n".join(out) + "\n"
