"""Process start -> screenshot written, per view: `forgeplanner gui --view KEY --screenshot PATH`.

Goal: within 3 s of process start on this machine. Each view is run --reps times as a
fresh process (the wall time includes the Python interpreter, imports, data loading, the first
paint and writing the PNG); reports median and max per view.

    .venv/bin/python benchmarks/bench_ui_startup.py [--reps 5] [--json]
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

VIEWS = ("hardware", "models", "fit", "recommend", "cluster", "platform", "bench", "plan")
GOAL_S = 3.0


def one_run(view: str, out: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "forgeplanner", "gui", "--view", view, "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"{view}: exit {proc.returncode}\n{proc.stderr}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, FORGEPLANNER_HOME=str(Path(tmp) / "home"))
        env.pop("QT_QPA_PLATFORM", None)
        results = {}
        for view in VIEWS:
            times = [one_run(view, Path(tmp) / f"{view}-{i}.png", env) for i in range(args.reps)]
            results[view] = {
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "runs": len(times),
            }
    worst = max(r["max_s"] for r in results.values())
    if args.json:
        print(json.dumps({"views": results, "goal_s": GOAL_S, "worst_s": worst}, indent=2))
    else:
        print(f"{'view':<10} {'median s':>9} {'max s':>7}")
        for view, r in results.items():
            print(f"{view:<10} {r['median_s']:>9.3f} {r['max_s']:>7.3f}")
        print(f"worst {worst:.3f} s (goal <= {GOAL_S} s): {'OK' if worst <= GOAL_S else 'MISSED'}")
    return 0 if worst <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
