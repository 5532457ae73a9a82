"""Multi-head latent attention (MLA: DeepSeek-V2/V3/R1, Kimi K2, GLM-5 ...).

KV cache: one compressed latent of kv_lora_rank + qk_rope_head_dim values per layer per token,
K side only since llama.cpp PR #19067 ("V-less cache"); DeepSeek sparse attention (V3.2) adds
an indexer key of index_head_dim per layer per token (src/llama-kv-cache-dsa.cpp). mlx-lm's
deepseek_v3 caches the normalised latent and k_pe, the same widths.
Attention: llama.cpp runs MLA absorbed (deepseek2 graph), so its attention kernels see K = latent
+ rope (576) and V = latent (512) per head; mlx-lm keeps per-head q.k width qk_nope + qk_rope and
v_head_dim. FLOPs per cached position: 2 * n_heads * (qk_head_dim + v_head_dim). The cache is
one latent shared by all heads: decode streams it once.
Compute buffer (deepseek2 graph, absorbed; measured on real llama.cpp): 3 H + 2.5 q + 4 latent
floats per micro-batch token with q = n_heads * latent, with or without flash attention.
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
class LatentAttention:
    name = "mla"
    n_layers: int
    n_heads: int
    hidden_size: int
    head_dim: int
    kv_lora_rank: int
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int
    indexer_head_dim: int = 0

    @classmethod
    def from_model(cls, model: ModelSpec) -> LatentAttention:
        att = model.attention
        if not att.mla_kv_lora_rank:
            raise ValueError(f"{model.id}: MLA attention without kv_lora_rank")
        return cls(
            n_layers=model.n_layers,
            n_heads=model.n_heads,
            hidden_size=model.hidden_size,
            head_dim=model.head_dim,
            kv_lora_rank=int(att.mla_kv_lora_rank),
            qk_rope_head_dim=int(att.mla_qk_rope_head_dim or 0),
            qk_nope_head_dim=int(att.mla_qk_nope_head_dim or 0),
            v_head_dim=int(att.mla_v_head_dim or 0),
            indexer_head_dim=int(att.indexer_head_dim or 0),
        )

    @property
    def latent(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim

    def attention_layers(self) -> tuple[int, ...]:
        return tuple(range(self.n_layers))

    def layer_caches(self) -> tuple[LayerCache, ...]:
        rows = (self.latent, self.indexer_head_dim) if self.indexer_head_dim else (self.latent,)
        return tuple(LayerCache(CACHE_FULL, rows) for _ in range(self.n_layers))

    @property
    def window(self) -> int:
        return 0

    @property
    def recurrent_bytes_per_seq(self) -> int:
        return 0

    def head_dims(self, weight_format: str) -> tuple[int, int]:
        if weight_format == "mlx":
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim or self.head_dim
            return qk, self.v_head_dim or self.head_dim
        return self.latent, self.kv_lora_rank

    def flops_shape(self, weight_format: str = "gguf") -> FlopsShape:
        """llama.cpp attends in the absorbed form: each head's query meets the 576-wide latent
        (q.k over kv_lora + rope) and the scores weight the 512-wide latent (values), so a
        cached position costs 2 x heads x (latent + kv_lora) FLOPs; mlx-lm's per-head form
        costs 2 x heads x (qk_nope + qk_rope + v_head_dim)."""
        qk, v = self.head_dims(weight_format)
        per_layer = 2.0 * self.n_heads * (qk + v)
        return FlopsShape(per_layer * self.n_layers, (), 1.0)

    def kv_read_multiplier(self, fused: bool) -> float:
        return 1.0

    def compute_attention_floats(self, flash_attention: bool, fit: ComputeTermFit) -> float:
        q = self.n_heads * self.latent
        return fit.attn_h * self.hidden_size + 2.5 * q + 4.0 * self.latent

    def kv_formula(self, n_full_layers: int, bytes_label: str, cells: int) -> tuple[str, str]:
        extra = f" + {self.indexer_head_dim} indexer" if self.indexer_head_dim else ""
        return (
            "L * (kv_lora_rank + qk_rope_head_dim [+ indexer]) * b * cells  (K only)",
            f"{self.n_layers} * ({self.kv_lora_rank} + {self.qk_rope_head_dim}{extra}) * "
            f"{bytes_label} * {cells}",
        )
