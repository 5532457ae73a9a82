"""Import a local Hugging Face config.json into a ModelSpec.

Parameter counts are computed from the dims with the same formula that reproduces every row of
the shipped table (models_db.formulas.count_params). Field names and defaults follow the
transformers configuration classes of each architecture; where a real checkpoint relies on a
class default (Gemma 3's text_config omits its head counts), the default is applied and listed in
`extra["defaults_applied"]` so the user can see it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgeplanner.domain.model import (
    AttentionSpec,
    ModelSpec,
    MoESpec,
    PerLayerEmbeddingSpec,
    RecurrentSpec,
)
from forgeplanner.errors import DataError
from models_db.formulas import (
    Dims,
    Gemma4Dims,
    count_gemma4_params,
    count_params,
    recurrent_state_bytes_per_seq,
)
from models_db.importers._common import MAX_CONTEXT, MAX_LAYERS, Fields, slugify

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # real config.json files are a few KB

# model_type -> family flags for the parameter formula (see count_params).
_FLAGS: dict[str, dict[str, object]] = {
    "llama": {},
    "mistral": {},
    "mixtral": {},
    "qwen2": {"qkv_bias": True},  # Qwen2Attention: bias=True on q/k/v
    "qwen3": {"qk_norm": True},
    "qwen3_moe": {"qk_norm": True},
    "qwen3_next": {"qk_norm": True, "q_gate": True, "shared_gate": True},
    # Qwen3.5 / Qwen3.6 (multimodal checkpoints; the decoder is in text_config): Qwen3-Next's
    # gated attention + Gated DeltaNet layout (transformers models/qwen3_5*).
    "qwen3_5_text": {"qk_norm": True, "q_gate": True, "shared_gate": True},
    "qwen3_5_moe_text": {"qk_norm": True, "q_gate": True, "shared_gate": True},
    "gemma2": {"norms_per_layer": 4},
    "gemma3_text": {"norms_per_layer": 4, "qk_norm": True},
    "gpt_oss": {"qkv_bias": True, "o_bias": True, "attn_sinks": True, "expert_bias": True},
    "phi3": {},  # fused qkv_proj / gate_up_proj: same count as separate matrices
    "deepseek_v3": {},
    "glm4_moe": {"qkv_bias": True},
    "cohere": {"norms_per_layer": 1},
}
# Gemma 4 has its own parameter formula (models_db.formulas.count_gemma4_params).
SUPPORTED_MODEL_TYPES = (
    *sorted(_FLAGS),
    "gemma3",
    "gemma4",
    "gemma4_text",
    "qwen3_5",
    "qwen3_5_moe",
)
# Gated DeltaNet hybrids sized like Qwen3-Next.
_GDN_TYPES = frozenset({"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"})
_MULTIMODAL_TEXT = {
    "gemma3": "gemma3_text",
    "gemma4": "gemma4_text",
    "qwen3_5": "qwen3_5_text",
    "qwen3_5_moe": "qwen3_5_moe_text",
}

# transformers' default for tie_word_embeddings per config class.
_TIED_DEFAULT = {"gemma2": True, "gemma3_text": True, "cohere": True}

# Gemma3TextConfig defaults (transformers models/gemma3/configuration_gemma3.py); released
# multimodal Gemma 3 configs omit these from text_config and rely on them.
_GEMMA3_TEXT_DEFAULTS: dict[str, Any] = {
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "vocab_size": 262_208,
    "max_position_embeddings": 131_072,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
}

# HF `architectures` -> model_type, for configs that lack model_type.
_ARCH_TO_TYPE = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "Qwen3NextForCausalLM": "qwen3_next",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text",
    "Gemma3ForConditionalGeneration": "gemma3",
    "Gemma4ForCausalLM": "gemma4_text",
    "Gemma4ForConditionalGeneration": "gemma4",
    "GptOssForCausalLM": "gpt_oss",
    "Phi3ForCausalLM": "phi3",
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "Glm4MoeForCausalLM": "glm4_moe",
    "CohereForCausalLM": "cohere",
    "Qwen3_5ForConditionalGeneration": "qwen3_5",
    "Qwen3_5MoeForConditionalGeneration": "qwen3_5_moe",
}


def _read_json(path: Path) -> tuple[dict[str, Any], bytes]:
    """Regular files only, size-capped, strict JSON (forgeplanner.fileio / jsonio: a FIFO or
    /dev/zero, huge integers, duplicate keys and deep nesting are one DataError each)."""
    from forgeplanner import jsonio
    from forgeplanner.fileio import read_input

    name = str(path)
    raw = read_input(path, MAX_CONFIG_BYTES, "config.json")
    data = jsonio.loads(raw, name)
    if not isinstance(data, dict):
        raise DataError(name, "(top level)", type(data).__name__, "expected a JSON object")
    return data, raw


def _model_type(f: Fields) -> str:
    mtype = f.data.get("model_type")
    if mtype is None:
        archs = f.data.get("architectures")
        if not isinstance(archs, list) or not archs:
            raise f.fail("model_type", None, "missing, and no 'architectures' list to infer it")
        arch = archs[0]
        if arch not in _ARCH_TO_TYPE:
            raise f.fail(
                "architectures", arch, f"unsupported; supported: {', '.join(sorted(_ARCH_TO_TYPE))}"
            )
        return _ARCH_TO_TYPE[arch]
    if not isinstance(mtype, str) or mtype not in SUPPORTED_MODEL_TYPES:
        raise f.fail(
            "model_type", mtype, f"unsupported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return mtype


def _layer_types(f: Fields, n_layers: int) -> list[str] | None:
    if "layer_types" not in f.data or f.data["layer_types"] is None:
        return None
    value = f.data["layer_types"]
    allowed = {"full_attention", "sliding_attention", "chunked_attention", "linear_attention"}
    if not isinstance(value, list) or len(value) != n_layers:
        raise f.fail("layer_types", value, f"must list one type per layer ({n_layers})")
    for item in value:
        if item not in allowed:
            raise f.fail("layer_types", item, f"unknown layer type; known: {sorted(allowed)}")
    return value


def _attention(f: Fields, mtype: str, n_layers: int, extra: dict[str, object]) -> AttentionSpec:
    types = _layer_types(f, n_layers)
    if mtype in ("deepseek_v3",):
        return AttentionSpec(
            kind="mla",
            mla_kv_lora_rank=f.int_("kv_lora_rank"),
            mla_qk_rope_head_dim=f.int_("qk_rope_head_dim"),
            mla_qk_nope_head_dim=f.int_("qk_nope_head_dim"),
            mla_v_head_dim=f.int_("v_head_dim"),
            mla_q_lora_rank=f.opt_int("q_lora_rank"),
            indexer_head_dim=f.opt_int("index_head_dim"),
        )
    if mtype in _GDN_TYPES:
        if types is not None:
            attn = tuple(i for i, t in enumerate(types) if t == "full_attention")
        else:
            step = f.int_("full_attention_interval", 4, maximum=n_layers)
            # mlx-lm qwen3_next.py: is_linear = (layer_idx + 1) % full_attention_interval != 0
            attn = tuple(i for i in range(n_layers) if (i + 1) % step == 0)
        if not attn:
            raise f.fail("layer_types", types, "a hybrid model needs at least one attention layer")
        d_state = f.int_("linear_key_head_dim")
        d_inner = f.int_("linear_value_head_dim") * f.int_("linear_num_value_heads")
        state = recurrent_state_bytes_per_seq(
            n_recurrent_layers=n_layers - len(attn),
            d_conv=f.int_("linear_conv_kernel_dim", minimum=2),
            d_state=d_state,
            n_group=f.int_("linear_num_key_heads"),
            d_inner=d_inner,
        )
        d_conv = f.int_("linear_conv_kernel_dim", minimum=2)
        n_group = f.int_("linear_num_key_heads")
        layers = tuple(i for i in range(n_layers) if i not in attn)
        # The engine lays out the DeltaNet tensors from these HF names (as the catalog stores).
        extra["attention.recurrent"] = {
            "linear_conv_kernel_dim": d_conv,
            "linear_key_head_dim": d_state,
            "linear_num_key_heads": n_group,
            "linear_value_head_dim": f.int_("linear_value_head_dim"),
            "linear_num_value_heads": f.int_("linear_num_value_heads"),
        }
        recurrent = RecurrentSpec(
            kind="gated_deltanet",
            layers=layers,
            conv_kernel=d_conv,
            conv_elements=(d_conv - 1) * (d_inner + 2 * n_group * d_state),
            state_elements=d_state * d_inner,
            n_heads=f.int_("linear_num_value_heads"),
            head_dim=f.int_("linear_value_head_dim"),
            n_groups=n_group,
            d_state=d_state,
        )
        return AttentionSpec(
            kind="hybrid",
            attention_layers=attn,
            recurrent_state_bytes_per_seq=state,
            recurrent=recurrent,
        )
    if mtype == "phi3":
        if f.has("sliding_window"):
            # Phi-3 declares a window, but llama.cpp disables Phi SWA (llama-model.cpp,
            # LLM_ARCH_PHI3); sized as full attention, as models_README.md advises.
            extra["declared_sliding_window"] = f.int_("sliding_window")
            extra["declared_sliding_window_note"] = "llama.cpp disables Phi SWA; sized as full"
        return AttentionSpec(kind="full")
    if mtype in ("qwen2", "qwen3", "qwen3_moe") and not f.bool_("use_sliding_window", False):
        if f.has("sliding_window"):
            extra["declared_sliding_window_note"] = "use_sliding_window is false: full attention"
        return AttentionSpec(kind="full")
    window = f.opt_int("sliding_window", maximum=MAX_CONTEXT)
    if types is not None:
        sliding = tuple(
            i for i, t in enumerate(types) if t in ("sliding_attention", "chunked_attention")
        )
        if "linear_attention" in types:
            raise f.fail("layer_types", "linear_attention", f"not expected for {mtype}")
    elif window is None:
        sliding = ()
    elif mtype == "gemma2":
        sliding = tuple(i for i in range(n_layers) if (i + 1) % 2)  # even layers slide
    elif mtype == "gemma3_text":
        pattern = f.int_("sliding_window_pattern", 6, maximum=n_layers + 1)
        sliding = tuple(i for i in range(n_layers) if (i + 1) % pattern)
    elif mtype == "gpt_oss":
        sliding = tuple(i for i in range(n_layers) if i % 2 == 0)
    elif mtype in ("qwen2", "qwen3", "qwen3_moe"):
        first = f.int_("max_window_layers", 0, minimum=0, maximum=n_layers)
        sliding = tuple(range(first, n_layers))
    else:  # mistral, mixtral, llama, ...: a window applies to every layer
        sliding = tuple(range(n_layers))
    if not sliding:
        return AttentionSpec(kind="full")
    if window is None:
        raise f.fail("sliding_window", None, "layer_types name sliding layers but no window")
    return AttentionSpec(kind="sliding", sliding_window=window, sliding_layers=sliding)


def _moe(f: Fields, mtype: str, n_layers: int) -> tuple[MoESpec | None, dict[str, object]]:
    """(MoESpec, extra Dims fields) from the config's MoE fields."""
    if mtype in ("mixtral", "gpt_oss"):
        spec = MoESpec(
            n_experts=f.int_("num_local_experts"),
            experts_per_token=f.int_("num_experts_per_tok", 2 if mtype == "mixtral" else 4),
            shared_experts=0,
            expert_ffn=f.int_("intermediate_size"),
        )
        return spec, {"shared_ffn": 0}
    if mtype in ("qwen3_moe", "qwen3_next", "qwen3_5_moe_text"):
        step = f.int_("decoder_sparse_step", 1, maximum=n_layers)
        dense_list = f.data.get("mlp_only_layers") or []
        if not isinstance(dense_list, list) or dense_list != list(range(len(dense_list))):
            raise f.fail(
                "mlp_only_layers", dense_list, "only a leading run of dense layers is supported"
            )
        shared_ffn = f.int_("shared_expert_intermediate_size", 0, minimum=0)
        spec = MoESpec(
            n_experts=f.int_("num_experts"),
            experts_per_token=f.int_("num_experts_per_tok"),
            shared_experts=1 if shared_ffn else 0,
            expert_ffn=f.int_("moe_intermediate_size"),
            first_dense_layers=len(dense_list),
            interleave_step=step,
        )
        return spec, {"shared_ffn": shared_ffn}
    if mtype in ("deepseek_v3", "glm4_moe"):
        step = f.int_("moe_layer_freq", 1, maximum=n_layers)
        spec = MoESpec(
            n_experts=f.int_("n_routed_experts"),
            experts_per_token=f.int_("num_experts_per_tok"),
            shared_experts=f.int_("n_shared_experts", 0, minimum=0),
            expert_ffn=f.int_("moe_intermediate_size"),
            first_dense_layers=f.int_("first_k_dense_replace", 0, minimum=0, maximum=n_layers - 1),
            interleave_step=step,
        )
        return spec, {"shared_ffn": spec.expert_ffn}
    return None, {}


def import_hf_config(path: str | Path, model_id: str | None = None) -> ModelSpec:
    """Read a config.json (or a directory holding one) into a ModelSpec; DataError on bad input."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    name = str(path)
    data, raw = _read_json(path)
    top = Fields(name, data)
    mtype = _model_type(top)
    f = top
    if mtype in _MULTIMODAL_TEXT or isinstance(data.get("text_config"), Mapping):
        text = data.get("text_config")
        if not isinstance(text, Mapping):
            raise top.fail("text_config", text, "a multimodal config needs a text_config object")
        f = Fields(name, text, "text_config.")
        mtype = _MULTIMODAL_TEXT.get(mtype, mtype)
        if text.get("model_type") not in (None, mtype):
            inner = Fields(name, text, "text_config.")
            mtype = _model_type(inner)
    defaults_applied: dict[str, object] = {}
    if mtype == "gemma3_text":
        merged = dict(_GEMMA3_TEXT_DEFAULTS)
        for key in _GEMMA3_TEXT_DEFAULTS:
            if f.data.get(key) is None:
                defaults_applied[key] = merged[key]
        merged.update({k: v for k, v in f.data.items() if v is not None})
        f = Fields(name, merged, f.prefix)

    if mtype == "gemma4_text":
        return _import_gemma4(f, top, path, raw, model_id)
    extra: dict[str, object] = {}
    n_layers, hidden, n_heads, n_kv = _trunk(f)
    attention = _attention(f, mtype, n_layers, extra)
    if attention.kind == "mla":
        head_dim = (attention.mla_qk_nope_head_dim or 0) + (attention.mla_qk_rope_head_dim or 0)
    elif f.has("head_dim"):
        head_dim = f.int_("head_dim")
    else:
        if hidden % n_heads:
            raise f.fail(
                "head_dim", None, f"absent and hidden_size {hidden} % heads {n_heads} != 0"
            )
        head_dim = hidden // n_heads
    vocab = f.int_("vocab_size")
    tied_default = _TIED_DEFAULT.get(mtype, False)
    tied = f.bool_("tie_word_embeddings", top.bool_("tie_word_embeddings", tied_default))
    moe, moe_dims = _moe(f, mtype, n_layers)
    dense_ffn = None if mtype in ("mixtral", "gpt_oss") else f.opt_int("intermediate_size")
    if moe is not None and moe.first_dense_layers == 0 and moe.interleave_step == 1:
        dense_ffn = None  # every layer is MoE; a config intermediate_size is unused
    if moe is None and dense_ffn is None:
        raise f.fail("intermediate_size", None, "a dense model needs its FFN width")
    ctx = f.opt_int("max_position_embeddings", maximum=MAX_CONTEXT)

    flags = dict(_FLAGS[mtype])
    if f.bool_("attention_bias", False) and mtype in ("llama", "qwen3", "qwen3_moe", "mistral"):
        flags |= {"qkv_bias": True, "o_bias": True}
    if mtype == "cohere" and f.bool_("use_qk_norm", False):
        raise f.fail("use_qk_norm", True, "Command R+ style QK-norm is not supported")
    dims = Dims(
        n_layers=n_layers,
        hidden=hidden,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        vocab=vocab,
        tied=tied,
        ffn=dense_ffn,
        q_lora_rank=attention.mla_q_lora_rank,
        kv_lora_rank=attention.mla_kv_lora_rank,
        qk_rope_dim=attention.mla_qk_rope_head_dim or 0,
        qk_nope_dim=attention.mla_qk_nope_head_dim or 0,
        v_head_dim=attention.mla_v_head_dim or 0,
        n_experts=moe.n_experts if moe else 0,
        experts_per_token=moe.experts_per_token if moe else 0,
        expert_ffn=moe.expert_ffn if moe else 0,
        n_shared=moe.shared_experts if moe else 0,
        first_dense=moe.first_dense_layers if moe else 0,
        moe_step=moe.interleave_step if moe else 1,
        attention_layers=attention.attention_layers if attention.kind == "hybrid" else None,
        **moe_dims,  # type: ignore[arg-type]
        **flags,  # type: ignore[arg-type]
    )
    if attention.kind == "hybrid":
        dims = dataclasses.replace(
            dims,
            linear_num_key_heads=f.int_("linear_num_key_heads"),
            linear_key_head_dim=f.int_("linear_key_head_dim"),
            linear_num_value_heads=f.int_("linear_num_value_heads"),
            linear_value_head_dim=f.int_("linear_value_head_dim"),
            linear_conv_kernel=f.int_("linear_conv_kernel_dim", minimum=2),
        )
    total, active = count_params(dims)

    unknown = {
        "license": "config.json carries no licence; check the model card",
        "release_date": "config.json carries no release date",
    }
    if ctx is None:
        unknown["max_context"] = "config.json has no max_position_embeddings"
    extra["unknown"] = unknown
    if f.has("rope_theta"):
        theta = f.data["rope_theta"]
        if isinstance(theta, int | float) and not isinstance(theta, bool):
            extra["rope_theta"] = theta
    if defaults_applied:
        extra["defaults_applied"] = defaults_applied
    extra["params_computed_from"] = "dims (models_db.formulas.count_params)"
    source_name = top.str_("_name_or_path") or path.parent.name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return ModelSpec(
        id=model_id or slugify(source_name.rsplit("/", 1)[-1] or mtype),
        name=source_name.rsplit("/", 1)[-1] or mtype,
        family=mtype,
        params_total=total,
        params_active=active,
        n_layers=n_layers,
        hidden_size=hidden,
        intermediate_size=dense_ffn if moe is None else f.opt_int("intermediate_size"),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_context=ctx,
        attention=attention,
        moe=moe,
        license="",
        source=f"config.json {path.resolve()} (sha256 {digest})",
        hf_repo=source_name if "/" in source_name else "",
        notes="Imported from a Hugging Face config.json; params computed from the dims.",
        native_quant="MXFP4" if mtype == "gpt_oss" else None,
        origin="import:config.json",
        extra=extra,
    )


def _trunk(f: Fields) -> tuple[int, int, int, int]:
    """(layers, hidden size, attention heads, KV heads) every decoder config gives; KV heads
    default to the attention heads (no GQA) and must divide them."""
    n_layers = f.int_("num_hidden_layers", maximum=MAX_LAYERS)
    hidden = f.int_("hidden_size")
    n_heads = f.int_("num_attention_heads")
    n_kv = f.int_("num_key_value_heads", n_heads)
    if n_kv > n_heads or n_heads % n_kv:
        raise f.fail("num_key_value_heads", n_kv, f"must divide num_attention_heads ({n_heads})")
    return n_layers, hidden, n_heads, n_kv


def _import_gemma4(
    f: Fields, top: Fields, path: Path, raw: bytes, model_id: str | None
) -> ModelSpec:
    """Gemma 4 (Gemma4ForConditionalGeneration's text_config, model_type gemma4_text).

    Field names per the released configs (copied in AI-Hypercomputer/maxtext
    checkpoint_conversion/utils/hf_model_configs.py): `layer_types` marks global
    (full_attention) and sliding layers; global layers use `global_head_dim` and
    `num_global_key_value_heads` (null: num_key_value_heads), `attention_k_eq_v` drops their v
    projection; `num_kv_shared_layers` last layers reuse earlier KV; E-models add a per-layer
    embedding (`hidden_size_per_layer_input`, `vocab_size_per_layer_input`); the 26B runs
    `num_experts` experts (`top_k_experts`, `moe_intermediate_size`) beside its dense MLP.
    """
    extra: dict[str, object] = {}
    n_layers, hidden, n_heads, n_kv = _trunk(f)
    types = _layer_types(f, n_layers)
    if types is None:
        raise f.fail("layer_types", None, "Gemma 4 lists the type of every layer")
    if "linear_attention" in types or "chunked_attention" in types:
        raise f.fail("layer_types", types, "Gemma 4 layers are sliding or full attention")
    attention = _attention(f, "gemma4_text", n_layers, extra)
    global_kv = f.opt_int("num_global_key_value_heads")
    if global_kv is not None and (global_kv > n_heads or n_heads % global_kv):
        raise f.fail("num_global_key_value_heads", global_kv, f"must divide {n_heads} heads")
    shared = f.int_("num_kv_shared_layers", 0, minimum=0, maximum=n_layers - 1)
    k_eq_v = f.bool_("attention_k_eq_v", False)
    attention = dataclasses.replace(
        attention,
        global_head_dim=f.int_("global_head_dim"),
        global_n_kv_heads=global_kv,
        global_v_is_k=k_eq_v,
        kv_shared_layers=shared,
    )
    ple_dim = f.int_("hidden_size_per_layer_input", 0, minimum=0)
    ple = None
    if ple_dim:
        ple = PerLayerEmbeddingSpec(
            dim=ple_dim, vocab=f.int_("vocab_size_per_layer_input"), n_layers=n_layers
        )
    moe = None
    if f.bool_("enable_moe_block", False):
        expert_key = (
            "moe_intermediate_size"
            if f.has("moe_intermediate_size")
            else ("expert_intermediate_size")
        )
        moe = MoESpec(
            n_experts=f.int_("num_experts"),
            experts_per_token=f.int_("top_k_experts"),
            # llama.cpp builds the dense branch as the shared expert ("we use normal FFN as
            # shared expert", src/models/gemma4.cpp).
            shared_experts=1,
            expert_ffn=f.int_(expert_key),
            shared_expert_ffn=f.int_("intermediate_size"),
        )
    dims = Gemma4Dims(
        hidden=hidden,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=f.int_("head_dim"),
        global_layers=tuple(t == "full_attention" for t in types),
        global_head_dim=attention.global_head_dim or 0,
        global_kv_heads=global_kv,
        k_eq_v=k_eq_v,
        ffn=f.int_("intermediate_size"),
        vocab=f.int_("vocab_size"),
        kv_shared_layers=shared,
        double_wide_shared_mlp=f.bool_("use_double_wide_mlp", False),
        ple_dim=ple_dim,
        ple_vocab=ple.vocab if ple else 0,
        n_experts=moe.n_experts if moe else 0,
        experts_per_token=moe.experts_per_token if moe else 0,
        expert_ffn=moe.expert_ffn if moe else 0,
    )
    total, active = count_gemma4_params(dims)
    # Gemma 4 rope: rope_parameters per layer type (global theta, proportional partial rotary)
    ropes = f.data.get("rope_parameters")
    if isinstance(ropes, Mapping):
        extra["rope_parameters"] = {k: v for k, v in ropes.items() if isinstance(v, Mapping)}
    ctx = f.opt_int("max_position_embeddings", maximum=MAX_CONTEXT)
    unknown = {
        "license": "config.json carries no licence; check the model card",
        "release_date": "config.json carries no release date",
    }
    if ctx is None:
        unknown["max_context"] = "config.json has no max_position_embeddings"
    extra["unknown"] = unknown
    extra["params_computed_from"] = "dims (models_db.formulas.count_gemma4_params)"
    source_name = top.str_("_name_or_path") or path.parent.name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    name = source_name.rsplit("/", 1)[-1] or "gemma4"
    return ModelSpec(
        id=model_id or slugify(name),
        name=name,
        family="gemma4_text",
        params_total=total,
        params_active=active,
        n_layers=n_layers,
        hidden_size=hidden,
        intermediate_size=dims.ffn,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=dims.head_dim,
        vocab_size=dims.vocab,
        tie_word_embeddings=f.bool_("tie_word_embeddings", top.bool_("tie_word_embeddings", True)),
        max_context=ctx,
        attention=attention,
        moe=moe,
        license="",
        source=f"config.json {path.resolve()} (sha256 {digest})",
        hf_repo=source_name if "/" in source_name else "",
        notes="Imported from a Hugging Face config.json; params computed from the dims.",
        origin="import:config.json",
        extra=extra,
        per_layer_embedding=ple,
    )
