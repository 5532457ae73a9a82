"""Total memory of one model x quantization x run options, with the reasoning spelled out.

A front on the estimate pipeline (forgeplanner.engine.pipeline): the options are resolved once
and every term comes from the per-layer table, so this, the sweep's arrays and the cluster's
layer ranges are the same arithmetic.
"""

from __future__ import annotations

import numpy as np

from forgeplanner.domain.estimates import HostSpec, MemoryEstimate, RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.pipeline import prepare
from forgeplanner.engine.quant import QuantScheme
from forgeplanner.engine.runtimes import profile


def apple_gpu(host: HostSpec | None) -> bool:
    """The Metal backend decides llama.cpp's flash-attention default; no host: assume it."""
    return True if host is None else bool(host.is_apple_silicon)


def context_per_sequence(options: RunOptions) -> int:
    """Tokens one sequence can hold: llama.cpp splits -c over the parallel sequences; Ollama
    and MLX give each sequence the full context."""
    return profile(options.runtime).context_per_sequence(options.context, options.parallel)


def estimate_memory(
    model: ModelSpec,
    quant: str | QuantScheme,
    options: RunOptions,
    host: HostSpec | None = None,
) -> MemoryEstimate:
    """Weights + KV cache (+ recurrent state) + compute buffer + runtime overhead.

    options.flash_attention None (the runtime's default) is resolved for `host` (None: the
    Apple GPU / Metal backend) by the runtime's profile."""
    return prepare(model, quant, options, apple_gpu=apple_gpu(host)).memory_estimate(
        options.context
    )


def estimate_memory_array(
    model: ModelSpec,
    quant: str | QuantScheme,
    contexts: np.ndarray,
    kv_type: str = "f16",
    flash_attention: bool | None = None,
    parallel: int = 1,
    runtime: str = "llama.cpp",
    n_ubatch: int = 512,
    prompt_tokens: int = 512,
) -> dict[str, np.ndarray]:
    """estimate_memory over an array of contexts for sweeps: int64 arrays with the keys of
    MemoryEstimate.to_dict(), from the same pipeline terms as the scalar path."""
    ctx = np.asarray(contexts, dtype=np.int64)
    if np.any(ctx <= 0):
        raise ValueError("contexts must be positive numbers of tokens")
    opts = RunOptions(kv_type=kv_type, flash_attention=flash_attention, parallel=parallel,
                      runtime=runtime, n_ubatch=n_ubatch, prompt_tokens=prompt_tokens)  # fmt: skip
    p = prepare(model, quant, opts)
    cells = p.cells(ctx)
    kv = np.asarray(p.kv_bytes(ctx, cells), dtype=np.int64)
    comp = np.asarray(p.compute_bytes(ctx, cells), dtype=np.int64)
    weights = np.full(ctx.shape, p.weights_bytes, dtype=np.int64)
    runtime_b = np.full(ctx.shape, p.runtime_bytes, dtype=np.int64)
    return {
        "weights_bytes": weights,
        "kv_cache_bytes": kv,
        "compute_bytes": comp,
        "runtime_bytes": runtime_b,
        "total_bytes": weights + kv + comp + runtime_b,
    }


__all__ = ["apple_gpu", "context_per_sequence", "estimate_memory", "estimate_memory_array"]
