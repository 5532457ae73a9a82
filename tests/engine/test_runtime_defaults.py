"""Flash attention as each runtime runs it when the user leaves it at the default (auto).

Rules re-stated from the runtimes' sources (see forgeplanner/engine/runtime_defaults.py):
llama.cpp src/llama-context.cpp + ggml-metal supports_op, Ollama fs/ggml/ggml.go, mlx
scaled_dot_product_attention.cpp."""

from __future__ import annotations

import dataclasses

import pytest

from catalog import load_catalog
from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.engine.compute_buffer import compute_bytes
from forgeplanner.engine.estimate import estimate, estimate_to_dict
from forgeplanner.engine.fit import max_context_that_fits
from forgeplanner.engine.runtime_defaults import (
    choice_for,
    flash_attention_choice,
    llamacpp_flash_attention,
    resolve_flash_attention,
    resolved_options,
)
from forgeplanner.engine.speed import model_speed_inputs
from forgeplanner.host import host_from_chip
from models_db import load_models

MODELS = load_models()
LLAMA_8B = MODELS.get("llama-3.1-8b")
CAT = load_catalog()


def chip_host(chip: str, gb: int, cores: int | None = None) -> HostSpec:
    return host_from_chip(CAT.find_chip(chip, cores), gb)


INTEL = HostSpec(
    name="Intel Mac mini", is_apple_silicon=False, memory_bytes=64 << 30,
    bandwidth_bytes_per_s=38e9, bandwidth_basis="catalog: test", fp32_flops=0.5e12,
    cpu_cores=6, chip_tier="intel",
)  # fmt: skip


def with_head_dim(m, hd: int):
    return dataclasses.replace(m, id=f"{m.id}-hd{hd}", head_dim=hd)


# --- llama.cpp ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.all(), ids=lambda m: m.id)
def test_llamacpp_auto_is_on_for_every_model_in_the_database(model):
    # every head size in the database (64, 96, 128, 256; MLA 576/512) has a Metal kernel
    for host in (None, INTEL):
        c = choice_for(model, RunOptions(), host)
        assert c.enabled and c.requested is None and c.label == "auto -> on", c.basis


def test_llamacpp_explicit_choice_wins():
    assert not resolve_flash_attention(LLAMA_8B, RunOptions(flash_attention=False))
    assert resolve_flash_attention(LLAMA_8B, RunOptions(flash_attention=True))
    assert resolved_options(LLAMA_8B, RunOptions()).flash_attention is True
    assert resolved_options(LLAMA_8B, RunOptions(flash_attention=False)).flash_attention is False


def test_llamacpp_auto_off_where_metal_has_no_kernel():
    odd = with_head_dim(LLAMA_8B, 160)  # not in ggml-metal's FLASH_ATTN_EXT head sizes
    metal = choice_for(odd, RunOptions())
    assert not metal.enabled and "head size 160" in metal.basis
    assert choice_for(odd, RunOptions(), INTEL).enabled  # the CPU backend has every size
    # a quantized V cache under auto turns it on regardless (llama_init_from_model)
    assert choice_for(odd, RunOptions(kv_type="q8_0")).enabled
    # and the memory follows: the score matrix is back
    assert compute_bytes(odd, RunOptions(context=32768)) == compute_bytes(
        odd, RunOptions(context=32768, flash_attention=False)
    )


def test_llamacpp_rule_from_gguf_metadata():
    assert llamacpp_flash_attention("llama", 128, 128).enabled
    assert llamacpp_flash_attention("deepseek2", 576, 512).enabled  # MLA, absorbed
    assert not llamacpp_flash_attention("llama", 160, 160).enabled
    assert llamacpp_flash_attention("llama", 160, 160, apple_gpu=False).enabled
    assert not llamacpp_flash_attention("grok", 128, 128).enabled  # forced off for Grok
    assert not llamacpp_flash_attention("grok", 128, 128, requested=True).enabled
    with pytest.raises(ValueError, match="Grok"):
        llamacpp_flash_attention("grok", 128, 128, kv_type="q8_0")


def test_quantized_kv_with_flash_attention_off_is_refused():
    with pytest.raises(ValueError, match="flash attention"):
        RunOptions(kv_type="q4_0", flash_attention=False)
    c = choice_for(LLAMA_8B, RunOptions(kv_type="q4_0"))
    assert c.enabled and "V cache turns flash attention on" in c.basis


# --- Ollama ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "on"),
    [("gpt-oss-20b", True), ("gemma-3-27b", True), ("qwen3-8b", True), ("qwen3-30b-a3b", True),
     ("qwen3-next-80b-a3b", True), ("qwen3.5-35b-a3b", True), ("llama-3.1-8b", False),
     ("qwen2.5-7b", False), ("gemma-2-9b", False), ("deepseek-v3", False)],
)  # fmt: skip
def test_ollama_default_follows_its_architecture_list(model_id, on):
    c = choice_for(MODELS.get(model_id), RunOptions(runtime="ollama"))
    assert c.enabled is on, c.basis
    assert "ggml.go" in c.basis


def test_ollama_explicit_and_unsupported():
    ollama = RunOptions(runtime="ollama", flash_attention=True)
    assert resolve_flash_attention(LLAMA_8B, ollama)  # OLLAMA_FLASH_ATTENTION=1
    assert not resolve_flash_attention(MODELS.get("gemma-2-9b"), ollama)  # not supported
    assert not resolve_flash_attention(
        MODELS.get("gpt-oss-20b"), RunOptions(runtime="ollama", flash_attention=False)
    )
    # a quantized OLLAMA_KV_CACHE_TYPE needs flash attention: assumed enabled ...
    assert resolve_flash_attention(LLAMA_8B, RunOptions(runtime="ollama", kv_type="q8_0"))
    # ... and refused where Ollama would silently keep an f16 cache
    with pytest.raises(ValueError, match="f16"):
        choice_for(MODELS.get("deepseek-v3"), RunOptions(runtime="ollama", kv_type="q8_0"))


# --- MLX ---------------------------------------------------------------------------------------


def test_mlx_fused_kernel_by_head_size_and_cache():
    mlx = RunOptions(runtime="mlx")
    assert resolve_flash_attention(LLAMA_8B, mlx)  # head size 128: fused prefill kernel
    assert resolve_flash_attention(MODELS.get("gpt-oss-20b"), mlx)  # 64
    assert not resolve_flash_attention(MODELS.get("gemma-3-4b"), mlx)  # 256: unfused
    assert not resolve_flash_attention(MODELS.get("deepseek-v3"), mlx)  # MLA 192/128
    assert not resolve_flash_attention(LLAMA_8B, RunOptions(runtime="mlx", kv_type="q8_0"))
    # MLX has no switch: the user's choice does not change what runs
    for fa in (True, False):
        c = flash_attention_choice(LLAMA_8B, "mlx", "f16", fa)
        assert c.enabled and "no switch" in c.basis


# --- consumers use the resolved value ----------------------------------------------------------


def test_speed_inputs_use_the_resolved_value():
    auto = model_speed_inputs(LLAMA_8B, "Q4_K_M")
    off = model_speed_inputs(LLAMA_8B, "Q4_K_M", flash_attention=False)
    assert auto.kv_multiplier == 1.0  # flash attention reads each KV head once
    assert off.kv_multiplier == 4.0  # without: once per query head of the GQA group


def test_largest_context_default_vs_flash_attention_off():
    # Llama-3.1-8B Q4_K_M on a 32 GB M2 Pro: without flash attention the 128K-token score
    # matrix of one ubatch does not fit; llama.cpp's default (auto -> on) holds the model's
    # whole 131072-token context
    host = chip_host("M2 Pro", 32)
    off = max_context_that_fits(LLAMA_8B, "Q4_K_M", host, RunOptions(flash_attention=False))
    auto = max_context_that_fits(LLAMA_8B, "Q4_K_M", host, RunOptions())
    assert off == 88832
    assert auto == 131072 == LLAMA_8B.max_context


def test_estimate_reports_resolved_flash_attention():
    host = chip_host("M2 Pro", 32)
    e = estimate(LLAMA_8B, "Q4_K_M", host, RunOptions())
    d = estimate_to_dict(e)
    assert d["flash_attention"] is True and e.options.flash_attention is True
    assert d["flash_attention_basis"].startswith("auto -> on")
    d_off = estimate_to_dict(estimate(LLAMA_8B, "Q4_K_M", host, RunOptions(flash_attention=False)))
    assert d_off["flash_attention"] is False
    assert d_off["memory"]["compute_bytes"] > d["memory"]["compute_bytes"]
