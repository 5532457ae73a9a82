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
from forgeplanner.engine.attention.base import (
    CACHE_FULL,
    CACHE_NONE,
    CACHE_WINDOW,
    FlopsShape,
    LayerCache,
)
from forgeplanner.engine.attention.full import FullAttention


@dataclass(frozen=True, slots=True)
class SlidingAttention(FullAttention):
    """Gemma 4 adds two twists, both read from llama.cpp src/models/gemma4.cpp and
    src/llama-model.cpp: its global (full-context) layers use wider heads and fewer KV heads
    (attention.key_length 512 vs key_length_swa 256; llama.cpp still allocates a V row, even
    where V = K), and the E-models' last `kv_shared_layers` layers own no cache: they attend
    over an earlier layer's (hparams.n_layer_kv_from_start = n_layer - shared). Gemma 3n shares
    the same way."""

    name = "sliding"
    sliding_window: int = 0
    sliding_layers: tuple[int, ...] = ()
    global_head_dim: int = 0  # 0 = head_dim
    global_n_kv_heads: int = 0  # 0 = n_kv_heads
    kv_shared_layers: int = 0

    @classmethod
    def from_model(cls, model: ModelSpec) -> SlidingAttention:
        att = model.attention
        return cls(model.n_layers, model.n_heads, model.n_kv_heads, model.head_dim,
                   model.hidden_size, int(att.sliding_window or 0),
                   tuple(att.sliding_layers), int(att.global_head_dim or 0),
                   int(att.global_n_kv_heads or 0), int(att.kv_shared_layers or 0))  # fmt: skip

    def windowed_layers(self) -> frozenset[int]:
        return frozenset(self.sliding_layers) if self.sliding_window else frozenset()

    @property
    def global_row(self) -> int:
        return (self.global_n_kv_heads or self.n_kv_heads) * (self.global_head_dim or self.head_dim)

    def layer_caches(self) -> tuple[LayerCache, ...]:
        row, grow = self.kv_row, self.global_row
        win = self.windowed_layers()
        own = self.n_layers - self.kv_shared_layers
        out = []
        for i in range(self.n_layers):
            if i >= own:
                out.append(LayerCache(CACHE_NONE, ()))  # reuses an earlier layer's cache
            elif i in win:
                out.append(LayerCache(CACHE_WINDOW, (row, row)))
            else:
                out.append(LayerCache(CACHE_FULL, (grow, grow)))
        return tuple(out)

    def flops_shape(self, weight_format: str = "gguf") -> FlopsShape:
        """Windowed layers attend over min(p, window) with head_dim; global layers over p
        with the global head width (every layer attends, shared-cache layers included)."""
        win = self.windowed_layers()
        n_win = sum(1 for i in range(self.n_layers) if i in win)
        n_full = self.n_layers - n_win
        per_local = 4.0 * self.n_heads * self.head_dim
        per_global = 4.0 * self.n_heads * (self.global_head_dim or self.head_dim)
        windowed = ((self.window, per_local * n_win),) if n_win else ()
        gqa = self.n_heads / max(1, self.n_kv_heads)
        return FlopsShape(per_global * n_full, windowed, gqa)

    @property
    def window(self) -> int:
        return self.sliding_window if self.windowed_layers() else 0

    def kv_formula(self, n_full_layers: int, bytes_label: str, cells: int) -> tuple[str, str]:
        own = self.n_layers - self.kv_shared_layers
        n_swa = sum(1 for i in self.windowed_layers() if i < own)
        shared = (
            f" ({self.kv_shared_layers} layers share an earlier cache)"
            if (self.kv_shared_layers)
            else ""
        )
        if self.global_row != self.kv_row:
            g_kv = self.global_n_kv_heads or self.n_kv_heads
            g_hd = self.global_head_dim or self.head_dim
            return (
                "2 * b * (L_full * n_kv_g * head_dim_g * cells + L_window * n_kv * head_dim "
                "* window_cells)" + shared,
                f"2 * {bytes_label} * ({n_full_layers} * {g_kv} * {g_hd} * {cells} + {n_swa} * "
                f"{self.n_kv_heads} * {self.head_dim} * {{window_cells}})",
            )
        return (
            "2 * n_kv * head_dim * b * (L_full * cells + L_window * window_cells)" + shared,
            f"2 * {self.n_kv_heads} * {self.head_dim} * {bytes_label} * "
            f"({n_full_layers} * {cells} + {n_swa} * {{window_cells}})",
        )
