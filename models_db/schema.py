"""ModelSpec <-> plain dict, with validation that names the file, field and value.

One schema for the shipped TOML file, for user models saved by the store, and for `--json`
output, so a model round-trips through every one of them unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from forgeplanner.domain.model import (
    AttentionSpec,
    ModelSpec,
    MoESpec,
    PerLayerEmbeddingSpec,
    RecurrentSpec,
    TensorInfo,
)
from forgeplanner.errors import DataError

ATTENTION_KINDS = ("full", "sliding", "mla", "hybrid")
RECURRENT_KINDS = ("gated_deltanet", "mamba2", "kda")
HYBRID_ATTENTION = ("full", "mla")
# Nemotron-H hybrid_override_pattern letters: Mamba-2, attention, dense MLP, MoE.
LAYER_BLOCK_CHARS = frozenset("M*-E")
FORMATS = ("gguf", "mlx", "safetensors")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

_TOP_KEYS = {
    "id",
    "name",
    "family",
    "hf_repo",
    "params_total",
    "params_active",
    "n_layers",
    "hidden_size",
    "intermediate_size",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "max_context",
    "rope_theta",
    "license",
    "release_date",
    "formats",
    "native_quant",
    "source",
    "notes",
    "attention",
    "moe",
    "unknown",
    "derived",
    "declared_sliding_window",
    "declared_sliding_window_note",
    "tensors",
    "gguf_file_type",
    "origin",
    "extra",
    "aliases",
    "source_commit",
    "license_source",
    "release_date_source",
    "use",
    "review",
    "per_layer_embedding",
    "layer_blocks",
}
_ATTN_KEYS = {
    "kind",
    "sliding_window",
    "sliding_layers",
    "chunked",
    "pattern",
    "mla_kv_lora_rank",
    "mla_qk_rope_head_dim",
    "mla_qk_nope_head_dim",
    "mla_v_head_dim",
    "mla_q_lora_rank",
    "attention_layers",
    "recurrent_state_bytes_per_seq",
    "recurrent",
    "recurrent_note",
    "indexer_head_dim",
    "state",
    "hybrid_attention",
    "global_head_dim",
    "global_n_kv_heads",
    "global_v_is_k",
    "kv_shared_layers",
}
_STATE_KEYS = {
    "kind",
    "layers",
    "conv_kernel",
    "conv_elements",
    "state_elements",
    "n_heads",
    "head_dim",
    "n_groups",
    "d_state",
}
_MOE_KEYS = {
    "n_experts",
    "experts_per_token",
    "shared_experts",
    "expert_ffn",
    "first_dense_layers",
    "interleave_step",
    "shared_expert_ffn",
}
# Keys of the data file that live in ModelSpec.extra (facts sizing does not need directly).
_EXTRA_TOP = (
    "rope_theta",
    "unknown",
    "derived",
    "declared_sliding_window",
    "declared_sliding_window_note",
    "source_commit",
    "license_source",
    "release_date_source",
    "use",
    "review",
)
_EXTRA_ATTN = ("pattern", "recurrent", "recurrent_note")


class _Reader:
    """Typed field access on one entry; every failure is one DataError naming the field."""

    def __init__(self, file: str, where: str, data: Mapping[str, Any]) -> None:
        self.file, self.where, self.data = file, where, data

    def fail(self, field: str, value: object, problem: str) -> DataError:
        return DataError(
            self.file, f"{self.where}.{field}" if self.where else field, value, problem
        )

    def check_keys(self, allowed: set[str]) -> None:
        if not isinstance(self.data, Mapping):
            raise self.fail("", self.data, "must be a table")
        for key in self.data:
            if key not in allowed:
                raise self.fail(str(key), self.data[key], "unknown field (typo?)")

    def int_(self, key: str, *, required: bool = True, minimum: int = 1) -> int | None:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.fail(key, None, "is required")
            return None
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, value, "must be an integer")
        if value < minimum:
            raise self.fail(key, value, f"must be >= {minimum}")
        return value

    def str_(self, key: str, *, required: bool = True, default: str = "") -> str:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.fail(key, None, "is required")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise self.fail(key, value, "must be a string")
        return value

    def bool_(self, key: str, *, default: bool | None = None) -> bool:
        if key not in self.data:
            if default is None:
                raise self.fail(key, None, "is required")
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.fail(key, value, "must be true or false")
        return value

    def int_list(self, key: str, upper: int) -> tuple[int, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list | tuple):
            raise self.fail(key, value, "must be a list of layer indices")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < upper:
                raise self.fail(key, item, f"layer index must be an integer in [0, {upper})")
        if list(value) != sorted(set(value)):
            raise self.fail(key, value, "must be sorted and without duplicates")
        return tuple(value)

    def table(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, value, "must be a table")
        return value


def _attention(r: _Reader, n_layers: int, unknown: Mapping[str, Any]) -> AttentionSpec:
    r.check_keys(_ATTN_KEYS)
    kind = r.str_("kind")
    if kind not in ATTENTION_KINDS:
        raise r.fail("kind", kind, f"must be one of {', '.join(ATTENTION_KINDS)}")
    window = r.int_("sliding_window", required=kind == "sliding")
    sliding_layers = r.int_list("sliding_layers", n_layers)
    attention_layers = r.int_list("attention_layers", n_layers)
    if kind == "sliding" and not sliding_layers:
        raise r.fail("sliding_layers", [], "sliding attention needs the windowed layer indices")
    if kind != "sliding" and (sliding_layers or window):
        raise r.fail("sliding_window", window, f"only sliding attention has a window, not {kind}")
    mla = {
        k: r.int_(k, required=kind == "mla" and k in ("mla_kv_lora_rank", "mla_qk_rope_head_dim"))
        for k in (
            "mla_kv_lora_rank",
            "mla_qk_rope_head_dim",
            "mla_qk_nope_head_dim",
            "mla_v_head_dim",
            "mla_q_lora_rank",
        )
    }
    hybrid_attention = r.str_("hybrid_attention", required=False, default="full")
    if hybrid_attention not in HYBRID_ATTENTION:
        raise r.fail("hybrid_attention", hybrid_attention, f"must be one of {HYBRID_ATTENTION}")
    if hybrid_attention != "full" and kind != "hybrid":
        raise r.fail("hybrid_attention", hybrid_attention, f"hybrid-only field on {kind}")
    latent = kind == "mla" or (kind == "hybrid" and hybrid_attention == "mla")
    if latent and (mla["mla_kv_lora_rank"] is None or mla["mla_qk_rope_head_dim"] is None):
        raise r.fail("mla_kv_lora_rank", mla["mla_kv_lora_rank"], "MLA needs kv_lora and rope")
    if not latent and any(v is not None for v in mla.values()):
        raise r.fail("mla_kv_lora_rank", mla["mla_kv_lora_rank"], f"MLA field on {kind} attention")
    state = r.int_("recurrent_state_bytes_per_seq", required=False)
    recurrent = None
    if "state" in r.data:
        recurrent = _recurrent(
            _Reader(r.file, f"{r.where}.state", r.table("state")), n_layers, attention_layers
        )
    if kind == "hybrid":
        if not attention_layers:
            raise r.fail("attention_layers", [], "hybrid attention needs its attention layers")
        if state is None and "attention.recurrent_state_bytes_per_seq" not in unknown:
            raise r.fail(
                "recurrent_state_bytes_per_seq",
                None,
                "give the state size, or a reason under [unknown] with the same name",
            )
        if recurrent is not None and state is not None and recurrent.bytes_per_seq() != state:
            raise r.fail(
                "recurrent_state_bytes_per_seq",
                state,
                f"disagrees with [state]: {recurrent.bytes_per_seq()} B (F32) per sequence",
            )
    elif attention_layers or state is not None or recurrent is not None:
        raise r.fail("attention_layers", list(attention_layers), f"hybrid-only field on {kind}")
    global_head_dim = r.int_("global_head_dim", required=False)
    global_kv = r.int_("global_n_kv_heads", required=False)
    global_v_is_k = r.bool_("global_v_is_k", default=False)
    if kind != "sliding" and (global_head_dim or global_kv or global_v_is_k):
        raise r.fail("global_head_dim", global_head_dim, f"sliding-only field on {kind}")
    kv_shared = r.int_("kv_shared_layers", required=False, minimum=0) or 0
    if kv_shared >= n_layers:
        raise r.fail("kv_shared_layers", kv_shared, f"must be < n_layers ({n_layers})")
    return AttentionSpec(
        kind=kind,
        sliding_window=window,
        sliding_layers=sliding_layers,
        chunked=r.bool_("chunked", default=False),
        attention_layers=attention_layers,
        recurrent_state_bytes_per_seq=state,
        indexer_head_dim=r.int_("indexer_head_dim", required=False),
        recurrent=recurrent,
        hybrid_attention=hybrid_attention,
        global_head_dim=global_head_dim,
        global_n_kv_heads=global_kv,
        global_v_is_k=global_v_is_k,
        kv_shared_layers=kv_shared,
        **mla,
    )


def _recurrent(r: _Reader, n_layers: int, attention_layers: tuple[int, ...]) -> RecurrentSpec:
    r.check_keys(_STATE_KEYS)
    kind = r.str_("kind")
    if kind not in RECURRENT_KINDS:
        raise r.fail("kind", kind, f"must be one of {', '.join(RECURRENT_KINDS)}")
    layers = r.int_list("layers", n_layers)
    if not layers:
        raise r.fail("layers", [], "list the layers that hold recurrent state")
    overlap = sorted(set(layers) & set(attention_layers))
    if overlap:
        raise r.fail("layers", overlap, "a layer cannot both attend and hold recurrent state")
    values = {
        k: r.int_(k, required=k in ("conv_kernel", "conv_elements", "state_elements"), minimum=0)
        for k in ("conv_kernel", "conv_elements", "state_elements", "n_heads", "head_dim",
                  "n_groups", "d_state")
    }  # fmt: skip
    return RecurrentSpec(kind=kind, layers=layers, **{k: v or 0 for k, v in values.items()})


def _moe(r: _Reader, n_layers: int) -> MoESpec:
    r.check_keys(_MOE_KEYS)
    n_experts = r.int_("n_experts")
    per_token = r.int_("experts_per_token")
    assert n_experts is not None and per_token is not None
    if per_token > n_experts:
        raise r.fail("experts_per_token", per_token, f"more than n_experts ({n_experts})")
    dense = r.int_("first_dense_layers", required=False, minimum=0) or 0
    if dense >= n_layers:
        raise r.fail("first_dense_layers", dense, f"must be < n_layers ({n_layers})")
    return MoESpec(
        n_experts=n_experts,
        experts_per_token=per_token,
        shared_experts=r.int_("shared_experts", minimum=0) or 0,
        expert_ffn=r.int_("expert_ffn") or 0,
        first_dense_layers=dense,
        interleave_step=r.int_("interleave_step", required=False) or 1,
        shared_expert_ffn=r.int_("shared_expert_ffn", required=False),
    )


def _tensors(r: _Reader) -> tuple[TensorInfo, ...]:
    raw = r.data.get("tensors", [])
    if not isinstance(raw, list):
        raise r.fail("tensors", raw, "must be a list")
    out = []
    for i, t in enumerate(raw):
        tr = _Reader(r.file, f"{r.where}.tensors[{i}]", t)
        tr.check_keys({"name", "shape", "ggml_type", "n_bytes"})
        shape = t.get("shape")
        if not isinstance(shape, list | tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise tr.fail("shape", shape, "must be a list of non-negative integers")
        out.append(
            TensorInfo(
                name=tr.str_("name"),
                shape=tuple(shape),
                ggml_type=tr.str_("ggml_type"),
                n_bytes=tr.int_("n_bytes", minimum=0) or 0,
            )
        )
    return tuple(out)


def spec_from_dict(data: Mapping[str, Any], file: str, where: str = "") -> ModelSpec:
    """Validate one model entry and build the ModelSpec. Raises DataError on the first problem."""
    r = _Reader(file, where, data)
    r.check_keys(_TOP_KEYS)
    mid = r.str_("id")
    if not _ID.match(mid):
        raise r.fail("id", mid, "must be a lowercase slug (a-z, 0-9, '.', '_', '-')")
    if not where:
        r.where = mid
    unknown = r.table("unknown")
    for key, reason in unknown.items():
        if not isinstance(reason, str) or not reason.strip():
            raise r.fail(f"unknown.{key}", reason, "an unknown figure needs a reason")
    n_layers = r.int_("n_layers")
    n_heads = r.int_("n_heads")
    n_kv = r.int_("n_kv_heads")
    assert n_layers is not None and n_heads is not None and n_kv is not None
    if n_kv > n_heads or n_heads % n_kv:
        raise r.fail("n_kv_heads", n_kv, f"must divide n_heads ({n_heads})")
    params_total = r.int_("params_total")
    params_active = r.int_("params_active", required=False)
    assert params_total is not None
    if params_active is not None and params_active > params_total:
        raise r.fail("params_active", params_active, f"exceeds params_total ({params_total})")
    max_context = r.int_("max_context", required="max_context" not in unknown)
    license_ = r.str_("license", required=False)
    if not license_ and "license" not in unknown:
        raise r.fail("license", license_, "empty license needs a reason in [unknown]")
    source = r.str_("source")
    if not source.strip():
        raise r.fail("source", source, "every model needs its source")
    formats = data.get("formats", ["gguf", "mlx"])
    if not isinstance(formats, list | tuple) or any(f not in FORMATS for f in formats):
        raise r.fail("formats", formats, f"must be a list drawn from {', '.join(FORMATS)}")

    attention = _attention(
        _Reader(file, f"{r.where}.attention", r.table("attention")), n_layers, unknown
    )
    moe = None
    if "moe" in data:
        moe = _moe(_Reader(file, f"{r.where}.moe", r.table("moe")), n_layers)
    if (moe is None) != (params_active is None):
        raise r.fail(
            "params_active", params_active, "MoE models need params_active; dense models have none"
        )
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list | tuple) or not all(
        isinstance(a, str) and a.strip() for a in aliases
    ):
        raise r.fail("aliases", aliases, "must be a list of non-empty strings")
    ple = None
    if "per_layer_embedding" in data:
        pr = _Reader(file, f"{r.where}.per_layer_embedding", r.table("per_layer_embedding"))
        pr.check_keys({"dim", "vocab"})
        ple = PerLayerEmbeddingSpec(
            dim=pr.int_("dim") or 0, vocab=pr.int_("vocab") or 0, n_layers=n_layers
        )
    blocks = r.str_("layer_blocks", required=False)
    if blocks and (len(blocks) != n_layers or not set(blocks) <= LAYER_BLOCK_CHARS):
        raise r.fail(
            "layer_blocks",
            blocks,
            f"must be {n_layers} characters from {sorted(LAYER_BLOCK_CHARS)}",
        )
    extra: dict[str, object] = dict(r.table("extra"))
    for key in _EXTRA_TOP:
        if key in data:
            extra[key] = data[key]
    attn_data = r.table("attention")
    for key in _EXTRA_ATTN:
        if key in attn_data:
            extra[f"attention.{key}"] = attn_data[key]

    return ModelSpec(
        id=mid,
        name=r.str_("name", required=False, default=mid) or mid,
        family=r.str_("family"),
        params_total=params_total,
        params_active=params_active,
        n_layers=n_layers,
        hidden_size=r.int_("hidden_size") or 0,
        intermediate_size=r.int_("intermediate_size", required=False),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=r.int_("head_dim") or 0,
        vocab_size=r.int_("vocab_size") or 0,
        tie_word_embeddings=r.bool_("tie_word_embeddings"),
        max_context=max_context,
        attention=attention,
        moe=moe,
        license=license_,
        source=source,
        hf_repo=r.str_("hf_repo", required=False),
        release_date=r.str_("release_date", required=False),
        notes=r.str_("notes", required=False),
        formats=tuple(formats),
        native_quant=r.str_("native_quant", required=False) or None,
        tensors=_tensors(r),
        gguf_file_type=r.str_("gguf_file_type", required=False) or None,
        origin=r.str_("origin", required=False, default="catalog") or "catalog",
        extra=extra,
        aliases=tuple(aliases),
        per_layer_embedding=ple,
        layer_blocks=blocks,
    )


def spec_to_dict(spec: ModelSpec, *, include_tensors: bool = True) -> dict[str, Any]:
    """Plain JSON-able dict; `spec_from_dict(spec_to_dict(s))` gives back an equal spec."""
    a = spec.attention
    attention: dict[str, Any] = {"kind": a.kind}
    for key in (
        "sliding_window",
        "mla_kv_lora_rank",
        "mla_qk_rope_head_dim",
        "mla_qk_nope_head_dim",
        "mla_v_head_dim",
        "mla_q_lora_rank",
        "recurrent_state_bytes_per_seq",
        "indexer_head_dim",
    ):
        value = getattr(a, key)
        if value is not None:
            attention[key] = value
    if a.sliding_layers:
        attention["sliding_layers"] = list(a.sliding_layers)
    if a.kind == "sliding" or a.chunked:
        attention["chunked"] = a.chunked
    if a.attention_layers:
        attention["attention_layers"] = list(a.attention_layers)
    if a.hybrid_attention != "full":
        attention["hybrid_attention"] = a.hybrid_attention
    for key in ("global_head_dim", "global_n_kv_heads"):
        if getattr(a, key) is not None:
            attention[key] = getattr(a, key)
    if a.global_v_is_k:
        attention["global_v_is_k"] = True
    if a.kv_shared_layers:
        attention["kv_shared_layers"] = a.kv_shared_layers
    if a.recurrent is not None:
        rs = a.recurrent
        attention["state"] = {
            "kind": rs.kind,
            "layers": list(rs.layers),
            **{
                k: getattr(rs, k)
                for k in ("conv_kernel", "conv_elements", "state_elements", "n_heads",
                          "head_dim", "n_groups", "d_state")
                if getattr(rs, k)
            },
        }  # fmt: skip
    extra = dict(spec.extra)
    for key in _EXTRA_ATTN:
        if f"attention.{key}" in extra:
            attention[key] = extra.pop(f"attention.{key}")
    out: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "family": spec.family,
        "hf_repo": spec.hf_repo,
        "params_total": spec.params_total,
        "params_active": spec.params_active,
        "n_layers": spec.n_layers,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "n_heads": spec.n_heads,
        "n_kv_heads": spec.n_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "max_context": spec.max_context,
        "license": spec.license,
        "release_date": spec.release_date,
        "formats": list(spec.formats),
        "native_quant": spec.native_quant,
        "source": spec.source,
        "notes": spec.notes,
        "origin": spec.origin,
        "gguf_file_type": spec.gguf_file_type,
        "attention": attention,
    }
    if spec.moe is not None:
        m = spec.moe
        out["moe"] = {
            "n_experts": m.n_experts,
            "experts_per_token": m.experts_per_token,
            "shared_experts": m.shared_experts,
            "expert_ffn": m.expert_ffn,
            "first_dense_layers": m.first_dense_layers,
            "interleave_step": m.interleave_step,
        }
        if m.shared_expert_ffn is not None:
            out["moe"]["shared_expert_ffn"] = m.shared_expert_ffn
    if spec.aliases:
        out["aliases"] = list(spec.aliases)
    if spec.per_layer_embedding is not None:
        out["per_layer_embedding"] = {
            "dim": spec.per_layer_embedding.dim,
            "vocab": spec.per_layer_embedding.vocab,
        }
    if spec.layer_blocks:
        out["layer_blocks"] = spec.layer_blocks
    for key in _EXTRA_TOP:
        if key in extra:
            out[key] = extra.pop(key)
    if extra:
        out["extra"] = extra
    if include_tensors and spec.tensors:
        out["tensors"] = [
            {"name": t.name, "shape": list(t.shape), "ggml_type": t.ggml_type, "n_bytes": t.n_bytes}
            for t in spec.tensors
        ]
    return out
