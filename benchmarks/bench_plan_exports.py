"""Time every export of a plan and the evidence check (medians of N runs), and the PDF of a
large plan with its peak memory.

    .venv/bin/python benchmarks/bench_plan_exports.py [--runs 5] [--models 200]

Prints one JSON object: milliseconds per format for the example plan (render + atomic write),
the evidence record's size and the time `evidence verify` takes on it (in process, no
interpreter start-up); then, for a plan of `--models` models (one estimate each; the test
suite's `large_plan`), every format's time and the PDF's pages, bytes, the peak memory of
the process that wrote it and how much it grew while exporting (a fresh interpreter per format,
so each peak is its own).

Goal: a 200-model plan's PDF in bounded time and memory (the Qt writer this replaced ran past
300 s and 6 GB on it).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One export of the large plan in a fresh interpreter: seconds and peak resident memory.
_ONE_EXPORT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from forgeplanner.export.render import export_plan
from tests.plan.samples import large_plan

plan = large_plan({models})
before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
t0 = time.perf_counter()
warnings = []
out = export_plan(plan, {fmt!r}, {out!r}, now="2026-11-26T00:00:00Z", warn=warnings.append)
seconds = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({{"s": seconds, "peak_mib": peak_kib / 1024,
                  "export_mib": (peak_kib - before_kib) / 1024, "bytes": out.stat().st_size,
                  "warnings": len(warnings)}}))
"""


def _example(runs: int, tmp: str) -> dict[str, object]:
    from forgeplanner.evidence.record import verify_bytes
    from forgeplanner.export.render import FORMATS, export_plan
    from forgeplanner.plan.files import read_plan

    plan = read_plan(ROOT / "examples" / "70b-home-lab.fplan")
    out: dict[str, object] = {"plan": "examples/70b-home-lab.fplan", "runs": runs}
    for fmt in FORMATS:
        times = []
        for _ in range(runs + 1):  # the first run warms imports
            t0 = time.perf_counter()
            path = export_plan(plan, fmt, Path(tmp) / f"plan.{fmt}", now="2026-11-26T00:00:00Z")
            times.append(time.perf_counter() - t0)
        out[f"{fmt}_ms"] = round(statistics.median(times[1:]) * 1000, 1)
        out[f"{fmt}_bytes"] = path.stat().st_size
    data = (Path(tmp) / "plan.json").read_bytes()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ok = verify_bytes(data).ok
        times.append(time.perf_counter() - t0)
    out["verify_ms"] = round(statistics.median(times) * 1000, 2)
    out["verify_ok"] = ok
    return out


def _large(models: int, tmp: str) -> dict[str, object]:
    from forgeplanner.export.render import FORMATS

    out: dict[str, object] = {"models": models}
    for fmt in FORMATS:
        target = str(Path(tmp) / f"large.{fmt}")
        code = _ONE_EXPORT.format(root=str(ROOT), models=models, fmt=fmt, out=target)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        out[f"{fmt}_s"] = round(result["s"], 2)
        out[f"{fmt}_peak_mib"] = round(result["peak_mib"], 1)
        out[f"{fmt}_export_mib"] = round(result["export_mib"], 1)  # peak growth while exporting
        out[f"{fmt}_bytes"] = result["bytes"]
        if fmt == "pdf":
            info = subprocess.run(["pdfinfo", target], capture_output=True, text=True)
            pages = [ln for ln in info.stdout.splitlines() if ln.startswith("Pages:")]
            out["pdf_pages"] = int(pages[0].split()[1]) if pages else None
            out["pdf_warnings"] = result["warnings"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", type=int, default=200, help="size of the large plan")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        report = {"example": _example(args.runs, tmp), "large": _large(args.models, tmp)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
