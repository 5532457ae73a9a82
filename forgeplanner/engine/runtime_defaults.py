"""What each runtime does when the user leaves flash attention at its default.

`RunOptions.flash_attention` is tri-state: True (`-fa on`), False (`-fa off`) or None, "the
runtime's default". Flash attention changes the compute buffer (no score matrix) and how often
decode streams the KV cache, so every consumer must use the value the runtime actually runs
with. The rules themselves live in each runtime's profile (forgeplanner/engine/runtimes/, one
module per runtime, with their sources); this module is the lookup by options and host.
"""

from __future__ import annotations

import dataclasses

from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.runtimes import FlashAttentionChoice, profile
from forgeplanner.engine.runtimes.llamacpp import METAL_FA_HEAD_DIMS, llamacpp_rule
from forgeplanner.engine.runtimes.mlx import MLX_FUSED_PREFILL_HEAD_DIMS
from forgeplanner.engine.runtimes.ollama import (
    OLLAMA_FA_DEFAULT_FAMILIES,
    OLLAMA_FA_UNSUPPORTED_FAMILIES,
)


def attention_head_dims(model: ModelSpec, runtime: str = "llama.cpp") -> tuple[int, int]:
    """(K width, V width) per head as the runtime's attention kernels see them."""
    from forgeplanner.engine.attention import attention_of

    return attention_of(model).head_dims(profile(runtime).weight_format)


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
    return profile(runtime).flash_attention(model, kv_type, requested, apple_gpu=apple_gpu)


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
    on, basis = llamacpp_rule("grok" in arch.lower(), head_k, head_v, kv_type, requested,
                              apple_gpu)  # fmt: skip
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
    "METAL_FA_HEAD_DIMS",
    "MLX_FUSED_PREFILL_HEAD_DIMS",
    "OLLAMA_FA_DEFAULT_FAMILIES",
    "OLLAMA_FA_UNSUPPORTED_FAMILIES",
    "FlashAttentionChoice",
    "attention_head_dims",
    "choice_for",
    "flash_attention_choice",
    "llamacpp_flash_attention",
    "resolve_flash_attention",
    "resolved_options",
]
