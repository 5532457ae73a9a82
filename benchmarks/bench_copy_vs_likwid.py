"""Built-in copy bandwidth vs `likwid-bench -t copy`, side by side in one run.

Both use every core and the same working set (two arrays of --array-mb MB each), run
alternately (likwid, ours, likwid, ours, ...) so that load from other processes on a shared
machine hits both alike. Reports the median of each and the ratio ours / likwid; the target
is >= 0.90. `--variants` also runs likwid's AVX-512 and non-temporal-store copies
for context (numpy's copy is memcpy, which may use non-temporal stores on large blocks).

    .venv/bin/python benchmarks/bench_copy_vs_likwid.py [--reps 7] [--array-mb 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys

from forgeplanner.bench.builtin import BuiltinConfig, stream_kernels
from forgeplanner.bench.likwid import INSTALL_HINT, likwid_bench_argv, parse_likwid_bench
from forgeplanner.bench.progress import drive


def run_likwid(binary: str, test: str, ws: int, threads: int) -> float:
    argv = likwid_bench_argv(binary, test, ws, threads)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(
            f"likwid-bench failed (exit {proc.returncode}) for {' '.join(argv)}:\n"
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return parse_likwid_bench(proc.stdout)["gbps"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--array-mb", type=int, default=500, help="MB (10^6) per array")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variants", action="store_true")
    args = ap.parse_args()

    binary = shutil.which("likwid-bench")
    if binary is None:
        print(f"likwid-bench not found; {INSTALL_HINT}", file=sys.stderr)
        return 2
    array_bytes = args.array_mb * 10**6
    ws = 2 * array_bytes
    cfg = BuiltinConfig(
        array_bytes=array_bytes, threads=args.threads, kernels=("copy",), warmup=1, repetitions=3
    )
    tests = ["copy"] + (["copy_avx512", "copy_mem_avx512"] if args.variants else [])
    ref: dict[str, list[float]] = {t: [] for t in tests}
    ours: list[float] = []
    print(
        f"{args.threads} threads, 2 x {args.array_mb} MB arrays, {args.reps} alternating "
        "repetitions (GB/s, STREAM convention: bytes read + bytes written)"
    )
    for rep in range(args.reps):
        for t in tests:
            ref[t].append(run_likwid(binary, t, ws, args.threads))
        spread = drive(stream_kernels(cfg), bar=False)["copy"]
        ours.append(spread.median)
        shown = "  ".join(f"likwid {t} {ref[t][-1]:6.2f}" for t in tests)
        print(f"rep {rep + 1}: {shown}  forgeplanner copy {ours[-1]:6.2f}")
    med_ours = statistics.median(ours)
    print()
    print(
        f"forgeplanner copy   median {med_ours:7.2f} GB/s  "
        f"(min {min(ours):.2f}, max {max(ours):.2f})"
    )
    for t in tests:
        med = statistics.median(ref[t])
        print(
            f"likwid-bench {t:<16} median {med:7.2f} GB/s  "
            f"(min {min(ref[t]):.2f}, max {max(ref[t]):.2f})  "
            f"ratio ours/likwid {med_ours / med:.2f}"
        )
    ratio = med_ours / statistics.median(ref["copy"])
    verdict = "meets" if ratio >= 0.9 else "MISSES"
    print(f"\nratio vs likwid-bench -t copy: {ratio:.2f} ({verdict} the >= 0.90 target)")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
