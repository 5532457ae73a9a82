"""Memory engine vs real llama.cpp (llama-cpp-python 0.3.36, CPU backend).

Random-weight GGUF files of several shapes are written with the `gguf` package, quantized by
llama.cpp's own quantizer (so the per-tensor mixes come from llama.cpp, not from us) and loaded;
the buffer sizes llama.cpp logs are compared with the engine's figures computed from the
*config* (ModelSpec without a tensor list), i.e. the same path catalog models take:
- weights vs `CPU_Mapped model buffer size`: within 1 %;
- KV cache vs `CPU KV buffer size`: within 1 % (in practice exact) across KV types, flash
  attention, contexts that need padding, parallel sequences and a sliding-window model;
- compute buffer vs `CPU compute buffer size`: error recorded and bounded (see COMPUTE_TOL).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.compute_buffer import compute_bytes
from forgeplanner.engine.kv_cache import kv_cache_breakdown
from forgeplanner.engine.weights import weights_breakdown

pytestmark = pytest.mark.slow

from tests.engine.llamacpp_memory_harness import (  # noqa: E402
    Shape,
    load,
    quantize,
    spec_for,
    tensor_data_bytes,
    tensor_infos,
    write_f16_gguf,
)

SHAPES = {
    # GQA 4:1, head_dim = H / heads, K-quant friendly widths, Llama-2-size vocabulary
    "gqa": Shape("gqa", "llama", 512, 4, 8, 2, 64, 1536, 32000),
    # head_dim 128 != H / heads (64): q width 1024 on a 512 model (Qwen3 / Gemma pitfall)
    "hd128": Shape("hd128", "llama", 512, 3, 8, 2, 128, 1024, 4096),
    # MHA, H = 640 is not a multiple of 256: k-quants fall back to 32-blocks (gpt-oss case)
    "mha640": Shape("mha640", "llama", 640, 3, 10, 10, 64, 1792, 4096),
    # Gemma 3 layout: 5 sliding : 1 global, window 128, tied embeddings
    "gemma3": Shape("gemma3", "gemma3", 512, 7, 4, 2, 128, 1536, 4096, sliding_window=128),
    # Qwen3-MoE layout: 16 experts, 4 per token, stacked (3D) expert tensors, F32 router
    "moe": Shape(
        "moe",
        "qwen3moe",
        512,
        4,
        8,
        2,
        128,
        768,
        4096,
        n_expert=16,
        n_expert_used=4,
        expert_ffn=256,
    ),
    # DeepSeek-V3 layout (deepseek2 arch): MLA latent 256 + rope 64, q_lora, 1 dense layer,
    # then MoE with a shared expert
    "mla": Shape(
        "mla",
        "deepseek2",
        512,
        3,
        8,
        8,
        192,
        1024,
        4096,
        n_expert=8,
        n_expert_used=2,
        expert_ffn=256,
        n_shared=1,
        dense_lead=1,
        kv_lora=256,
        q_lora=384,
        rope=64,
        v_head=128,
    ),
    # Qwen3-Next layout: gated attention on every 4th layer, Gated DeltaNet elsewhere
    # (recurrent F32 state per sequence), 16 experts + a shared expert
    "hybrid": Shape(
        "hybrid",
        "qwen3next",
        512,
        8,
        4,
        2,
        128,
        512,
        4096,
        n_expert=16,
        n_expert_used=4,
        expert_ffn=256,
        lin_k_heads=4,
        lin_v_heads=8,
        lin_head=64,
        shexp_ffn=256,
    ),
}
WEIGHT_QUANTS = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "IQ4_XS", "Q3_K_M", "Q2_K"]
COMPUTE_TOL = 0.06  # relative; measured errors are printed by the tests (-s)


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llamacpp_memory")


_FILES: dict[tuple[str, str], Path] = {}


def model_file(gguf_dir: Path, shape: str, quant: str) -> Path:
    key = (shape, quant)
    if key not in _FILES:
        f16 = gguf_dir / f"{shape}-F16.gguf"
        if not f16.exists():
            write_f16_gguf(f16, SHAPES[shape])
        _FILES[(shape, "F16")] = f16
        if quant != "F16":
            _FILES[key] = quantize(f16, gguf_dir / f"{shape}-{quant}.gguf", quant)
    return _FILES[key]


def _rel(mine: int, theirs: int) -> float:
    return (mine - theirs) / theirs


@pytest.mark.parametrize("quant", WEIGHT_QUANTS)
@pytest.mark.parametrize("shape", ["gqa", "mha640", "moe", "mla", "hybrid"])
def test_weights_match_llamacpp_buffer(gguf_dir: Path, shape: str, quant: str) -> None:
    path = model_file(gguf_dir, shape, quant)
    buf = load(path, 512)
    mapped = buf.model["CPU_Mapped"]
    spec = spec_for(SHAPES[shape])
    # llama_model_quantize runs here without an importance matrix
    wb = weights_breakdown(spec, quant, imatrix=False)
    err = _rel(wb.total_bytes, mapped)
    print(f"weights {shape} {quant}: engine {wb.total_bytes} llama.cpp {mapped} ({err:+.3%})")
    assert abs(err) < 0.01
    # the mix itself: our per-tensor types give the file's tensor bytes (to the byte where the
    # config names every tensor; QK norms, post-attention norms and the shared-expert gate of
    # the MoE/hybrid shapes are below the catalog's rounding and not itemised)
    not_itemised = {"moe": 4096, "hybrid": 18432}.get(shape, 0)
    assert abs(wb.total_bytes - tensor_data_bytes(path)) <= not_itemised


def test_weights_of_sliding_model_match(gguf_dir: Path) -> None:
    path = model_file(gguf_dir, "gemma3", "Q4_K_M")
    mapped = load(path, 512).model["CPU_Mapped"]
    mine = weights_breakdown(spec_for(SHAPES["gemma3"]), "Q4_K_M").total_bytes
    print(f"weights gemma3 Q4_K_M: engine {mine} llama.cpp {mapped} ({_rel(mine, mapped):+.3%})")
    assert abs(_rel(mine, mapped)) < 0.01


KV_CASES = [
    # shape, context, parallel, kv_type, flash attention
    ("gqa", 4096, 1, "f16", False),
    ("gqa", 1000, 1, "f16", False),  # n_ctx padded to 256 -> 1024 cells
    ("gqa", 8192, 4, "f16", False),  # 4 streams of 2048
    ("gqa", 3000, 3, "q8_0", True),  # 3072 / 3 = 1024 per stream
    ("gqa", 4096, 2, "q4_0", True),
    ("hd128", 8192, 1, "f16", True),
    ("hd128", 2048, 1, "q8_0", True),
    ("mha640", 4096, 1, "q4_0", True),
    ("mha640", 700, 2, "f16", False),
    ("gemma3", 4096, 1, "f16", False),  # SWA cache: pad(min(4096, 128 + 512), 256) = 768
    ("gemma3", 1000, 1, "q8_0", True),
    ("gemma3", 16384, 4, "f16", True),
    ("gemma3", 300, 1, "f16", False),  # window cache capped by the context
    ("moe", 4096, 2, "q8_0", True),
    ("mla", 4096, 1, "f16", False),  # K only: 3 layers x (256 + 64) x 2 B per cell
    ("mla", 5000, 2, "q8_0", True),
    ("hybrid", 4096, 1, "f16", False),  # KV on 2 of 8 layers
    ("hybrid", 3000, 3, "q4_0", True),  # + 3 recurrent-state cells
]


@pytest.mark.parametrize(("shape", "ctx", "nseq", "kv_type", "fa"), KV_CASES)
def test_kv_cache_matches_llamacpp_buffer(
    gguf_dir: Path, shape: str, ctx: int, nseq: int, kv_type: str, fa: bool
) -> None:
    path = model_file(gguf_dir, shape, "F16")
    buf = load(path, ctx, n_seq=nseq, kv_type=kv_type, flash_attention=fa)
    opts = RunOptions(context=ctx, parallel=nseq, kv_type=kv_type, flash_attention=fa)
    kv = kv_cache_breakdown(spec_for(SHAPES[shape]), opts)
    theirs = buf.kv + buf.rs  # KV cache plus, for hybrids, the recurrent-state buffer
    err = _rel(kv.total_bytes, theirs)
    print(
        f"kv {shape} ctx {ctx} x{nseq} {kv_type} fa={fa}: {kv.total_bytes} vs {theirs} ({err:+.3%})"
    )
    assert abs(err) < 0.01
    if buf.rs:  # hybrids: the recurrent state on its own (llama.cpp "RS buffer")
        assert abs(_rel(kv.recurrent_bytes, buf.rs)) < 0.01


COMPUTE_CASES = [
    ("gqa", 512, 1, False),
    ("gqa", 8192, 1, False),
    ("gqa", 8192, 1, True),
    ("hd128", 8192, 1, False),
    ("hd128", 8192, 1, True),
    ("hd128", 8192, 4, False),
    ("mha640", 4096, 1, False),
    ("mha640", 16384, 2, True),
    ("gemma3", 4096, 1, False),
    ("gemma3", 16384, 4, True),
    ("moe", 4096, 1, False),
    ("moe", 16384, 1, True),
    ("moe", 4096, 2, True),
    ("mla", 4096, 1, False),
    ("mla", 16384, 1, True),
    ("mla", 4096, 2, True),
    ("hybrid", 4096, 1, False),
    ("hybrid", 16384, 1, True),
    ("hybrid", 4096, 2, True),
]


@pytest.mark.parametrize(("shape", "ctx", "nseq", "fa"), COMPUTE_CASES)
def test_compute_buffer_close_to_llamacpp(
    gguf_dir: Path, shape: str, ctx: int, nseq: int, fa: bool
) -> None:
    path = model_file(gguf_dir, shape, "F16")
    buf = load(path, ctx, n_seq=nseq, flash_attention=fa)
    opts = RunOptions(context=ctx, parallel=nseq, flash_attention=fa)
    mine = compute_bytes(spec_for(SHAPES[shape]), opts)
    err = _rel(mine, buf.compute)
    print(f"compute {shape} ctx {ctx} x{nseq} fa={fa}: {mine} vs {buf.compute} ({err:+.2%})")
    assert abs(err) < COMPUTE_TOL


@pytest.mark.parametrize("shape", ["gqa", "mla", "hybrid"])
def test_gguf_tensor_list_route(gguf_dir: Path, shape: str) -> None:
    """A model imported from a GGUF file: its own quant is the exact tensor bytes; another
    quant re-types each real tensor by name and shape with llama.cpp's policy and must give
    the bytes llama.cpp's quantizer writes."""
    base = spec_for(SHAPES[shape])
    f16 = model_file(gguf_dir, shape, "F16")
    from_f16 = dataclasses.replace(base, tensors=tensor_infos(f16), gguf_file_type="F16")
    assert weights_breakdown(from_f16, "F16").exact
    assert weights_breakdown(from_f16, "F16").total_bytes == tensor_data_bytes(f16)
    for quant in ("Q4_K_M", "Q2_K", "Q8_0"):
        qfile = model_file(gguf_dir, shape, quant)
        mine = weights_breakdown(from_f16, quant, imatrix=False).total_bytes
        assert mine == tensor_data_bytes(qfile), quant
        mapped = load(qfile, 512).model["CPU_Mapped"]
        assert abs(_rel(mine, mapped)) < 0.01
