"""Catalog load and recommendation search times: medians over repeated runs.

The catalog is read and validated on first use by every command, and `recommend` searches
every configuration x runtime x quantization (and with --allow-clusters, 2-4 node clusters),
so both are measured here rather than in unit tests.

    .venv/bin/python benchmarks/bench_recommend.py [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def _median_s(fn, reps: int) -> tuple[float, float]:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    from catalog.loader import DATA_DIR, _load
    from forgeplanner.cli.recommend_cmd import build_recommendation

    cases = [
        ("catalog load + validate (uncached)", lambda: _load(Path(DATA_DIR))),
        (
            "recommend llama-3.1-70b ctx 8192 (single machines)",
            lambda: build_recommendation(
                ["llama-3.1-70b"],
                8192,
                quant_min="Q4_K_M",
                today="2026-11-26",
                include_user_observations=False,
            ),
        ),
        (
            "recommend llama-3.1-405b ctx 8192 --allow-clusters",
            lambda: build_recommendation(
                ["llama-3.1-405b"],
                8192,
                quant_min="Q4_K_M",
                allow_clusters=True,
                today="2026-11-26",
                include_user_observations=False,
            ),
        ),
    ]
    print(f"{'case':55} {'median s':>9} {'min s':>9}  (reps {args.reps})")
    for name, fn in cases:
        fn()  # warm imports and caches once
        med, low = _median_s(fn, args.reps)
        print(f"{name:55} {med:9.3f} {low:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
