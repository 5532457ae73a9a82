"""Full attention on every layer (multi-head or grouped-query attention).

KV cache: every layer stores K and V rows of n_kv_heads * head_dim values per token; llama.cpp
sizes them as n_embd_k_gqa / n_embd_v_gqa = head_dim * n_head_kv with head_dim from the config
(ggml-org/llama.cpp src/llama-hparams.cpp), never hidden / heads.
Attention FLOPs per layer and cached position: QK^T and AV, n_heads * head_dim multiply-adds
each, 2 FLOPs per MAC -> 4 * n_heads * head_dim (Hoffmann et al. 2022, "Training
Compute-Optimal Large Language Models", appendix F).
Decode without flash attention: ggml's mul_mat broadcasts K and V over the query heads of a GQA
group (ggml-metal kernel_mul_mv, r2 = ne12/ne02), so the cache is streamed n_heads / n_kv_heads
times; flash attention and MLX's fused SDPA read each KV head once.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.attention.base import (
    CACHE_FULL,
    ComputeTermFit,
    FlopsShape,
    LayerCache,
)


@dataclass(frozen=True, slots=True)
class FullAttention:
    name = "full"
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int

    @classmethod
    def from_model(cls, model: ModelSpec) -> FullAttention:
        return cls(model.n_layers, model.n_heads, model.n_kv_heads, model.head_dim,
                   model.hidden_size)  # fmt: skip

    @property
    def kv_row(self) -> int:
        return self.n_kv_heads * self.head_dim

    def attention_layers(self) -> tuple[int, ...]:
        return tuple(range(self.n_layers))

    def windowed_layers(self) -> frozenset[int]:
        return frozenset()

    def layer_caches(self) -> tuple[LayerCache, ...]:
        row = self.kv_row
        return tuple(LayerCache(CACHE_FULL, (row, row)) for _ in range(self.n_layers))

    @property
    def window(self) -> int:
        return 0

    @property
    def recurrent_bytes_per_seq(self) -> int:
        return 0

    def head_dims(self, weight_format: str) -> tuple[int, int]:
        return self.head_dim, self.head_dim

    def per_layer_flops(self) -> float:
        return 4.0 * self.n_heads * self.head_dim

    def flops_shape(self, weight_format: str = "gguf") -> FlopsShape:
        per_layer = self.per_layer_flops()
        layers = self.attention_layers()
        win = self.windowed_layers()
        n_full = sum(1 for i in layers if i not in win)
        n_win = len(layers) - n_full
        windowed = ((self.window, per_layer * n_win),) if n_win else ()
        gqa = self.n_heads / max(1, self.n_kv_heads)
        return FlopsShape(per_layer * n_full, windowed, gqa)

    def kv_read_multiplier(self, fused: bool) -> float:
        return 1.0 if fused else self.n_heads / max(1, self.n_kv_heads)

    def compute_attention_floats(self, flash_attention: bool, fit: ComputeTermFit) -> float:
        q = self.n_heads * self.head_dim
        attn = fit.attn_h * self.hidden_size + fit.attn_q * q + fit.attn_kv * self.kv_row
        if flash_attention:
            attn += fit.fa_extra_q * q
        return attn

    def kv_formula(self, n_full_layers: int, bytes_label: str, cells: int) -> tuple[str, str]:
        return (
            "2 * L_attn * n_kv_heads * head_dim * b * cells",
            f"2 * {n_full_layers} * {self.n_kv_heads} * {self.head_dim} * {bytes_label} * {cells}",
        )
