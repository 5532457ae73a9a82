"""Quantization registry: GGUF file types (with llama.cpp's per-tensor mix policy) and MLX.

Block layouts come from the official `gguf` package (`gguf.GGML_QUANT_SIZES`: elements per
block, bytes per block), so bits per weight are never hand-typed.

GGUF "file types" such as Q4_K_M are mixes: llama.cpp's quantizer picks a ggml type per tensor
(token_embd, output, attn_v, ffn_down in the first/last layers, ...). `tensor_types()` mirrors
that policy: ggml-org/llama.cpp `src/llama-quant.cpp`, functions `llama_tensor_get_type_impl`,
`tensor_type_fallback`, `tensor_allows_quantization` and `llama_ftype_get_default_type`
(read at the llama.cpp tree vendored in llama-cpp-python 0.3.36, commit 0c1e570, 2026-10; the
same logic is in the search index at 8784689). The code below is our own re-statement.

Assumptions about how published files were made (documented, they change a few tensors;
`imatrix=` overrides them):
- IQ* files are made with an importance matrix (llama.cpp requires one for IQ1/IQ2/IQ3_XXS);
  K-quant and legacy files without one (default_imatrix).
- No user overrides (--token-embedding-type, --output-tensor-type, --tensor-type, --pure).

MLX: mlx-lm affine quantization, group size 64, one bf16 scale and one bf16 bias per group,
so b bits + 32/64 bits per weight (ml-explore/mlx `mlx/ops.cpp` quantize; mlx-lm `convert`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import NotFoundError


def _format_of(runtime: str) -> str:
    """The weight format a runtime loads (its profile's); ValueError names valid runtimes."""
    from forgeplanner.engine.runtimes import profile

    return profile(runtime).weight_format


def _runtimes_loading(fmt: str) -> list[str]:
    from forgeplanner.engine.runtimes import runtimes_for_format

    return [r.value for r in runtimes_for_format(fmt)]


_BLOCKS: dict[str, tuple[int, int]] = {t.name: v for t, v in GGML_QUANT_SIZES.items()}


def ggml_block(type_name: str) -> tuple[int, int]:
    """(elements per block, bytes per block) of a ggml type, from the gguf package."""
    try:
        return _BLOCKS[type_name]
    except KeyError:
        return GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]


def ggml_bpw(type_name: str) -> float:
    blk, size = ggml_block(type_name)
    return size * 8 / blk


@dataclass(frozen=True, slots=True)
class QuantScheme:
    """One quantization a user can pick.

    name: user-facing name ("Q4_K_M", "MLX-4bit").
    format: "gguf" or "mlx".
    bits_per_weight: nominal bits of the base type (the mix policy makes files larger).
    base_type: GGUF: the ggml type most tensors get (llama_ftype_get_default_type);
        MLX: "affine" or "bf16".
    is_mix: True when llama.cpp's per-tensor policy applies (quantized GGUF types).
    quality_tier: lower is better; equal tiers are equivalent quality (16/32-bit floats).
    mlx_bits / mlx_group_size: MLX affine quantization parameters.
    moe_only: MXFP4 file type (llama.cpp MXFP4_MOE) only makes sense for MoE models.
    """

    name: str
    format: str
    bits_per_weight: float
    base_type: str
    is_mix: bool
    quality_tier: int
    description: str
    mlx_bits: int | None = None
    mlx_group_size: int | None = None
    moe_only: bool = False
    # MLX: bytes of scale (+ bias) stored per group: affine 4 (bf16 scale and bias),
    # mxfp4/mxfp8 1 (an e8m0 scale per 32), nvfp4 1 (an fp8 e4m3 scale per 16)
    mlx_group_bytes: int = 4
    # Not a layout of its own but a published recipe sized as the named llama.cpp mix
    # (Unsloth's dynamic "UD-" files): bytes are approximate; a GGUF header gives them exactly.
    sized_as: str | None = None


def _gguf(name: str, base: str, tier: int, desc: str, moe_only: bool = False) -> QuantScheme:
    quantized = base not in ("F32", "F16", "BF16")
    return QuantScheme(
        name=name,
        format="gguf",
        bits_per_weight=ggml_bpw(base),
        base_type=base,
        is_mix=quantized,
        quality_tier=tier,
        description=desc,
        moe_only=moe_only,
    )


def _mlx(bits: int, tier: int, group: int = 64) -> QuantScheme:
    # mlx affine: per group of `group` weights one bf16 scale + one bf16 bias = 32 bits.
    return QuantScheme(
        name=f"MLX-{bits}bit",
        format="mlx",
        bits_per_weight=bits + 32 / group,
        base_type="affine",
        is_mix=False,
        quality_tier=tier,
        description=f"mlx-lm affine {bits}-bit, group size {group}, bf16 scales and biases",
        mlx_bits=bits,
        mlx_group_size=group,
    )


def _mlx_fp(mode: str, bits: int, group: int, tier: int, desc: str) -> QuantScheme:
    # mlx "mxfp4"/"mxfp8"/"nvfp4" modes (mlx.core.quantize mode=...): FP4/FP8 values with one
    # 8-bit scale per group (e8m0 per 32 for MX formats, fp8 e4m3 per 16 for NVFP4).
    return QuantScheme(
        name=f"MLX-{mode}",
        format="mlx",
        bits_per_weight=bits + 8 / group,
        base_type=mode,
        is_mix=False,
        quality_tier=tier,
        description=desc,
        mlx_bits=bits,
        mlx_group_size=group,
        mlx_group_bytes=1,
    )


def _unsloth(name: str, like: str, tier: int) -> QuantScheme:
    # Unsloth "dynamic" GGUFs pick per-layer types per model (Unsloth docs, "Dynamic 2.0
    # GGUFs"); published files are within a few per cent of llama.cpp's own mix of the same
    # base type, so they are sized as that mix and flagged approximate.
    base = QUANTS_BASE[like]
    return QuantScheme(
        name=name,
        format="gguf",
        bits_per_weight=base.bits_per_weight,
        base_type=base.base_type,
        is_mix=True,
        quality_tier=tier,
        description=f"Unsloth dynamic quant, sized as llama.cpp's {like} mix (approximate)",
        sized_as=like,
    )


# Ordered best (highest quality) first. Tiers follow llama.cpp's perplexity tables
# (tools/quantize/README.md): 16/32-bit floats share a tier; MXFP4 sits with the 4-bit types.
_SCHEMES: tuple[QuantScheme, ...] = (
    _gguf("BF16", "BF16", 0, "bfloat16, unquantized"),
    _gguf("F16", "F16", 0, "float16, unquantized"),
    _gguf("F32", "F32", 0, "float32, unquantized (no quality gain over 16-bit checkpoints)"),
    _gguf("Q8_0", "Q8_0", 1, "8-bit round-to-nearest, blocks of 32"),
    _gguf("Q6_K", "Q6_K", 2, "6-bit k-quant"),
    _gguf("Q5_K_M", "Q5_K", 3, "5-bit k-quant mix, attn_v/ffn_down partly Q6_K"),
    _gguf("Q5_K_S", "Q5_K", 4, "5-bit k-quant"),
    _gguf("Q5_0", "Q5_0", 5, "5-bit legacy, blocks of 32"),
    _gguf("Q4_K_M", "Q4_K", 6, "4-bit k-quant mix, attn_v/ffn_down partly Q6_K"),
    _gguf("Q4_K_S", "Q4_K", 7, "4-bit k-quant, first layers Q5_K"),
    _gguf("IQ4_NL", "IQ4_NL", 8, "4-bit non-linear, blocks of 32"),
    _gguf("IQ4_XS", "IQ4_XS", 9, "4.25-bit i-quant"),
    _gguf("Q4_0", "Q4_0", 10, "4-bit legacy, blocks of 32"),
    _gguf("MXFP4", "MXFP4", 10, "MXFP4 experts, Q8_0 elsewhere (llama.cpp MXFP4_MOE)", True),
    _gguf("NVFP4", "NVFP4", 10, "NVFP4: FP4 E2M1 values, an FP8 scale per 16 (llama.cpp NVFP4)"),
    _gguf("Q3_K_L", "Q3_K", 11, "3-bit k-quant mix, attn_v/ffn_down/attn_output Q5_K"),
    _gguf("Q3_K_M", "Q3_K", 12, "3-bit k-quant mix, attn_v/ffn_down Q4_K+"),
    _gguf("IQ3_M", "IQ3_S", 13, "3.4-bit i-quant mix"),
    _gguf("Q3_K_S", "Q3_K", 14, "3-bit k-quant"),
    _gguf("IQ3_XXS", "IQ3_XXS", 15, "3.06-bit i-quant"),
    _gguf("Q2_K", "Q2_K", 16, "2-bit k-quant mix, attn_v/ffn_down Q3_K+"),
    _gguf("IQ2_M", "IQ2_S", 17, "2.7-bit i-quant mix"),
    _gguf("IQ2_XXS", "IQ2_XXS", 18, "2.06-bit i-quant"),
    _gguf("IQ1_M", "IQ1_M", 19, "1.75-bit i-quant"),
    _gguf("IQ1_S", "IQ1_S", 20, "1.56-bit i-quant"),
    QuantScheme(
        name="MLX-bf16",
        format="mlx",
        bits_per_weight=16.0,
        base_type="bf16",
        is_mix=False,
        quality_tier=0,
        description="mlx bfloat16, unquantized",
    ),
    _mlx(8, 1),
    _mlx_fp("mxfp8", 8, 32, 1, "mlx mxfp8: FP8 values, an e8m0 scale per 32"),
    _mlx(6, 2),
    _mlx(5, 4),
    _mlx(4, 6),
    _mlx_fp("nvfp4", 4, 16, 7, "mlx nvfp4: FP4 E2M1 values, an fp8 scale per 16"),
    _mlx_fp("mxfp4", 4, 32, 8, "mlx mxfp4: FP4 E2M1 values, an e8m0 scale per 32"),
    _mlx(3, 12),
    _mlx(2, 17),
)
QUANTS_BASE: dict[str, QuantScheme] = {q.name: q for q in _SCHEMES}
_UNSLOTH: tuple[QuantScheme, ...] = (
    _unsloth("UD-Q8_K_XL", "Q8_0", 1),
    _unsloth("UD-Q6_K_XL", "Q6_K", 2),
    _unsloth("UD-Q5_K_XL", "Q5_K_M", 3),
    _unsloth("UD-Q4_K_XL", "Q4_K_M", 6),
    _unsloth("UD-Q3_K_XL", "Q3_K_M", 12),
    _unsloth("UD-Q2_K_XL", "Q2_K", 16),
    _unsloth("UD-IQ3_XXS", "IQ3_XXS", 15),
    _unsloth("UD-IQ2_M", "IQ2_M", 17),
    _unsloth("UD-IQ2_XXS", "IQ2_XXS", 18),
    _unsloth("UD-IQ1_M", "IQ1_M", 19),
    _unsloth("UD-IQ1_S", "IQ1_S", 20),
)

QUANTS: dict[str, QuantScheme] = {q.name: q for q in _SCHEMES}
QUANT_NAMES: tuple[str, ...] = tuple(QUANTS)
# Accepted by name (a file or a published run may use them) but not offered in lists.
ACCEPTED: dict[str, QuantScheme] = {q.name: q for q in _UNSLOTH}

# Other llama.cpp file types a GGUF file may carry. They are not offered in lists (quants_for,
# QUANT_NAMES) but a file of that type is recognised, so its exact tensor bytes are used. Their
# mix rules are not re-stated here: re-typing a model *to* them uses the base type with the
# output/embedding rules only.
_FILE_ONLY: tuple[QuantScheme, ...] = (
    _gguf("Q4_1", "Q4_1", 10, "4-bit legacy with offset"),
    _gguf("Q5_1", "Q5_1", 5, "5-bit legacy with offset"),
    _gguf("Q2_K_S", "Q2_K", 16, "2-bit k-quant, small"),
    _gguf("IQ3_S", "IQ3_S", 13, "3.44-bit i-quant"),
    _gguf("IQ3_XS", "IQ3_S", 14, "3.3-bit i-quant mix"),
    _gguf("IQ2_S", "IQ2_XS", 17, "2.5-bit i-quant"),
    _gguf("IQ2_XS", "IQ2_XS", 18, "2.31-bit i-quant"),
)
_ALIASES = {"MXFP4_MOE": "MXFP4"}  # llama_ftype name of the MXFP4 file type
_BY_UPPER = {n.upper(): q for n, q in QUANTS.items()}
_BY_UPPER.update({q.name.upper(): q for q in _FILE_ONLY})
_BY_UPPER.update({a: QUANTS[n] for a, n in _ALIASES.items()})
_BY_UPPER.update({n.upper(): q for n, q in ACCEPTED.items()})
# names as runtimes and model hubs spell them
_BY_UPPER.update(
    {
        "MLX-4BIT-G64": QUANTS["MLX-4bit"],
        "MLX-BF16": QUANTS["MLX-bf16"],
        "MLX-FP16": QUANTS["MLX-bf16"],
        "UD-Q4_K_M": ACCEPTED["UD-Q4_K_XL"],
        "MOSTLY_NVFP4": QUANTS["NVFP4"],
    }
)


def get_quant(name: str | QuantScheme) -> QuantScheme:
    """Look a quantization up by name (case-insensitive; llama.cpp file-type names such as
    MXFP4_MOE and the file-only types are accepted). NotFoundError lists the offered ones."""
    if isinstance(name, QuantScheme):
        return name
    q = _BY_UPPER.get(str(name).strip().upper())
    if q is None:
        raise NotFoundError("quantization", str(name), QUANT_NAMES)
    return q


def check_combination(model: ModelSpec, quant: QuantScheme, runtime: str) -> None:
    """Raise ValueError (one line, says what is valid) for impossible model x quant x runtime."""
    fmt = _format_of(runtime)
    if quant.format != fmt:
        valid = ", ".join(q.name for q in _SCHEMES if q.format == fmt)
        raise ValueError(
            f"{quant.name} is a {quant.format.upper()} quantization; runtime {runtime} loads "
            f"{fmt.upper()} weights: {valid}"
        )
    if fmt not in model.formats:
        raise ValueError(
            f"{model.id} has no {fmt.upper()} weights (available: {', '.join(model.formats)}); "
            "use runtime " + " or ".join(r for f in model.formats for r in _runtimes_loading(f))
        )
    if quant.moe_only and model.moe is None:
        raise ValueError(
            f"{quant.name} (llama.cpp MXFP4_MOE) quantizes MoE experts; {model.id} is dense: "
            "pick Q8_0, Q4_K_M, ..."
        )


def quants_for(model: ModelSpec, runtime: str = "llama.cpp") -> list[QuantScheme]:
    """Quantizations valid for this model on this runtime, best quality first."""
    fmt = _format_of(runtime)
    if fmt not in model.formats:
        return []
    return [q for q in _SCHEMES if q.format == fmt and not (q.moe_only and model.moe is None)]


# ---------------------------------------------------------------------------------------------
# llama.cpp per-tensor mix policy
# ---------------------------------------------------------------------------------------------

# tensor categories, as llama-quant.cpp `tensor_get_category` names them
CATEGORIES = (
    "token_embd",
    "output",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_qkv",
    "attn_kv_b",
    "attn_output",
    "ffn_up",
    "ffn_gate",
    "ffn_down",
    "other",  # quantizable 2D/3D weights without a special rule (MLA projections, SSM, ...)
)


@dataclass(frozen=True, slots=True)
class MixContext:
    """Model facts the mix policy looks at (llama.cpp hparams)."""

    n_layers: int
    n_gqa: int  # n_head / n_head_kv
    n_experts: int  # 0 for dense
    tied_embeddings: bool
    is_70b: bool  # llama.cpp LLM_TYPE_70B: attn_v Q3_K/Q4_K bumped to Q5_K
    n_attention_v: int  # number of attn_v-like tensors (attention layers)


def mix_context(model: ModelSpec) -> MixContext:
    n_exp = model.moe.n_experts if model.moe else 0
    att = model.attention
    n_att = len(att.attention_layers) if att.kind == "hybrid" and att.attention_layers else None
    # llama.cpp src/models/{llama,qwen2,olmo,deci}.cpp: 80 layers -> LLM_TYPE_70B (llama only
    # when GQA; with n_head == n_head_kv it is 65B).
    is_70b = model.n_layers == 80 and model.n_kv_heads < model.n_heads
    return MixContext(
        n_layers=model.n_layers,
        n_gqa=max(1, model.n_heads // max(1, model.n_kv_heads)),
        n_experts=n_exp,
        tied_embeddings=model.tie_word_embeddings,
        is_70b=is_70b,
        n_attention_v=n_att if n_att is not None else model.n_layers,
    )


def _use_more_bits(i: np.ndarray, n: int) -> np.ndarray:
    # llama-quant.cpp use_more_bits: first and last eighth, and every third layer in between.
    # C++ integer division truncates; (i - n/8) is only negative where the first clause holds.
    return (i < n // 8) | (i >= 7 * n // 8) | (((i - n // 8) % 3) == 2)


def default_imatrix(quant: QuantScheme | str) -> bool:
    """Our assumption about how a published file was made: IQ* with an importance matrix
    (llama.cpp requires one for IQ1/IQ2/IQ3_XXS; published IQ4 files use one too), other
    types without."""
    name = quant.name if isinstance(quant, QuantScheme) else str(quant)
    return name.upper().startswith("IQ")


def _policy(
    q: str,
    cat: str,
    layer: np.ndarray,
    attn_v_idx: np.ndarray,
    ctx: MixContext,
    base: str,
    imatrix: bool,
) -> np.ndarray:
    """Target ggml type per tensor instance for a quantized GGUF file type `q`.

    `layer`: layer index per instance; `attn_v_idx`: ordinal among attn_v-like tensors
    (llama.cpp's i_attention_wv counter); `imatrix`: the file was made with an importance
    matrix (qs.has_imatrix). Returns an object array of ggml type names.
    """
    n = ctx.n_layers
    out = np.full(layer.shape, base, dtype=object)
    iq_low = q in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
    iq2s = q in ("IQ2_S", "IQ2_M")

    if cat == "output" or (ctx.tied_embeddings and cat == "token_embd"):
        if q == "MXFP4":
            out[:] = "Q8_0"
        elif iq_low or q == "IQ3_XXS":
            out[:] = "Q5_K"
        elif base != "Q8_0":
            out[:] = "Q6_K"
        return out  # (the ncols % block check is the generic fallback, applied later)
    if q == "MXFP4":
        out[:] = "Q8_0"  # experts (3D) are handled by the caller: they become MXFP4
        return out
    if cat == "token_embd":
        if q in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            out[:] = "Q2_K"
        elif iq2s or q == "IQ3_XXS":
            out[:] = "IQ3_S"
        return out
    if iq_low:
        if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
            if ctx.n_gqa >= 4 or ctx.n_experts >= 4:
                out[:] = "Q4_K"
            else:
                out[:] = "IQ3_S" if iq2s else "Q2_K"
        elif ctx.n_experts == 8 and cat == "attn_k":
            out[:] = "Q4_K"
        elif cat == "ffn_down":
            out[layer < n // 8] = "IQ3_S" if iq2s else "Q2_K"
        elif cat == "attn_output":
            if ctx.n_experts == 8:
                out[:] = "Q5_K"
            elif q in ("IQ1_S", "IQ1_M"):
                out[:] = "IQ2_XXS"
            elif iq2s:
                out[:] = "IQ3_S"
        return out
    if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
        i, nv = attn_v_idx, ctx.n_attention_v
        if q == "Q2_K":
            out[:] = "Q4_K" if ctx.n_gqa >= 4 else "Q3_K"
        elif q == "IQ3_XXS":
            out[:] = "Q4_K" if ctx.n_gqa >= 4 else ("IQ3_XXS" if imatrix else "IQ3_S")
        elif q == "IQ3_M":
            out[:] = "Q4_K"
        elif q == "Q3_K_M":
            out[:] = np.where(i < 2, "Q5_K", "Q4_K")
        elif q == "Q3_K_L":
            out[:] = "Q5_K"
        elif q in ("IQ4_NL", "IQ4_XS") and ctx.n_gqa >= 4:
            out[:] = "Q5_K"
        elif q in ("Q4_K_M", "Q5_K_M"):
            out[_use_more_bits(i, nv)] = "Q6_K"
        elif q == "Q4_K_S":
            out[i < 4] = "Q5_K"
        if ctx.is_70b:
            out[(out == "Q3_K") | (out == "Q4_K")] = "Q5_K"
        if ctx.n_experts == 8:
            out[:] = "Q8_0"
        return out
    if cat == "attn_k":
        if ctx.n_experts == 8:
            out[:] = "Q8_0"
        elif q == "IQ3_XXS":
            out[:] = "IQ2_S"
        return out
    if cat == "attn_q":
        if q == "IQ3_XXS":
            out[:] = "IQ2_S"
        return out
    if cat == "ffn_down":
        first8 = layer < n // 8
        if q == "Q2_K":
            out[:] = "Q3_K"
        elif q == "IQ3_XXS" and not imatrix:
            out[:] = np.where(first8, "Q4_K", "Q3_K")
        elif q == "Q3_K_M":
            out[:] = np.where(layer < n // 16, "Q5_K", "Q4_K")
        elif q == "IQ3_M":
            sel = (layer < n // 8) | ((ctx.n_experts == 8) & _use_more_bits(layer, n))
            out[sel] = "Q4_K"
        elif q == "Q3_K_L":
            out[:] = "Q5_K"
        elif q == "Q4_K_M":
            out[_use_more_bits(layer, n)] = "Q6_K"
        elif q in ("IQ4_NL", "IQ4_XS") and not imatrix:
            out[first8] = "Q5_K"
        elif q == "Q5_K_M":
            out[_use_more_bits(layer, n)] = "Q6_K"
        elif q == "Q4_K_S":
            out[first8] = "Q5_K"
        elif q in ("Q4_0", "Q5_0") and imatrix:
            out[first8] = "Q4_1" if q == "Q4_0" else "Q5_1"
        return out
    if cat == "attn_output":
        if ctx.n_experts == 8:
            if q in ("Q2_K", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M"):
                out[:] = "Q5_K"
            elif q in ("IQ3_M", "IQ4_XS"):
                out[:] = "Q5_K"
        else:
            bump = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}
            bump["IQ3_M"] = "Q4_K"
            if q in bump:
                out[:] = bump[q]
        return out
    if cat == "attn_qkv":  # pragma: no cover - handled with attn_v above (attn_v-like)
        return out
    return out


# llama-quant.cpp tensor_type_fallback: when a row length is not a multiple of the block size.
_FALLBACK = {
    "IQ1_S": "IQ4_NL",
    "IQ1_M": "IQ4_NL",
    "IQ2_XXS": "IQ4_NL",
    "IQ2_XS": "IQ4_NL",
    "IQ2_S": "IQ4_NL",
    "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL",
    "IQ4_XS": "IQ4_NL",
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


def fallback_type(type_name: str, ne0: int) -> str:
    """The type llama.cpp actually writes for a row of `ne0` elements (tensor_type_fallback)."""
    blk = ggml_block(type_name)[0]
    if ne0 % blk == 0:
        return type_name
    ret = _FALLBACK.get(type_name, type_name)
    if ne0 % ggml_block(ret)[0] != 0:
        ret = "F16"
    return ret


def tensor_types(
    quant: QuantScheme,
    category: str,
    layers: np.ndarray,
    attn_v_idx: np.ndarray,
    ne0: int,
    is_expert_3d: bool,
    ctx: MixContext,
    imatrix: bool | None = None,
) -> np.ndarray:
    """ggml type per instance of a quantizable GGUF weight of `category` for file type `quant`.
    `imatrix` None = default_imatrix(quant).

    Non-quantizable tensors (norms, 1D, router `ffn_gate_inp`, ssm_conv1d) keep their type and
    are not passed here. For F32/F16/BF16 files every weight simply takes that type.
    """
    if quant.format != "gguf":
        raise ValueError(f"{quant.name} is not a GGUF quantization")
    if not quant.is_mix:
        return np.full(layers.shape, quant.base_type, dtype=object)
    if quant.name == "MXFP4" and is_expert_3d and category != "output":
        return np.full(layers.shape, "MXFP4", dtype=object)
    policy_name = quant.sized_as or quant.name
    im = default_imatrix(policy_name) if imatrix is None else imatrix
    types = _policy(policy_name, category, layers, attn_v_idx, ctx, quant.base_type, im)
    uniq = set(types.tolist())
    if len(uniq) == 1:
        t = fallback_type(next(iter(uniq)), ne0)
        return np.full(layers.shape, t, dtype=object)
    return np.array([fallback_type(t, ne0) for t in types.tolist()], dtype=object)
