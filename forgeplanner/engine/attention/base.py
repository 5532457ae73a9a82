"""What an attention kind must say about itself.

An attention kind (full, sliding window, latent (MLA), hybrid with recurrent layers) decides
three things the engine needs, and owns all three:

- the KV cache layout: which layers cache what per token (`layer_caches`), whether windowed
  layers exist (`window`), and any fixed per-sequence state (`recurrent_bytes_per_seq`);
- the attention cost: FLOPs per token per cached position (`flops_shape`) and how often decode
  streams the cache (`kv_read_multiplier`);
- what the runtimes' attention kernels see (`head_dims`, for the flash-attention rules) and the
  attention term of llama.cpp's compute buffer (`compute_attention_floats`).

Each kind is a frozen dataclass built from a ModelSpec (`from_model`); `attention_of(model)`
picks the kind by `model.attention.kind` with `match`. Adding a kind is one module here plus its
fields in the model data.
"""

from __future__ import annotations

from dataclasses import dataclass

# Cache a layer's rows live in: the full-context cache, the sliding-window cache, or none
# (recurrent layers of hybrids keep fixed state instead).
CACHE_FULL = "full"
CACHE_WINDOW = "window"
CACHE_NONE = "none"


@dataclass(frozen=True, slots=True)
class LayerCache:
    """What one layer stores per cached token: the element counts of each row (K, V, an
    indexer key ...), each stored as one ggml row (block-aligned on its own). A layer with no
    rows either keeps recurrent state (`recurrent`) or reuses another layer's cache / has no
    attention at all."""

    cache: str  # CACHE_FULL | CACHE_WINDOW | CACHE_NONE
    rows: tuple[int, ...]
    recurrent: bool = False


@dataclass(frozen=True, slots=True)
class ComputeTermFit:
    """Coefficients (F32 values per token of the micro-batch) of llama.cpp's compute-buffer
    terms, measured on real llama.cpp (see forgeplanner/engine/compute_buffer.py)."""

    attn_h: float = 3.0
    attn_q: float = 2.0
    attn_kv: float = 2.0
    fa_extra_q: float = 0.5  # flash attention: F16 copy of Q next to the F32 output
    ffn_ff: float = 3.0
    ffn_h: float = 4.0
    out_h: float = 2.0


COMPUTE_FIT = ComputeTermFit()


@dataclass(frozen=True, slots=True)
class FlopsShape:
    """Attention FLOPs per token at position p:
    flops(p) = full_coeff * p + sum over (window, coeff) of coeff * min(p, window)."""

    full_coeff: float
    windowed: tuple[tuple[int, float], ...]
    gqa_ratio: float
