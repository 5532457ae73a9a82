"""KV cache (and recurrent state) memory per runtime.

llama.cpp (and Ollama, which runs llama.cpp's cache rules), read at the llama.cpp tree vendored
in llama-cpp-python 0.3.36 (commit 0c1e570):
- `src/llama-context.cpp`: n_ctx = GGML_PAD(n_ctx, 256); with the default per-sequence streams
  (kv_unified = false) n_ctx_seq = GGML_PAD(n_ctx / n_seq_max, 256) and the cache holds
  n_ctx_seq cells in each of n_seq_max streams; a unified cache holds n_ctx cells in one stream.
- `src/llama-kv-cache.cpp`: per layer K = ggml_row_size(type_k, n_embd_k_gqa) per cell, V the
  same with n_embd_v_gqa; MLA caches K only (has_v = !is_mla, PR #19067), K = kv_lora + rope.
- `src/llama-kv-cache-iswa.cpp`: sliding-window/chunked layers live in a second cache of
  GGML_PAD(min(n_ctx_seq, n_swa * (unified ? n_seq_max : 1) + n_ubatch), 256) cells per
  stream (full size with --swa-full).
- `src/llama-kv-cache-dsa.cpp`: DeepSeek sparse attention adds a K-only indexer cache of
  indexer_head_dim per layer per cell.
- hybrid models (`src/llama-model.cpp` create_memory): KV only on attention layers, plus F32
  recurrent state, max(1, n_seq_max) cells.
- q8_0 = 34 bytes per 32 elements, q4_0 = 18 per 32 (gguf.GGML_QUANT_SIZES).

Context semantics: for llama.cpp `context` is `-c` (shared by the parallel sequences, as in
llama-server); Ollama multiplies `num_ctx` by OLLAMA_NUM_PARALLEL and runs one unified cache;
MLX keeps one cache per sequence.

MLX (ml-explore/mlx-lm `mlx_lm/models/cache.py`): KVCache grows in steps of 256 tokens;
RotatingKVCache(max_size=window) for windowed layers holds the window plus, while reading a
long prompt, one prefill chunk (generate's prefill_step_size 2048); QuantizedKVCache with
kv_bits 8/4 and group 64 stores bits/8 bytes plus a 16-bit scale and bias per 64 values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.quant import ggml_block

KV_TYPE_GGML = {"f16": "F16", "q8_0": "Q8_0", "q4_0": "Q4_0"}
MLX_KV_BITS = {"f16": None, "q8_0": 8, "q4_0": 4}
MLX_KV_STEP = 256
MLX_PREFILL_STEP = 2048
MLX_KV_GROUP = 64
LLAMA_CTX_PAD = 256


def _pad(n: int | np.ndarray, to: int) -> int | np.ndarray:
    return ((n + to - 1) // to) * to


def kv_row_bytes(n_elements: int, kv_type: str, runtime: str = "llama.cpp") -> float:
    """Bytes to store `n_elements` cache values of one token in one layer."""
    if runtime == "mlx":
        bits = MLX_KV_BITS[kv_type]
        if bits is None:
            return n_elements * 2.0  # bf16/f16 model dtype
        return n_elements * bits / 8 + (n_elements / MLX_KV_GROUP) * 4
    blk, size = ggml_block(KV_TYPE_GGML[kv_type])
    if n_elements % blk:
        raise ValueError(
            f"kv_type {kv_type} needs rows divisible by {blk}; this model's KV row has "
            f"{n_elements} values: use f16"
        )
    return n_elements // blk * size


@dataclass(frozen=True, slots=True)
class KvLayout:
    """Per-token cache widths of one model (elements per token, summed over layers)."""

    full_k: int  # K elements per token over all full-context layers
    full_v: int
    swa_k: int  # over the windowed/chunked layers
    swa_v: int
    window: int  # 0 = no windowed layers
    n_full_layers: int
    n_swa_layers: int
    recurrent_bytes_per_seq: int  # fixed state per sequence (hybrids), F32 in llama.cpp
    kind: str


def kv_layout(model: ModelSpec) -> KvLayout:
    att = model.attention
    L = model.n_layers
    per_layer = model.n_kv_heads * model.head_dim  # n_embd_k_gqa: head_dim from the config
    if att.kind == "mla":
        if not att.mla_kv_lora_rank:
            raise ValueError(f"{model.id}: MLA attention without kv_lora_rank")
        k = att.mla_kv_lora_rank + (att.mla_qk_rope_head_dim or 0)
        k_all = L * k + (L * att.indexer_head_dim if att.indexer_head_dim else 0)
        return KvLayout(k_all, 0, 0, 0, 0, L, 0, 0, "mla")
    if att.kind == "hybrid":
        n_att = len(att.attention_layers) if att.attention_layers else L
        return KvLayout(
            n_att * per_layer,
            n_att * per_layer,
            0,
            0,
            0,
            n_att,
            0,
            att.recurrent_state_bytes_per_seq or 0,
            "hybrid",
        )
    if att.kind == "sliding" and att.sliding_window and att.sliding_layers:
        n_swa = len(att.sliding_layers)
        n_full = L - n_swa
        return KvLayout(
            n_full * per_layer,
            n_full * per_layer,
            n_swa * per_layer,
            n_swa * per_layer,
            att.sliding_window,
            n_full,
            n_swa,
            0,
            "sliding",
        )
    return KvLayout(L * per_layer, L * per_layer, 0, 0, 0, L, 0, 0, "full")


@dataclass(frozen=True, slots=True)
class KvBreakdown:
    k_bytes: int
    v_bytes: int
    recurrent_bytes: int
    cells_full: int  # cells over all streams in the full-context cache
    cells_swa: int  # cells over all streams in the windowed cache (0 if none)
    layout: KvLayout
    formula: str
    numbers: str
    source: str

    @property
    def total_bytes(self) -> int:
        return self.k_bytes + self.v_bytes + self.recurrent_bytes

    @property
    def attention_bytes(self) -> int:
        return self.k_bytes + self.v_bytes


def kv_cells(
    context: int | np.ndarray,
    parallel: int,
    runtime: str,
    window: int,
    n_ubatch: int,
    swa_full: bool = False,
    unified: bool | None = None,
) -> tuple[int | np.ndarray, int | np.ndarray]:
    """(full-cache cells, windowed-cache cells) over all streams. Works on numpy arrays."""
    ctx = np.asarray(context, dtype=np.int64)
    if runtime == "mlx":
        full = _pad(ctx, MLX_KV_STEP) * parallel
        if window:
            # while reading a prompt longer than the window the rotating cache holds
            # window - 1 + one prefill chunk (mlx-lm RotatingKVCache._update_concat)
            swa = np.where(
                ctx > window,
                np.minimum(ctx, window - 1 + MLX_PREFILL_STEP),
                np.minimum(_pad(ctx, MLX_KV_STEP), window),
            )
            swa = swa * parallel
        else:
            swa = np.zeros_like(full)
        return _scalar(full, context), _scalar(swa, context)
    if unified is None:
        unified = runtime == "ollama"
    if runtime == "ollama":
        ctx = ctx * parallel  # Ollama: num_ctx per sequence x OLLAMA_NUM_PARALLEL
    n_ctx = _pad(ctx, LLAMA_CTX_PAD)
    if unified:
        per_stream = n_ctx
        streams = 1
    else:
        per_stream = _pad(n_ctx // parallel, LLAMA_CTX_PAD)
        streams = parallel
    full = per_stream * streams
    if window:
        if swa_full:
            swa = full
        else:
            want = window * (parallel if unified else 1) + n_ubatch
            swa = _pad(np.minimum(per_stream, want), LLAMA_CTX_PAD) * streams
    else:
        swa = np.zeros_like(full)
    return _scalar(full, context), _scalar(swa, context)


def _scalar(arr: np.ndarray, like: int | np.ndarray) -> int | np.ndarray:
    if np.ndim(like) == 0:
        return int(arr)
    return arr


def kv_cache_breakdown(
    model: ModelSpec,
    options: RunOptions,
    runtime: str | None = None,
    swa_full: bool = False,
    unified: bool | None = None,
) -> KvBreakdown:
    """KV cache bytes for `options.context` tokens with `options.parallel` sequences."""
    rt = runtime or options.runtime
    lay = kv_layout(model)
    kv_t = options.kv_type
    n_ub = min(options.n_ubatch, options.n_batch)
    full, swa = kv_cells(options.context, options.parallel, rt, lay.window, n_ub, swa_full, unified)
    assert isinstance(full, int) and isinstance(swa, int)
    L = model.n_layers
    if lay.kind == "mla":
        kb = int(_layer_sum_bytes(model, kv_t, rt, "mla") * full)
        vb = 0
    else:
        per_k = lay.full_k // max(1, lay.n_full_layers) if lay.n_full_layers else 0
        row = kv_row_bytes(per_k, kv_t, rt) if per_k else 0
        kb = int(row * lay.n_full_layers * full)
        vb = kb
        if lay.n_swa_layers:
            per_s = lay.swa_k // lay.n_swa_layers
            rs = kv_row_bytes(per_s, kv_t, rt)
            kb += int(rs * lay.n_swa_layers * swa)
            vb += int(rs * lay.n_swa_layers * swa)
    rec_seqs = options.parallel
    rec = lay.recurrent_bytes_per_seq * rec_seqs
    b = _bytes_label(kv_t, rt)
    if lay.kind == "mla":
        att = model.attention
        extra = f" + {att.indexer_head_dim} indexer" if att.indexer_head_dim else ""
        formula = "L * (kv_lora_rank + qk_rope_head_dim [+ indexer]) * b * cells  (K only)"
        numbers = (
            f"{L} * ({att.mla_kv_lora_rank} + {att.mla_qk_rope_head_dim}{extra}) * {b} * {full}"
        )
    elif lay.kind == "sliding":
        hd = f"{model.n_kv_heads} * {model.head_dim}"
        formula = "2 * n_kv * head_dim * b * (L_full * cells + L_window * window_cells)"
        numbers = f"2 * {hd} * {b} * ({lay.n_full_layers} * {full} + {lay.n_swa_layers} * {swa})"
    else:
        formula = "2 * L_attn * n_kv_heads * head_dim * b * cells"
        numbers = f"2 * {lay.n_full_layers} * {model.n_kv_heads} * {model.head_dim} * {b} * {full}"
        if lay.kind == "hybrid":
            formula += " + recurrent_state_per_seq * n_seq"
            numbers += f" + {lay.recurrent_bytes_per_seq} B * {rec_seqs}"
    if rt == "mlx":
        src = "mlx-lm mlx_lm/models/cache.py (KVCache step 256, RotatingKVCache, QuantizedKVCache)"
    else:
        src = (
            "llama.cpp src/llama-context.cpp (n_ctx padded to 256), src/llama-kv-cache.cpp, "
            "src/llama-kv-cache-iswa.cpp (window cells), llama-cpp-python 0.3.36 vendor tree"
        )
    return KvBreakdown(kb, vb, rec, full, swa, lay, formula, numbers, src)


def _bytes_label(kv_type: str, runtime: str) -> str:
    if runtime == "mlx":
        bits = MLX_KV_BITS[kv_type]
        return "2 B" if bits is None else f"({bits}/8 + 4/64) B"
    return {"f16": "2 B", "q8_0": "34/32 B", "q4_0": "18/32 B"}[kv_type]


def _layer_sum_bytes(model: ModelSpec, kv_type: str, runtime: str, kind: str) -> float:
    att = model.attention
    L = model.n_layers
    k = (att.mla_kv_lora_rank or 0) + (att.mla_qk_rope_head_dim or 0)
    total = L * kv_row_bytes(k, kv_type, runtime)
    if att.indexer_head_dim:
        total += L * kv_row_bytes(att.indexer_head_dim, kv_type, runtime)
    return total


def kv_cache_bytes(model: ModelSpec, options: RunOptions, runtime: str | None = None) -> int:
    return kv_cache_breakdown(model, options, runtime).total_bytes


def kv_bytes_per_token(model: ModelSpec, kv_type: str = "f16", runtime: str = "llama.cpp") -> float:
    """Bytes per cached token at full context over all layers (windowed layers counted too);
    what decoding reads per token of depth while depth <= window."""
    lay = kv_layout(model)
    if lay.kind == "mla":
        return _layer_sum_bytes(model, kv_type, runtime, "mla")
    tot = 0.0
    if lay.n_full_layers:
        tot += (
            2 * lay.n_full_layers * kv_row_bytes(lay.full_k // lay.n_full_layers, kv_type, runtime)
        )
    if lay.n_swa_layers:
        tot += 2 * lay.n_swa_layers * kv_row_bytes(lay.swa_k // lay.n_swa_layers, kv_type, runtime)
    return tot


def kv_bytes_array(
    model: ModelSpec,
    contexts: np.ndarray,
    kv_type: str = "f16",
    parallel: int = 1,
    runtime: str = "llama.cpp",
    n_ubatch: int = 512,
) -> np.ndarray:
    """Vectorised kv_cache_bytes over an array of contexts (same rules, int64 result)."""
    lay = kv_layout(model)
    ctx = np.asarray(contexts, dtype=np.int64)
    full, swa = kv_cells(ctx, parallel, runtime, lay.window, n_ubatch)
    full = np.asarray(full, dtype=np.float64)
    swa = np.asarray(swa, dtype=np.float64)
    if lay.kind == "mla":
        per_full = _layer_sum_bytes(model, kv_type, runtime, "mla")
        per_swa = 0.0
    else:
        per_full = (
            2 * lay.n_full_layers * kv_row_bytes(lay.full_k // lay.n_full_layers, kv_type, runtime)
            if lay.n_full_layers
            else 0.0
        )
        per_swa = (
            2 * lay.n_swa_layers * kv_row_bytes(lay.swa_k // lay.n_swa_layers, kv_type, runtime)
            if lay.n_swa_layers
            else 0.0
        )
    out = per_full * full + per_swa * swa + lay.recurrent_bytes_per_seq * parallel
    return out.astype(np.int64)
