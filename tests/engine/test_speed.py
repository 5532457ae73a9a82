"""Unit tests of the speed formulas (forgeplanner.engine.speed) with hand-computed values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forgeplanner.engine.quant import get_quant
from forgeplanner.engine.speed import (
    HostSpeedInputs,
    RuntimeConstants,
    _lookup,
    _mean_min,
    attention_shape,
    decode_design,
    dot,
    kv_read_multiplier,
    model_speed_inputs,
    prefill_design,
    prefill_flops_per_token,
    quant_class,
    speed_point,
    terms,
    ttft_seconds,
    weights_read_per_token,
)
from forgeplanner.engine.weights import weights_breakdown
from models_db import load_models

MODELS = load_models()

# Round numbers so every expected value below can be checked by hand.
C = RuntimeConstants(
    decode={"stream": 1.0, "stream:M4": 1.2, "stream_ultra": 0.5, "kv": 2.0, "core": 2.0,
            "dequant:q8": 1.0, "dequant:legacy4": 3.0, "attn": 1.0, "layer": 1e-4,
            "token": 1e-3},
    prefill={"mm": 1.5, "mm:float": 1.25, "mm:kquant": 2.0, "mm_gen:M5": -0.5, "mm_na": -0.25,
             "mm_ultra": 0.25, "reread": 1.5, "attn_fa": 1.0, "attn_nofa": 2.0, "call": 0.01},
    uses_neural_accelerators=True,
)  # fmt: skip


def test_mean_min_hand_values():
    assert _mean_min(0, 4, 2) == pytest.approx(1.25)  # min(p,2) for p=0..3: 0,1,2,2
    assert _mean_min(5, 3, 10) == pytest.approx(6.0)  # all below the window: 5,6,7
    assert _mean_min(10, 2, 4) == pytest.approx(4.0)  # all above: the window
    got = _mean_min(np.array([0, 5]), np.array([4, 3]), 2)
    assert got.tolist() == pytest.approx([1.25, 2.0])


def test_attention_flops_full_and_sliding():
    llama = attention_shape(MODELS.get("llama-2-7b"))
    # 4 * n_heads 32 * head_dim 128 per layer, 32 layers, MHA
    assert llama.full_coeff == 4 * 32 * 128 * 32 == 524_288
    assert llama.windowed == ()
    assert llama.gqa_ratio == 1.0
    assert float(llama.flops_at(1000)) == 524_288_000
    # mean over a 512-token prompt from 0: mean position 255.5
    assert float(llama.mean_flops(0, 512)) == pytest.approx(524_288 * 255.5)
    gemma = attention_shape(MODELS.get("gemma-3-4b"))
    # 8 heads x 256 dims -> 8192 per layer; 5 global layers, 29 windowed (window 1024)
    assert gemma.full_coeff == 8192 * 5
    assert gemma.windowed == ((1024, 8192 * 29),)
    assert float(gemma.flops_at(2048)) == 40_960 * 2048 + 237_568 * 1024


def test_coefficient_lookup_falls_back_along_classes_and_to_the_pooled_term():
    assert _lookup(C.decode, "stream:M4") == 1.2
    assert _lookup(C.decode, "stream:M7") == 1.0  # unknown generation: pooled streaming
    assert _lookup(C.prefill, "mm:iquant") == 2.0  # i-quants borrow the k-quant kernels
    assert _lookup(C.prefill, "mm:q8") == 1.5  # no class coefficient: the pooled matmul
    assert _lookup(C.decode, "dequant:float") == 0.0  # floats: nothing to dequantize
    assert _lookup(C.prefill, "mm_gen:M1") == 0.0  # no adjustment for that generation


def test_decode_design_and_dot_hand_computed():
    d = decode_design(
        weights_read_bytes=1e9, experts_read_bytes=0.0, kv_bytes=1e6 * 4, active_params=5e8,
        n_layers=10, attn_flops=1e9, bandwidth=1e11, flops=1e12, is_ultra=1.0,
        generation="M4", qclass="legacy4",
    )  # fmt: skip
    assert d["stream:M4"] == pytest.approx(1e-2)  # 1 GB / 100 GB/s
    assert d["kv"] == pytest.approx(4e6 / 1e11)
    assert d["dequant:legacy4"] == pytest.approx(5e8 / 1e12)
    parts = terms(C.decode, d)
    assert parts["stream:M4"] == pytest.approx(1.2e-2)
    assert parts["stream_ultra"] == pytest.approx(0.5e-2)
    assert parts["kv"] == pytest.approx(2 * 4e-5)
    assert parts["core"] == pytest.approx(2 * 1.004e9 / 1e12)
    assert parts["dequant:legacy4"] == pytest.approx(3 * 5e-4)
    assert parts["attn"] == pytest.approx(1e-3)
    assert parts["layer"] == pytest.approx(1e-3)
    assert parts["token"] == pytest.approx(1e-3)
    assert float(dot(C.decode, d)) == pytest.approx(sum(parts.values()))


def test_prefill_design_neural_accelerators_and_generation_adjustment():
    kw = dict(weight_flops=1e10, expert_flops=0.0, attn_flops=1e9, weights_total_bytes=4e9,
              n_ubatch=500, n_layers=10, bandwidth=1e11, flops=1e13, is_ultra=0.0,
              prompt_tokens=1000, qclass="kquant", flash_attention=True)  # fmt: skip
    plain = prefill_design(generation="M4", neural_accelerators=False, **kw)
    m5 = prefill_design(generation="M5", neural_accelerators=True, **kw)
    t_plain = float(dot(C.prefill, plain))
    # 1e10/1e13 x 2.0 (k-quant) + 1e9/1e13 x 1.0 (fa) + 4e9 x 1.5 / (500 x 1e11) + 0.01 / 1000
    assert t_plain == pytest.approx(2e-3 + 1e-4 + 1.2e-4 + 1e-5)
    # M5 with accelerators: 2.0 - 0.5 (generation) - 0.25 (accelerators)
    assert float(dot(C.prefill, m5)) == pytest.approx(t_plain - 1e-3 * 0.75)


def test_designs_broadcast_over_arrays():
    w = np.array([[1e9, 2e9]])
    bw = np.array([[1e11], [2e11]])
    d = decode_design(
        weights_read_bytes=w, experts_read_bytes=0.0, kv_bytes=0.0, active_params=1e9,
        n_layers=10, attn_flops=0.0, bandwidth=bw, flops=1e12, is_ultra=0.0,
        generation="M1", qclass="float",
    )  # fmt: skip
    s = dot(C.decode, d)
    assert s.shape == (2, 2)
    assert s[1, 1] == pytest.approx(2e9 / 2e11 + 2 * 2e9 / 1e12 + 1e-3 + 1e-3)


def test_prefill_flops_per_token():
    att = attention_shape(MODELS.get("llama-2-7b"))
    assert float(prefill_flops_per_token(6.6e9, att, 0, 512)) == pytest.approx(
        2 * 6.6e9 + 524_288 * 255.5
    )


def test_kv_read_multiplier():
    m = MODELS.get("llama-3.1-8b")  # 32 heads, 8 KV heads
    assert kv_read_multiplier(m, "llama.cpp", False) == 4.0
    assert kv_read_multiplier(m, "llama.cpp", True) == 1.0
    assert kv_read_multiplier(m, "mlx", False) == 1.0


def test_quant_classes():
    names = {"F16": "float", "BF16": "float", "Q8_0": "q8", "Q4_0": "legacy4", "IQ4_NL": "legacy4",
             "Q4_K_M": "kquant", "Q6_K": "kquant", "IQ2_XXS": "iquant", "MXFP4": "mxfp4",
             "NVFP4": "nvfp4", "UD-Q4_K_XL": "kquant", "MLX-4bit": "mlx_affine",
             "MLX-mxfp4": "mlx_fp4", "MLX-bf16": "float"}  # fmt: skip
    for q, cls in names.items():
        assert quant_class(get_quant(q)) == cls, q


def test_weights_read_dense_untied_skips_input_embedding():
    m = MODELS.get("llama-2-7b")
    read, total = weights_read_per_token(m, "F16")
    # the input embedding is 32000 x 4096 F16 = 262,144,000 bytes; a token reads one row
    assert total == weights_breakdown(m, "F16").total_bytes
    assert total - read == 32000 * 4096 * 2


def test_weights_read_tied_reads_everything():
    m = MODELS.get("gemma-3-4b")  # tied: the embedding is also the output head
    read, total = weights_read_per_token(m, "Q8_0")
    assert read == total


def test_weights_read_moe_reads_active_experts_only():
    m = MODELS.get("qwen3-30b-a3b")  # 128 experts, 8 per token, untied
    wb = weights_breakdown(m, "Q8_0")
    read, total = weights_read_per_token(m, "Q8_0")
    experts = wb.bytes_by_group["experts"]
    embd = wb.bytes_by_group["token_embd"]
    assert read == pytest.approx(total - embd - experts * (1 - 8 / 128))
    # ~3.0B active of 30.5B total -> about a tenth of the file per token
    assert 0.08 < read / total < 0.14


def test_kv_bytes_at_depth_respects_window():
    m = model_speed_inputs(MODELS.get("gemma-3-4b"), "Q4_0")
    per_layer = 2 * 4 * 256 * 2  # K+V, 4 KV heads x 256 dims, f16
    assert m.kv_full_bytes_per_token == per_layer * 5
    assert m.kv_window_bytes_per_token == per_layer * 29
    assert float(m.kv_bytes_at(4096)) == per_layer * (5 * 4096 + 29 * 1024)


def test_speed_point_slows_with_depth_and_ttft():
    m = model_speed_inputs(MODELS.get("llama-3.1-8b"), "Q4_K_M")
    h = HostSpeedInputs(4e11, 1.4e13, 0.0, True, "test", "test", "M3")
    c = dataclasses.replace(C, decode={**C.decode, "dequant:kquant": 1.0})
    p0 = speed_point(c, m, h, depth=0, prompt_tokens=512, prompt_start=0, n_ubatch=512)
    p1 = speed_point(c, m, h, depth=32768, prompt_tokens=512, prompt_start=32768, n_ubatch=512)
    assert p0.decode_s == pytest.approx(sum(p0.decode_terms.values()))
    assert p1.decode_s > p0.decode_s
    assert p1.prefill_s_per_token > p0.prefill_s_per_token
    assert ttft_seconds(512, 1 / 1024.0, 1 / 20.0) == pytest.approx(0.5 + 0.05)
