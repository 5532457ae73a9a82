"""Formulas shared by the loader and the importers (pure functions, sources cited)."""

from __future__ import annotations

from dataclasses import dataclass

# llama.cpp stores the recurrent r and s state in F32 (llama-model.cpp creates the recurrent
# memory with GGML_TYPE_F32), one cell per parallel sequence.
RECURRENT_STATE_BYTES_PER_ELEMENT = 4


def recurrent_state_bytes_per_seq(
    *, n_recurrent_layers: int, d_conv: int, d_state: int, n_group: int, d_inner: int
) -> int:
    """Fixed per-sequence state of a hybrid model's recurrent (Gated DeltaNet / SSM) layers.

    llama.cpp src/llama-hparams.cpp: n_embd_r = (d_conv-1) * (d_inner + 2*n_group*d_state) and
    n_embd_s = d_state * d_inner elements per layer. For Qwen3-Next the converter maps
    d_conv = linear_conv_kernel_dim, d_state = linear_key_head_dim,
    n_group = linear_num_key_heads, d_inner = linear_value_head_dim * linear_num_value_heads
    (convert_hf_to_gguf.py, class Qwen3NextModel), per models_README.md.
    """
    n_embd_r = (d_conv - 1) * (d_inner + 2 * n_group * d_state)
    n_embd_s = d_state * d_inner
    return (n_embd_r + n_embd_s) * RECURRENT_STATE_BYTES_PER_ELEMENT * n_recurrent_layers


@dataclass(frozen=True, slots=True)
class Dims:
    """Normalised architecture dims for parameter counting (one shape, every family)."""

    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    ffn: int | None = None  # dense FFN width (gated: 3 matrices)
    norms_per_layer: int = 2
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    # OLMo 2/3, MiniMax-M2: the q/k RMSNorm spans the whole projection (n_heads*head_dim and
    # n_kv_heads*head_dim weights) instead of one head_dim vector each.
    qk_norm_full: bool = False
    attn_sinks: bool = False
    q_gate: bool = False  # Qwen3-Next: q_proj also emits an output gate (doubles q)
    # MLA (DeepSeek-V3): when kv_lora_rank is set, q/k/v use the latent formula.
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_dim: int = 0
    qk_nope_dim: int = 0
    v_head_dim: int = 0
    # MoE
    n_experts: int = 0
    experts_per_token: int = 0
    expert_ffn: int = 0
    n_shared: int = 0
    shared_ffn: int = 0  # per shared expert
    shared_gate: bool = False  # Qwen3-Next: sigmoid gate H x 1 on the shared expert
    first_dense: int = 0
    moe_step: int = 1
    expert_bias: bool = False  # gpt-oss: biases on experts and router
    # Hybrid: indices of full-attention layers; the rest are Gated DeltaNet.
    attention_layers: tuple[int, ...] | None = None
    linear_num_key_heads: int = 0
    linear_key_head_dim: int = 0
    linear_num_value_heads: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel: int = 0


def _attention_params(d: Dims) -> int:
    h = d.hidden
    if d.kv_lora_rank is not None:
        # MLA, per models_README.md: H*q_lora + q_lora*nq*(nope+rope) + H*(kv_lora+rope)
        # + kv_lora*nq*(nope+v) + nq*v*H, plus the q_a / kv_a RMSNorms.
        qk = d.qk_nope_dim + d.qk_rope_dim
        if d.q_lora_rank:
            q = h * d.q_lora_rank + d.q_lora_rank * d.n_heads * qk + d.q_lora_rank
        else:
            q = h * d.n_heads * qk
        kv = h * (d.kv_lora_rank + d.qk_rope_dim) + d.kv_lora_rank
        kv += d.kv_lora_rank * d.n_heads * (d.qk_nope_dim + d.v_head_dim)
        return q + kv + d.n_heads * d.v_head_dim * h
    q_out = d.n_heads * d.head_dim * (2 if d.q_gate else 1)
    kv_out = 2 * d.n_kv_heads * d.head_dim
    n = h * q_out + h * kv_out + d.n_heads * d.head_dim * h
    if d.qkv_bias:
        n += q_out + kv_out
    if d.o_bias:
        n += h
    if d.qk_norm:
        n += 2 * d.head_dim
    if d.qk_norm_full:
        n += (d.n_heads + d.n_kv_heads) * d.head_dim
    if d.attn_sinks:
        n += d.n_heads
    return n


def _deltanet_params(d: Dims) -> int:
    # Gated DeltaNet (transformers Qwen3NextGatedDeltaNet): in_proj_qkvz, in_proj_ba, conv1d
    # (depthwise, no bias), dt_bias + A_log, gated RMSNorm over v_head_dim, out_proj.
    key_dim = d.linear_num_key_heads * d.linear_key_head_dim
    value_dim = d.linear_num_value_heads * d.linear_value_head_dim
    conv_dim = 2 * key_dim + value_dim
    n = d.hidden * (2 * key_dim + 2 * value_dim)  # in_proj_qkvz
    n += d.hidden * 2 * d.linear_num_value_heads  # in_proj_ba
    n += conv_dim * d.linear_conv_kernel
    n += 2 * d.linear_num_value_heads + d.linear_value_head_dim
    n += value_dim * d.hidden  # out_proj
    return n


def _expert_params(d: Dims) -> int:
    n = 3 * d.hidden * d.expert_ffn
    if d.expert_bias:
        n += 2 * d.expert_ffn + d.hidden
    return n


def count_params(d: Dims) -> tuple[int, int | None]:
    """(total, active) parameters from the dims, per models_README.md "How params were computed".

    total = embeddings (x2 if untied) + final norm + every layer with all experts.
    active (MoE only) = total - unselected routed experts - the input-embedding table (a token
    reads one row of it); lm_head stays in. None for dense models.
    """
    h = d.hidden
    total = d.vocab * h * (1 if d.tied else 2) + h
    unselected = 0
    for i in range(d.n_layers):
        layer = d.norms_per_layer * h
        if d.attention_layers is not None and i not in d.attention_layers:
            layer += _deltanet_params(d)
        else:
            layer += _attention_params(d)
        is_moe = d.n_experts > 0 and i >= d.first_dense and (i + 1) % d.moe_step == 0
        if is_moe:
            layer += d.n_experts * _expert_params(d) + h * d.n_experts
            if d.expert_bias:
                layer += d.n_experts
            layer += d.n_shared * 3 * h * d.shared_ffn
            if d.shared_gate:
                layer += h
            unselected += (d.n_experts - d.experts_per_token) * _expert_params(d)
        elif d.ffn:
            layer += 3 * h * d.ffn
        total += layer
    if d.n_experts == 0:
        return total, None
    return total, total - unselected - d.vocab * h


@dataclass(frozen=True, slots=True)
class Gemma4Dims:
    """The text decoder of a Gemma 4 checkpoint (config `text_config`, model_type gemma4_text)."""

    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int  # local (sliding) layers
    global_layers: tuple[bool, ...]  # per layer: full_attention (global) or sliding
    global_head_dim: int
    global_kv_heads: int | None  # None: the global layers use n_kv_heads
    k_eq_v: bool  # attention_k_eq_v: global layers have no v projection
    ffn: int  # dense MLP (for the 26B: the dense branch beside the experts)
    vocab: int
    kv_shared_layers: int = 0  # the last N layers reuse an earlier layer's KV
    double_wide_shared_mlp: bool = False  # use_double_wide_mlp: KV-shared layers use 2 x ffn
    ple_dim: int = 0  # hidden_size_per_layer_input (E-models)
    ple_vocab: int = 0  # vocab_size_per_layer_input
    n_experts: int = 0
    experts_per_token: int = 0
    expert_ffn: int = 0


def count_gemma4_params(d: Gemma4Dims) -> tuple[int, int | None]:
    """(total, active) parameters of a Gemma 4 text decoder (tied embeddings).

    Shapes from google-deepmind/gemma gemma/gm/nn/gemma4/_modules.py and _gemma4.py @7691fd4
    (the catalog's Gemma 4 rows were computed the same way):
    - attention: q H x heads x hd, o heads x hd x H, k and v H x kv x hd (global layers: hd =
      global_head_dim, kv = num_global_key_value_heads, no v when K = V), q/k norms (hd each);
      KV-shared layers carry no k/v projections (the reference code notes checkpoints drop them);
    - MLP: gated, 3 x H x ffn (2 x ffn on KV-shared layers with use_double_wide_mlp); MoE layers
      add E experts of 3 x H x expert_ffn and an H x E router beside the dense branch, 7 norms;
      dense layers 4 norms; one layer scalar;
    - E-models: per layer a per_layer_input_gate (H x ple), per_layer_projection (ple x H) and a
      norm; globally the per-layer table (ple_vocab x L x ple), the H -> L x ple projection and
      its norm.
    active (MoE only) = total - input embedding - the unselected experts of every layer.
    """
    h, n_layers = d.hidden, len(d.global_layers)
    first_shared = n_layers - d.kv_shared_layers
    total = 0
    for i, is_global in enumerate(d.global_layers):
        hd = d.global_head_dim if is_global else d.head_dim
        kv = d.global_kv_heads if (is_global and d.global_kv_heads) else d.n_kv_heads
        layer = 2 * h * d.n_heads * hd + 2 * hd  # q, o, q_norm, k_norm
        if i < first_shared:
            layer += h * kv * hd * (1 if (is_global and d.k_eq_v) else 2)
        if d.n_experts:
            layer += 3 * h * d.ffn + d.n_experts * 3 * h * d.expert_ffn + h * d.n_experts
            layer += 7 * h
        else:
            wide = d.double_wide_shared_mlp and i >= first_shared
            layer += 3 * h * d.ffn * (2 if wide else 1) + 4 * h
        layer += 1  # layer scalar
        if d.ple_dim:
            layer += 2 * h * d.ple_dim + h
        total += layer
    total += h + d.vocab * h  # final norm, tied embedding
    if d.ple_dim:
        total += d.ple_vocab * n_layers * d.ple_dim + h * n_layers * d.ple_dim + d.ple_dim
    if not d.n_experts:
        return total, None
    unselected = n_layers * (d.n_experts - d.experts_per_token) * 3 * h * d.expert_ffn
    return total, total - d.vocab * h - unselected
