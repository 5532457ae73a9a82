#!/usr/bin/env python3
"""Benchmark the model database: load, GGUF import, synthetic GGUF writing. Medians over runs.

    .venv/bin/python benchmarks/bench_models_db.py [--runs 3] [--keep DIR]

Each measurement runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own.
- load: parse + validate models_db/data/models.toml (56 models).
- write: write_synthetic_gguf of the qwen2.5-0.5b shape (494M params, 152k vocab) per ftype.
- import: import_gguf of (a) that 0.5B file (152k-token SPM vocabulary: GGUFReader's per-item
  parsing dominates) and (b) a 1.6 GiB file with a 300-token vocabulary and big tensors, which
  shows the weights are never read (RSS stays near the interpreter's own).
Targets: import reads no weights; a ~0.5B model is written "in seconds".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_PRELUDE = """
import json, resource, sys, time
t0 = time.perf_counter()
"""
_EPILOGUE = """
wall = time.perf_counter() - t0
print(json.dumps({"s": wall, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(body: str) -> dict[str, float]:
    code = _PRELUDE + body + _EPILOGUE
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(body: str, runs: int) -> tuple[float, float]:
    results = [measure(body) for _ in range(runs)]
    return (
        statistics.median(r["s"] for r in results),
        statistics.median(r["rss_mib"] for r in results),
    )


def baseline_rss() -> float:
    return measure("import models_db.importers, forgeplanner.bench.synthetic_gguf\n")["rss_mib"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the files here instead of a temp dir")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="fp-bench-models-"))
    work.mkdir(parents=True, exist_ok=True)
    base = baseline_rss()
    print(f"interpreter + imports baseline RSS: {base:.0f} MiB; runs per row: {args.runs}\n")
    print(f"{'measurement':58} {'median s':>9} {'peak RSS MiB':>13}")

    s, rss = median_of(
        "from models_db.loader import DATA_FILE, read_models_file\nread_models_file(DATA_FILE)\n",
        args.runs,
    )
    print(f"{'load models.toml (56 models, validated)':58} {s:9.3f} {rss:13.0f}")

    small = work / "q05.gguf"
    for ftype in ("F16", "Q8_0", "Q4_0"):
        s, rss = median_of(
            "from models_db import load_models\n"
            "from forgeplanner.bench.synthetic_gguf import write_synthetic_gguf\n"
            f"write_synthetic_gguf({str(small)!r}, load_models().get('qwen2.5-0.5b'), "
            f"{ftype!r}, seed=0)\n",
            args.runs,
        )
        size = small.stat().st_size / 2**20
        label = f"write qwen2.5-0.5b shape {ftype} ({size:.0f} MiB)"
        print(f"{label:58} {s:9.3f} {rss:13.0f}")

    s, rss = median_of(
        f"from models_db.importers import import_gguf\nimport_gguf({str(small)!r})\n", args.runs
    )
    print(f"{'import_gguf 0.5B Q4_0 (152k-token vocabulary)':58} {s:9.3f} {rss:13.0f}")

    big = work / "big.gguf"
    measure(
        "from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf\n"
        "write_synthetic_gguf("
        f"{str(big)!r}, SyntheticShape(4, 4096, 14336, 32, 8, 300), 'F16')\n"
    )
    s, rss = median_of(
        f"from models_db.importers import import_gguf\nimport_gguf({str(big)!r})\n", args.runs
    )
    size = big.stat().st_size / 2**30
    label = f"import_gguf {size:.1f} GiB F16, 300-token vocabulary"
    print(f"{label:58} {s:9.3f} {rss:13.0f}")
    print(f"  -> RSS above baseline: {rss - base:.0f} MiB for a {size:.1f} GiB file")
    if not args.keep:
        small.unlink(missing_ok=True)
        big.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
