"""The markdown page of the scan-quality benchmark: targets per seed, comparison, details."""

from __future__ import annotations

from typing import Any

from benchmarks._common import fmt, md_table

__all__ = ["BACKDOORS", "quality_markdown", "target_checks"]

#: Dirty-label backdoors (the F1 >= 0.9 target at >= 1% poison covers these).
BACKDOORS = frozenset({"badnets", "blend", "tabular-trigger"})
SHORT = {"datalab": "Datalab", "knn": "k-NN", "isolation_forest": "IsolationForest",
         "art_activation": "ART AC", "art_spectral": "ART SS",
         "art_spectral_oracle": "ART SS (oracle)"}
#: References given no ground truth (the oracle-tuned ART SS is told the poison rate).
FAIR = ("datalab", "knn", "isolation_forest", "art_activation", "art_spectral")
#: Clean-data share of flags allowed: 1% where the out-of-fold model is >= 90% accurate.
CLEAN_LIMIT_STRONG, CLEAN_LIMIT_WEAK, STRONG_MODEL = 0.01, 0.02, 0.9


def _f1(case: dict[str, Any], method: str) -> float | None:
    m = case["methods"].get(method)
    return None if m is None else m["f1"]


def _best_ref(case: dict[str, Any], refs: tuple[str, ...]) -> tuple[str | None, float]:
    scored = [(r, _f1(case, r) or 0.0) for r in refs if r in case["methods"]]
    return max(scored, key=lambda t: t[1]) if scored else (None, 0.0)


def _clean_limit(case: dict[str, Any]) -> float:
    acc = case.get("oof_accuracy")
    return CLEAN_LIMIT_STRONG if acc is None or acc >= STRONG_MODEL else CLEAN_LIMIT_WEAK


def _name(c: dict[str, Any]) -> str:
    return f"{c['dataset']} {c['attack']} {c['rate']:g}"


def target_checks(payload: dict[str, Any], seed: int | None = None) -> list[dict[str, Any]]:
    """Each target of issues 2 and 12: met or not, and the cases that miss it
    (only the cases of ``seed`` when given)."""
    cases = [c for c in payload["cases"] if seed is None or c.get("seed", 0) == seed]
    clean = [{**c, "attack": "clean", "rate": 0.0} for c in payload["clean"]
             if seed is None or c.get("seed", 0) == seed]
    out = []

    def check(name: str, chosen: list[dict[str, Any]], ok: Any, shown: Any) -> None:
        misses = [f"{_name(c)}: {shown(c)}" for c in chosen if not ok(c)]
        out.append({"target": name, "cases": len(chosen), "met": len(chosen) - len(misses),
                    "misses": misses})

    def scan_f1(c: dict[str, Any]) -> str:
        return f"F1 {fmt(_f1(c, 'scan'))}"

    def versus(ref: str) -> Any:
        return lambda c: f"scan F1 {fmt(_f1(c, 'scan'))} vs {SHORT[ref]} {fmt(_f1(c, ref))}"

    check("clean data: flags <= 1% (OOF accuracy >= 0.9) or <= 2% (weaker model)", clean,
          lambda c: c["methods"]["scan"]["fpr"] <= _clean_limit(c),
          lambda c: f"FPR {fmt(c['methods']['scan']['fpr'])} at OOF accuracy "
                    f"{fmt(c.get('oof_accuracy'))}")
    check("clean data: no attack hypothesis", clean, lambda c: not c.get("hypotheses"),
          lambda c: "; ".join(c.get("hypotheses") or []))
    check("F1 >= 0.9 on dirty-label backdoors at >= 1% poison",
          [c for c in cases if c["attack"] in BACKDOORS and c["rate"] >= 0.01],
          lambda c: (_f1(c, "scan") or 0) >= 0.9, scan_f1)
    check("F1 >= 0.9 on injected outliers at >= 1% poison",
          [c for c in cases if c["attack"] == "outliers" and c["rate"] >= 0.01],
          lambda c: (_f1(c, "scan") or 0) >= 0.9, scan_f1)
    check("outliers: F1 never below IsolationForest",
          [c for c in cases if c["attack"] == "outliers" and "isolation_forest" in c["methods"]],
          lambda c: (_f1(c, "scan") or 0) >= (_f1(c, "isolation_forest") or 0),
          versus("isolation_forest"))
    check("F1 >= 0.85 on targeted flips at >= 1% poison",
          [c for c in cases if c["attack"] == "flip-targeted" and c["rate"] >= 0.01],
          lambda c: (_f1(c, "scan") or 0) >= 0.85, scan_f1)
    check("targeted flips: F1 never below k-NN disagreement",
          [c for c in cases if c["attack"] == "flip-targeted" and "knn" in c["methods"]],
          lambda c: (_f1(c, "scan") or 0) >= (_f1(c, "knn") or 0), versus("knn"))
    check("F1 >= 0.85 on random label flips at 10%",
          [c for c in cases if c["attack"] == "flip" and abs(c["rate"] - 0.1) < 1e-9],
          lambda c: (_f1(c, "scan") or 0) >= 0.85, scan_f1)
    for refs, label in ((FAIR, "every reference"),
                        (tuple(SHORT), "every reference incl. the oracle-tuned ART SS")):
        check(f"better F1 than {label} (ties count as losses)",
              [c for c in cases if any(r in c["methods"] for r in refs)],
              lambda c, refs=refs: (_f1(c, "scan") or 0) > _best_ref(c, refs)[1],
              lambda c, refs=refs: _versus(c, refs))
    return out


def _versus(case: dict[str, Any], refs: tuple[str, ...]) -> str:
    best, best_f1 = _best_ref(case, refs)
    return f"scan F1 {fmt(_f1(case, 'scan'))} vs {SHORT.get(best or '', '-')} {fmt(best_f1)}"


def _seeds(payload: dict[str, Any]) -> list[int]:
    return sorted({c.get("seed", 0) for c in [*payload["cases"], *payload["clean"]]})


def _per_seed(values: list[float | None]) -> str:
    return " / ".join(fmt(v) for v in values)


def _across_seeds(payload: dict[str, Any], refs: list[str]) -> list[dict[str, Any]]:
    """One row per case: the scan's and each reference's F1, seed by seed."""
    seeds = _seeds(payload)
    groups: dict[tuple[str, str, float], dict[int, dict[str, Any]]] = {}
    for c in payload["cases"]:
        groups.setdefault((c["dataset"], c["attack"], c["rate"]), {})[c.get("seed", 0)] = c
    rows = []
    for (dataset, attack, rate), by_seed in groups.items():
        row: dict[str, Any] = {"dataset": dataset, "attack": attack, "rate": f"{rate:g}",
                               "poisoned": _per_seed([by_seed[s]["poisoned"] if s in by_seed
                                                      else None for s in seeds])}
        for method in ("scan", *refs):
            row[method] = _per_seed([_f1(by_seed[s], method) if s in by_seed else None
                                     for s in seeds])
        row["P"] = _per_seed([by_seed[s]["methods"]["scan"]["precision"] if s in by_seed
                              else None for s in seeds])
        rows.append(row)
    return rows


def _comparison_rows(payload: dict[str, Any], refs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for c in payload["cases"]:
        s = c["methods"]["scan"]
        row = {"dataset": c["dataset"], "attack": c["attack"], "rate": f"{c['rate']:g}",
               "seed": c.get("seed", 0), "poisoned": c["poisoned"], "P": s["precision"],
               "R": s["recall"], "F1": s["f1"], "AUROC": s["auroc"], "FPR": s["fpr"],
               "s": s["seconds"]}
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
                         "rate": f"{c['rate']:g}", "seed": c.get("seed", 0),
                         "method": SHORT.get(name, name), **m})
    return rows


def _header(payload: dict[str, Any]) -> list[str]:
    meta = payload["meta"]
    mach, ver = meta["machine"], meta["versions"]
    load = mach.get("load_avg")
    seeds = meta.get("seeds", [meta.get("seed", 0)])
    state = ("" if meta.get("finished", True)
             else " **Run in progress or stopped early: only the cases listed ran.**")
    return [
        "# Scan quality vs the references", "",
        f"Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach.get('ram_gib')} GiB RAM, "
        f"Python {mach['python']}; load average at the end {load}. Total {meta['seconds']} s."
        + state,
        "Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in ver.items()) + ".",
        "", "Command:", "", "```", meta["command"], "```", "",
        f"Datasets: {', '.join(meta['datasets'])}"
        + (f" (synthetic = make_classification, {meta['synthetic_rows']} rows x 50 features, "
           "5 classes)" if "synthetic" in meta["datasets"] else "")
        + ". Poison rates "
        f"{', '.join(f'{r:g}' for r in meta['rates'])}; backdoor/targeted target class "
        f"{meta['target']}; seeds {', '.join(str(s) for s in seeds)} (seed s = the attack's, "
        "the scan's and the references' seed). The scan is `scan_dataset(data, seed=s)` "
        "with the default detectors; its flags are the fused flags and its AUROC uses the "
        "fused score. References run on the scan's own representation (out-of-fold "
        "probabilities, input features, penultimate activations): see "
        "benchmarks/_references.py. 'ART SS (oracle)' is told the true poison rate, which "
        "the scan never is; 'wins' compares with the references that are not told "
        "(Datalab, k-NN disagreement, IsolationForest, ART AC, ART SS). ART AC has no "
        "per-row score, so no AUROC.",
    ]


def _targets(payload: dict[str, Any]) -> list[str]:
    seeds = _seeds(payload)
    per_seed = {s: target_checks(payload, s) for s in seeds}
    out = ["| target | " + " | ".join(f"seed {s}" for s in seeds) + " |",
           "|---|" + "---|" * len(seeds)]
    for i, t in enumerate(per_seed[seeds[0]] if seeds else []):
        cells = []
        for s in seeds:
            r = per_seed[s][i]
            status = "met" if r["met"] == r["cases"] else "NOT met"
            cells.append(f"{status} ({r['met']}/{r['cases']})" if r["cases"] else "-")
        out.append(f"| {t['target']} | " + " | ".join(cells) + " |")
    for s in seeds:
        misses = [f"  - {m}" for t in per_seed[s] for m in t["misses"]
                  if t["target"] != per_seed[s][-1]["target"]]
        if misses:
            out += ["", f"Misses, seed {s}:", "", *misses]
    return out


def quality_markdown(payload: dict[str, Any]) -> str:
    """The whole result as a markdown page."""
    refs = [r for r in SHORT if any(r in c["methods"] for c in payload["cases"])]
    out = _header(payload)
    out += ["", "## Targets, seed by seed", "", *_targets(payload)]
    out += ["", "## F1 across seeds (seed 0 / 1 / ...)", ""]
    cols = ["dataset", "attack", "rate", "poisoned", "P", "scan", *refs]
    out += md_table(cols, _across_seeds(payload, refs),
                    headers=[*cols[:4], "scan P", "scan F1", *(SHORT[r] for r in refs)])
    out += ["", "## Scan vs references (F1), every run", ""]
    cols = ["dataset", "attack", "rate", "seed", "poisoned", "P", "R", "F1", "AUROC", "FPR",
            "s", *refs, "wins"]
    out += md_table(cols, _comparison_rows(payload, refs),
                    headers=[*cols[:11], *(f"{SHORT[r]} F1" for r in refs), "wins"])
    out += ["", "## Clean data (every flag is a false positive)", ""]
    clean_rows = [{"dataset": c["dataset"], "seed": c.get("seed", 0), "rows": c["rows"],
                   "OOF acc.": c.get("oof_accuracy"),
                   "hypotheses": "; ".join(c.get("hypotheses") or []) or "none",
                   **{SHORT.get(n, n): m["fpr"] for n, m in c["methods"].items()}}
                  for c in payload["clean"]]
    out += md_table(["dataset", "seed", "rows", "OOF acc.", "hypotheses", "scan",
                     *(SHORT[r] for r in refs)], clean_rows)
    out += ["", "## Scan detectors, one by one (F1 of each detector's own flags)", ""]
    names = sorted({d for c in payload["cases"] for d in c["detectors"]})
    det_rows = [{"dataset": c["dataset"], "attack": c["attack"], "rate": f"{c['rate']:g}",
                 "seed": c.get("seed", 0),
                 **{d: c["detectors"].get(d, {}).get("f1") for d in names}}
                for c in payload["cases"]]
    out += md_table(["dataset", "attack", "rate", "seed", *names], det_rows)
    out += ["", "## Every method in full", ""]
    out += md_table(["dataset", "attack", "rate", "seed", "method", "flagged", "poisoned",
                     "precision", "recall", "f1", "auroc", "ap", "fpr", "seconds"],
                    _method_rows(payload))
    notes = [f"- reference {n} skipped: {p} not installed"
             for n, p in payload["references_missing"].items()]
    notes += [f"- {_name(c)} s{c.get('seed', 0)}: {n} failed: {e}"
              for c in payload["cases"] for n, e in c["reference_errors"].items()]
    notes += [f"- ERROR {e['dataset']} {e['attack']} {e.get('rate', '')} s{e.get('seed', 0)}: "
              f"{e['error']}" for e in payload["errors"]]
    if notes:
        out += ["", "## Skips and errors", "", *notes]
    return "\n".join(out) + "\n"
