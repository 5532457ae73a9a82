"""The benchmark's flash-attention setting and the estimate made before it agree.

llama-bench's default is `-fa auto` (tools/llama-bench/llama-bench.cpp in the vendored
llama.cpp); the llama-cpp-python fallback can only pass on/off, so it resolves auto itself from
the GGUF's metadata with llama.cpp's rule (forgeplanner.engine.runtime_defaults), and the
estimate (bench.estimate_link) resolves the same spec for the same host."""

from __future__ import annotations

from types import SimpleNamespace

import gguf
import numpy as np
import pytest

from forgeplanner.bench.calibrate import run_flash_attention
from forgeplanner.bench.estimate_link import estimate_for_run
from forgeplanner.bench.llamacpp_py import _gguf_attention, flash_attn_for
from forgeplanner.domain.estimates import HostSpec
from models_db import load_models


def write_gguf(path, arch: str, head_dim: int, heads: int = 4, mla: bool = False) -> str:
    """A metadata-complete GGUF header with one tiny tensor (what llama-bench's loader and
    _gguf_attention read); shapes only, no weights worth running."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_embedding_length(heads * head_dim)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    if mla:
        w.add_kv_lora_rank(512)
        w.add_rope_dimension_count(64)
        w.add_key_length(192)
        w.add_value_length(128)
    else:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_tensor("token_embd.weight", np.zeros((8, heads * head_dim), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def test_fallback_reads_attention_widths_from_the_gguf(tmp_path):
    assert _gguf_attention(write_gguf(tmp_path / "a.gguf", "llama", 128)) == ("llama", 128, 128)
    # MLA runs absorbed in llama.cpp: K = kv_lora_rank + rope, V = kv_lora_rank
    mla = write_gguf(tmp_path / "m.gguf", "deepseek2", 192, mla=True)
    assert _gguf_attention(mla) == ("deepseek2", 576, 512)


def test_fallback_resolves_auto_like_llama_bench(tmp_path):
    llama = write_gguf(tmp_path / "a.gguf", "llama", 128)
    grok = write_gguf(tmp_path / "g.gguf", "grok", 128)
    cpu = {"n_gpu_layers": 0}
    assert flash_attn_for({"model_path": llama, "flash_attn": None, **cpu}) is True
    assert flash_attn_for({"model_path": grok, "flash_attn": None, **cpu}) is False
    assert flash_attn_for({"model_path": llama, "flash_attn": False, **cpu}) is False
    assert flash_attn_for({"model_path": llama, "flash_attn": True, **cpu}) is True


CPU_HOST = HostSpec(
    name="this Linux box", is_apple_silicon=False, memory_bytes=24 << 30,
    bandwidth_bytes_per_s=20e9, bandwidth_basis="measured: test", fp32_flops=2e11,
    fp32_flops_basis="measured: test", cpu_cores=2,
)  # fmt: skip


def test_estimate_before_a_run_uses_the_runs_setting():
    m = load_models().get("qwen2.5-0.5b")
    auto = estimate_for_run(m, "Q8_0", CPU_HOST, prompt_tokens=512, depth=4096)
    off = estimate_for_run(
        m, "Q8_0", CPU_HOST, prompt_tokens=512, depth=4096, flash_attention=False
    )
    assert auto["flash_attention"] is True and auto["flash_attention_basis"].startswith("auto")
    assert off["flash_attention"] is False
    # without flash attention decode streams the KV cache once per query head (GQA 7)
    assert off["decode_tps"] < auto["decode_tps"]


LCP = "llama-cpp-python"


@pytest.mark.parametrize(
    ("params", "measured", "expect"),
    [
        ({"flash_attn": None}, {"tool": "llama-bench", "tests": [{"extra": {"flash_attn": -1}}]},
         None),  # llama-bench's auto: resolved by the engine like any estimate
        ({"flash_attn": True}, {"tool": "llama-bench", "tests": [{"extra": {"flash_attn": 1}}]},
         True),
        ({"flash_attn": None}, {"tool": LCP, "tests": [{"extra": {"flash_attn": 1}}]},
         True),  # the fallback reports what it ran
        ({"flash_attn": None}, {"tool": LCP, "tests": [{}]},
         False),  # older fallback runs: Llama() default, off
        ({"flash_attn": False}, {"tool": "llama-bench", "tests": [{}]}, False),
    ],
)  # fmt: skip
def test_calibration_uses_each_runs_own_setting(params, measured, expect):
    run = SimpleNamespace(params=params, measured=measured)
    assert run_flash_attention(run) is expect
