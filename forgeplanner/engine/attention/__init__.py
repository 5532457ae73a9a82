"""Attention kinds: a closed union of frozen types, each owning its KV layout and its cost.

`attention_of(model)` maps the model data's `attention.kind` to its type. To add a kind: write
one module here with a frozen dataclass that has the methods of FullAttention (layer_caches,
window, recurrent_bytes_per_seq, head_dims, flops_shape, kv_read_multiplier,
compute_attention_floats, kv_formula, attention_layers), add it to `Attention` and the `match`
below, and give the model data its fields.
"""

from __future__ import annotations

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.attention.base import (
    CACHE_FULL,
    CACHE_NONE,
    CACHE_WINDOW,
    COMPUTE_FIT,
    ComputeTermFit,
    FlopsShape,
    LayerCache,
)
from forgeplanner.engine.attention.full import FullAttention
from forgeplanner.engine.attention.hybrid import HybridAttention, delta_net_dims
from forgeplanner.engine.attention.latent import LatentAttention
from forgeplanner.engine.attention.sliding import SlidingAttention

Attention = FullAttention | SlidingAttention | LatentAttention | HybridAttention

KINDS: tuple[str, ...] = ("full", "sliding", "mla", "hybrid")


def attention_of(model: ModelSpec) -> Attention:
    """The attention kind of a model, built from its data."""
    att = model.attention
    match att.kind:
        case "full":
            return FullAttention.from_model(model)
        case "sliding":
            if att.sliding_window and att.sliding_layers:
                return SlidingAttention.from_model(model)
            return FullAttention.from_model(model)  # no windowed layer listed: full
        case "mla":
            return LatentAttention.from_model(model)
        case "hybrid":
            return HybridAttention.from_model(model)
        case other:
            raise ValueError(
                f"{model.id}: attention kind '{other}' unknown; valid: {', '.join(KINDS)}"
            )


__all__ = [
    "CACHE_FULL",
    "CACHE_NONE",
    "CACHE_WINDOW",
    "COMPUTE_FIT",
    "KINDS",
    "Attention",
    "ComputeTermFit",
    "FlopsShape",
    "FullAttention",
    "HybridAttention",
    "LatentAttention",
    "LayerCache",
    "SlidingAttention",
    "attention_of",
    "delta_net_dims",
]
