"""The built-in runner on this machine (small arrays: correctness, not performance; the
performance comparison with likwid-bench is benchmarks/bench_copy_vs_likwid.py)."""

from __future__ import annotations

import threading

import pytest

from forgeplanner.bench.builtin import (
    BuiltinConfig,
    decode_sim_bytes,
    last_level_cache_bytes,
    run_builtin,
    stream_kernels,
)
from forgeplanner.bench.progress import Cancelled, Progress
from forgeplanner.domain.units import MiB

SMALL = BuiltinConfig(
    array_bytes=16 * MiB,
    repetitions=2,
    warmup=1,
    threads=2,
    matmul_n=256,
    matmul_repetitions=2,
    decode_weight_bytes=8 * MiB,
    decode_layers=4,
    decode_hidden=256,
    decode_tokens=2,
)


def _collect(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_suite_measures_every_kernel_with_progress() -> None:
    events, res = _collect(run_builtin(SMALL))
    assert all(isinstance(e, Progress) for e in events)
    fracs = [e.fraction for e in events if e.fraction is not None]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    for spread in (res.copy_gbps, res.triad_gbps, res.matmul_gflops, res.decode_tps):
        assert spread is not None and spread.n == 2 and spread.median > 0
        assert spread.minimum <= spread.median <= spread.maximum
    m = res.measured()
    assert m["memory_bandwidth_gbps"] == m["copy_gbps"] == res.copy_gbps.median
    assert m["threads"] == 2 and m["array_bytes"] == 16 * MiB
    assert res.decode_weight_bytes == decode_sim_bytes(SMALL)
    # bytes / (bytes / s) consistency of the decode simulation
    assert res.decode_gbps.median == pytest.approx(
        res.decode_tps.median * res.decode_weight_bytes / 1e9, rel=0.5
    )
    assert {e.metric for e in events if e.metric} >= {"copy_gbps", "triad_gbps", "matmul_gflops"}


def test_cancel_stops_between_repetitions() -> None:
    token = threading.Event()
    gen = stream_kernels(SMALL, token)
    next(gen)
    token.set()
    with pytest.raises(Cancelled):
        for _ in gen:
            pass


def test_only_selected_kernels_run() -> None:
    cfg = BuiltinConfig(array_bytes=8 * MiB, repetitions=1, threads=1, kernels=("copy",))
    _, res = _collect(run_builtin(cfg))
    assert res.copy_gbps is not None and res.triad_gbps is None and res.matmul_gflops is None


def test_last_level_cache_is_read_on_linux() -> None:
    llc = last_level_cache_bytes()
    assert llc is None or llc >= 256 * 1024
