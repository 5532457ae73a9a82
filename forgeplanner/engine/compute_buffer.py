"""Compute buffer and fixed runtime overhead per runtime.

llama.cpp reserves its compute buffer once, for the worst-case graph: one micro-batch of
n_ubatch tokens attending over the whole cache, with logits for every token of the micro-batch
(`llama_context` constructor -> `graph_reserve(n_ubatch, n_seqs, min(n_ubatch, n_outputs_max))`,
src/llama-context.cpp). ggml-alloc then packs the graph's intermediate tensors into one buffer,
reusing memory of tensors that are dead. The buffer is therefore set by the largest live set of
intermediates, which for a decoder is the largest of three peaks (all F32, per micro-batch
token, next to the KQ mask [n_kv, n_ubatch] that lives through every layer: F32, or F16 with
flash attention; a second mask over the window cache for sliding-window models):

- attention without flash attention: the KQ scores [n_kv, n_ubatch, n_head]
  (src/llama-graph.cpp build_attn_mha) plus 3 H + 2 q + 2 kv values per token
  (H = n_embd, q = n_head * head_dim, kv = n_head_kv * head_dim); with flash attention no
  score matrix, 3 H + 2.5 q + 2 kv. MLA (absorbed, deepseek2 graph): q = n_head * latent,
  3 H + 2.5 q + 4 latent. Gated attention of Qwen3-Next: 4 H + 4 q + 2 kv; its Gated DeltaNet
  layers about 4 (H + key_dim + value_dim);
- the FFN: 3 n_ff + 4 H (MoE: 3 expert_ffn * k + 5 H, plus 3 expert_ffn + H per shared expert);
- the output head: logits [n_vocab, n_ubatch] plus 2 H.

These were measured on real llama.cpp (`CPU compute buffer size`, llama-cpp-python 0.3.36) by
varying H, q, kv, FFN, vocabulary, context, n_ubatch and n_seq independently; across the 19
shapes/settings in tests/engine/test_llamacpp_memory.py the error is at most 5.8 % (mean
0.8 %), the larger errors where the allocator reuses freed attention memory for the FFN.
n_kv is the cells of one stream. Metal's allocator packs the same graph, so the same formula is
used for Apple GPUs (not measured here: no Mac in CI).

MLX allocates lazily; its transient working set for one prefill chunk is of the same kind (the
attention scores of one chunk unless the fused kernel runs, the logits of the last token only).
Ollama runs llama.cpp, with n_ubatch 512 and its own server/runner process. Whether flash
attention (MLX: the fused kernel) is used is resolved by forgeplanner.engine.runtime_defaults
from the user's choice or the runtime's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.attention import COMPUTE_FIT, ComputeTermFit

# Kept under its old name: the coefficients of the terms above (attention/base.py).
ComputeFit = ComputeTermFit

COMPUTE_SOURCE = (
    "llama.cpp src/llama-context.cpp graph_reserve (worst-case ubatch), "
    "src/llama-graph.cpp build_attn_mha; coefficients measured on real llama.cpp "
    "CPU compute buffers (tests/engine/test_llamacpp_memory.py)"
)
MLX_COMPUTE_SOURCE = "heuristic for mlx-lm (lazy evaluation, generate prefill_step_size 2048)"


def ffn_floats(model: ModelSpec, fit: ComputeTermFit = COMPUTE_FIT) -> float:
    """F32 values per micro-batch token alive at the FFN peak: 3 n_ff + 4 H for a dense FFN;
    MoE (build_moe_ffn): gate/up/act rows of each selected expert, measured 3 * expert_ffn * k
    + 5 H, plus 3 expert_ffn + H per shared expert alive next to the routed ones' output."""
    H = model.hidden_size
    ffn = 0.0
    if model.intermediate_size and (model.moe is None or model.moe.first_dense_layers
                                    or model.moe.interleave_step > 1):  # fmt: skip
        ffn = fit.ffn_ff * model.intermediate_size + fit.ffn_h * H
    if model.moe is not None:
        moe_ff = model.moe.expert_ffn * model.moe.experts_per_token
        moe = fit.ffn_ff * moe_ff + (fit.ffn_h + 1.0) * H
        if model.moe.shared_experts or model.moe.shared_expert_ffn:
            shared = model.moe.shared_expert_ffn or model.moe.expert_ffn * model.moe.shared_experts
            moe += fit.ffn_ff * shared + H
        ffn = max(ffn, moe)
    return ffn


@dataclass(frozen=True, slots=True)
class ComputeBreakdown:
    compute_bytes: int
    runtime_bytes: int
    largest_term: str
    formula: str
    numbers: str
    source: str


def _prepared(model: ModelSpec, options: RunOptions):
    from forgeplanner.engine.kv_cache import _any_quant
    from forgeplanner.engine.pipeline import prepare
    from forgeplanner.engine.quant import quants_for

    return prepare(model, _any_quant(model, options, quants_for), options)


def compute_breakdown(model: ModelSpec, options: RunOptions) -> ComputeBreakdown:
    """The compute buffer and runtime overhead at options.context (the pipeline's terms)."""
    p = _prepared(model, options)
    terms = p.compute_terms(options.context)
    largest = max(terms, key=lambda k: float(terms[k]))
    e = p.memory_estimate(options.context).explain[2]
    return ComputeBreakdown(int(terms[largest]), p.runtime_bytes, largest, e.formula,
                            e.numbers, e.source)  # fmt: skip


def compute_bytes(model: ModelSpec, options: RunOptions) -> int:
    return compute_breakdown(model, options).compute_bytes


def compute_bytes_array(
    model: ModelSpec,
    contexts: np.ndarray,
    flash_attention: bool | None = None,
    parallel: int = 1,
    runtime: str = "llama.cpp",
    n_ubatch: int = 512,
    kv_type: str = "f16",
    prompt_tokens: int = 512,
) -> np.ndarray:
    """compute_bytes over an array of contexts (the pipeline's own arithmetic).
    flash_attention None = the runtime's default."""
    opts = RunOptions(flash_attention=flash_attention, parallel=parallel, runtime=runtime,
                      n_ubatch=n_ubatch, kv_type=kv_type, prompt_tokens=prompt_tokens)  # fmt: skip
    p = _prepared(model, opts)
    return np.asarray(p.compute_bytes(np.asarray(contexts, dtype=np.int64)), dtype=np.int64)


def runtime_overhead_bytes(model: ModelSpec, options: RunOptions) -> int:
    return _prepared(model, options).runtime_bytes
