"""forgeplanner.engine.estimate: the one entry point for memory + fit + speed."""

from __future__ import annotations

import dataclasses

import pytest

from catalog import load_catalog
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine import speed_constants
from forgeplanner.engine.estimate import (
    decode_curve,
    estimate,
    estimate_quants,
    estimate_to_dict,
)
from forgeplanner.engine.fit import best_quant_that_fits, fit, max_context_that_fits
from forgeplanner.engine.quant import quants_for
from forgeplanner.host import host_from_chip_name, host_from_config
from models_db import load_models

MODELS = load_models()
CAT = load_catalog()
M3MAX = host_from_chip_name("M3 Max", 40, 64)


def test_estimate_combines_memory_fit_and_speed():
    m = MODELS.get("llama-3.1-8b")
    opts = RunOptions(context=8192)
    e = estimate(m, "Q4_K_M", M3MAX, opts)
    assert e.fit == fit(m, "Q4_K_M", M3MAX, opts)  # the memory engine's verdict, unchanged
    assert e.max_context_that_fits == max_context_that_fits(m, "Q4_K_M", M3MAX, opts)
    assert e.speed is not None
    # 4.6 GB read per token on a 400 GB/s chip: bounded by bandwidth (< 87 t/s), and not absurd
    assert 30 < e.speed.decode_tps < 400e9 / 4.6e9
    assert e.speed.prefill_tps > 10 * e.speed.decode_tps
    assert e.speed.ttft_s == pytest.approx(
        512 / e.speed.prefill_tps + 1 / e.speed.decode_tps, rel=0.05
    )
    terms = {x.term for x in e.speed.explain}
    assert {"decode_tps", "prefill_tps", "ttft_s"} <= terms
    assert "calibrated constants" in e.speed.basis and "catalog" in e.speed.basis


def test_moe_decodes_faster_than_dense_of_same_size():
    moe = estimate(MODELS.get("qwen3-30b-a3b"), "Q4_K_M", M3MAX, RunOptions())
    dense = estimate(MODELS.get("qwen3-32b"), "Q4_K_M", M3MAX, RunOptions())
    assert moe.speed.decode_tps > 3 * dense.speed.decode_tps


def test_constants_argument_is_used():
    m = MODELS.get("llama-3.1-8b")
    base = speed_constants.CONSTANTS
    rc = base.runtimes["llama.cpp"]
    doubled = {k: v * 2 for k, v in rc.decode.items()}
    slower = dataclasses.replace(
        base, runtimes={**base.runtimes, "llama.cpp": dataclasses.replace(rc, decode=doubled)}
    )
    a = estimate(m, "Q8_0", M3MAX, RunOptions()).speed.decode_tps
    b = estimate(m, "Q8_0", M3MAX, RunOptions(), constants=slower).speed.decode_tps
    assert b < 0.8 * a


def test_decode_curve_falls_with_depth():
    curve = decode_curve(MODELS.get("llama-3.1-8b"), "Q4_K_M", M3MAX, RunOptions(),
                         [0, 4096, 32768])  # fmt: skip
    tps = [t for _, t in curve]
    assert tps[0] > tps[1] > tps[2]
    with pytest.raises(ValueError, match="depth"):
        decode_curve(MODELS.get("llama-3.1-8b"), "Q4_K_M", M3MAX, RunOptions(), [-1])


def test_quants_variant_lists_every_quant_and_the_best_that_fits():
    m = MODELS.get("llama-3.1-70b")
    host = host_from_config("mac-studio-m4-max-40c-64gb")
    opts = RunOptions(context=8192)
    qe = estimate_quants(m, host, opts)
    assert [e.quant for e in qe.estimates] == [q.name for q in quants_for(m, "llama.cpp")]
    assert qe.best_quant_that_fits == best_quant_that_fits(m, host, opts)
    verdicts = {e.quant: e.fit.verdict for e in qe.estimates}
    assert verdicts["F16"] == "does-not-fit"
    assert verdicts["Q2_K"] == "fits"


def test_impossible_combinations_say_what_is_valid():
    dense = MODELS.get("llama-3.1-8b")
    with pytest.raises(ValueError, match="dense"):
        estimate(dense, "MXFP4", M3MAX, RunOptions())
    mlx_only = dataclasses.replace(dense, id="mlx-only", formats=("mlx",))
    with pytest.raises(ValueError, match="no GGUF weights"):
        estimate(mlx_only, "Q4_0", M3MAX, RunOptions())
    with pytest.raises(ValueError, match="MLX-4bit"):
        estimate(dense, "Q4_0", M3MAX, RunOptions(runtime="mlx"))


def test_cpu_host_is_labelled_uncalibrated():
    host = host_from_config("mac-mini-2012-i7-2300mhz-16gb")
    assert host.bandwidth_bytes_per_s == pytest.approx(25.6e9)  # DDR3-1600 x 2 channels
    e = estimate(MODELS.get("llama-3.2-3b"), "Q4_K_M", host, RunOptions(context=4096))
    assert e.speed is not None
    assert "uncalibrated" in e.speed.basis
    # a 3B Q4_K_M reads ~1.9 GB per token: at 25.6 GB/s under 13.5 tokens/s
    assert 3 < e.speed.decode_tps < 13.5


def test_unknown_bandwidth_means_unknown_speed_with_reason():
    # every catalog chip's bandwidth is known now (the Intel minis' derived from their DDR
    # specs), so the test takes a known host and forgets its bandwidth
    host = dataclasses.replace(
        host_from_config("mac-mini-2014-i5-2600mhz-16gb"),
        bandwidth_bytes_per_s=None,
        bandwidth_basis="unknown: memory speed not in the catalog",
    )
    e = estimate(MODELS.get("llama-3.2-1b"), "Q4_K_M", host, RunOptions(context=2048))
    assert e.speed is None
    assert any(w.startswith("speed unknown: unknown") for w in e.warnings)
    d = estimate_to_dict(e)
    assert d["decode_tps"] is None and d["memory"]["total_bytes"] > 0


def test_mlx_runtime_estimates():
    e = estimate(MODELS.get("llama-3.1-8b"), "MLX-4bit", M3MAX, RunOptions(runtime="mlx"))
    assert e.speed is not None and e.speed.decode_tps > 0
    assert CAT.find_chip("M3 Max", 40).id == M3MAX.chip_id
