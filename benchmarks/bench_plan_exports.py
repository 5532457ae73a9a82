"""Time every export of the example plan and the evidence check (medians of N runs).

    .venv/bin/python benchmarks/bench_plan_exports.py [--runs 5]

Prints one JSON object: milliseconds per format (render + atomic write), the evidence record's
size, and the time `evidence verify` takes on it. In process (no interpreter start-up)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from forgeplanner.evidence.record import verify_bytes
    from forgeplanner.export.render import FORMATS, export_plan
    from forgeplanner.plan.files import read_plan

    plan = read_plan(ROOT / "examples" / "70b-home-lab.fplan")
    out: dict[str, object] = {"plan": "examples/70b-home-lab.fplan", "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            times = []
            for _ in range(args.runs + 1):  # the first run warms imports (Qt for PDF)
                t0 = time.perf_counter()
                path = export_plan(plan, fmt, Path(tmp) / f"plan.{fmt}", now="2026-11-26T00:00:00Z")
                times.append(time.perf_counter() - t0)
            out[f"{fmt}_ms"] = round(statistics.median(times[1:]) * 1000, 1)
            out[f"{fmt}_bytes"] = path.stat().st_size
        data = (Path(tmp) / "plan.json").read_bytes()
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            ok = verify_bytes(data).ok
            times.append(time.perf_counter() - t0)
        out["verify_ms"] = round(statistics.median(times) * 1000, 2)
        out["verify_ok"] = ok
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
