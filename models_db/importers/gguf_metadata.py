"""GGUF-style metadata (from a GGUF file or Ollama's model_info) -> ModelSpec.

Keys follow llama.cpp's GGUF naming (gguf constants.Keys): `general.architecture`,
`<arch>.block_count`, `<arch>.embedding_length`, `<arch>.attention.head_count(_kv)`, ...
Layouts that llama.cpp hard-codes per architecture rather than storing in the file (the SWA
pattern of Gemma 2/3 and gpt-oss) are taken from llama.cpp's `set_swa_pattern` calls as
documented in models_README.md: layer il is windowed when il % n_pattern < n_pattern - 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from gguf import LlamaFileType

from forgeplanner.domain.model import AttentionSpec, ModelSpec, MoESpec, TensorInfo
from models_db.formulas import recurrent_state_bytes_per_seq
from models_db.importers._common import MAX_CONTEXT, MAX_LAYERS, Fields, slugify

# Architectures whose every layer uses full attention in llama.cpp.
FULL_ATTENTION_ARCHS = frozenset(
    {
        "llama",
        "qwen2",
        "qwen2moe",
        "qwen3",
        "qwen3moe",
        "phi3",
        "phi2",
        "command-r",
        "olmo2",
        "glm4",
        "glm4moe",
        "gemma",
        "granite",
        "mistral3",
        "internlm2",
        "stablelm",
        "exaone",
        # newer architectures with a plain per-layer KV cache (llama.cpp src/models/*.cpp of the
        # llama.cpp vendored in llama-cpp-python 0.3.36)
        "minimax-m2",
        "seed_oss",
        "ernie4_5-moe",
        "hunyuan-moe",
        "smollm3",
        "bailingmoe2",
    }
)
# n_pattern passed to set_swa_pattern in llama.cpp's llama-model.cpp for these architectures.
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gpt-oss": 2, "gemma3n": 5}
# Gemma 3n / Gemma 4: the last layers reuse an earlier layer's KV. llama.cpp hard-codes
# n_layer_kv_from_start = 20 for gemma3n (src/models/gemma3n.cpp) and reads
# <arch>.attention.shared_kv_layers for gemma4 (n_layer_kv_from_start = n_layer - shared).
GEMMA3N_KV_LAYERS = 20
MLA_ARCHS = frozenset({"deepseek2"})
# Gated DeltaNet hybrids; Qwen3.5/3.6 ("qwen35", "qwen35moe") use Qwen3-Next's ssm.* keys.
HYBRID_ARCHS = frozenset({"qwen3next", "qwen35", "qwen35moe"})
SWA_ARCHS_WITH_GLOBAL_HEADS = frozenset({"gemma4"})
KNOWN_ARCHS = (
    FULL_ATTENTION_ARCHS | set(SWA_PATTERN) | MLA_ARCHS | HYBRID_ARCHS | SWA_ARCHS_WITH_GLOBAL_HEADS
)
EXPERT_TENSOR_MARK = "_exps."  # llama.cpp names routed-expert tensors ffn_{gate,up,down}_exps


def file_type_name(value: object) -> str | None:
    """general.file_type (llama_ftype) -> e.g. "Q4_K_M"; None when absent or unknown."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        name = LlamaFileType(value).name
    except ValueError:
        return f"unknown ({value})"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _scalar_or_layers(f: Fields, key: str, n_layers: int, *, minimum: int = 1) -> int | None:
    """An int key that some architectures store per layer (an array): the array's maximum."""
    value = f.data.get(key)
    if isinstance(value, list):
        if len(value) != n_layers or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 24) for v in value
        ):
            raise f.fail(key, value, f"per-layer array must hold {n_layers} small integers")
        nonzero = [v for v in value if v]
        return max(nonzero) if nonzero else None
    return f.opt_int(key, minimum=minimum)


def _swa_layers(f: Fields, arch: str, n_layers: int) -> tuple[int, ...]:
    key = f"{arch}.attention.sliding_window_pattern"
    raw = f.data.get(key)
    if isinstance(raw, list):  # newer converters: one bool per layer, true = windowed
        if len(raw) != n_layers or not all(isinstance(v, bool) for v in raw):
            raise f.fail(key, raw, f"must hold {n_layers} booleans")
        return tuple(i for i, v in enumerate(raw) if v)
    n_pattern = f.int_(key, SWA_PATTERN.get(arch, 0) or None, maximum=n_layers + 1)
    return tuple(i for i in range(n_layers) if i % n_pattern < n_pattern - 1)


def spec_from_gguf_metadata(
    meta: Mapping[str, Any],
    *,
    file: str,
    source: str,
    origin: str,
    tensors: Sequence[TensorInfo] = (),
    model_id: str | None = None,
    fallback_name: str = "imported-model",
    n_vocab_tokens: int | None = None,
) -> ModelSpec:
    g = Fields(file, meta)
    arch = g.str_("general.architecture")
    if not arch:
        raise g.fail("general.architecture", meta.get("general.architecture"), "is required")
    f = Fields(file, meta)
    p = f"{arch}."
    n_layers = f.int_(p + "block_count", maximum=MAX_LAYERS)
    hidden = f.int_(p + "embedding_length")
    n_heads = _scalar_or_layers(f, p + "attention.head_count", n_layers)
    if n_heads is None:
        raise f.fail(p + "attention.head_count", meta.get(p + "attention.head_count"), "required")
    n_kv = _scalar_or_layers(f, p + "attention.head_count_kv", n_layers) or n_heads
    if n_kv > n_heads or n_heads % n_kv:
        raise f.fail(p + "attention.head_count_kv", n_kv, f"must divide head_count ({n_heads})")
    key_length = f.opt_int(p + "attention.key_length")
    value_length = f.opt_int(p + "attention.value_length")
    ctx = f.opt_int(p + "context_length", maximum=MAX_CONTEXT)
    ffn = _scalar_or_layers(f, p + "feed_forward_length", n_layers)
    extra: dict[str, object] = {}
    unknown: dict[str, str] = {}

    # Vocabulary: the explicit key, else the token list, else the embedding rows.
    vocab = f.opt_int(p + "vocab_size")
    embd = next((t for t in tensors if t.name == "token_embd.weight"), None)
    if vocab is None and n_vocab_tokens:
        vocab = n_vocab_tokens
    if vocab is None and embd is not None and len(embd.shape) == 2:
        vocab = embd.shape[1]
    if vocab is None:
        raise f.fail(
            p + "vocab_size",
            None,
            "no vocab_size, token list or token_embd tensor (Ollama leaves them out of "
            '/api/show unless asked with "verbose": true)',
        )

    if arch not in KNOWN_ARCHS:
        puzzling = [
            k
            for k in meta
            if k.startswith(
                (p + "ssm.", p + "attention.sliding_window", p + "attention.kv_lora_rank")
            )
        ]
        if puzzling:
            raise g.fail(
                "general.architecture",
                arch,
                f"unknown architecture with {puzzling[0]}: its attention layout cannot be "
                f"sized; known: {', '.join(sorted(KNOWN_ARCHS))}",
            )
        extra["assumed"] = f"architecture {arch!r} not known: every layer assumed full attention"

    # Attention
    if arch in MLA_ARCHS:
        rope = f.int_(p + "rope.dimension_count")
        kv_lora = f.int_(p + "attention.kv_lora_rank")
        # MLA GGUFs (llama.cpp PR #12801 on) put the cache width in key_length (576) and the
        # per-head q/k width in key_length_mla; older conversions have only key_length.
        k_head = f.opt_int(p + "attention.key_length_mla") or key_length
        v_head = f.opt_int(p + "attention.value_length_mla") or value_length
        if k_head is None or v_head is None or k_head <= rope:
            raise f.fail(p + "attention.key_length", key_length, "MLA head widths missing")
        attention = AttentionSpec(
            kind="mla",
            mla_kv_lora_rank=kv_lora,
            mla_qk_rope_head_dim=rope,
            mla_qk_nope_head_dim=k_head - rope,
            mla_v_head_dim=v_head,
            mla_q_lora_rank=f.opt_int(p + "attention.q_lora_rank"),
        )
        if not f.has(p + "attention.key_length_mla"):
            extra["mla_note"] = (
                "GGUF without key_length_mla: converted before llama.cpp "
                "PR #12801; llama.cpp caches full per-head K/V for it"
            )
        head_dim = k_head
    else:
        head_dim = key_length or (hidden // n_heads if hidden % n_heads == 0 else 0)
        if not head_dim:
            raise f.fail(p + "attention.key_length", None, "absent and not derivable")
        window = f.opt_int(p + "attention.sliding_window", maximum=MAX_CONTEXT)
        if arch in HYBRID_ARCHS:
            interval = f.int_(p + "full_attention_interval", 4, maximum=n_layers)
            attn = tuple(i for i in range(n_layers) if (i + 1) % interval == 0)
            state = None
            needed = ("ssm.conv_kernel", "ssm.state_size", "ssm.group_count", "ssm.inner_size")
            if all(f.has(p + k) for k in needed):
                state = recurrent_state_bytes_per_seq(
                    n_recurrent_layers=n_layers - len(attn),
                    d_conv=f.int_(p + "ssm.conv_kernel", minimum=2),
                    d_state=f.int_(p + "ssm.state_size"),
                    n_group=f.int_(p + "ssm.group_count"),
                    d_inner=f.int_(p + "ssm.inner_size"),
                )
            else:
                unknown["attention.recurrent_state_bytes_per_seq"] = (
                    "ssm.* keys missing from the metadata"
                )
            attention = AttentionSpec(
                kind="hybrid", attention_layers=attn, recurrent_state_bytes_per_seq=state
            )
        elif arch == "phi3" or window is None or arch in FULL_ATTENTION_ARCHS:
            if window is not None:
                extra["declared_sliding_window"] = window
                extra["declared_sliding_window_note"] = (
                    f"llama.cpp does not apply a window for {arch}; sized as full attention"
                )
            attention = AttentionSpec(kind="full")
        else:
            attention = AttentionSpec(
                kind="sliding", sliding_window=window, sliding_layers=_swa_layers(f, arch, n_layers)
            )
            if arch in SWA_ARCHS_WITH_GLOBAL_HEADS:
                # gemma4.cpp: key_length is the global layers' head width, key_length_swa the
                # windowed layers'; the spec's head_dim is the windowed one (most layers).
                swa_head = f.opt_int(p + "attention.key_length_swa")
                if swa_head and swa_head != head_dim:
                    attention = dataclasses.replace(attention, global_head_dim=head_dim)
                    head_dim = swa_head
            if arch == "gemma3n":
                attention = dataclasses.replace(
                    attention, kv_shared_layers=max(n_layers - GEMMA3N_KV_LAYERS, 0)
                )
            shared = f.opt_int(p + "attention.shared_kv_layers", minimum=0)
            if shared:
                attention = dataclasses.replace(attention, kv_shared_layers=shared)

    # MoE
    moe = None
    n_experts = f.opt_int(p + "expert_count")
    if n_experts and n_experts > 1:
        expert_ffn = f.opt_int(p + "expert_feed_forward_length") or ffn
        if expert_ffn is None:
            raise f.fail(p + "expert_feed_forward_length", None, "MoE without an expert width")
        per_token = f.int_(p + "expert_used_count", maximum=n_experts)
        moe = MoESpec(
            n_experts=n_experts,
            experts_per_token=per_token,
            shared_experts=f.int_(p + "expert_shared_count", 0, minimum=0),
            expert_ffn=expert_ffn,
            first_dense_layers=f.int_(
                p + "leading_dense_block_count", 0, minimum=0, maximum=n_layers - 1
            ),
        )

    # Parameters: exact from the tensor table when there is one.
    tied = None
    if tensors:
        names = {t.name for t in tensors}
        tied = "output.weight" not in names
        total = sum(_elements(t) for t in tensors)
        extra["params_from"] = "sum of the file's tensor elements (exact)"
        active = None
        if moe is not None:
            routed = sum(_elements(t) for t in tensors if EXPERT_TENSOR_MARK in t.name)
            unselected = routed * (moe.n_experts - moe.experts_per_token) // moe.n_experts
            active = total - unselected - (_elements(embd) if embd is not None else 0)
    else:
        total = g.int_("general.parameter_count", maximum=1 << 50)
        extra["params_from"] = "general.parameter_count"
        active = None
        if moe is not None:
            # Formula, not a tensor sum: routed experts = 3 gated matrices each (README).
            n_moe_layers = n_layers - moe.first_dense_layers
            unselected = (moe.n_experts - moe.experts_per_token) * 3 * hidden * moe.expert_ffn
            active = total - unselected * n_moe_layers - vocab * hidden
            extra["params_active_from"] = (
                "general.parameter_count minus unselected routed "
                "experts (3*H*I each) and the input embedding"
            )
    if tied is None:
        tied = False
        unknown["tie_word_embeddings"] = "no tensor list to tell whether output.weight exists"
    if moe is None:
        active = None
    elif active is None or active <= 0:
        raise g.fail("general.parameter_count", total, "too small for the declared experts")

    license_ = g.str_("general.license")
    if not license_:
        unknown["license"] = "general.license not in the metadata"
    if ctx is None:
        unknown["max_context"] = f"{p}context_length not in the metadata"
    unknown["release_date"] = "not in GGUF metadata"
    extra["unknown"] = unknown
    if f.has(p + "rope.freq_base"):
        extra["rope_theta"] = meta[p + "rope.freq_base"]
    file_type = file_type_name(meta.get("general.file_type"))
    basename, size_label = g.str_("general.basename"), g.str_("general.size_label")
    name = g.str_("general.name") or "-".join(x for x in (basename, size_label) if x)
    name = name or fallback_name
    return ModelSpec(
        id=model_id or slugify(name),
        name=name,
        family=arch,
        params_total=total,
        params_active=active,
        n_layers=n_layers,
        hidden_size=hidden,
        intermediate_size=ffn,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_context=ctx,
        attention=attention,
        moe=moe,
        license=license_,
        source=source,
        hf_repo="",
        notes=f"Imported from GGUF metadata ({arch}).",
        formats=("gguf",),
        native_quant="MXFP4" if arch == "gpt-oss" else None,
        tensors=tuple(tensors),
        gguf_file_type=file_type,
        origin=origin,
        extra=extra,
    )


def _elements(t: TensorInfo) -> int:
    n = 1
    for d in t.shape:
        n *= d
    return n
