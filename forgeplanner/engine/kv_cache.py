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

KV_SOURCE = (
    "llama.cpp src/llama-context.cpp (n_ctx padded to 256), src/llama-kv-cache.cpp, "
    "src/llama-kv-cache-iswa.cpp (window cells), llama-cpp-python 0.3.36 vendor tree"
)
MLX_KV_SOURCE = (
    "mlx-lm mlx_lm/models/cache.py (KVCache step 256, RotatingKVCache, QuantizedKVCache)"
)


def _pad(n: int | np.ndarray, to: int) -> int | np.ndarray:
    return ((n + to - 1) // to) * to


def _rules(runtime_or_profile) -> object:
    """The runtime profile for a runtime name or a profile."""
    from forgeplanner.engine.runtimes import RuntimeProfile, profile

    if isinstance(runtime_or_profile, RuntimeProfile):
        return runtime_or_profile
    return profile(runtime_or_profile)


def kv_row_bytes(n_elements: int, kv_type: str, rules: str = "llama.cpp") -> float:
    """Bytes to store `n_elements` cache values of one token in one layer. `rules`: the
    profile's cache_rules ("llama.cpp" or "mlx"; a runtime name is accepted too)."""
    if rules in ("mlx", "lmstudio-mlx"):
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


def bytes_label(kv_type: str, rules: str) -> str:
    if rules == "mlx":
        bits = MLX_KV_BITS[kv_type]
        return "2 B" if bits is None else f"({bits}/8 + 4/64) B"
    return {"f16": "2 B", "q8_0": "34/32 B", "q4_0": "18/32 B"}[kv_type]


def kv_cells(
    context: int | np.ndarray,
    parallel: int,
    runtime,
    window: int,
    n_ubatch: int,
    swa_full: bool = False,
) -> tuple[int | np.ndarray, int | np.ndarray]:
    """(full-cache cells, windowed-cache cells) over all streams, by the runtime profile's
    cache rules (`runtime`: a profile or a runtime name). Works on numpy arrays."""
    prof = _rules(runtime)
    ctx = np.asarray(context, dtype=np.int64)
    if prof.cache_rules == "mlx":
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
    unified = prof.unified_kv
    if prof.context_times_parallel:
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


@dataclass(frozen=True, slots=True)
class KvBreakdown:
    """The KV cache at one context, from the pipeline's per-layer table."""

    attention_bytes: int  # K/V (and indexer) rows of the attention layers
    recurrent_bytes: int  # fixed recurrent state of hybrids, all sequences
    cells_full: int  # cells over all streams in the full-context cache
    cells_swa: int  # cells over all streams in the windowed cache (0 if none)
    formula: str
    numbers: str
    source: str

    @property
    def total_bytes(self) -> int:
        return self.attention_bytes + self.recurrent_bytes


def kv_cache_breakdown(model: ModelSpec, options: RunOptions) -> KvBreakdown:
    """KV cache bytes for `options.context` tokens with `options.parallel` sequences."""
    from forgeplanner.engine.pipeline import prepare
    from forgeplanner.engine.quant import quants_for

    p = prepare(model, _any_quant(model, options, quants_for), options)
    full, swa = p.cells(options.context)
    total = p.kv_bytes(options.context, (full, swa))
    rec = p.table.recurrent_bytes_per_seq * options.parallel
    e = p.memory_estimate(options.context).explain[1]
    return KvBreakdown(total - rec, rec, int(full), int(swa), e.formula, e.numbers, e.source)


def _any_quant(model: ModelSpec, options: RunOptions, quants_for) -> str:
    """The KV cache does not depend on the weights' quantization: any valid one will do."""
    qs = quants_for(model, options.runtime)
    if not qs:
        raise ValueError(
            f"{model.id} has no weights for runtime {options.runtime} "
            f"(formats: {', '.join(model.formats)})"
        )
    return qs[0].name


def kv_cache_bytes(model: ModelSpec, options: RunOptions) -> int:
    return kv_cache_breakdown(model, options).total_bytes


def kv_bytes_per_token(model: ModelSpec, kv_type: str = "f16", runtime: str = "llama.cpp") -> float:
    """Bytes per cached token at full context over all layers (windowed layers counted too);
    what decoding reads per token of depth while depth <= window."""
    from forgeplanner.engine.pipeline import prepare
    from forgeplanner.engine.quant import quants_for

    opts = RunOptions(kv_type=kv_type, runtime=runtime)
    t = prepare(model, _any_quant(model, opts, quants_for), opts).table
    return t.full_cell_bytes + t.window_cell_bytes


def kv_bytes_array(
    model: ModelSpec,
    contexts: np.ndarray,
    kv_type: str = "f16",
    parallel: int = 1,
    runtime: str = "llama.cpp",
    n_ubatch: int = 512,
) -> np.ndarray:
    """kv_cache_bytes over an array of contexts (the pipeline's own arithmetic)."""
    from forgeplanner.engine.pipeline import prepare
    from forgeplanner.engine.quant import quants_for

    opts = RunOptions(kv_type=kv_type, runtime=runtime, parallel=parallel, n_ubatch=n_ubatch)
    p = prepare(model, _any_quant(model, opts, quants_for), opts)
    return np.asarray(p.kv_bytes(np.asarray(contexts, dtype=np.int64)), dtype=np.int64)
