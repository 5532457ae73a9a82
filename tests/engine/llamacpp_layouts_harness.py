"""Small real-shaped GGUF files of the newer layouts, for the memory engine vs real llama.cpp.

Each layout is written the way llama.cpp's converter writes that architecture (tensor names and
shapes as the `create_tensor` calls of the vendored llama.cpp `src/models/<arch>.cpp`, metadata
keys as `src/llama-arch.cpp` names them) with random weights, and described a second time as the
models.csv row a reviewer would fill for it. The row goes through the catalog's own converter
(models_db.reference_csv.convert_row) and validator (models_db.schema.spec_from_dict), so the
engine sees exactly the fields a catalog model has - never the tensor list.

Layouts (llama.cpp arch):
- gemma4:     Gemma 4 E-model: per-layer embeddings (PLE), 4 local : 1 global sliding pattern,
              global layers with a wider head and fewer KV heads, the last layers sharing an
              earlier layer's KV (attention.shared_kv_layers) and a double-wide MLP there.
- qwen2moe:   routed experts plus a gated shared expert of its own width.
- gpt-oss:    sliding/full alternation, attention sinks, biases, MXFP4 experts.
- nemotron_h: Nemotron-H hybrid: Mamba-2, attention and MLP-only layers (hybrid_override_pattern).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

from forgeplanner.domain.model import ModelSpec
from models_db.reference_csv import convert_row
from models_db.schema import spec_from_dict
from tests.engine.llamacpp_memory_harness import _vocab

F32, F16, MXFP4 = "F32", "F16", "MXFP4"


@dataclass
class Layout:
    """One architecture instance: GGUF metadata, tensors, and the catalog row describing it."""

    name: str
    arch: str
    meta: dict[str, object]  # key without the "{arch}." prefix -> value
    tensors: list[tuple[str, tuple[int, ...], str]]  # (name, numpy shape = reversed ne, type)
    row: dict[str, str]  # models.csv columns (the rest empty)
    vocab: int
    extra_meta: dict[str, object] = field(default_factory=dict)  # full key -> value

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) for _, s, _ in self.tensors)


CSV_COLUMNS = (
    "id,family,hf_repo,params_total_b,params_active_b,n_layers,hidden_size,intermediate_size,"
    "n_heads,n_kv_heads,head_dim,vocab_size,tie_word_embeddings,max_context,rope_theta,attention,"
    "sliding_window,sliding_window_pattern,mla_kv_lora_rank,mla_qk_rope_head_dim,"
    "mla_qk_nope_head_dim,mla_v_head_dim,moe_experts,moe_experts_per_token,moe_shared_experts,"
    "moe_intermediate_size,first_dense_layers,linear_attention_layers,ssm_state_note,license,"
    "release_date,source,notes,aliases,source_commit,license_source,release_date_source,use,"
    "extra_arch,review"
).split(",")


def spec_of(layout: Layout, active: int | None = None) -> ModelSpec:
    """The catalog ModelSpec of a layout: its models.csv row through convert_row and the schema.

    params_total is the exact tensor count: the CSV states billions to 3 decimals (+-0.5e6),
    too coarse for a test model of a few million parameters."""
    row = dict.fromkeys(CSV_COLUMNS, "")
    row |= {
        "id": f"synthetic-{layout.name}",
        "hf_repo": f"test/{layout.name}",
        "params_total_b": "0.001",
        "max_context": "32768",
        "license": "test",
        "release_date": "2026-01",
        "source": "synthetic test shape written with the gguf package",
        "review": "unverified",
    }
    row |= layout.row
    entry = convert_row(row)
    entry["params_total"] = layout.n_params
    if "params_active" in entry:
        entry["params_active"] = active if active is not None else layout.n_params
    return spec_from_dict(entry, "test-layout")


def _kv(w: gguf.GGUFWriter, key: str, value: object) -> None:
    if isinstance(value, bool):
        w.add_bool(key, value)
    elif isinstance(value, int):
        w.add_uint32(key, value)
    elif isinstance(value, float):
        w.add_float32(key, value)
    elif isinstance(value, str):
        w.add_string(key, value)
    elif isinstance(value, list):
        w.add_array(key, value)
    else:
        raise TypeError(f"{key}: {value!r}")


def write_gguf(path: Path, lay: Layout, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), lay.arch)
    w.add_name(lay.name)
    for key, value in lay.meta.items():
        _kv(w, f"{lay.arch}.{key}", value)
    for key, value in lay.extra_meta.items():
        _kv(w, key, value)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    toks, scores, types = _vocab(lay.vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for name, shape, kind in lay.tensors:
        data = rng.standard_normal(shape, dtype=np.float32) * 0.02
        if kind == F32:
            if "norm" in name or name.endswith("_d") or "scale" in name:
                data = np.ones(shape, dtype=np.float32)
            w.add_tensor(name, data)
        elif kind == F16:
            w.add_tensor(name, data.astype(np.float16))
        else:  # MXFP4, as convert_hf_to_gguf writes gpt-oss experts (gguf.quants)
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.MXFP4)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.MXFP4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _t(name: str, *shape: int, kind: str | None = None) -> tuple[str, tuple[int, ...], str]:
    """A tensor; 1-D tensors default to F32 (llama.cpp's converter keeps norms/biases F32)."""
    return (name, tuple(shape), kind or (F32 if len(shape) == 1 else F16))


def _attn(p: str, H: int, q: int, k: int, v: int | None = None) -> list:
    out = [_t(p + "attn_q.weight", q, H), _t(p + "attn_k.weight", k, H)]
    if v is not None:
        out.append(_t(p + "attn_v.weight", v, H))
    return [*out, _t(p + "attn_output.weight", H, q)]


# ---------------------------------------------------------------------------------------------
# Gemma 4 E-model
# ---------------------------------------------------------------------------------------------


def gemma4_e(
    H: int = 512,
    L: int = 10,
    heads: int = 4,
    kv_local: int = 2,
    kv_global: int = 1,
    hd_local: int = 128,
    hd_global: int = 256,
    ffn: int = 1024,
    ple: int = 64,
    shared: int = 5,
    window: int = 128,
    vocab: int = 4096,
) -> Layout:
    # HF layer_types ([sliding]*4 + [full]) * n: layer i global when (i + 1) % 5 == 0
    swa = [(i + 1) % 5 != 0 for i in range(L)]
    own = L - shared
    ff = [ffn if i < own else 2 * ffn for i in range(L)]  # use_double_wide_mlp
    t = [_t("token_embd.weight", vocab, H), _t("output_norm.weight", H)]
    t += [
        _t("per_layer_token_embd.weight", vocab, ple * L),
        _t("per_layer_model_proj.weight", ple * L, H),
        _t("per_layer_proj_norm.weight", ple),
        _t("rope_freqs.weight", hd_global // 2),
    ]
    for i in range(L):
        p = f"blk.{i}."
        hd = hd_local if swa[i] else hd_global
        kv = (kv_local if swa[i] else kv_global) * hd
        # KV-shared layers own no k/v projections (the checkpoints drop them)
        if i < own:
            t += _attn(p, H, heads * hd, kv, kv)
            t.append(_t(p + "attn_k_norm.weight", hd))
        else:
            t += [
                _t(p + "attn_q.weight", heads * hd, H),
                _t(p + "attn_output.weight", H, heads * hd),
            ]
        t += [
            _t(p + "attn_norm.weight", H),
            _t(p + "attn_q_norm.weight", hd),
            _t(p + "post_attention_norm.weight", H),
            _t(p + "ffn_norm.weight", H),
            _t(p + "ffn_gate.weight", ff[i], H),
            _t(p + "ffn_up.weight", ff[i], H),
            _t(p + "ffn_down.weight", H, ff[i]),
            _t(p + "post_ffw_norm.weight", H),
            _t(p + "inp_gate.weight", ple, H),
            _t(p + "proj.weight", H, ple),
            _t(p + "post_norm.weight", H),
        ]
    meta: dict[str, object] = {
        "context_length": 32768,
        "embedding_length": H,
        "block_count": L,
        "feed_forward_length": ff,
        "attention.head_count": heads,
        "attention.head_count_kv": [kv_local if s else kv_global for s in swa],
        "attention.key_length": hd_global,
        "attention.value_length": hd_global,
        "attention.key_length_swa": hd_local,
        "attention.value_length_swa": hd_local,
        "attention.layer_norm_rms_epsilon": 1e-6,
        "attention.sliding_window": window,
        "attention.sliding_window_pattern": swa,
        "attention.shared_kv_layers": shared,
        "embedding_length_per_layer_input": ple,
        "rope.freq_base": 1000000.0,
        "rope.freq_base_swa": 10000.0,
        "final_logit_softcapping": 30.0,
    }
    n_global = L - sum(swa)
    arch = {
        "layer_types": f"(['sliding_attention']*4+['full_attention'])*{L // 5}",
        "sliding_window": window,
        "global_head_dim": hd_global,
        "head_dim_local": hd_local,
        "num_global_key_value_heads": kv_global,
        "hidden_size_per_layer_input": ple,
        "vocab_size_per_layer_input": vocab,
        "per_layer_embedding_params": vocab * L * ple,
        "num_kv_shared_layers": shared,
        "use_double_wide_mlp": True,
    }
    row = {
        "family": "gemma-4",
        "n_layers": str(L),
        "hidden_size": str(H),
        "intermediate_size": str(ffn),
        "n_heads": str(heads),
        "n_kv_heads": str(kv_local),
        "head_dim": str(hd_local),
        "vocab_size": str(vocab),
        "tie_word_embeddings": "true",
        "attention": "sliding",
        "sliding_window": str(window),
        "sliding_window_pattern": f"4 local : 1 global ({n_global} global of {L})",
        "extra_arch": json.dumps(arch),
    }
    return Layout("gemma4e", "gemma4", meta, t, row, vocab)


# ---------------------------------------------------------------------------------------------
# Qwen2-MoE: routed experts + a gated shared expert of its own width
# ---------------------------------------------------------------------------------------------


def qwen2moe(
    H: int = 512,
    L: int = 4,
    heads: int = 8,
    kv: int = 2,
    n_exp: int = 16,
    used: int = 4,
    exp_ffn: int = 256,
    sh_ffn: int = 768,
    vocab: int = 4096,
) -> Layout:
    hd = H // heads
    t = [
        _t("token_embd.weight", vocab, H),
        _t("output_norm.weight", H),
        _t("output.weight", vocab, H),
    ]
    for i in range(L):
        p = f"blk.{i}."
        t += _attn(p, H, H, kv * hd, kv * hd)
        t += [_t(p + f"attn_{x}.bias", n) for x, n in (("q", H), ("k", kv * hd), ("v", kv * hd))]
        t += [
            _t(p + "attn_norm.weight", H),
            _t(p + "ffn_norm.weight", H),
            _t(p + "ffn_gate_inp.weight", n_exp, H, kind=F32),
            _t(p + "ffn_gate_exps.weight", n_exp, exp_ffn, H),
            _t(p + "ffn_up_exps.weight", n_exp, exp_ffn, H),
            _t(p + "ffn_down_exps.weight", n_exp, H, exp_ffn),
            _t(p + "ffn_gate_inp_shexp.weight", H),
            _t(p + "ffn_gate_shexp.weight", sh_ffn, H),
            _t(p + "ffn_up_shexp.weight", sh_ffn, H),
            _t(p + "ffn_down_shexp.weight", H, sh_ffn),
        ]
    meta: dict[str, object] = {
        "context_length": 32768,
        "embedding_length": H,
        "block_count": L,
        "feed_forward_length": sh_ffn,
        "attention.head_count": heads,
        "attention.head_count_kv": kv,
        "attention.layer_norm_rms_epsilon": 1e-6,
        "rope.freq_base": 1000000.0,
        "expert_count": n_exp,
        "expert_used_count": used,
        "expert_feed_forward_length": exp_ffn,
        "expert_shared_feed_forward_length": sh_ffn,
    }
    row = {
        "family": "qwen2-moe",
        "n_layers": str(L),
        "hidden_size": str(H),
        "intermediate_size": str(sh_ffn),
        "n_heads": str(heads),
        "n_kv_heads": str(kv),
        "head_dim": str(hd),
        "vocab_size": str(vocab),
        "tie_word_embeddings": "false",
        "attention": "full",
        "moe_experts": str(n_exp),
        "moe_experts_per_token": str(used),
        "moe_shared_experts": "1",
        "moe_intermediate_size": str(exp_ffn),
        "first_dense_layers": "0",
        "params_active_b": "0.001",
        "extra_arch": json.dumps({"shared_expert_intermediate_size": sh_ffn}),
    }
    return Layout("qwen2moe", "qwen2moe", meta, t, row, vocab)


# ---------------------------------------------------------------------------------------------
# gpt-oss
# ---------------------------------------------------------------------------------------------


def gpt_oss(
    H: int = 640,
    L: int = 4,
    heads: int = 8,
    kv: int = 2,
    hd: int = 64,
    n_exp: int = 8,
    used: int = 2,
    exp_ffn: int = 640,
    window: int = 128,
    vocab: int = 4096,
    experts: str = MXFP4,
) -> Layout:
    t = [
        _t("token_embd.weight", vocab, H),
        _t("output_norm.weight", H),
        _t("output.weight", vocab, H),
    ]
    q, k = heads * hd, kv * hd
    for i in range(L):
        p = f"blk.{i}."
        t += _attn(p, H, q, k, k)
        t += [_t(p + f"attn_{x}.bias", n) for x, n in (("q", q), ("k", k), ("v", k))]
        t += [
            _t(p + "attn_output.bias", H),
            _t(p + "attn_norm.weight", H),
            _t(p + "post_attention_norm.weight", H),
            _t(p + "attn_sinks.weight", heads),
            _t(p + "ffn_gate_inp.weight", n_exp, H, kind=F32),
            _t(p + "ffn_gate_inp.bias", n_exp),
            _t(p + "ffn_gate_exps.weight", n_exp, exp_ffn, H, kind=experts),
            _t(p + "ffn_up_exps.weight", n_exp, exp_ffn, H, kind=experts),
            _t(p + "ffn_down_exps.weight", n_exp, H, exp_ffn, kind=experts),
            _t(p + "ffn_gate_exps.bias", n_exp, exp_ffn, kind=F32),
            _t(p + "ffn_up_exps.bias", n_exp, exp_ffn, kind=F32),
            _t(p + "ffn_down_exps.bias", n_exp, H, kind=F32),
        ]
    meta: dict[str, object] = {
        "context_length": 32768,
        "embedding_length": H,
        "block_count": L,
        "feed_forward_length": exp_ffn,
        "attention.head_count": heads,
        "attention.head_count_kv": kv,
        "attention.key_length": hd,
        "attention.value_length": hd,
        "rope.dimension_count": hd,
        "attention.layer_norm_rms_epsilon": 1e-5,
        "attention.sliding_window": window,
        "rope.freq_base": 150000.0,
        "expert_count": n_exp,
        "expert_used_count": used,
        "expert_feed_forward_length": exp_ffn,
    }
    row = {
        "family": "gpt-oss",
        "n_layers": str(L),
        "hidden_size": str(H),
        "intermediate_size": str(exp_ffn),
        "n_heads": str(heads),
        "n_kv_heads": str(kv),
        "head_dim": str(hd),
        "vocab_size": str(vocab),
        "tie_word_embeddings": "false",
        "attention": "sliding",
        "sliding_window": str(window),
        "sliding_window_pattern": "1 sliding : 1 full (alternating, even layers sliding)",
        "moe_experts": str(n_exp),
        "moe_experts_per_token": str(used),
        "moe_shared_experts": "0",
        "moe_intermediate_size": str(exp_ffn),
        "first_dense_layers": "0",
        "params_active_b": "0.001",
        "extra_arch": json.dumps({"sliding_window": window, "attention_sinks": True}),
    }
    return Layout("gptoss", "gpt-oss", meta, t, row, vocab)


# ---------------------------------------------------------------------------------------------
# Nemotron-H (Mamba-2 / attention / MLP layers)
# ---------------------------------------------------------------------------------------------


def nemotron_h(
    blocks: str = "M-M*M-M*",
    H: int = 512,
    heads: int = 8,
    kv: int = 2,
    hd: int = 64,
    ffn: int = 1536,
    m_heads: int = 16,
    m_hd: int = 64,
    groups: int = 2,
    d_state: int = 64,
    d_conv: int = 4,
    vocab: int = 4096,
) -> Layout:
    L = len(blocks)
    d_inner = m_heads * m_hd
    conv_ch = d_inner + 2 * groups * d_state
    t = [
        _t("token_embd.weight", vocab, H),
        _t("output_norm.weight", H),
        _t("output.weight", vocab, H),
    ]
    for i, b in enumerate(blocks):
        p = f"blk.{i}."
        t.append(_t(p + "attn_norm.weight", H))
        if b == "M":
            t += [
                _t(p + "ssm_in.weight", 2 * d_inner + 2 * groups * d_state + m_heads, H),
                _t(p + "ssm_conv1d.weight", conv_ch, d_conv, kind=F32),
                _t(p + "ssm_conv1d.bias", conv_ch),
                _t(p + "ssm_dt.bias", m_heads),
                _t(p + "ssm_a", m_heads, 1, kind=F32),
                _t(p + "ssm_d", m_heads, 1, kind=F32),
                _t(p + "ssm_norm.weight", groups, d_inner // groups, kind=F32),
                _t(p + "ssm_out.weight", H, d_inner),
            ]
        elif b == "*":
            t += _attn(p, H, heads * hd, kv * hd, kv * hd)
        else:
            t += [_t(p + "ffn_up.weight", ffn, H), _t(p + "ffn_down.weight", H, ffn)]
    meta: dict[str, object] = {
        "context_length": 32768,
        "embedding_length": H,
        "block_count": L,
        "feed_forward_length": [ffn if b == "-" else 0 for b in blocks],
        "attention.head_count": heads,
        "attention.head_count_kv": [kv if b == "*" else 0 for b in blocks],
        "attention.key_length": hd,
        "attention.value_length": hd,
        "attention.layer_norm_epsilon": 1e-5,
        "attention.layer_norm_rms_epsilon": 1e-5,
        "ssm.conv_kernel": d_conv,
        "ssm.inner_size": d_inner,
        "ssm.state_size": d_state,
        "ssm.time_step_rank": m_heads,
        "ssm.group_count": groups,
    }
    conv_el = (d_conv - 1) * conv_ch
    arch = {
        "hybrid_override_pattern": blocks,
        "mamba_num_heads": m_heads,
        "mamba_head_dim": m_hd,
        "n_groups": groups,
        "ssm_state_size": d_state,
        "conv_kernel": d_conv,
        "mlp_hidden_act": "relu2",
    }
    row = {
        "family": "nemotron-h",
        "n_layers": str(L),
        "hidden_size": str(H),
        "intermediate_size": str(ffn),
        "n_heads": str(heads),
        "n_kv_heads": str(kv),
        "head_dim": str(hd),
        "vocab_size": str(vocab),
        "tie_word_embeddings": "false",
        "attention": "hybrid",
        "linear_attention_layers": f"hybrid_override_pattern {blocks}",
        "ssm_state_note": (
            f"Mamba-2 per layer per sequence: conv {d_conv - 1}x({d_inner}+2x{groups}x{d_state})"
            f"={conv_el:,} + ssm {d_state}x{m_heads}x{m_hd}={d_state * d_inner:,} elements"
        ),
        "extra_arch": json.dumps(arch),
    }
    return Layout("nemotronh", "nemotron_h", meta, t, row, vocab)


LAYOUTS: dict[str, Callable[[], Layout]] = {
    "gemma4e": gemma4_e,
    "qwen2moe": qwen2moe,
    "gptoss": gpt_oss,
    "nemotronh": nemotron_h,
}
