"""The host calibration fit on known numbers (pure)."""

from __future__ import annotations

import pytest

from forgeplanner.bench.calibrate import Sample, fit

BW = 12e9  # bytes/s
TAU = 0.004  # s per token
FLOPS = 150e9


def _tg(run_id: int, read: float, fixed: float = 0.0005) -> Sample:
    return Sample(run_id, "tg", "tg128", f"m{run_id}", "Q8_0", read / BW + TAU, read, 0.0, fixed)


def _pp(run_id: int, flops: float) -> Sample:
    return Sample(run_id, "pp", "pp512", f"m{run_id}", "Q8_0", flops / FLOPS, 0.0, flops, 0.0)


def test_two_sizes_recover_bandwidth_and_per_token_cost() -> None:
    f = fit([_tg(1, 0.5e9), _tg(2, 4.0e9), _pp(1, 1e9), _pp(2, 8e9)])
    assert f.bandwidth_bytes_per_s == pytest.approx(BW, rel=1e-9)
    assert f.per_token_s == pytest.approx(TAU, rel=1e-9)
    assert f.compute_flops == pytest.approx(FLOPS, rel=1e-9)
    assert f.run_ids == (1, 2)
    assert "different size" in f.details["decode_fit"]


def test_one_size_keeps_the_engine_fixed_cost() -> None:
    f = fit([_tg(1, 0.5e9, fixed=TAU), _tg(2, 0.5e9, fixed=TAU)])
    assert f.per_token_s == pytest.approx(TAU)
    assert f.bandwidth_bytes_per_s == pytest.approx(BW, rel=1e-9)
    assert "one model size" in f.details["decode_fit"]


def test_unphysical_negative_cost_is_clamped() -> None:
    # the small model is faster than proportional (it sits in cache): tau would be negative
    fast_small = Sample(1, "tg", "tg", "s", "F16", 0.0002, 2.6e6, 0.0, 0.0003)
    big = Sample(2, "tg", "tg", "b", "F16", 0.07, 0.525e9, 0.0, 0.0003)
    f = fit([fast_small, big])
    assert f.per_token_s is not None and f.per_token_s >= 0
    assert f.bandwidth_bytes_per_s is not None and f.bandwidth_bytes_per_s > 0
