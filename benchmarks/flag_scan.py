"""Full scans (default detectors, seed 0) on builtin cases: every detector's flagged rows.

Unlike flag_grid.py (cached representations), each case is scanned from scratch, so
the representation code is compared too. Run it once per tree and compare:

    PYTHONPATH=OLD_TREE python benchmarks/flag_scan.py old.json wine/clean wine/flip@0.1
    PYTHONPATH=. python benchmarks/flag_scan.py new.json wine/clean wine/flip@0.1
    python benchmarks/flag_scan.py --compare old.json new.json

A case is ``DATASET/clean`` or ``DATASET/ATTACK@RATE`` (attack seed 0, target 0).
A run that is cut short keeps the finished cases and resumes after them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def record(out: Path, cases: list[str]) -> None:
    from poisonguard.attack import run_attack
    from poisonguard.datasets import builtin_dataset
    from poisonguard.scan import scan_dataset

    done = json.loads(out.read_text()) if out.exists() else {}
    for case in (c for c in cases if c not in done):
        name, _, attack = case.partition("/")
        ds = builtin_dataset(name)
        if attack != "clean":
            kind, _, rate = attack.partition("@")
            ds = run_attack(kind, ds, rate=float(rate), seed=0, target=0).dataset
        start = time.perf_counter()
        findings, results, _ = scan_dataset(ds, seed=0)
        rec: dict[str, object] = {r.detector: [int(i) for i in r.flags.nonzero()[0]]
                                  for r in results}
        rec["fused"] = [int(r.index) for r in findings.rows if r.flagged]
        rec["_seconds"] = round(time.perf_counter() - start, 1)
        done[case] = rec
        out.write_text(json.dumps(done, indent=1))
        print(case, {k: len(v) for k, v in rec.items() if isinstance(v, list)},
              rec["_seconds"], flush=True)


def compare(old_path: Path, new_path: Path) -> int:
    old, new = (json.loads(p.read_text()) for p in (old_path, new_path))
    same = differ = 0
    for case in sorted(set(old) & set(new)):
        a, b = ({k for k in d[case] if not k.startswith("_")} for d in (old, new))
        if a != b:
            print(f"{case}: detectors only old {sorted(a - b)}, only new {sorted(b - a)}")
        for det in sorted(a & b):
            x, y = set(old[case][det]), set(new[case][det])
            if x == y:
                same += 1
                continue
            differ += 1
            print(f"{case} {det}: old {len(x)} new {len(y)} flags; only old "
                  f"{sorted(x - y)[:10]}, only new {sorted(y - x)[:10]}")
    print(f"{len(set(old) & set(new))} cases: {same} identical flag sets, {differ} different")
    return 1 if differ else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compare"] and len(argv) == 3:
        return compare(Path(argv[1]), Path(argv[2]))
    if len(argv) < 2:
        print(__doc__)
        return 2
    record(Path(argv[0]), argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
