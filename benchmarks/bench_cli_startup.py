"""`forgeplanner estimate ... --json` from process start to exit: medians of fresh processes.

    .venv/bin/python benchmarks/bench_cli_startup.py [--reps 7] [--baseline-ref HEAD~1]
        [--importtime]

Each run is a new interpreter (`python -m forgeplanner estimate ...`), so the time includes
Python's start-up, every import, loading the catalog and model database, the estimate and the
JSON. Reported: the median and the minimum wall time, and the median CPU time (user + system of
the child; steadier than wall time on a shared machine). One warm-up run first, so the data
cache (forgeplanner.services.datacache) is in place as it is for every run after a user's
first.

`--baseline-ref REF` runs the same command from that commit (`git archive` into a temporary
directory, imported ahead of the installed package) and prints both, side by side.
`--importtime` prints the imports that take longest (`python -X importtime`, cumulative).

Goal: 0.35 s or less.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline_tree import checkout

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [
    "estimate",
    "--model",
    "llama-3.3-70b",
    "--machine",
    "mac-mini-m4-pro-20c-64gb",
    "--quant",
    "Q4_K_M",
    "--context",
    "16384",
    "--json",
]


def _env(source: Path | None, home: Path) -> dict[str, str]:
    env = {**os.environ, "FORGEPLANNER_HOME": str(home)}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def _once(source: Path | None, home: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh `python -m forgeplanner estimate ...`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "forgeplanner", *COMMAND],
        cwd=source or ROOT,
        env=_env(source, home),
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(source: Path | None, reps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        _once(source, Path(home))  # warm-up: disk cache, and the data cache's first run
        runs = [_once(source, Path(home)) for _ in range(reps)]
    walls = [w for w, _ in runs]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "cpu_median_s": statistics.median(c for _, c in runs),
    }


def importtime(source: Path | None, top: int = 15) -> list[tuple[int, str]]:
    with tempfile.TemporaryDirectory() as home:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "forgeplanner", *COMMAND],
            cwd=source or ROOT,
            env=_env(source, Path(home)),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(2)) <= 2:  # top-level and first-level imports
            rows.append((int(m.group(1)), m.group(3)))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--baseline-ref", metavar="REF", help="also run this commit, side by side")
    ap.add_argument("--importtime", action="store_true", help="show the slowest imports")
    args = ap.parse_args()
    print("forgeplanner " + " ".join(COMMAND))
    print(f"{'code':28} {'median s':>9} {'min s':>7} {'CPU s':>7}  (reps {args.reps})")
    with tempfile.TemporaryDirectory() as tmp:
        sources: list[tuple[str, Path | None]] = [("working tree", None)]
        if args.baseline_ref:
            tree = checkout(args.baseline_ref, Path(tmp))
            sources.insert(0, (args.baseline_ref, tree))
        for name, source in sources:
            r = measure(source, args.reps)
            print(f"{name:28} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['cpu_median_s']:7.3f}")
        if args.importtime:
            for name, source in sources:
                print(f"\nslowest imports, {name} (cumulative microseconds):")
                for us, module in importtime(source):
                    print(f"  {us:8d}  {module}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
