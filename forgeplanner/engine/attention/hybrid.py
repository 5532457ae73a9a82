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
    """Kimi Linear's attention layers are MLA (attention.hybrid_attention "mla"): they cache
    one kv_lora_rank + rope latent per token (as latent.py); Nemotron-H also has layers with
    neither (MLP-only blocks): the recurrent layers are those the data lists."""

    name = "hybrid"
    attn_layers: tuple[int, ...] = ()
    state_bytes_per_seq: int = 0
    delta_net: tuple[tuple[str, int], ...] = ()  # DELTA_NET_KEYS -> value, when known
    rec_layers: tuple[int, ...] = ()  # layers holding recurrent state
    mla_latent: int = 0  # > 0: the attention layers cache an MLA latent of this width

    @classmethod
    def from_model(cls, model: ModelSpec) -> HybridAttention:
        att = model.attention
        dn = delta_net_dims(model)
        all_layers = tuple(range(model.n_layers))
        layers = tuple(att.attention_layers) if att.attention_layers else all_layers
        if att.recurrent is not None and att.recurrent.layers:
            rec = tuple(att.recurrent.layers)
        else:
            rec = tuple(i for i in all_layers if i not in set(layers))
        state = int(att.recurrent_state_bytes_per_seq or 0)
        if not state and att.recurrent is not None:
            state = att.recurrent.bytes_per_seq()
        latent = 0
        if att.hybrid_attention == "mla" and att.mla_kv_lora_rank:
            latent = int(att.mla_kv_lora_rank) + int(att.mla_qk_rope_head_dim or 0)
        return cls(model.n_layers, model.n_heads, model.n_kv_heads, model.head_dim,
                   model.hidden_size, layers, state,
                   tuple(sorted(dn.items())) if dn else (), rec, latent)  # fmt: skip

    def attention_layers(self) -> tuple[int, ...]:
        return self.attn_layers

    def layer_caches(self) -> tuple[LayerCache, ...]:
        rows = (self.mla_latent,) if self.mla_latent else (self.kv_row, self.kv_row)
        att = set(self.attn_layers)
        rec = set(self.rec_layers)
        return tuple(
            LayerCache(CACHE_FULL, rows)
            if i in att
            else LayerCache(CACHE_NONE, (), recurrent=i in rec)
            for i in range(self.n_layers)
        )

    def kv_read_multiplier(self, fused: bool) -> float:
        if self.mla_latent:
            return 1.0
        return FullAttention.kv_read_multiplier(self, fused)

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
        if self.mla_latent:
            f = "L_attn * (kv_lora_rank + qk_rope_head_dim) * b * cells  (MLA, K only)"
            n = f"{n_full_layers} * {self.mla_latent} * {bytes_label} * {cells}"
        else:
            f, n = FullAttention.kv_formula(self, n_full_layers, bytes_label, cells)
        return (
            f + " + recurrent_state_per_seq * n_seq",
            n + f" + {self.state_bytes_per_seq} B * {{n_seq}}",
        )
