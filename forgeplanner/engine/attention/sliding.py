"""Sliding-window (or chunked) attention on some layers, full attention on the rest.

KV cache: windowed layers hold only the window. llama.cpp keeps them in a second cache of
GGML_PAD(min(n_ctx_seq, n_swa * n_seq + n_ubatch), 256) cells (src/llama-kv-cache-iswa.cpp,
PR #13194), mlx-lm in a RotatingKVCache(max_size=window) (mlx_lm/models/cache.py). Llama 4's
chunked attention is masked like SWA in llama.cpp (LLAMA_SWA_TYPE_CHUNKED) and cached in a
ChunkedKVCache by mlx-lm; both hold at most one window.
Attention FLOPs of a windowed layer at position p use min(p, window) positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.attention.base import CACHE_FULL, CACHE_WINDOW, LayerCache
from forgeplanner.engine.attention.full import FullAttention


@dataclass(frozen=True, slots=True)
class SlidingAttention(FullAttention):
    name = "sliding"
    sliding_window: int = 0
    sliding_layers: tuple[int, ...] = ()

    @classmethod
    def from_model(cls, model: ModelSpec) -> SlidingAttention:
        att = model.attention
        return cls(model.n_layers, model.n_heads, model.n_kv_heads, model.head_dim,
                   model.hidden_size, int(att.sliding_window or 0),
                   tuple(att.sliding_layers))  # fmt: skip

    def windowed_layers(self) -> frozenset[int]:
        return frozenset(self.sliding_layers) if self.sliding_window else frozenset()

    def layer_caches(self) -> tuple[LayerCache, ...]:
        row = self.kv_row
        win = self.windowed_layers()
        return tuple(
            LayerCache(CACHE_WINDOW if i in win else CACHE_FULL, (row, row))
            for i in range(self.n_layers)
        )

    @property
    def window(self) -> int:
        return self.sliding_window if self.windowed_layers() else 0

    def kv_formula(self, n_full_layers: int, bytes_label: str, cells: int) -> tuple[str, str]:
        n_swa = len(self.windowed_layers())
        return (
            "2 * n_kv * head_dim * b * (L_full * cells + L_window * window_cells)",
            f"2 * {self.n_kv_heads} * {self.head_dim} * {bytes_label} * "
            f"({n_full_layers} * {cells} + {n_swa} * {{window_cells}})",
        )
