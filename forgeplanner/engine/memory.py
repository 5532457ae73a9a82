"""Total memory of one model x quantization x run options, with the reasoning spelled out."""

from __future__ import annotations

import dataclasses

import numpy as np

from forgeplanner.domain.estimates import Explanation, HostSpec, MemoryEstimate, RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.units import fmt_gib
from forgeplanner.engine.compute_buffer import (
    RUNTIME_OVERHEAD_SOURCE,
    compute_breakdown,
    compute_bytes_array,
    runtime_overhead_bytes,
)
from forgeplanner.engine.kv_cache import kv_bytes_array, kv_cache_breakdown
from forgeplanner.engine.quant import QuantScheme, check_combination, get_quant
from forgeplanner.engine.runtime_defaults import choice_for
from forgeplanner.engine.weights import GROUPS, weights_breakdown


def context_per_sequence(options: RunOptions) -> int:
    """Tokens one sequence can hold: llama.cpp splits -c over the parallel sequences; Ollama
    and MLX give each sequence the full context."""
    if options.runtime == "llama.cpp":
        return options.context // options.parallel
    return options.context


def _context_note(model: ModelSpec, options: RunOptions) -> Explanation | None:
    per_seq = context_per_sequence(options)
    if model.max_context is not None and per_seq > model.max_context:
        return Explanation(
            term="warning",
            formula="context per sequence <= model max_context",
            numbers=f"{per_seq} > {model.max_context}",
            value="context above the model's trained maximum",
            source=model.source[:120],
        )
    return None


def estimate_memory(
    model: ModelSpec,
    quant: str | QuantScheme,
    options: RunOptions,
    host: HostSpec | None = None,
) -> MemoryEstimate:
    """Weights + KV cache (+ recurrent state) + compute buffer + runtime overhead.

    options.flash_attention None (the runtime's default) is resolved for `host` (None: the
    Apple GPU / Metal backend) by forgeplanner.engine.runtime_defaults."""
    q = get_quant(quant)
    check_combination(model, q, options.runtime)
    fa = choice_for(model, options, host)
    if options.flash_attention is not fa.enabled:
        options = dataclasses.replace(options, flash_attention=fa.enabled)
    note = _context_note(model, options)
    wb = weights_breakdown(model, q)
    kv = kv_cache_breakdown(model, options)
    cb = compute_breakdown(model, options)
    parts = ", ".join(
        f"{g} {fmt_gib(wb.bytes_by_group[g], 2)}" for g in GROUPS if wb.bytes_by_group[g]
    )
    types = "; ".join(
        f"{g}: " + ", ".join(f"{t} {p / 1e9:.2f}B" for t, p in sorted(wb.types_by_group[g].items()))
        for g in GROUPS
        if wb.types_by_group.get(g)
    )
    if wb.exact:
        w_src = "exact tensor bytes of the GGUF file"
    elif q.format == "mlx":
        w_src = "mlx-lm affine quantization: bits + 32 bits per group of 64 (bf16 scale+bias)"
    else:
        w_src = (
            "llama.cpp src/llama-quant.cpp llama_tensor_get_type (per-tensor mix), "
            "block sizes from gguf.GGML_QUANT_SIZES"
        )
    explain = [
        Explanation(
            term="weights",
            formula="sum over tensors of elements / block_size * bytes_per_block",
            numbers=f"{wb.total_params / 1e9:.3f}B params, {wb.bits_per_weight:.3f} bpw: {parts}"
            + (f" [{types}]" if types else ""),
            value=fmt_gib(wb.total_bytes, 2),
            source=w_src,
        ),
        Explanation(
            term="kv_cache",
            formula=kv.formula,
            numbers=kv.numbers,
            value=fmt_gib(kv.total_bytes, 3),
            source=kv.source,
        ),
        Explanation(
            term="compute",
            formula=cb.formula,
            numbers=cb.numbers,
            value=fmt_gib(cb.compute_bytes, 3),
            source=cb.source,
        ),
        Explanation(
            term="flash_attention",
            formula="user's choice, else the runtime's default (auto)",
            numbers=fa.label,
            value="on" if fa.enabled else "off",
            source=fa.basis,
        ),
        Explanation(
            term="runtime",
            formula="process + Metal context + output buffer (4 B * n_vocab * n_seq)",
            numbers=f"{options.runtime}",
            value=fmt_gib(cb.runtime_bytes, 3),
            source=RUNTIME_OVERHEAD_SOURCE,
        ),
    ]
    if note is not None:
        explain.append(note)
    return MemoryEstimate(
        weights_bytes=wb.total_bytes,
        kv_cache_bytes=kv.total_bytes,
        compute_bytes=cb.compute_bytes,
        runtime_bytes=cb.runtime_bytes,
        explain=tuple(explain),
        recurrent_state_bytes=kv.recurrent_bytes,
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
    MemoryEstimate.to_dict(). Same rules as the scalar path (tests check they agree)."""
    q = get_quant(quant)
    check_combination(model, q, runtime)
    ctx = np.asarray(contexts, dtype=np.int64)
    if np.any(ctx <= 0):
        raise ValueError("contexts must be positive numbers of tokens")
    w = weights_breakdown(model, q).total_bytes
    kv = kv_bytes_array(model, ctx, kv_type, parallel, runtime, n_ubatch)
    comp = compute_bytes_array(
        model, ctx, flash_attention=flash_attention, parallel=parallel, runtime=runtime,
        n_ubatch=n_ubatch, kv_type=kv_type, prompt_tokens=prompt_tokens,
    )  # fmt: skip
    rt = runtime_overhead_bytes(model, RunOptions(runtime=runtime, parallel=parallel), runtime)
    weights = np.full(ctx.shape, w, dtype=np.int64)
    runtime_b = np.full(ctx.shape, rt, dtype=np.int64)
    return {
        "weights_bytes": weights,
        "kv_cache_bytes": kv,
        "compute_bytes": comp,
        "runtime_bytes": runtime_b,
        "total_bytes": weights + kv + comp + runtime_b,
    }
