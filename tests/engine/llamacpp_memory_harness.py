"""Real llama.cpp (llama-cpp-python) harness for the memory-engine validation.

Writes random-weight GGUF files of given shapes with the official `gguf` package, quantizes them
with llama.cpp's own quantizer (`llama_model_quantize`, so the per-tensor mixes are llama.cpp's,
not ours), loads them with `llama_model_load_from_file` + `llama_init_from_model` and parses the
buffer sizes llama.cpp logs (`CPU_Mapped model buffer size`, `CPU KV buffer size`,
`CPU compute buffer size`, as llama.cpp logs them while loading: src/llama-model.cpp,
src/llama-kv-cache.cpp, src/llama-context.cpp).

A minimal writer lives here because `forgeplanner/bench/synthetic_gguf.py` did not exist when
this was written; it only needs the `llama` and `gemma3` tensor layouts.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from forgeplanner.domain.model import AttentionSpec, ModelSpec, MoESpec

MIB = 1 << 20


@dataclass(frozen=True)
class Shape:
    name: str
    arch: str  # "llama" | "gemma3"
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    ctx_train: int = 32768
    sliding_window: int = 0  # gemma3 only
    # MoE (qwen3moe, deepseek2)
    n_expert: int = 0
    n_expert_used: int = 0
    expert_ffn: int = 0
    n_shared: int = 0
    dense_lead: int = 0
    # MLA (deepseek2): head_dim = nope + rope
    kv_lora: int = 0
    q_lora: int = 0
    rope: int = 0
    v_head: int = 0
    # Gated DeltaNet hybrid (qwen3next): every `fa_interval`-th layer attends
    lin_k_heads: int = 0
    lin_v_heads: int = 0
    lin_head: int = 0
    d_conv: int = 4
    fa_interval: int = 4
    shexp_ffn: int = 0

    @property
    def attention_layers(self) -> tuple[int, ...]:
        if self.arch != "qwen3next":
            return tuple(range(self.layers))
        return tuple(i for i in range(self.layers) if (i + 1) % self.fa_interval == 0)

    @property
    def recurrent_state_bytes(self) -> int:
        """llama-hparams.cpp n_embd_r + n_embd_s, F32, per recurrent layer."""
        d_inner = self.lin_head * self.lin_v_heads
        r = (self.d_conv - 1) * (d_inner + 2 * self.lin_k_heads * self.lin_head)
        st = self.lin_head * d_inner
        return (r + st) * 4 * (self.layers - len(self.attention_layers))

    @property
    def sliding_layers(self) -> tuple[int, ...]:
        if self.arch != "gemma3":
            return ()
        # llama.cpp gemma3: set_swa_pattern(6): layer il is SWA when il % 6 < 5
        return tuple(i for i in range(self.layers) if i % 6 < 5)


def _tensor_shapes(s: Shape) -> list[tuple[str, tuple[int, ...]]]:
    """(name, numpy shape) in GGUF order; numpy shape is reversed ggml ne."""
    H, qd, kd = s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim
    out: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (s.vocab, H))]
    for i in range(s.layers):
        p = f"blk.{i}."
        out.append((p + "attn_norm.weight", (H,)))
        if s.arch == "qwen3next":
            out.append((p + "post_attention_norm.weight", (H,)))
        if s.arch == "qwen3next" and i not in s.attention_layers:
            kd_, vd_ = s.lin_k_heads * s.lin_head, s.lin_v_heads * s.lin_head
            out += [
                (p + "attn_qkv.weight", (2 * kd_ + vd_, H)),
                (p + "attn_gate.weight", (vd_, H)),
                (p + "ssm_conv1d.weight", (2 * kd_ + vd_, s.d_conv)),
                (p + "ssm_dt.bias", (s.lin_v_heads,)),
                (p + "ssm_a", (s.lin_v_heads,)),
                (p + "ssm_ba.weight", (2 * s.lin_v_heads, H)),
                (p + "ssm_norm.weight", (s.lin_head,)),
                (p + "ssm_out.weight", (H, vd_)),
            ]
        elif s.arch == "qwen3next":
            out += [
                (p + "attn_q.weight", (2 * qd, H)),  # query and its output gate
                (p + "attn_k.weight", (kd, H)),
                (p + "attn_v.weight", (kd, H)),
                (p + "attn_output.weight", (H, qd)),
                (p + "attn_q_norm.weight", (s.head_dim,)),
                (p + "attn_k_norm.weight", (s.head_dim,)),
            ]
        elif s.arch == "deepseek2":
            nope = s.head_dim - s.rope
            out += [
                (p + "attn_q_a_norm.weight", (s.q_lora,)),
                (p + "attn_kv_a_norm.weight", (s.kv_lora,)),
                (p + "attn_q_a.weight", (s.q_lora, H)),
                (p + "attn_q_b.weight", (s.heads * s.head_dim, s.q_lora)),
                (p + "attn_kv_a_mqa.weight", (s.kv_lora + s.rope, H)),
                (p + "attn_k_b.weight", (s.heads, s.kv_lora, nope)),
                (p + "attn_v_b.weight", (s.heads, s.v_head, s.kv_lora)),
                (p + "attn_output.weight", (H, s.heads * s.v_head)),
            ]
        else:
            out += [
                (p + "attn_q.weight", (qd, H)),
                (p + "attn_k.weight", (kd, H)),
                (p + "attn_v.weight", (kd, H)),
                (p + "attn_output.weight", (H, qd)),
            ]
        if s.arch == "qwen3moe":
            out += [(p + "attn_q_norm.weight", (s.head_dim,)),
                    (p + "attn_k_norm.weight", (s.head_dim,))]  # fmt: skip
        if s.arch != "qwen3next":  # qwen3next's FFN norm is post_attention_norm
            out.append((p + "ffn_norm.weight", (H,)))
        if s.n_expert and i >= s.dense_lead:
            E, F = s.n_expert, s.expert_ffn
            out += [
                (p + "ffn_gate_inp.weight", (E, H)),
                (p + "ffn_gate_exps.weight", (E, F, H)),
                (p + "ffn_up_exps.weight", (E, F, H)),
                (p + "ffn_down_exps.weight", (E, H, F)),
            ]
            if s.shexp_ffn:
                out += [
                    (p + "ffn_gate_inp_shexp.weight", (H,)),
                    (p + "ffn_gate_shexp.weight", (s.shexp_ffn, H)),
                    (p + "ffn_up_shexp.weight", (s.shexp_ffn, H)),
                    (p + "ffn_down_shexp.weight", (H, s.shexp_ffn)),
                ]
            elif s.n_shared:
                Fs = F * s.n_shared
                out += [
                    (p + "ffn_gate_shexp.weight", (Fs, H)),
                    (p + "ffn_up_shexp.weight", (Fs, H)),
                    (p + "ffn_down_shexp.weight", (H, Fs)),
                ]
        else:
            out += [
                (p + "ffn_gate.weight", (s.ffn, H)),
                (p + "ffn_up.weight", (s.ffn, H)),
                (p + "ffn_down.weight", (H, s.ffn)),
            ]
        if s.arch == "gemma3":
            out += [
                (p + "attn_q_norm.weight", (s.head_dim,)),
                (p + "attn_k_norm.weight", (s.head_dim,)),
                (p + "post_attention_norm.weight", (H,)),
                (p + "post_ffw_norm.weight", (H,)),
            ]
    out.append(("output_norm.weight", (H,)))
    if s.arch != "gemma3":
        out.append(("output.weight", (s.vocab, H)))
    return out


def n_params(s: Shape) -> int:
    return sum(int(np.prod(shape)) for _, shape in _tensor_shapes(s))


def spec_for(s: Shape) -> ModelSpec:
    """The catalog-style ModelSpec of a shape (no tensor list: the config route)."""
    if s.arch == "gemma3":
        att = AttentionSpec(
            kind="sliding", sliding_window=s.sliding_window, sliding_layers=s.sliding_layers
        )
    elif s.arch == "deepseek2":
        att = AttentionSpec(
            kind="mla",
            mla_kv_lora_rank=s.kv_lora,
            mla_qk_rope_head_dim=s.rope,
            mla_qk_nope_head_dim=s.head_dim - s.rope,
            mla_v_head_dim=s.v_head,
            mla_q_lora_rank=s.q_lora,
        )
    elif s.arch == "qwen3next":
        att = AttentionSpec(
            kind="hybrid",
            attention_layers=s.attention_layers,
            recurrent_state_bytes_per_seq=s.recurrent_state_bytes,
        )
    else:
        att = AttentionSpec(kind="full")
    extra: dict[str, object] = {}
    if s.arch == "qwen3next":
        # the same keys models_db stores for Qwen3-Next / Qwen3.5 (HF config names)
        extra["attention.recurrent"] = {
            "linear_conv_kernel_dim": s.d_conv,
            "linear_key_head_dim": s.lin_head,
            "linear_num_key_heads": s.lin_k_heads,
            "linear_value_head_dim": s.lin_head,
            "linear_num_value_heads": s.lin_v_heads,
        }
    moe = None
    if s.n_expert:
        moe = MoESpec(
            n_experts=s.n_expert,
            experts_per_token=s.n_expert_used,
            # qwen3next's shared expert has its own width; the catalog states it as one
            # shared expert of expert_ffn (Qwen3-Next: 512 = 512)
            shared_experts=s.n_shared or (1 if s.shexp_ffn else 0),
            expert_ffn=s.expert_ffn,
            first_dense_layers=s.dense_lead,
        )
    return ModelSpec(
        id=f"synthetic-{s.name}",
        name=s.name,
        family=s.arch,
        params_total=n_params(s),
        params_active=None,
        n_layers=s.layers,
        hidden_size=s.hidden,
        intermediate_size=s.ffn if (not s.n_expert or s.dense_lead) else None,
        n_heads=s.heads,
        n_kv_heads=s.kv_heads,
        head_dim=s.head_dim,
        vocab_size=s.vocab,
        tie_word_embeddings=s.arch == "gemma3",
        max_context=s.ctx_train,
        attention=att,
        moe=moe,
        license="test",
        source="synthetic test shape",
        extra=extra,
    )


def _vocab(n: int) -> tuple[list[bytes], list[float], list[int]]:
    toks = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    types = [2, 3, 3] + [6] * 256
    i = 0
    while len(toks) < n:
        toks.append(f"\u2581t{i}".encode())
        types.append(1)
        i += 1
    scores = [0.0] * 3 + [0.0] * 256 + [-float(k) for k in range(n - 259)]
    return toks[:n], scores[:n], types[:n]


def write_f16_gguf(path: Path, s: Shape, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), s.arch)
    a = s.arch
    w.add_name(s.name)
    w.add_context_length(s.ctx_train)
    w.add_embedding_length(s.hidden)
    w.add_block_count(s.layers)
    w.add_feed_forward_length(s.ffn)
    w.add_head_count(s.heads)
    w.add_layer_norm_rms_eps(1e-6)
    if a == "deepseek2":
        # MLA as llama.cpp's converter writes it: one latent "head" of kv_lora + rope for K,
        # kv_lora for V; the decompressed head sizes under the *_mla keys
        w.add_head_count_kv(1)
        w.add_key_length(s.kv_lora + s.rope)
        w.add_value_length(s.kv_lora)
        w.add_key_length_mla(s.head_dim)
        w.add_value_length_mla(s.v_head)
        w.add_q_lora_rank(s.q_lora)
        w.add_kv_lora_rank(s.kv_lora)
        w.add_rope_dimension_count(s.rope)
        w.add_leading_dense_block_count(s.dense_lead)
        w.add_expert_shared_count(s.n_shared)
        w.add_expert_weights_scale(1.0)
    else:
        w.add_head_count_kv(s.kv_heads)
        w.add_key_length(s.head_dim)
        w.add_value_length(s.head_dim)
        w.add_rope_dimension_count(s.head_dim)
    if a == "qwen3next":
        w.add_ssm_conv_kernel(s.d_conv)
        w.add_ssm_inner_size(s.lin_head * s.lin_v_heads)
        w.add_ssm_state_size(s.lin_head)
        w.add_ssm_time_step_rank(s.lin_v_heads)
        w.add_ssm_group_count(s.lin_k_heads)
        w.add_full_attention_interval(s.fa_interval)
        w.add_expert_shared_feed_forward_length(s.shexp_ffn)
    if s.n_expert:
        w.add_expert_count(s.n_expert)
        w.add_expert_used_count(s.n_expert_used)
        w.add_expert_feed_forward_length(s.expert_ffn)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(s.vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if a == "gemma3":
        w.add_sliding_window(s.sliding_window)
    toks, scores, types = _vocab(s.vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for name, shape in _tensor_shapes(s):
        if len(shape) == 1 or "ffn_gate_inp" in name or "ssm_conv1d" in name:
            # norms and the MoE router stay F32 (convert_hf_to_gguf keeps FFN_GATE_INP in F32)
            data32 = np.ones(shape, dtype=np.float32)
            if len(shape) > 1:
                data32 = rng.standard_normal(shape, dtype=np.float32) * 0.02
            w.add_tensor(name, data32)
        else:
            data = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---------------------------------------------------------------------------------------------
# llama.cpp
# ---------------------------------------------------------------------------------------------

_LOG: list[str] = []


def _llama():
    import llama_cpp

    return llama_cpp


_CB = None


def _install_log() -> None:
    global _CB
    lc = _llama()
    if _CB is None:

        def cb(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            _LOG.append(text.decode("utf-8", "replace"))

        _CB = lc.llama_log_callback(cb)
    lc.llama_log_set(_CB, ctypes.c_void_p(0))


def _restore_log() -> None:
    lc = _llama()
    from llama_cpp import _logger

    lc.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


FTYPES = {
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "IQ4_NL": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
    "IQ4_XS": "LLAMA_FTYPE_MOSTLY_IQ4_XS",
    "Q3_K_L": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q3_K_S": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
}


def quantize(src: Path, dst: Path, quant: str) -> Path:
    lc = _llama()
    p = lc.llama_model_quantize_default_params()
    p.ftype = getattr(lc, FTYPES[quant])
    p.nthread = 2
    _install_log()
    try:
        rc = lc.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    finally:
        _restore_log()
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize {quant} failed: {rc}")
    return dst


GGML_TYPES = {"f16": "GGML_TYPE_F16", "q8_0": "GGML_TYPE_Q8_0", "q4_0": "GGML_TYPE_Q4_0"}

_BUF = re.compile(r"(\S+) (model|KV|RS|compute|output) buffer size =\s+([0-9.]+) MiB")


@dataclass(frozen=True)
class Buffers:
    model: dict[str, int]  # buffer name -> bytes
    kv: int
    rs: int  # recurrent state (hybrids)
    compute: int
    output: int
    log: str


def load(
    path: Path,
    n_ctx: int,
    n_seq: int = 1,
    kv_type: str = "f16",
    flash_attention: bool = False,
    n_ubatch: int = 512,
    n_batch: int = 2048,
    swa_full: bool = False,
) -> Buffers:
    """Load `path` into a CPU context and return llama.cpp's own buffer sizes (bytes)."""
    lc = _llama()
    _LOG.clear()
    _install_log()
    try:
        mp = lc.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.use_extra_bufts = False  # no CPU_REPACK copy: the weights stay in one mapped buffer
        model = lc.llama_model_load_from_file(str(path).encode(), mp)
        if not model:
            raise RuntimeError(f"llama.cpp could not load {path}:\n{''.join(_LOG)[-2000:]}")
        try:
            cp = lc.llama_context_default_params()
            cp.n_ctx = n_ctx
            cp.n_seq_max = n_seq
            cp.n_batch = n_batch
            cp.n_ubatch = n_ubatch
            cp.n_threads = 1
            cp.n_threads_batch = 1
            cp.type_k = getattr(lc, GGML_TYPES[kv_type])
            cp.type_v = getattr(lc, GGML_TYPES[kv_type])
            cp.flash_attn_type = (
                lc.LLAMA_FLASH_ATTN_TYPE_ENABLED
                if flash_attention
                else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
            cp.swa_full = swa_full  # llama-cli/llama-server default (common.h swa_full = false)
            cp.kv_unified = False
            ctx = lc.llama_init_from_model(model, cp)
            if not ctx:
                raise RuntimeError(f"llama.cpp context failed:\n{''.join(_LOG)[-2000:]}")
            lc.llama_free(ctx)
        finally:
            lc.llama_model_free(model)
    finally:
        _restore_log()
    text = "".join(_LOG)
    models: dict[str, int] = {}
    kv = rs = comp = out = 0
    precise = re.findall(r"CPU compute buffer size is\s+([0-9.]+) MiB", text)
    for name, kind, mib in _BUF.findall(text):
        b = round(float(mib) * MIB)
        if kind == "model":
            models[name] = models.get(name, 0) + b
        elif kind == "KV":
            kv += b
        elif kind == "RS":
            rs += b
        elif kind == "compute":
            comp = max(comp, b) if name == "CPU" else comp
        else:
            out += b
    if precise:  # the destructor repeats the size with 4 decimals
        comp = round(float(precise[-1]) * MIB)
    return Buffers(models, kv, rs, comp, out, text)


def tensor_data_bytes(path: Path) -> int:
    """Sum of the stored tensor bytes of a GGUF file (the gguf package's reader)."""
    r = gguf.GGUFReader(str(path))
    return int(sum(int(t.n_bytes) for t in r.tensors))


def tensor_infos(path: Path) -> tuple:
    """The file's tensor list as ModelSpec.tensors (what the GGUF importer provides)."""
    from forgeplanner.domain.model import TensorInfo

    r = gguf.GGUFReader(str(path))
    return tuple(
        TensorInfo(t.name, tuple(int(x) for x in t.shape), t.tensor_type.name, int(t.n_bytes))
        for t in r.tensors
    )
