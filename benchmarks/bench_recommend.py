"""Catalog load and recommendation search times: medians over repeated runs.

The catalog is read and validated on first use by every command, and `recommend` searches
every configuration x runtime x quantization (and with --allow-clusters, clusters of 2-4
identical machines), so both are measured here rather than in unit tests.

    .venv/bin/python benchmarks/bench_recommend.py [--reps 5] [--baseline-ref HEAD~1]

Each case runs `forgeplanner recommend ... --json` in process (`forgeplanner.cli.main.main`,
output discarded), after one warm-up run, in a child interpreter per code version; the times
exclude the interpreter's start-up. The shipped price observations only (a fresh user
database), prices as of 2026-11-26. `--baseline-ref REF` also runs the commit REF (`git
archive` into a temporary directory), side by side.

Goal: llama-3.1-405b with clusters allowed in 0.5 s or less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from baseline_tree import checkout

ROOT = Path(__file__).resolve().parents[1]
BASE = ["recommend", "--context", "8192", "--quant-min", "Q4_K_M", "--today", "2026-11-26"]
CASES = {
    "recommend llama-3.1-70b (single machines)": [*BASE, "--model", "llama-3.1-70b"],
    "recommend llama-3.1-405b --allow-clusters": [
        *BASE,
        "--model",
        "llama-3.1-405b",
        "--allow-clusters",
    ],
}

_CHILD = r"""
import contextlib, io, json, statistics, sys, time
from pathlib import Path
from catalog.loader import DATA_DIR, _load
from forgeplanner.cli.main import main

reps, cases = int(sys.argv[1]), json.loads(sys.argv[2])

def median_s(fn):
    fn()  # warm imports and caches once
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)

def command(argv):
    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv + ["--json"]) == 0
    return run

out = {"catalog load + validate (uncached)": median_s(lambda: _load(Path(DATA_DIR)))}
for name, argv in cases.items():
    out[name] = median_s(command(argv))
print(json.dumps(out))
"""


def run(source: Path | None, reps: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FORGEPLANNER_HOME": home}
        if source is not None:
            env["PYTHONPATH"] = str(source)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(reps), json.dumps(CASES)],
            cwd=source or ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=3600,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--baseline-ref", metavar="REF", help="also run this commit, side by side")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        versions: list[tuple[str, Path | None]] = [("working tree", None)]
        if args.baseline_ref:
            versions.insert(0, (args.baseline_ref, checkout(args.baseline_ref, Path(tmp))))
        results = {name: run(source, args.reps) for name, source in versions}
    print(f"{'case':48} {'code':14} {'median s':>9} {'min s':>8}  (reps {args.reps})")
    for case in next(iter(results.values())):
        for name, result in results.items():
            med, low = result[case]
            print(f"{case:48} {name:14} {med:9.3f} {low:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
