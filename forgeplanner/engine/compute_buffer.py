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
from forgeplanner.domain.units import MiB
from forgeplanner.engine.kv_cache import kv_cells, kv_layout
from forgeplanner.engine.runtime_defaults import flash_attention_choice
from forgeplanner.engine.weights import delta_net_dims

# Runtime overhead outside weights/KV/compute: documented heuristics, not measurements.
#  llama.cpp: Metal device + command queues + library and the process itself (~150-250 MiB
#    resident on Apple Silicon in llama-server); we take 256 MiB.
#  Ollama: the Go server plus a llama runner process (~0.5 GiB resident).
#  MLX: Python + mlx + Metal library (~300 MiB resident for mlx_lm.generate).
RUNTIME_OVERHEAD_BYTES: dict[str, int] = {
    "llama.cpp": 256 * MiB,
    "ollama": 512 * MiB,
    "mlx": 320 * MiB,
}
RUNTIME_OVERHEAD_SOURCE = (
    "heuristic: resident size of the runtime process and Metal context (llama-server "
    "~0.25 GiB, ollama server + runner ~0.5 GiB, mlx_lm ~0.3 GiB), not measured here"
)

MLX_PREFILL_STEP = 2048


@dataclass(frozen=True, slots=True)
class ComputeFit:
    """Coefficients (F32 values per token of the micro-batch) of the compute-buffer terms.

    Measured on real llama.cpp (CPU backend, llama-cpp-python 0.3.36) with synthetic models
    whose hidden size H, query width q = n_head*head_dim, KV width kv = n_head_kv*head_dim,
    FFN width and vocabulary were varied independently (see tests/engine/
    test_llamacpp_memory.py); see the module docstring for the terms.
    """

    attn_h: float = 3.0
    attn_q: float = 2.0
    attn_kv: float = 2.0
    fa_extra_q: float = 0.5  # flash attention: F16 copy of Q next to the F32 output
    ffn_ff: float = 3.0
    ffn_h: float = 4.0
    out_h: float = 2.0


COMPUTE_FIT = ComputeFit()


@dataclass(frozen=True, slots=True)
class ComputeBreakdown:
    compute_bytes: int
    runtime_bytes: int
    largest_term: str
    formula: str
    numbers: str
    source: str


def _floats_per_token(
    model: ModelSpec, flash_attention: bool, fit: ComputeFit
) -> tuple[float, float, float]:
    """F32 values per micro-batch token alive at the (attention, FFN, output) peaks, besides
    the masks and the KQ scores.

    MLA (llama.cpp deepseek2 graph, absorbed form): each head's query is projected into the
    latent space, so the query is n_head * (kv_lora + rope) wide and the latent row
    (kv_lora + rope) appears four times; measured: 3 H + 2.5 q_latent + 4 kv_latent with and
    without flash attention. MoE FFN (build_moe_ffn): gate/up/act rows for each selected
    expert, measured 3 * expert_ffn * k + 5 H.
    """
    att = model.attention
    H = model.hidden_size
    if att.kind == "mla":
        kv = (att.mla_kv_lora_rank or 0) + (att.mla_qk_rope_head_dim or 0)
        q = model.n_heads * kv
        attn = fit.attn_h * H + 2.5 * q + 4.0 * kv
    else:
        q = model.n_heads * model.head_dim
        kv = model.n_kv_heads * model.head_dim
        dn = delta_net_dims(model)
        if dn is not None:
            # gated attention (Qwen3-Next/3.5): the query projection carries its gate;
            # measured 4 H + 2 * (2 q) + 2 kv
            attn = (fit.attn_h + 1.0) * H + fit.attn_q * 2 * q + fit.attn_kv * kv
        else:
            attn = fit.attn_h * H + fit.attn_q * q + fit.attn_kv * kv
        if flash_attention:
            attn += fit.fa_extra_q * q
        if dn is not None:
            # Gated DeltaNet layers (llama.cpp delta-net-base.cpp, chunked): measured on
            # five shapes as about 4 * (H + key_dim + value_dim) floats per token (-3 % .. 0 %)
            kd = dn["linear_key_head_dim"] * dn["linear_num_key_heads"]
            vd = dn["linear_value_head_dim"] * dn["linear_num_value_heads"]
            attn = max(attn, 4.0 * (H + kd + vd))
    ffn = 0.0
    if model.intermediate_size and (model.moe is None or model.moe.first_dense_layers
                                    or model.moe.interleave_step > 1):  # fmt: skip
        ffn = fit.ffn_ff * model.intermediate_size + fit.ffn_h * H
    if model.moe is not None:
        moe_ff = model.moe.expert_ffn * model.moe.experts_per_token
        moe = fit.ffn_ff * moe_ff + (fit.ffn_h + 1.0) * H
        if model.moe.shared_experts:
            # the shared expert's activations are alive next to the routed ones' output
            moe += fit.ffn_ff * model.moe.expert_ffn * model.moe.shared_experts + H
        ffn = max(ffn, moe)
    out = model.vocab_size + fit.out_h * H
    return attn, ffn, out


def _llamacpp_terms(
    model: ModelSpec,
    n_ubatch: int,
    n_kv: int,
    flash_attention: bool,
    fit: ComputeFit,
    n_kv_swa: int = 0,
) -> dict[str, float]:
    """Bytes of the three candidate peaks (see module docstring). Models with windowed layers
    carry a second mask over the window cache (llama-graph.cpp build_attn_inp_kv_iswa)."""
    attn, ffn, out = _floats_per_token(model, flash_attention, fit)
    f32 = 4.0 * n_ubatch
    # KQ masks: F32, F16 with flash attention
    mask = (n_kv + n_kv_swa) * n_ubatch * (2.0 if flash_attention else 4.0)
    kq = 0.0 if flash_attention else n_kv * n_ubatch * model.n_heads * 4.0
    return {
        "attention": mask + kq + attn * f32,
        "ffn": mask + ffn * f32,
        "logits": out * f32,
    }


def _resolved_fa(model: ModelSpec, options: RunOptions, runtime: str) -> bool:
    """Flash attention as the runtime runs it (None = its default; see runtime_defaults).
    Callers with a host resolve first (resolved_options); here no host means Metal."""
    return flash_attention_choice(model, runtime, options.kv_type, options.flash_attention).enabled


def compute_breakdown(
    model: ModelSpec, options: RunOptions, runtime: str | None = None, fit: ComputeFit = COMPUTE_FIT
) -> ComputeBreakdown:
    rt = runtime or options.runtime
    if rt == "mlx":
        # One prefill chunk of min(prompt, 2048) tokens attends over the cache (scores are
        # materialised for quantized caches; fused sdpa otherwise) and only the last token's
        # logits are computed. HEURISTIC: same terms as llama.cpp with the chunk as micro-batch.
        chunk = min(options.prompt_tokens, MLX_PREFILL_STEP, options.context)
        n_kv = options.context
        fused = _resolved_fa(model, options, rt)
        terms = _llamacpp_terms(model, chunk, n_kv, fused, fit)
        terms["logits"] = (
            4.0 * (model.vocab_size + fit.out_h * model.hidden_size) * options.parallel
        )
        largest = max(terms, key=lambda k: terms[k])
        comp = int(terms[largest])
        formula = "max(attention of one prefill chunk, FFN of the chunk, logits)"
        numbers = f"chunk = {chunk} tokens, n_kv = {n_kv}: {largest} {terms[largest] / MiB:.1f} MiB"
        src = "heuristic for mlx-lm (lazy evaluation, generate prefill_step_size 2048)"
    else:
        n_ub = min(options.n_ubatch, options.n_batch)
        lay = kv_layout(model)
        full, swa = kv_cells(options.context, options.parallel, rt, lay.window, n_ub)
        assert isinstance(full, int) and isinstance(swa, int)
        streams = 1 if rt == "ollama" else options.parallel
        n_kv = full // streams  # the graph attends over one stream's cells
        fa_on = _resolved_fa(model, options, rt)
        terms = _llamacpp_terms(model, n_ub, n_kv, fa_on, fit, n_kv_swa=swa // streams)
        largest = max(terms, key=lambda k: terms[k])
        comp = int(terms[largest])
        fa = "flash attention" if fa_on else "no flash attention"
        formula = (
            "max(mask + KQ + (3 H + 2 q + 2 kv) * 4 B * n_ubatch, "
            "mask + (3 n_ff + 4 H) * 4 B * n_ubatch, (n_vocab + 2 H) * 4 B * n_ubatch)"
        )
        numbers = f"n_ubatch {n_ub}, n_kv {n_kv}, {fa}: " + ", ".join(
            f"{k} {v / MiB:.1f} MiB" for k, v in terms.items()
        )
        src = (
            "llama.cpp src/llama-context.cpp graph_reserve (worst-case ubatch), "
            "src/llama-graph.cpp build_attn_mha; coefficients measured on real llama.cpp "
            "CPU compute buffers (tests/engine/test_llamacpp_memory.py)"
        )
    runtime_b = RUNTIME_OVERHEAD_BYTES[rt]
    if rt != "mlx":
        # llama.cpp output buffer: logits of n_seq_max rows at reservation (llama-context.cpp
        # output_reserve)
        runtime_b += 4 * model.vocab_size * options.parallel
    return ComputeBreakdown(comp, runtime_b, largest, formula, numbers, src)


def compute_bytes(model: ModelSpec, options: RunOptions, runtime: str | None = None) -> int:
    return compute_breakdown(model, options, runtime).compute_bytes


def compute_bytes_array(
    model: ModelSpec,
    contexts: np.ndarray,
    flash_attention: bool | None = None,
    parallel: int = 1,
    runtime: str = "llama.cpp",
    n_ubatch: int = 512,
    fit: ComputeFit = COMPUTE_FIT,
    kv_type: str = "f16",
    prompt_tokens: int = 512,
) -> np.ndarray:
    """Vectorised compute_bytes over contexts (same rules as the scalar path).
    flash_attention None = the runtime's default, resolved like the scalar path."""
    ctx = np.asarray(contexts, dtype=np.int64)
    flash_attention = flash_attention_choice(model, runtime, kv_type, flash_attention).enabled
    if runtime == "mlx":
        fa = flash_attention  # fused sdpa; else (quantized cache, head size) scores materialised
        a, f, _ = _floats_per_token(model, fa, fit)
        chunk = np.minimum(min(prompt_tokens, MLX_PREFILL_STEP), ctx).astype(np.float64)
        n_kv = ctx.astype(np.float64)
        mask = n_kv * chunk * (2.0 if fa else 4.0)
        kq = 0.0 if fa else n_kv * chunk * model.n_heads * 4.0
        attn = mask + kq + a * 4.0 * chunk
        ffn = mask + f * 4.0 * chunk
        logits = 4.0 * (model.vocab_size + fit.out_h * model.hidden_size) * parallel
        return np.maximum(np.maximum(attn, ffn), logits).astype(np.int64)
    lay = kv_layout(model)
    full, swa = kv_cells(ctx, parallel, runtime, lay.window, n_ubatch)
    streams = 1 if runtime == "ollama" else parallel
    n_kv = np.asarray(full, dtype=np.float64) // streams
    n_kv_swa = np.asarray(swa, dtype=np.float64) // streams
    a, f, o = _floats_per_token(model, flash_attention, fit)
    f32 = 4.0 * n_ubatch
    mask = (n_kv + n_kv_swa) * n_ubatch * (2.0 if flash_attention else 4.0)
    kq = 0.0 if flash_attention else n_kv * n_ubatch * model.n_heads * 4.0
    attn = mask + kq + a * f32
    ffn = mask + f * f32
    logits = o * f32
    return np.maximum(np.maximum(attn, ffn), logits).astype(np.int64)


def runtime_overhead_bytes(
    model: ModelSpec, options: RunOptions, runtime: str | None = None
) -> int:
    return compute_breakdown(model, options, runtime).runtime_bytes
