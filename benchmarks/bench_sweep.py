#!/usr/bin/env python3
"""Benchmark `forgeplanner sweep`: evaluations per second of wall time, process start included.

    .venv/bin/python benchmarks/bench_sweep.py [--runs 5] [--context N ...]

Runs `python -m forgeplanner sweep --json` as a subprocess several times, takes the wall time
of each (spawn to exit), and reports the median rate = evaluations / median wall seconds.
Goal: >= 200,000 evaluations per second over >= 100,000 evaluations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_RATE = 200_000
GOAL_EVALS = 100_000


def one_run(context: list[str], env: dict[str, str]) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "forgeplanner", "sweep", "--json"]
    if context:
        argv += ["--context", *context]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return wall, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--context", nargs="*", default=[], help="contexts passed to sweep")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, FORGEPLANNER_HOME=home)
        one_run(args.context, env)  # warm the OS file cache (.pyc, data files)
        walls, inner, evals = [], [], 0
        for _ in range(args.runs):
            wall, payload = one_run(args.context, env)
            walls.append(wall)
            inner.append(payload["seconds"])
            evals = payload["evaluations"]
    med = statistics.median(walls)
    rate = evals / med
    print(f"evaluations per run:        {evals:,}")
    print(
        f"wall seconds (process):     median {med:.3f}  runs {', '.join(f'{w:.3f}' for w in walls)}"
    )
    print(f"in-process seconds:         median {statistics.median(inner):.3f}")
    print(f"rate (process start incl.): {rate:,.0f} evaluations/s")
    ok = rate >= GOAL_RATE and evals >= GOAL_EVALS
    print(f"goal >= {GOAL_RATE:,}/s over >= {GOAL_EVALS:,}: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
