"""Weights memory per quantization, per tensor group.

Two sources of truth:
- a GGUF file's tensor list (`ModelSpec.tensors`): for the file's own quantization the weights
  are exactly the stored tensor bytes; for another quantization each stored tensor is
  re-typed with llama.cpp's policy (quant.tensor_types) from its real name and shape.
- a published config (catalog models): the tensor inventory llama.cpp's converter would write
  (names and shapes as in llama.cpp `src/llama-model.cpp` create_tensor calls: token_embd,
  output, attn_q/k/v/output, ffn_gate/up/down, *_exps, *_shexp, MLA attn_q_a/q_b/kv_a_mqa/
  k_b/v_b), plus a remainder group "other" so the parameter count matches the catalog's
  `params_total` (biases, extra norms, linear-attention blocks of hybrids).

Bytes of a tensor = elements / block_size * bytes_per_block (ggml_row_size; all rows here are
whole blocks after llama.cpp's block fallback). MLX: affine b bits + 32 bits per group of 64;
norms and the MoE router stay bf16 (mlx-lm only quantizes Linear/Embedding layers whose input
size is divisible by the group size).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.attention.hybrid import delta_net_dims
from forgeplanner.engine.quant import (
    QuantScheme,
    check_combination,
    get_quant,
    ggml_block,
    mix_context,
    tensor_types,
)
from forgeplanner.errors import NotFoundError

# "per_layer_embd": the per-layer embedding table of Gemma 3n / 4 E-models (a look-up, one row
# per layer per token: in memory, not streamed per token).
GROUPS = ("token_embd", "per_layer_embd", "output", "attention", "ffn", "experts", "norms",
          "other")  # fmt: skip


@dataclass(frozen=True, slots=True)
class TensorGroup:
    """Same-shaped tensors (one per listed layer). layer -1 = not in a block."""

    name: str  # "blk.{i}.attn_v.weight" style, for explanations
    category: str  # quant.CATEGORIES, or "norm" / "router" (never quantized)
    group: str  # breakdown bucket, one of GROUPS
    ne0: int  # row length (ggml ne[0]) - decides block-size fallbacks
    n_elements: int  # elements of ONE tensor
    layers: tuple[int, ...]
    is_3d: bool = False  # stacked experts (ggml ne[2] > 1)
    fixed_type: str | None = None  # never re-typed (native MXFP4 experts, F32 norms)


@dataclass(frozen=True, slots=True)
class WeightsBreakdown:
    """Weight bytes of one model x quantization, by tensor group and by layer, from one pass
    over the tensors (so the per-layer table the cluster split uses sums to the same total)."""

    quant: str
    bytes_by_group: dict[str, int]
    params_by_group: dict[str, int]
    types_by_group: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> params
    exact: bool = False  # True: exact tensor bytes of a GGUF file
    layer_bytes: tuple[int, ...] = ()  # bytes of each repeating block's tensors
    layer_expert_bytes: tuple[int, ...] = ()  # of which routed experts (and their router)
    input_bytes: int = 0  # token embedding table (not in a block)
    output_bytes: int = 0  # output head, output norm and other tensors outside the blocks

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_group.values())

    @property
    def total_params(self) -> int:
        return sum(self.params_by_group.values())

    @property
    def bits_per_weight(self) -> float:
        p = self.total_params
        return self.total_bytes * 8 / p if p else 0.0


# ---------------------------------------------------------------------------------------------
# tensor inventory from a config
# ---------------------------------------------------------------------------------------------


def _moe_layers(model: ModelSpec) -> list[int]:
    moe = model.moe
    if moe is None:
        return []
    step = max(1, moe.interleave_step)
    # HF Llama 4: layer i is MoE when (i + 1) % interleave_moe_layer_step == 0.
    return [
        i for i in range(moe.first_dense_layers, model.n_layers) if step == 1 or (i + 1) % step == 0
    ]


def config_inventory(model: ModelSpec) -> tuple[TensorGroup, ...]:
    """The tensors llama.cpp's converter writes for this config (see module docstring)."""
    H, L, V = model.hidden_size, model.n_layers, model.vocab_size
    att = model.attention
    out: list[TensorGroup] = [
        TensorGroup("token_embd.weight", "token_embd", "token_embd", H, V * H, (-1,)),
        TensorGroup("output_norm.weight", "norm", "norms", H, H, (-1,), fixed_type="F32"),
    ]
    if not model.tie_word_embeddings:
        out.append(TensorGroup("output.weight", "output", "output", H, V * H, (-1,)))
    ple = model.per_layer_embedding
    if ple is not None:
        # llama.cpp per_layer_token_embd {n_embd_per_layer * n_layer, n_vocab_per_layer},
        # quantized like token_embd (llama-quant.cpp treats it as token_embd)
        out.append(TensorGroup("per_layer_token_embd.weight", "token_embd", "per_layer_embd",
                               ple.dim * ple.n_layers, ple.params, (-1,)))  # fmt: skip
    all_layers = tuple(range(L))
    att_layers = (
        tuple(att.attention_layers) if att.kind == "hybrid" and att.attention_layers else all_layers
    )
    out.append(
        TensorGroup("blk.{i}.attn_norm.weight", "norm", "norms", H, H, all_layers, fixed_type="F32")
    )
    out.append(
        TensorGroup("blk.{i}.ffn_norm.weight", "norm", "norms", H, H, all_layers, fixed_type="F32")
    )
    nq, nkv, hd = model.n_heads, model.n_kv_heads, model.head_dim
    if att.kind == "mla" and att.mla_kv_lora_rank:
        r = att.mla_kv_lora_rank
        rope = att.mla_qk_rope_head_dim or 0
        nope = att.mla_qk_nope_head_dim or max(0, hd - rope)
        vd = att.mla_v_head_dim or nope
        qr = att.mla_q_lora_rank
        if qr:
            out.append(
                TensorGroup("blk.{i}.attn_q_a.weight", "other", "attention", H, H * qr, all_layers)
            )
            out.append(
                TensorGroup(
                    "blk.{i}.attn_q_b.weight",
                    "other",
                    "attention",
                    qr,
                    qr * nq * (nope + rope),
                    all_layers,
                )
            )
            out.append(
                TensorGroup(
                    "blk.{i}.attn_q_a_norm.weight",
                    "norm",
                    "norms",
                    qr,
                    qr,
                    all_layers,
                    fixed_type="F32",
                )
            )
        else:
            out.append(
                TensorGroup(
                    "blk.{i}.attn_q.weight",
                    "attn_q",
                    "attention",
                    H,
                    H * nq * (nope + rope),
                    all_layers,
                )
            )
        out.append(
            TensorGroup(
                "blk.{i}.attn_kv_a_mqa.weight", "other", "attention", H, H * (r + rope), all_layers
            )
        )
        out.append(
            TensorGroup(
                "blk.{i}.attn_kv_a_norm.weight", "norm", "norms", r, r, all_layers, fixed_type="F32"
            )
        )
        # llama.cpp deepseek2: wk_b {nope, kv_lora, n_head}, wv_b {kv_lora, v_head, n_head}
        out.append(
            TensorGroup(
                "blk.{i}.attn_k_b.weight",
                "other",
                "attention",
                nope,
                nope * r * nq,
                all_layers,
                is_3d=True,
            )
        )
        out.append(
            TensorGroup(
                "blk.{i}.attn_v_b.weight",
                "other",
                "attention",
                r,
                r * vd * nq,
                all_layers,
                is_3d=True,
            )
        )
        out.append(
            TensorGroup(
                "blk.{i}.attn_output.weight",
                "attn_output",
                "attention",
                nq * vd,
                nq * vd * H,
                all_layers,
            )
        )
    else:
        # Qwen3-Next / Qwen3.5 gated attention: attn_q also produces the output gate
        q_mult = 2 if delta_net_dims(model) else 1
        out.append(
            TensorGroup(
                "blk.{i}.attn_q.weight", "attn_q", "attention", H, H * nq * hd * q_mult, att_layers
            )
        )
        out.append(
            TensorGroup("blk.{i}.attn_k.weight", "attn_k", "attention", H, H * nkv * hd, att_layers)
        )
        out.append(
            TensorGroup("blk.{i}.attn_v.weight", "attn_v", "attention", H, H * nkv * hd, att_layers)
        )
        out.append(
            TensorGroup(
                "blk.{i}.attn_output.weight",
                "attn_output",
                "attention",
                nq * hd,
                nq * hd * H,
                att_layers,
            )
        )
    dn = delta_net_dims(model)
    if dn is not None:
        rec_layers = tuple(i for i in all_layers if i not in set(att_layers))
        out.extend(_delta_net_groups(H, dn, rec_layers))
    moe_layers = _moe_layers(model)
    moe_set = set(moe_layers)
    dense_layers = tuple(i for i in all_layers if i not in moe_set)
    inter = model.intermediate_size
    if dense_layers and inter:
        for nm in ("gate", "up"):
            out.append(
                TensorGroup(
                    f"blk.{{i}}.ffn_{nm}.weight", f"ffn_{nm}", "ffn", H, H * inter, dense_layers
                )
            )
        out.append(
            TensorGroup(
                "blk.{i}.ffn_down.weight", "ffn_down", "ffn", inter, inter * H, dense_layers
            )
        )
    if model.moe is not None and moe_layers:
        moe = model.moe
        E, F = moe.n_experts, moe.expert_ffn
        ml = tuple(moe_layers)
        native = model.native_quant
        out.append(
            TensorGroup(
                "blk.{i}.ffn_gate_inp.weight", "router", "experts", H, H * E, ml, fixed_type="F32"
            )
        )
        for nm in ("gate", "up"):
            out.append(
                TensorGroup(
                    f"blk.{{i}}.ffn_{nm}_exps.weight",
                    f"ffn_{nm}",
                    "experts",
                    H,
                    E * H * F,
                    ml,
                    is_3d=True,
                    fixed_type=native,
                )
            )
        out.append(
            TensorGroup(
                "blk.{i}.ffn_down_exps.weight",
                "ffn_down",
                "experts",
                F,
                E * F * H,
                ml,
                is_3d=True,
                fixed_type=native,
            )
        )
        if moe.shared_experts or moe.shared_expert_ffn:
            # llama.cpp: n_ff_shexp = n_ff_exp * n_expert_shared, unless the model gives its
            # own shared-expert width (Nemotron 3 Nano, Gemma 4 26B-A4B's dense MLP)
            Fs = moe.shared_expert_ffn or F * moe.shared_experts
            for nm in ("gate", "up"):
                out.append(
                    TensorGroup(
                        f"blk.{{i}}.ffn_{nm}_shexp.weight", f"ffn_{nm}", "ffn", H, H * Fs, ml
                    )
                )
            out.append(
                TensorGroup("blk.{i}.ffn_down_shexp.weight", "ffn_down", "ffn", Fs, Fs * H, ml)
            )
    counted = sum(g.n_elements * len(g.layers) for g in out)
    rest = model.params_total - counted
    # The catalog counts params to 3 decimals of a billion (+-0.5e6); below that the remainder
    # is rounding, not tensors.
    if rest > 1_000_000:
        # Biases, extra norms, QK-norms, hybrid linear-attention blocks, Gemma's extra norms:
        # spread over the layers as quantizable weights with row length H.
        per_layer = rest // L
        out.append(
            TensorGroup("blk.{i}.(other weights)", "other", "other", H, per_layer, all_layers)
        )
        tail = rest - per_layer * L
        if tail:
            out.append(TensorGroup("(other weights)", "other", "other", H, tail, (-1,)))
    return tuple(out)


def _delta_net_groups(H: int, dn: dict[str, int], layers: tuple[int, ...]) -> list[TensorGroup]:
    """Linear-attention layers as llama.cpp src/models/qwen3next.cpp creates them (current
    converter layout: attn_qkv + attn_gate instead of the legacy ssm_in)."""
    kd = dn["linear_key_head_dim"] * dn["linear_num_key_heads"]
    vd = dn["linear_value_head_dim"] * dn["linear_num_value_heads"]
    nv = dn["linear_num_value_heads"]
    conv = 2 * kd + vd
    k = dn["linear_conv_kernel_dim"]
    return [
        # category attn_qkv: llama-quant.cpp treats it like attn_v (more bits in the mixes)
        TensorGroup("blk.{i}.attn_qkv.weight", "attn_qkv", "attention", H, H * conv, layers),
        TensorGroup("blk.{i}.attn_gate.weight", "other", "attention", H, H * vd, layers),
        TensorGroup("blk.{i}.ssm_ba.weight", "other", "attention", H, H * 2 * nv, layers),
        TensorGroup("blk.{i}.ssm_out.weight", "other", "attention", vd, vd * H, layers),
        TensorGroup("blk.{i}.ssm_conv1d.weight", "norm", "other", k, k * conv, layers,
                    fixed_type="F32"),
        TensorGroup("blk.{i}.ssm_dt/ssm_a", "norm", "other", nv, 2 * nv, layers,
                    fixed_type="F32"),
        TensorGroup("blk.{i}.ssm_norm.weight", "norm", "norms", dn["linear_value_head_dim"],
                    dn["linear_value_head_dim"], layers, fixed_type="F32"),
    ]  # fmt: skip


_BLK = re.compile(r"^blk\.(\d+)\.")


def _category_from_name(name: str) -> str:
    # llama-quant.cpp tensor_get_category (substring tests, same order)
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for key, cat in (
        ("attn_qkv.weight", "attn_qkv"),
        ("attn_kv_b.weight", "attn_kv_b"),
        ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"),
        ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"),
        ("ffn_gate", "ffn_gate"),
        ("ffn_down", "ffn_down"),
    ):
        if key in name:
            return cat
    return "other"


def _quantizable(name: str, n_dims: int) -> bool:
    # llama-quant.cpp tensor_allows_quantization (the parts that apply to LLM weights)
    if n_dims < 2 or not name.endswith("weight"):
        return False
    return not any(
        s in name
        for s in (
            "_norm.weight",
            "ffn_gate_inp.weight",
            "ssm_conv1d",
            "altup",
            "laurel",
            "per_layer_model_proj",
            "position_embd",
            "token_types",
        )
    )


def _group_from_name(name: str, category: str, n_dims: int) -> str:
    if name.startswith("per_layer_token_embd"):
        return "per_layer_embd"
    if category in ("token_embd", "output"):
        return category
    if "_exps" in name or "ffn_gate_inp.weight" in name:  # routed experts and their router
        return "experts"
    if not _quantizable(name, n_dims):
        return "norms" if "norm" in name else "other"
    if "attn" in name:
        return "attention"
    if category.startswith("ffn"):
        return "ffn"
    return "other"


def gguf_inventory(model: ModelSpec) -> tuple[TensorGroup, ...]:
    """Tensor groups from a GGUF file's tensor list (one group per tensor)."""
    out = []
    for t in model.tensors:
        m = _BLK.match(t.name)
        layer = int(m.group(1)) if m else -1
        cat = _category_from_name(t.name)
        n_el = int(np.prod(t.shape, dtype=np.int64)) if t.shape else 1
        nd = sum(1 for d in t.shape if d > 1) if t.shape else 1
        nd = max(nd, len(t.shape)) if len(t.shape) <= 1 else nd
        q = _quantizable(t.name, len(t.shape))
        # natively quantized tensors (gpt-oss MXFP4 experts) keep their type in every quant
        native = t.ggml_type if (q and t.ggml_type in (model.native_quant, "MXFP4")) else None
        out.append(
            TensorGroup(
                name=t.name,
                category=cat if q else ("norm" if "norm" in t.name else "router"),
                group=_group_from_name(t.name, cat, len(t.shape)),
                ne0=t.shape[0] if t.shape else 1,
                n_elements=n_el,
                layers=(layer,),
                is_3d=len(t.shape) >= 3 and t.shape[2] > 1,
                fixed_type=native if q else t.ggml_type,
            )
        )
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# bytes
# ---------------------------------------------------------------------------------------------


def _type_bytes(type_name: str, n_elements: int) -> int:
    blk, size = ggml_block(type_name)
    return -(-n_elements // blk) * size


def _mlx_bytes(quant: QuantScheme, g: TensorGroup) -> tuple[str, int]:
    if g.fixed_type == "MXFP4":  # mlx-lm keeps gpt-oss experts in mxfp4 (32 x 4 bit + e8m0)
        return "MXFP4", _type_bytes("MXFP4", g.n_elements)
    if g.category in ("norm", "router") or quant.mlx_bits is None:
        return "bf16", g.n_elements * 2
    gs = quant.mlx_group_size or 64
    if g.ne0 % gs:
        return "bf16", g.n_elements * 2
    # b bits per weight + per group its scale (and, affine, its bias): bf16 + bf16 for affine
    # modes, one 8-bit scale for mxfp4/mxfp8/nvfp4 (mlx.core.quantize)
    label = f"{quant.mlx_bits}bit" if quant.base_type == "affine" else quant.base_type
    per_group = quant.mlx_group_bytes
    return label, g.n_elements * quant.mlx_bits // 8 + (g.n_elements // gs) * per_group


def _inventory(model: ModelSpec) -> tuple[TensorGroup, ...]:
    return gguf_inventory(model) if model.tensors else config_inventory(model)


def model_key(model: ModelSpec) -> tuple:
    """Hashable identity of everything sizing reads from a ModelSpec (ModelSpec itself holds a
    dict in `extra`, so it cannot be a cache key)."""
    return (
        model.id,
        model.params_total,
        model.n_layers,
        model.hidden_size,
        model.intermediate_size,
        model.n_heads,
        model.n_kv_heads,
        model.head_dim,
        model.vocab_size,
        model.tie_word_embeddings,
        model.attention,
        model.moe,
        model.formats,
        model.native_quant,
        model.tensors,
        model.gguf_file_type,
    )


_CACHE: dict[tuple, WeightsBreakdown] = {}
_CACHE_MAX = 20_000


def weights_breakdown(
    model: ModelSpec, quant: str | QuantScheme, imatrix: bool | None = None
) -> WeightsBreakdown:
    """Bytes per tensor group for `model` stored as `quant` (memoised: pure function).
    `imatrix`: whether the GGUF file was made with an importance matrix (None = the usual
    practice, quant.default_imatrix); it changes a few tensors of IQ/legacy mixes."""
    q = get_quant(quant)
    key = (model_key(model), q.name, imatrix)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _breakdown(model, q, imatrix)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = hit
    return hit


_PREPARED: dict[tuple, tuple] = {}


def _prepared(model: ModelSpec) -> tuple:
    """Inventory, per-group layer/attn_v-ordinal arrays and the mix context (per model)."""
    key = model_key(model)
    hit = _PREPARED.get(key)
    if hit is not None:
        return hit
    inv = _inventory(model)
    ctx = mix_context(model)
    # llama.cpp's i_attention_wv counter: ordinal of the tensor among attn_v-like tensors
    v_layers = sorted(
        {i for g in inv if g.category in ("attn_v", "attn_qkv", "attn_kv_b") for i in g.layers}
    )
    v_pos = {layer: k for k, layer in enumerate(v_layers)}
    if v_layers:
        ctx = replace(ctx, n_attention_v=len(v_layers))
    per_group = [
        (
            np.asarray(g.layers, dtype=np.int64),
            np.asarray([v_pos.get(i, 0) for i in g.layers], dtype=np.int64),
        )
        for g in inv
    ]
    if len(_PREPARED) >= _CACHE_MAX:
        _PREPARED.clear()
    hit = (inv, per_group, ctx)
    _PREPARED[key] = hit
    return hit


def _is_file_type(q: QuantScheme, file_type: str | None) -> bool:
    """Is `q` the GGUF file's own type (names as the importer writes them, e.g. MXFP4_MOE)?"""
    if not file_type:
        return False
    try:
        return get_quant(file_type).name == q.name
    except NotFoundError:
        return False


def _breakdown(model: ModelSpec, q: QuantScheme, imatrix: bool | None) -> WeightsBreakdown:
    L = model.n_layers
    by: dict[str, int] = dict.fromkeys(GROUPS, 0)
    pb: dict[str, int] = dict.fromkeys(GROUPS, 0)
    types: dict[str, dict[str, int]] = {g: {} for g in GROUPS}
    per_layer = [0] * L
    experts = [0] * L
    fixed = {"input": 0, "output": 0}

    def add(g: TensorGroup, t: str, layers: Sequence[int], bytes_each: int) -> None:
        """`layers`: one entry per instance of the group's tensor, each `bytes_each` bytes."""
        n = len(layers)
        by[g.group] += bytes_each * n
        types[g.group][t] = types[g.group].get(t, 0) + g.n_elements * n
        for layer in layers:
            if 0 <= layer < L:
                per_layer[layer] += bytes_each
                if g.group == "experts":
                    experts[layer] += bytes_each
            elif g.group in ("token_embd", "per_layer_embd"):
                fixed["input"] += bytes_each
            else:  # output head, output norm, tensors outside the blocks
                fixed["output"] += bytes_each

    def result(exact: bool) -> WeightsBreakdown:
        return WeightsBreakdown(
            q.name, by, pb, types, exact=exact, layer_bytes=tuple(per_layer),
            layer_expert_bytes=tuple(experts), input_bytes=fixed["input"],
            output_bytes=fixed["output"],
        )  # fmt: skip

    if model.tensors and _is_file_type(q, model.gguf_file_type):
        for t, g in zip(model.tensors, gguf_inventory(model), strict=True):
            pb[g.group] += g.n_elements
            add(g, t.ggml_type, g.layers, t.n_bytes)
        return result(exact=True)
    if q.format == "gguf" and model.moe is None and q.moe_only:
        check_combination(model, q, "llama.cpp")
    inv, per_group, ctx = _prepared(model)
    for g, (layers, vidx) in zip(inv, per_group, strict=True):
        pb[g.group] += g.n_elements * len(g.layers)
        if q.format == "mlx":
            t, b = _mlx_bytes(q, g)
            add(g, t, g.layers, b)
            continue
        if g.fixed_type is not None or g.category in ("norm", "router"):
            t = g.fixed_type or "F32"
            if t not in ("F32", "F16", "BF16", "MXFP4") and g.category in ("norm", "router"):
                t = "F32"
            add(g, t, g.layers, _type_bytes(t, g.n_elements))
            continue
        if not q.is_mix:
            t = q.base_type
            add(g, t, g.layers, _type_bytes(t, g.n_elements))
            continue
        tt = tensor_types(q, g.category, layers, vidx, g.ne0, g.is_3d, ctx, imatrix)
        kinds = tt.tolist()
        for t in set(kinds):
            add(g, t, [lay for lay, k in zip(g.layers, kinds, strict=True) if k == t],
                _type_bytes(t, g.n_elements))  # fmt: skip
    return result(exact=False)


def weights_bytes(model: ModelSpec, quant: str | QuantScheme) -> int:
    return weights_breakdown(model, quant).total_bytes


def weights_bytes_table(
    models: Sequence[ModelSpec], quants: Sequence[str | QuantScheme]
) -> np.ndarray:
    """int64 array [len(models), len(quants)] of weight bytes; -1 where the combination is
    impossible (MXFP4 on a dense model, a format the model does not ship in)."""
    qs = [get_quant(q) for q in quants]
    table = np.full((len(models), len(qs)), -1, dtype=np.int64)
    for i, m in enumerate(models):
        for j, q in enumerate(qs):
            if q.format not in m.formats or (q.moe_only and m.moe is None):
                continue
            table[i, j] = weights_bytes(m, q)
    return table
