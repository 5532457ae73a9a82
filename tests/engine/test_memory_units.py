"""Memory engine: hand-computed values, published reference figures and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.model import AttentionSpec, ModelSpec, MoESpec
from forgeplanner.domain.units import GiB, MiB
from forgeplanner.engine.compute_buffer import compute_bytes, compute_bytes_array
from forgeplanner.engine.kv_cache import (
    kv_bytes_array,
    kv_bytes_per_token,
    kv_cache_breakdown,
    kv_cache_bytes,
)
from forgeplanner.engine.memory import estimate_memory
from forgeplanner.engine.quant import (
    QUANT_NAMES,
    check_combination,
    fallback_type,
    get_quant,
    ggml_bpw,
    quants_for,
)
from forgeplanner.engine.runtime_defaults import resolve_flash_attention
from forgeplanner.engine.weights import weights_breakdown, weights_bytes, weights_bytes_table
from forgeplanner.errors import NotFoundError


def spec(**kw) -> ModelSpec:
    base = dict(
        id="m",
        name="m",
        family="llama-3.1",
        params_total=0,
        params_active=None,
        n_layers=32,
        hidden_size=4096,
        intermediate_size=14336,
        n_heads=32,
        n_kv_heads=8,
        head_dim=128,
        vocab_size=128256,
        tie_word_embeddings=False,
        max_context=131072,
        attention=AttentionSpec(kind="full"),
        moe=None,
        license="x",
        source="test",
    )
    base.update(kw)
    if not base["params_total"]:
        H, L, ff = base["hidden_size"], base["n_layers"], base["intermediate_size"]
        q, kv = base["n_heads"] * base["head_dim"], base["n_kv_heads"] * base["head_dim"]
        per = H * q * 2 + H * kv * 2 + 3 * H * ff + 2 * H
        emb = base["vocab_size"] * H * (1 if base["tie_word_embeddings"] else 2)
        base["params_total"] = L * per + emb + H
    return ModelSpec(**base)


LLAMA_8B = spec(id="llama-3.1-8b")  # 8.030B, as models.csv
LLAMA_70B = spec(
    id="llama-3.1-70b", n_layers=80, hidden_size=8192, intermediate_size=28672, n_heads=64
)
GEMMA3_27B = spec(
    id="gemma-3-27b",
    family="gemma-3",
    n_layers=62,
    hidden_size=5376,
    intermediate_size=21504,
    n_heads=32,
    n_kv_heads=16,
    head_dim=128,
    vocab_size=262144,
    tie_word_embeddings=True,
    attention=AttentionSpec(
        kind="sliding",
        sliding_window=1024,
        sliding_layers=tuple(i for i in range(62) if (i + 1) % 6 != 0),
    ),
)
DEEPSEEK_V3 = spec(
    id="deepseek-v3",
    family="deepseek-v3",
    params_total=671_026_000_000,
    params_active=36_626_000_000,
    n_layers=61,
    hidden_size=7168,
    intermediate_size=18432,
    n_heads=128,
    n_kv_heads=128,
    head_dim=192,
    vocab_size=129280,
    attention=AttentionSpec(
        kind="mla",
        mla_kv_lora_rank=512,
        mla_qk_rope_head_dim=64,
        mla_qk_nope_head_dim=128,
        mla_v_head_dim=128,
        mla_q_lora_rank=1536,
    ),
    moe=MoESpec(
        n_experts=256, experts_per_token=8, shared_experts=1, expert_ffn=2048, first_dense_layers=3
    ),
)
QWEN3_NEXT = spec(
    id="qwen3-next-80b-a3b",
    family="qwen3-next",
    params_total=79_674_000_000,
    params_active=3_564_000_000,
    n_layers=48,
    hidden_size=2048,
    intermediate_size=5120,
    n_heads=16,
    n_kv_heads=2,
    head_dim=256,
    vocab_size=151936,
    attention=AttentionSpec(
        kind="hybrid",
        attention_layers=tuple(range(3, 48, 4)),
        recurrent_state_bytes_per_seq=79_036_416,
    ),
    moe=MoESpec(n_experts=512, experts_per_token=10, shared_experts=1, expert_ffn=512),
)
GPT_OSS_20B = spec(
    id="gpt-oss-20b",
    family="gpt-oss",
    params_total=20_915_000_000,
    params_active=3_608_000_000,
    n_layers=24,
    hidden_size=2880,
    intermediate_size=2880,
    n_heads=64,
    n_kv_heads=8,
    head_dim=64,
    vocab_size=201088,
    native_quant="MXFP4",
    attention=AttentionSpec(
        kind="sliding", sliding_window=128, sliding_layers=tuple(range(0, 24, 2))
    ),
    moe=MoESpec(n_experts=32, experts_per_token=4, shared_experts=0, expert_ffn=2880),
)


# --- KV cache: hand-computed ---------------------------------------------------------------


def test_llama31_8b_f16_kv_at_8192_is_one_gib() -> None:
    # 2 (K,V) * 32 layers * 8 kv heads * 128 head_dim * 2 B * 8192 tokens = 2**30
    assert kv_cache_bytes(LLAMA_8B, RunOptions(context=8192)) == GiB


def test_quantized_kv_block_sizes() -> None:
    fa = dict(context=8192, flash_attention=True)
    assert kv_cache_bytes(LLAMA_8B, RunOptions(kv_type="q8_0", **fa)) == GiB * 34 // 64
    assert kv_cache_bytes(LLAMA_8B, RunOptions(kv_type="q4_0", **fa)) == GiB * 18 // 64


def test_llamacpp_pads_context_to_256_cells() -> None:
    kv = kv_cache_breakdown(LLAMA_8B, RunOptions(context=1000))
    assert kv.cells_full == 1024
    assert kv.total_bytes == 128 * 1024 * 1024  # 128 KiB per token


def test_parallel_sequences_split_llamacpp_context() -> None:
    # -c 8192 -np 3: n_ctx_seq = pad(8192 // 3, 256) = 2816 cells per stream, 3 streams
    kv = kv_cache_breakdown(LLAMA_8B, RunOptions(context=8192, parallel=3))
    assert kv.cells_full == 2816 * 3
    # Ollama: num_ctx per sequence times OLLAMA_NUM_PARALLEL
    ol = kv_cache_breakdown(LLAMA_8B, RunOptions(context=8192, parallel=3, runtime="ollama"))
    assert ol.cells_full == 8192 * 3


def test_deepseek_v3_mla_latent_only() -> None:
    # 61 layers * (512 + 64) * 2 B per token, K side only (llama.cpp PR #19067)
    assert kv_bytes_per_token(DEEPSEEK_V3) == 61 * 576 * 2
    assert kv_cache_bytes(DEEPSEEK_V3, RunOptions(context=8192)) == 61 * 576 * 2 * 8192
    # sparse-attention variant: +128-wide indexer key per layer
    v32 = spec(
        **{
            **_fields(DEEPSEEK_V3),
            "id": "deepseek-v3.2",
            "attention": AttentionSpec(
                kind="mla", mla_kv_lora_rank=512, mla_qk_rope_head_dim=64, indexer_head_dim=128
            ),
        }
    )
    assert kv_bytes_per_token(v32) == 61 * (576 + 128) * 2


def _fields(m: ModelSpec) -> dict:
    return {f: getattr(m, f) for f in m.__slots__ if not f.startswith("_")}


def test_gemma3_27b_sliding_cache() -> None:
    # 10 global layers hold all 32768 cells; 52 local layers hold
    # pad(min(32768, 1024 + n_ubatch 512), 256) = 1536 cells; 2 * 16 * 128 * 2 B = 8 KiB/cell
    kv = kv_cache_breakdown(GEMMA3_27B, RunOptions(context=32768))
    assert (kv.cells_full, kv.cells_swa) == (32768, 1536)
    assert kv.total_bytes == 8192 * (10 * 32768 + 52 * 1536)
    # MLX: RotatingKVCache(1024) plus one 2048-token prefill chunk while reading the prompt
    mlx = kv_cache_breakdown(GEMMA3_27B, RunOptions(context=32768, runtime="mlx"))
    assert mlx.total_bytes == 8192 * (10 * 32768 + 52 * (1023 + 2048))


def test_gpt_oss_window_128() -> None:
    kv = kv_cache_breakdown(GPT_OSS_20B, RunOptions(context=8192))
    # 12 full layers x 8192 + 12 window layers x pad(128 + 512, 256) = 768 cells; 2*8*64*2 B
    assert kv.total_bytes == 2048 * (12 * 8192 + 12 * 768)


def test_hybrid_attention_layers_plus_recurrent_state() -> None:
    opts = RunOptions(context=32768, parallel=2)
    kv = kv_cache_breakdown(QWEN3_NEXT, opts)
    per_cell = 2 * 12 * 2 * 256 * 2  # 12 attention layers
    assert kv.attention_bytes == per_cell * 32768
    assert kv.recurrent_bytes == 2 * 79_036_416
    assert estimate_memory(QWEN3_NEXT, "Q4_K_M", opts).recurrent_state_bytes == 2 * 79_036_416


def test_mlx_cache_grows_in_steps_of_256() -> None:
    a = kv_cache_bytes(LLAMA_8B, RunOptions(context=1, runtime="mlx"))
    b = kv_cache_bytes(LLAMA_8B, RunOptions(context=256, runtime="mlx"))
    c = kv_cache_bytes(LLAMA_8B, RunOptions(context=257, runtime="mlx"))
    assert a == b == 256 * 128 * 1024 and c == 2 * b


def test_quantized_kv_needs_flash_attention_on_llamacpp() -> None:
    # llama.cpp refuses a quantized V cache with -fa off ...
    with pytest.raises(ValueError, match="flash attention"):
        RunOptions(kv_type="q8_0", flash_attention=False)
    # ... and under its default -fa auto turns flash attention on (llama-context.cpp)
    o = RunOptions(kv_type="q8_0")
    assert o.flash_attention is None and resolve_flash_attention(LLAMA_8B, o)
    on = RunOptions(kv_type="q8_0", flash_attention=True)
    assert compute_bytes(LLAMA_8B, o) == compute_bytes(LLAMA_8B, on)


@settings(max_examples=60, deadline=None)
@given(
    a=st.integers(1, 300_000),
    b=st.integers(1, 300_000),
    par=st.integers(1, 8),
    rt=st.sampled_from(["llama.cpp", "ollama", "mlx"]),
    m=st.sampled_from([LLAMA_8B, GEMMA3_27B, DEEPSEEK_V3, QWEN3_NEXT, GPT_OSS_20B]),
)
def test_kv_and_compute_monotone_in_context(a, b, par, rt, m) -> None:
    lo, hi = sorted((a, b))
    o_lo, o_hi = (
        RunOptions(context=lo, parallel=par, runtime=rt),
        RunOptions(context=hi, parallel=par, runtime=rt),
    )
    assert kv_cache_bytes(m, o_lo) <= kv_cache_bytes(m, o_hi)
    assert compute_bytes(m, o_lo) <= compute_bytes(m, o_hi)


def test_vectorised_helpers_equal_scalar() -> None:
    ctx = np.array([1, 300, 4096, 8192, 33000, 131072])
    for m in (LLAMA_8B, GEMMA3_27B, DEEPSEEK_V3, QWEN3_NEXT):
        for rt, par, fa in (
            ("llama.cpp", 1, False),
            ("llama.cpp", 3, True),
            ("ollama", 2, True),
            ("mlx", 1, False),
        ):
            kv = kv_bytes_array(m, ctx, parallel=par, runtime=rt)
            cb = compute_bytes_array(m, ctx, flash_attention=fa, parallel=par, runtime=rt)
            for i, c in enumerate(ctx):
                o = RunOptions(context=int(c), parallel=par, runtime=rt, flash_attention=fa)
                assert kv[i] == kv_cache_bytes(m, o)
                assert cb[i] == compute_bytes(m, o)


# --- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "quant", "bpw"),
    [
        # llama.cpp's published effective bits per weight (shared/reference/README.md)
        (LLAMA_8B, "Q4_K_M", 4.90),
        (LLAMA_8B, "Q5_K_M", 5.70),
        (LLAMA_8B, "Q3_K_M", 4.00),
        (LLAMA_8B, "Q2_K", 3.17),
        (LLAMA_70B, "Q4_K_M", 4.82),
    ],
)
def test_file_type_mixes_match_reference_bpw(model, quant, bpw) -> None:
    wb = weights_breakdown(model, quant)
    assert wb.bits_per_weight == pytest.approx(bpw, abs=0.02)


def test_llama8b_q4_k_m_policy_details() -> None:
    t = weights_breakdown(LLAMA_8B, "Q4_K_M").types_by_group
    assert set(t["output"]) == {"Q6_K"} and set(t["token_embd"]) == {"Q4_K"}
    # use_more_bits: 16 of 32 layers get Q6_K attn_v and ffn_down
    assert t["ffn"]["Q6_K"] == 16 * 4096 * 14336
    assert t["attention"]["Q6_K"] == 16 * 4096 * 1024
    # 70B: attn_v bumped from Q4_K to Q5_K in the other layers (LLM_TYPE_70B rule)
    t70 = weights_breakdown(LLAMA_70B, "Q4_K_M").types_by_group["attention"]
    assert t70["Q5_K"] == 40 * 8192 * 1024


def test_unquantized_and_flat_types() -> None:
    p = LLAMA_8B.params_total
    norms = 65 * 4096
    assert weights_bytes(LLAMA_8B, "F16") == (p - norms) * 2 + norms * 4
    assert weights_bytes(LLAMA_8B, "BF16") == weights_bytes(LLAMA_8B, "F16")
    assert weights_bytes(LLAMA_8B, "F32") == p * 4
    assert ggml_bpw("Q8_0") == 8.5 and ggml_bpw("Q4_K") == 4.5 and ggml_bpw("MXFP4") == 4.25


def test_mlx_affine_bits() -> None:
    wb = weights_breakdown(LLAMA_8B, "MLX-4bit")
    assert wb.bits_per_weight == pytest.approx(4.5, abs=0.001)
    assert weights_breakdown(LLAMA_8B, "MLX-8bit").bits_per_weight == pytest.approx(8.5, abs=0.01)
    assert weights_breakdown(LLAMA_8B, "MLX-bf16").bits_per_weight == pytest.approx(16, abs=0.01)


def test_gpt_oss_experts_stay_mxfp4_in_every_quant() -> None:
    for q in ("F16", "Q8_0", "Q4_K_M", "Q2_K", "MXFP4", "MLX-4bit"):
        wb = weights_breakdown(GPT_OSS_20B, q)
        ex = wb.types_by_group["experts"]
        assert set(ex) - {"F32", "bf16"} == {"MXFP4"}, (q, ex)
    # hidden 2880 is not a multiple of 256: rows of 2880 fall back (Q4_K -> Q5_0, attn_v's
    # Q6_K -> Q8_0); attn_output rows are 64 heads * 64 = 4096 wide and stay Q4_K
    att = weights_breakdown(GPT_OSS_20B, "Q4_K_M").types_by_group["attention"]
    assert att["Q4_K"] == 24 * 4096 * 2880
    assert att["Q5_0"] == 24 * 2880 * (4096 + 512) + 12 * 2880 * 512  # q, k; 12 plain attn_v
    assert att["Q8_0"] == 12 * 2880 * 512  # use_more_bits attn_v
    assert fallback_type("Q4_K", 2880) == "Q5_0" and fallback_type("Q6_K", 2880) == "Q8_0"


def test_quality_order_means_fewer_bytes() -> None:
    chain = [
        "F16",
        "Q8_0",
        "Q6_K",
        "Q5_K_M",
        "Q5_K_S",
        "Q4_K_M",
        "Q4_K_S",
        "Q3_K_L",
        "Q3_K_M",
        "Q3_K_S",
        "Q2_K",
        "IQ2_M",
        "IQ2_XXS",
        "IQ1_M",
        "IQ1_S",
    ]
    for m in (LLAMA_8B, LLAMA_70B, GEMMA3_27B, DEEPSEEK_V3, QWEN3_NEXT):
        sizes = [weights_bytes(m, q) for q in chain]
        assert sizes == sorted(sizes, reverse=True), m.id


def test_weights_table_matches_scalar_and_marks_impossible() -> None:
    models = [LLAMA_8B, GPT_OSS_20B]
    t = weights_bytes_table(models, QUANT_NAMES)
    for i, m in enumerate(models):
        for j, q in enumerate(QUANT_NAMES):
            if q == "MXFP4" and m.moe is None:
                assert t[i, j] == -1
            else:
                assert t[i, j] == weights_bytes(m, q)


def test_exact_gguf_tensor_bytes_win() -> None:
    from forgeplanner.domain.model import TensorInfo

    tensors = (
        TensorInfo("token_embd.weight", (4096, 128256), "Q4_K", 295_501_824),
        TensorInfo("blk.0.attn_v.weight", (4096, 1024), "Q6_K", 3_440_640),
        TensorInfo("output_norm.weight", (4096,), "F32", 16_384),
    )
    m = spec(id="file", tensors=tensors, gguf_file_type="Q4_K_M", params_total=0)
    wb = weights_breakdown(m, "Q4_K_M")
    assert wb.exact and wb.total_bytes == 295_501_824 + 3_440_640 + 16_384
    # another quant of the same file re-types each real tensor with llama.cpp's policy
    q8 = weights_breakdown(m, "Q8_0")
    assert not q8.exact
    assert q8.total_bytes == (4096 * 128256 + 4096 * 1024) * 34 // 32 + 16_384


# --- registry and bad input ------------------------------------------------------------------


def test_registry_lookup() -> None:
    assert get_quant("q4_k_m").name == "Q4_K_M"
    with pytest.raises(NotFoundError, match="valid: BF16, F16"):
        get_quant("Q4_K_XL")
    # 25 GGUF schemes (incl. MXFP4, NVFP4; Unsloth UD-* mixes are accepted, not listed), 10 MLX
    assert len(QUANT_NAMES) == 35


def test_quants_for_runtime_and_model() -> None:
    gg = [q.name for q in quants_for(LLAMA_8B, "llama.cpp")]
    assert gg[0] in ("BF16", "F16") and "MLX-4bit" not in gg and "MXFP4" not in gg
    assert "MXFP4" in [q.name for q in quants_for(GPT_OSS_20B, "ollama")]
    mx = [q.name for q in quants_for(LLAMA_8B, "mlx")]
    assert mx == [
        "MLX-bf16",
        "MLX-8bit",
        "MLX-mxfp8",
        "MLX-6bit",
        "MLX-5bit",
        "MLX-4bit",
        "MLX-nvfp4",
        "MLX-mxfp4",
        "MLX-3bit",
        "MLX-2bit",
    ]
    tiers = [q.quality_tier for q in quants_for(DEEPSEEK_V3, "llama.cpp")]
    assert tiers == sorted(tiers)


def test_impossible_combinations_say_what_is_valid() -> None:
    mlx_only = spec(id="mlx-only", formats=("mlx",))
    with pytest.raises(ValueError, match=r"no GGUF weights.*use runtime mlx"):
        estimate_memory(mlx_only, "Q4_0", RunOptions())
    with pytest.raises(ValueError, match=r"runtime llama\.cpp loads GGUF weights: BF16"):
        estimate_memory(LLAMA_8B, "MLX-4bit", RunOptions())
    with pytest.raises(ValueError, match="MLX"):
        check_combination(LLAMA_8B, get_quant("Q4_K_M"), "mlx")
    with pytest.raises(ValueError, match="dense"):
        estimate_memory(LLAMA_8B, "MXFP4", RunOptions())


def test_default_flash_attention_is_llamacpp_auto() -> None:
    # llama.cpp's default -fa auto resolves on (Metal supports head size 128): no score
    # matrix, so at 8192 the logits (n_vocab + 2 H) * 4 B * 512 are the largest peak
    est = estimate_memory(LLAMA_8B, "Q4_K_M", RunOptions(context=8192))
    assert est.compute_bytes == (128256 + 2 * 4096) * 4 * 512
    fa = next(e for e in est.explain if e.term == "flash_attention")
    assert fa.numbers == "auto -> on" and "llama-context.cpp" in fa.source


def test_estimate_explains_every_term() -> None:
    est = estimate_memory(LLAMA_8B, "Q4_K_M", RunOptions(context=8192, flash_attention=False))
    terms = {e.term for e in est.explain}
    assert {"weights", "kv_cache", "compute", "flash_attention", "runtime"} <= terms
    kv = next(e for e in est.explain if e.term == "kv_cache")
    assert kv.numbers == "2 * 32 * 8 * 128 * 2 B * 8192" and kv.value == "1.000 GiB"
    assert est.total_bytes == sum(
        est.to_dict()[k]
        for k in ("weights_bytes", "kv_cache_bytes", "compute_bytes", "runtime_bytes")
    )
    # compute buffer of llama 3 8B at 8192 without flash attention: the KQ scores dominate:
    # 8192 * 512 * 32 heads * 4 B = 512 MiB + mask 16 MiB + (3 H + 2 q + 2 kv) * 2 KiB
    assert est.compute_bytes == 512 * MiB + 16 * MiB + (3 * 4096 + 2 * 4096 + 2 * 1024) * 2048


def test_importance_matrix_assumption_changes_the_mix() -> None:
    # llama-quant.cpp: without an imatrix IQ4_XS gives the first eighth of ffn_down Q5_K;
    # with one, Q4_0 gives them Q4_1 (published IQ files use one; legacy files do not)
    no_im = weights_breakdown(LLAMA_8B, "IQ4_XS", imatrix=False).types_by_group["ffn"]
    assert no_im["Q5_K"] == 4 * 4096 * 14336
    assert "Q5_K" not in weights_breakdown(LLAMA_8B, "IQ4_XS").types_by_group["ffn"]
    q40 = weights_breakdown(LLAMA_8B, "Q4_0", imatrix=True).types_by_group["ffn"]
    assert q40["Q4_1"] == 4 * 4096 * 14336


def test_file_type_names_from_gguf_metadata_are_recognised() -> None:
    from forgeplanner.domain.model import TensorInfo

    assert get_quant("MXFP4_MOE").name == "MXFP4"
    assert get_quant("Q4_1").name == "Q4_1" and "Q4_1" not in QUANT_NAMES
    t = (TensorInfo("blk.0.ffn_down_exps.weight", (2880, 2880, 32), "MXFP4", 140_697_600),)
    m = spec(id="oss-file", tensors=t, gguf_file_type="MXFP4_MOE", params_total=1)
    assert weights_breakdown(m, "MXFP4").exact
    assert weights_bytes(m, "MXFP4") == 140_697_600
