"""What each runtime does when the user leaves a setting at its default: flash attention.

`RunOptions.flash_attention` is tri-state: True (`-fa on`, `--flash-attention`), False
(`-fa off`, `--no-flash-attention`) or None, "the runtime's default". Flash attention changes
the compute buffer (no [n_kv, n_ubatch, n_head] score matrix) and how often decode streams the
KV cache, so every consumer must use the value the runtime actually runs with, resolved here.
Pure functions: the rules below are re-stated from the runtimes' sources, cited per rule.

llama.cpp (vendored in llama-cpp-python 0.3.36; also llama-server/llama-cli from Homebrew):
  - the default is `-fa auto` (common/common.h `flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO`;
    llama_context_default_params in src/llama-context.cpp; llama-bench too:
    tools/llama-bench/llama-bench.cpp `cmd_params_defaults.flash_attn = {AUTO}`);
  - llama_init_from_model (src/llama-context.cpp): Grok forces it off; a quantized V cache
    under auto turns it on ("enabling flash_attn since it is required for quantized V cache"),
    and with `-fa off` is refused ("quantized V cache requires flash_attn to be enabled");
  - otherwise auto keeps it on only if the FLASH_ATTN_EXT node lands on the same device as its
    layer (llama_context::resolve_fused_ops, "Flash Attention not supported, set to disabled").
    The CPU backend implements the op for every head size (ggml-cpu.cpp supports_op); Metal
    (ggml-metal-device.m supports_op) for K head sizes 32, 40, 48, 64, 72, 80, 96, 112, 128,
    192, 256, 320, 512, 576 with K width >= V width and K/V of the same type, on GPUs with
    simdgroup matrices (MTLGPUFamilyApple7: every M-series chip). The RPC backend reports
    every op as supported (ggml-rpc.cpp), so cluster layers follow the same rule.
Ollama (fs/ggml/ggml.go + llm/server.go, the newest sources read, with gemma4/qwen3.5):
  - OLLAMA_FLASH_ATTENTION unset: on only for the architectures Ollama lists in
    `GGML.FlashAttention()` (gpt-oss since PR #11996, qwen3/qwen3moe since #12482, gemma3
    since #12639, qwen3.5/qwen3-next later) and only if `SupportsFlashAttention()` (not
    gemma2/grok, K head width == V head width). Other architectures ran with it off in older
    releases (OLLAMA_FLASH_ATTENTION defaulted to false); newer ones pass llama.cpp's auto
    through for models on the llama.cpp runner. Which runner a model uses depends on the
    Ollama version, so they are taken as off (conservative: the larger compute buffer).
  - A quantized OLLAMA_KV_CACHE_TYPE is only used with flash attention on (otherwise Ollama
    silently keeps f16); asking for one is taken to mean OLLAMA_FLASH_ATTENTION=1.
MLX (mlx-lm): no switch. Attention goes through `mx.fast.scaled_dot_product_attention`, whose
  fused prefill kernel (no score matrix) exists for head sizes 64, 80 and 128 with equal K and
  V widths (mlx backend/metal/scaled_dot_product_attention.cpp `use_fallback`:
  `sdpa_full_supported_head_dim`); other head sizes, and mlx-lm's quantized KV cache
  (models/base.py `quantized_scaled_dot_product_attention`: quantized matmuls), materialise
  the scores of each prefill chunk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.domain.model import ModelSpec

# ggml-metal-device.m ggml_metal_device_supports_op, case GGML_OP_FLASH_ATTN_EXT
METAL_FA_HEAD_DIMS: frozenset[int] = frozenset(
    {32, 40, 48, 64, 72, 80, 96, 112, 128, 192, 256, 320, 512, 576}
)
# mlx scaled_dot_product_attention.cpp: sdpa_full_supported_head_dim (prefill, > 8 queries)
MLX_FUSED_PREFILL_HEAD_DIMS: frozenset[int] = frozenset({64, 80, 128})
# Ollama fs/ggml/ggml.go GGML.FlashAttention(): architectures with flash attention on by
# default, keyed here by the model database's family.
OLLAMA_FA_DEFAULT_FAMILIES: dict[str, str] = {
    "gpt-oss": "gptoss",
    "gemma-3": "gemma3",
    "qwen3": "qwen3",
    "qwen3-moe": "qwen3moe",
    "qwen3-next": "qwen3next",
    "qwen3.5": "qwen35/qwen35moe",
}
# ... and GGML.SupportsFlashAttention(): never for these
OLLAMA_FA_UNSUPPORTED_FAMILIES: frozenset[str] = frozenset({"gemma-2", "grok"})

LLAMACPP_SRC = "llama.cpp src/llama-context.cpp llama_init_from_model / resolve_fused_ops"
OLLAMA_SRC = "Ollama fs/ggml/ggml.go FlashAttention/SupportsFlashAttention, llm/server.go"
MLX_SRC = "mlx scaled_dot_product_attention.cpp use_fallback; mlx-lm models/base.py"


@dataclass(frozen=True, slots=True)
class FlashAttentionChoice:
    """The flash-attention setting a run gets: `enabled` is what every formula uses."""

    enabled: bool
    requested: bool | None  # the user's choice; None = the runtime's default ("auto")
    basis: str  # one line: why, with the source

    @property
    def label(self) -> str:
        mode = "auto" if self.requested is None else ("on" if self.requested else "off")
        return f"{mode} -> {'on' if self.enabled else 'off'}"


def attention_head_dims(model: ModelSpec, runtime: str = "llama.cpp") -> tuple[int, int]:
    """(K width, V width) per head as the runtime's attention op sees them.

    llama.cpp runs MLA absorbed (deepseek2 graph): K = kv_lora_rank + rope (576), V =
    kv_lora_rank (512). mlx-lm's DeepSeek attention keeps the per-head q.k width
    (qk_nope + qk_rope) and v_head_dim."""
    att = model.attention
    if att.kind == "mla":
        lora = att.mla_kv_lora_rank or 0
        rope = att.mla_qk_rope_head_dim or 0
        if runtime == "mlx":
            qk = (att.mla_qk_nope_head_dim or 0) + rope or model.head_dim
            return qk, att.mla_v_head_dim or model.head_dim
        return lora + rope, lora
    return model.head_dim, model.head_dim


def _is_grok(model: ModelSpec) -> bool:
    return "grok" in model.family.lower()


def _llamacpp(model: ModelSpec, kv_type: str, req: bool | None, apple_gpu: bool) -> tuple:
    k, v = attention_head_dims(model, "llama.cpp")
    return _llamacpp_rule(_is_grok(model), k, v, kv_type, req, apple_gpu)


def _llamacpp_rule(
    grok: bool, k: int, v: int, kv_type: str, req: bool | None, apple_gpu: bool
) -> tuple:
    quant_v = kv_type != "f16"
    if grok:
        if quant_v:
            raise ValueError(
                f"llama.cpp forces flash attention off for Grok, and a {kv_type} V cache "
                "needs it: use --kv-type f16"
            )
        return False, f"off: llama.cpp forces flash attention off for Grok ({LLAMACPP_SRC})"
    if req is False:
        if quant_v:  # RunOptions refuses this already; kept for direct callers
            raise ValueError(f"kv_type {kv_type} needs flash attention (llama.cpp refuses -fa off)")
        return False, "off: -fa off (--no-flash-attention)"
    if req is True:
        return True, "on: -fa on (--flash-attention)"
    if quant_v:
        return True, (f"auto -> on: a {kv_type} V cache turns flash attention on ({LLAMACPP_SRC})")
    if not apple_gpu:
        return True, (
            f"auto -> on: the CPU backend runs FLASH_ATTN_EXT for any head size ({LLAMACPP_SRC})"
        )
    if k in METAL_FA_HEAD_DIMS and k >= v:
        return True, (
            f"auto -> on: Metal supports FLASH_ATTN_EXT for head size {k} "
            f"(ggml-metal-device.m supports_op; {LLAMACPP_SRC})"
        )
    return False, (
        f"auto -> off: Metal has no FLASH_ATTN_EXT kernel for head size {k}/{v}, so llama.cpp "
        f"disables it (ggml-metal-device.m supports_op; {LLAMACPP_SRC})"
    )


def _ollama(model: ModelSpec, kv_type: str, req: bool | None) -> tuple:
    k, v = attention_head_dims(model, "llama.cpp")
    fam = model.family.lower()
    supported = fam not in OLLAMA_FA_UNSUPPORTED_FAMILIES and k == v
    quant = kv_type != "f16"
    if quant and not supported:
        raise ValueError(
            f"Ollama does not run flash attention for {model.id} "
            "(SupportsFlashAttention), so it ignores a quantized OLLAMA_KV_CACHE_TYPE and "
            "keeps an f16 cache: use --kv-type f16"
        )
    if req is False:
        return False, "off: OLLAMA_FLASH_ATTENTION=0"
    if not supported:
        return False, (
            f"off: Ollama does not support flash attention for {model.id} "
            f"(K/V head widths {k}/{v} or family {model.family}; {OLLAMA_SRC})"
        )
    if req is True:
        return True, "on: OLLAMA_FLASH_ATTENTION=1"
    if quant:
        return True, (
            f"on: a {kv_type} OLLAMA_KV_CACHE_TYPE is only used with OLLAMA_FLASH_ATTENTION=1, "
            f"assumed set ({OLLAMA_SRC})"
        )
    if fam in OLLAMA_FA_DEFAULT_FAMILIES:
        return True, (
            f"auto -> on: Ollama enables flash attention by default for "
            f"{OLLAMA_FA_DEFAULT_FAMILIES[fam]} ({OLLAMA_SRC})"
        )
    return False, (
        f"auto -> off: Ollama does not list {model.family} for default flash attention "
        f"(conservative: versions differ; set OLLAMA_FLASH_ATTENTION=1 and pass "
        f"--flash-attention if you enable it; {OLLAMA_SRC})"
    )


def _mlx(model: ModelSpec, kv_type: str) -> tuple:
    k, v = attention_head_dims(model, "mlx")
    if kv_type != "f16":
        return False, (
            f"mlx (no switch): a {kv_type} cache uses quantized matmuls, scores are "
            f"materialised ({MLX_SRC})"
        )
    if k == v and k in MLX_FUSED_PREFILL_HEAD_DIMS:
        return True, (
            f"mlx (no switch): fused scaled_dot_product_attention for head size {k} ({MLX_SRC})"
        )
    return False, (
        f"mlx (no switch): no fused prefill kernel for head size {k}/{v}, scores are "
        f"materialised ({MLX_SRC})"
    )


def flash_attention_choice(
    model: ModelSpec,
    runtime: str,
    kv_type: str = "f16",
    requested: bool | None = None,
    *,
    apple_gpu: bool = True,
) -> FlashAttentionChoice:
    """The flash-attention setting `runtime` runs `model` with. apple_gpu: the Metal backend
    (Apple Silicon); False for CPU hosts (Intel Macs, Linux nodes). Raises ValueError for a
    combination the runtime refuses or silently overrides."""
    if runtime == "mlx":
        on, basis = _mlx(model, kv_type)
    elif runtime == "ollama":
        on, basis = _ollama(model, kv_type, requested)
    else:
        on, basis = _llamacpp(model, kv_type, requested, apple_gpu)
    return FlashAttentionChoice(bool(on), requested, basis)


def llamacpp_flash_attention(
    arch: str,
    head_k: int,
    head_v: int,
    kv_type: str = "f16",
    requested: bool | None = None,
    *,
    apple_gpu: bool = True,
) -> FlashAttentionChoice:
    """llama.cpp's rule from a GGUF's own metadata (general.architecture, the attention
    key/value widths): what a llama.cpp build does with `-fa auto|on|off`."""
    on, basis = _llamacpp_rule(
        "grok" in arch.lower(), head_k, head_v, kv_type, requested, apple_gpu
    )
    return FlashAttentionChoice(bool(on), requested, basis)


def _apple_gpu(host: HostSpec | None) -> bool:
    # No host: assume the Metal backend (the smaller set of supported head sizes).
    return True if host is None else bool(host.is_apple_silicon)


def choice_for(
    model: ModelSpec, options: RunOptions, host: HostSpec | None = None
) -> FlashAttentionChoice:
    return flash_attention_choice(
        model, options.runtime, options.kv_type, options.flash_attention,
        apple_gpu=_apple_gpu(host),
    )  # fmt: skip


def resolve_flash_attention(
    model: ModelSpec, options: RunOptions, host: HostSpec | None = None
) -> bool:
    """True when the run uses flash attention (or, on MLX, a fused attention kernel)."""
    return choice_for(model, options, host).enabled


def resolved_options(
    model: ModelSpec, options: RunOptions, host: HostSpec | None = None
) -> RunOptions:
    """options with flash_attention replaced by the resolved bool (idempotent)."""
    on = resolve_flash_attention(model, options, host)
    if options.flash_attention is on:
        return options
    return dataclasses.replace(options, flash_attention=on)


__all__ = [
    "FlashAttentionChoice",
    "attention_head_dims",
    "choice_for",
    "flash_attention_choice",
    "llamacpp_flash_attention",
    "resolve_flash_attention",
    "resolved_options",
]
