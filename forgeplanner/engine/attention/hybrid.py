"""Hybrid models: full attention on some layers, a recurrent (linear-attention / SSM) block with
fixed state on the others (Qwen3-Next, Qwen3.5, Jamba, ...).

KV cache only on the attention layers; every other layer keeps a fixed recurrent state per
sequence that does not grow with context. llama.cpp: n_embd_r = (d_conv-1) * (d_inner +
2 * n_group * d_state) and n_embd_s = d_state * d_inner values per layer, F32, one cell per
parallel sequence (src/llama-hparams.cpp, src/llama-model.cpp create_memory); the model data
carries the total per sequence (`recurrent_state_bytes_per_seq`).
Gated attention (Qwen3-Next/3.5): attn_q also produces the output gate, so the query is twice as
wide in the compute buffer; the Gated DeltaNet layers (llama.cpp delta-net-base.cpp, chunked)
were measured at about 4 * (H + key_dim + value_dim) floats per micro-batch token.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.attention.base import (
    CACHE_FULL,
    CACHE_NONE,
    ComputeTermFit,
    LayerCache,
)
from forgeplanner.engine.attention.full import FullAttention

DELTA_NET_KEYS = ("linear_conv_kernel_dim", "linear_key_head_dim", "linear_num_key_heads",
                  "linear_value_head_dim", "linear_num_value_heads")  # fmt: skip


def delta_net_dims(model: ModelSpec) -> dict[str, int] | None:
    """Gated DeltaNet dims of a hybrid (HF config names, as models_db stores them)."""
    if model.attention.kind != "hybrid":
        return None
    rec = model.extra.get("attention.recurrent") if model.extra else None
    if not isinstance(rec, dict):
        return None
    if not all(isinstance(rec.get(k), int) for k in DELTA_NET_KEYS):
        return None
    return {k: int(rec[k]) for k in DELTA_NET_KEYS}


@dataclass(frozen=True, slots=True)
class HybridAttention(FullAttention):
    name = "hybrid"
    attn_layers: tuple[int, ...] = ()
    state_bytes_per_seq: int = 0
    delta_net: tuple[tuple[str, int], ...] = ()  # DELTA_NET_KEYS -> value, when known

    @classmethod
    def from_model(cls, model: ModelSpec) -> HybridAttention:
        att = model.attention
        dn = delta_net_dims(model)
        layers = (
            tuple(att.attention_layers) if att.attention_layers else tuple(range(model.n_layers))
        )
        return cls(model.n_layers, model.n_heads, model.n_kv_heads, model.head_dim,
                   model.hidden_size, layers, int(att.recurrent_state_bytes_per_seq or 0),
                   tuple(sorted(dn.items())) if dn else ())  # fmt: skip

    def attention_layers(self) -> tuple[int, ...]:
        return self.attn_layers

    def layer_caches(self) -> tuple[LayerCache, ...]:
        row = self.kv_row
        att = set(self.attn_layers)
        return tuple(
            LayerCache(CACHE_FULL, (row, row)) if i in att else LayerCache(CACHE_NONE, ())
            for i in range(self.n_layers)
        )

    @property
    def recurrent_bytes_per_seq(self) -> int:
        return self.state_bytes_per_seq

    def compute_attention_floats(self, flash_attention: bool, fit: ComputeTermFit) -> float:
        if not self.delta_net:
            return FullAttention.compute_attention_floats(self, flash_attention, fit)
        dn = dict(self.delta_net)
        q = self.n_heads * self.head_dim
        # gated attention: measured 4 H + 2 * (2 q) + 2 kv
        h = self.hidden_size
        attn = (fit.attn_h + 1.0) * h + fit.attn_q * 2 * q + fit.attn_kv * self.kv_row
        if flash_attention:
            attn += fit.fa_extra_q * q
        kd = dn["linear_key_head_dim"] * dn["linear_num_key_heads"]
        vd = dn["linear_value_head_dim"] * dn["linear_num_value_heads"]
        return max(attn, 4.0 * (self.hidden_size + kd + vd))

    def kv_formula(self, n_full_layers: int, bytes_label: str, cells: int) -> tuple[str, str]:
        f, n = FullAttention.kv_formula(self, n_full_layers, bytes_label, cells)
        return (
            f + " + recurrent_state_per_seq * n_seq",
            n + f" + {self.state_bytes_per_seq} B * {{n_seq}}",
        )
