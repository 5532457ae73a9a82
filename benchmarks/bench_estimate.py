#!/usr/bin/env python3
"""One `estimate()` of a 70B with its largest-context search: medians, side by side with a
previous commit.

    .venv/bin/python benchmarks/bench_estimate.py [--reps 300] [--compare REF]

Measures, in this checkout and (with --compare) in a temporary `git worktree` of REF run by the
same interpreter:
- warm: the same estimate repeated (what an app or a search does: the pipeline for this
  model x quant x options is prepared once and memoised);
- cold: a fresh model object each time, so nothing is memoised but the model database.
The machine is the one case where bisection runs (Llama 3.1 70B Q4_K_M at 16K on a 64 GB
Mac mini M4 Pro: the largest context is below the model's 128K).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MEASURE = r"""
import dataclasses, json, statistics, sys, time
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.host import host_from_config
from models_db import load_models

reps = int(sys.argv[1])
model = load_models().get("llama-3.1-70b")
host = host_from_config("mac-mini-m4-pro-20c-64gb")
opts = RunOptions(context=16384)
for _ in range(20):
    e = estimate(model, "Q4_K_M", host, opts)

def med(fn):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

warm = med(lambda: estimate(model, "Q4_K_M", host, opts))
cold = med(lambda: estimate(dataclasses.replace(model), "Q4_K_M", host, opts))
print(json.dumps({"warm_ms": warm * 1e3, "cold_ms": cold * 1e3,
                  "max_context": e.max_context_that_fits,
                  "decode_tps": e.speed.decode_tps if e.speed else None}))
"""


def measure(root: Path, reps: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(reps)],
        cwd=root, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--compare", metavar="REF", help="also measure this git commit")
    args = ap.parse_args(argv)
    rows = [("this checkout", measure(REPO, args.reps))]
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "ref"
            subprocess.run(["git", "worktree", "add", "--detach", str(wt), args.compare],
                           cwd=REPO, check=True, capture_output=True)  # fmt: skip
            try:
                rows.append((args.compare, measure(wt, args.reps)))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=REPO,
                               check=False, capture_output=True)  # fmt: skip
    print(f"{'checkout':<16} {'warm ms':>9} {'cold ms':>9} {'max ctx':>9} {'decode':>8}")
    for name, r in rows:
        print(f"{name:<16} {r['warm_ms']:>9.3f} {r['cold_ms']:>9.3f} {r['max_context']:>9} "
              f"{r['decode_tps']:>8.3f}")  # fmt: skip
    if len(rows) == 2:
        a, b = rows[0][1], rows[1][1]
        print(f"ratio (previous / this): warm {b['warm_ms'] / a['warm_ms']:.1f}x, "
              f"cold {b['cold_ms'] / a['cold_ms']:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
