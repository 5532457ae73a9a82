"""Random-weight GGUF files with the real shapes of a llama-architecture model.

Used to benchmark and validate engines (llama.cpp) on this machine without downloading weights:
the tensor shapes, tensor types and therefore bytes read per token are those of the real model;
only the values are random. Written with the official `gguf` package (GGUFWriter for the file,
gguf.quants.quantize for Q8_0/Q4_0), with an SPM ("llama") tokenizer that has the 256 byte
tokens, which llama.cpp needs to tokenize any text (tests/models_db/test_models_synthetic_gguf.py
loads one in real llama.cpp and generates).

Memory stays flat: tensor infos are declared first, then every tensor is filled and written one
at a time, so peak memory is about one tensor, not the model.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import quantize

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import ForgePlannerError

FTYPES: dict[str, tuple[GGMLQuantizationType, LlamaFileType]] = {
    "F32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
    "F16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "Q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
}
_CHUNK_ELEMENTS = 1 << 22  # the random pool holds 2 x 4M values
_N_SPECIAL = 3  # <unk>, <s>, </s>
_N_BYTE_TOKENS = 256


class UnsupportedShapeError(ForgePlannerError, ValueError):
    """The model cannot be written as a llama-architecture file without misstating it."""


@dataclass(frozen=True, slots=True)
class SyntheticShape:
    """The shape of a llama-architecture decoder: GQA when n_kv_heads < n_heads; Mixtral-style
    MoE when n_experts > 0 (every layer routes to experts_per_token of n_experts experts, each
    intermediate_size wide; llama.cpp's llama architecture loads these as ffn_*_exps)."""

    n_layers: int
    hidden_size: int
    intermediate_size: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    head_dim: int | None = None  # None = hidden_size // n_heads
    tie_word_embeddings: bool = False
    context_length: int = 4096
    name: str = "synthetic"
    n_experts: int = 0
    experts_per_token: int = 0

    @property
    def head_width(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.n_heads

    def validate(self) -> None:
        for field in (
            "n_layers",
            "hidden_size",
            "intermediate_size",
            "n_heads",
            "n_kv_heads",
            "context_length",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads {self.n_kv_heads} must divide n_heads {self.n_heads}")
        if self.head_dim is None and self.hidden_size % self.n_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} not divisible by {self.n_heads} heads"
            )
        if self.head_width % 2:
            raise ValueError(f"head_dim {self.head_width} must be even for RoPE")
        if self.n_experts and not 0 < self.experts_per_token <= self.n_experts:
            raise ValueError(
                f"experts_per_token {self.experts_per_token} must be in 1..{self.n_experts}"
            )
        if self.vocab_size < _N_SPECIAL + _N_BYTE_TOKENS + 1:
            raise ValueError(
                f"vocab_size {self.vocab_size} too small for the byte-level SPM tokenizer "
                f"(needs > {_N_SPECIAL + _N_BYTE_TOKENS})"
            )


def shape_of(spec: ModelSpec, context_length: int | None = None) -> SyntheticShape:
    """The llama-architecture shape of a catalog model. Dense full-attention models map, and so
    do MoE models whose every layer routes over plain experts (Mixtral, Qwen3-MoE: no shared
    experts, no leading dense layers); anything else would benchmark a different model, so it
    is refused with the reason. Small per-layer extras of some families (Qwen2 QKV biases,
    Qwen3 QK-norm weights) are not written: vectors, well under 0.1 % of the weight bytes."""
    if spec.attention.kind != "full":
        raise UnsupportedShapeError(
            f"{spec.id} uses {spec.attention.kind} attention, which the llama architecture "
            "cannot express; a synthetic file would misstate its KV cache"
        )
    moe = spec.moe
    if moe is not None and (
        moe.shared_experts or moe.first_dense_layers or moe.interleave_step > 1
    ):
        raise UnsupportedShapeError(
            f"{spec.id} has shared experts or dense layers between its MoE layers, which a "
            "llama-architecture file cannot express"
        )
    ffn = moe.expert_ffn if moe is not None else spec.intermediate_size
    if ffn is None:
        raise UnsupportedShapeError(f"{spec.id} has no dense FFN width")
    ctx = context_length or spec.max_context or 4096
    return SyntheticShape(
        n_layers=spec.n_layers,
        hidden_size=spec.hidden_size,
        intermediate_size=ffn,
        n_heads=spec.n_heads,
        n_kv_heads=spec.n_kv_heads,
        vocab_size=spec.vocab_size,
        head_dim=spec.head_dim,
        tie_word_embeddings=spec.tie_word_embeddings,
        context_length=ctx,
        name=f"synthetic-{spec.id}",
        n_experts=moe.n_experts if moe is not None else 0,
        experts_per_token=moe.experts_per_token if moe is not None else 0,
    )


def tensor_plan(shape: SyntheticShape) -> list[tuple[str, tuple[int, ...]]]:
    """(GGUF tensor name, numpy shape) in llama.cpp's naming, in file order. numpy order is
    (…, rows, cols): GGUFWriter reverses it to ggml's (ne0 = cols, ne1 = rows, ne2 = experts)."""
    h, hd, ff, e = shape.hidden_size, shape.head_width, shape.intermediate_size, shape.n_experts
    q_out, kv_out = shape.n_heads * hd, shape.n_kv_heads * hd
    plan: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (shape.vocab_size, h))]
    for i in range(shape.n_layers):
        plan += [
            (f"blk.{i}.attn_norm.weight", (h,)),
            (f"blk.{i}.attn_q.weight", (q_out, h)),
            (f"blk.{i}.attn_k.weight", (kv_out, h)),
            (f"blk.{i}.attn_v.weight", (kv_out, h)),
            (f"blk.{i}.attn_output.weight", (h, q_out)),
            (f"blk.{i}.ffn_norm.weight", (h,)),
        ]
        if e:
            plan += [
                (f"blk.{i}.ffn_gate_inp.weight", (e, h)),
                (f"blk.{i}.ffn_gate_exps.weight", (e, ff, h)),
                (f"blk.{i}.ffn_up_exps.weight", (e, ff, h)),
                (f"blk.{i}.ffn_down_exps.weight", (e, h, ff)),
            ]
        else:
            plan += [
                (f"blk.{i}.ffn_gate.weight", (ff, h)),
                (f"blk.{i}.ffn_up.weight", (ff, h)),
                (f"blk.{i}.ffn_down.weight", (h, ff)),
            ]
    plan.append(("output_norm.weight", (h,)))
    if not shape.tie_word_embeddings:
        plan.append(("output.weight", (shape.vocab_size, h)))
    return plan


def _tensor_type(
    name: str, dims: tuple[int, ...], want: GGMLQuantizationType
) -> GGMLQuantizationType:
    # Norm vectors and the MoE router stay F32 (as llama.cpp's converter and quantizer keep
    # them); a row length that is not a multiple of the quant block falls back to F16, as
    # llama.cpp's own quantizer does.
    if len(dims) == 1 or "ffn_gate_inp" in name:
        return GGMLQuantizationType.F32
    block = GGML_QUANT_SIZES[want][0]
    if dims[-1] % block:
        return GGMLQuantizationType.F16
    return want


def _n_bytes(dims: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(dims)) // block * size


class _RandomBlocks:
    """Random weights, fast: one pool of uniform values (+-sqrt(3)*0.02, std 0.02: activations
    stay well-behaved through many layers) is drawn and quantized once per file with
    gguf.quants.quantize; each tensor is then filled with randomly offset, block-aligned
    windows of the quantized pool. ggml blocks (32 values + scale) are independent, so every
    window is valid data of the type; quantizing ~0.5B fresh values would take longer than
    writing them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        bound = np.float32(0.02 * np.sqrt(3.0))
        values = rng.random(2 * _CHUNK_ELEMENTS, dtype=np.float32)
        values -= np.float32(0.5)
        values *= 2 * bound
        self.values = values.reshape(-1, 256)  # 256: a multiple of every block size used
        self._pools: dict[GGMLQuantizationType, np.ndarray] = {}

    def pool(self, qtype: GGMLQuantizationType) -> np.ndarray:
        if qtype not in self._pools:
            if qtype == GGMLQuantizationType.F32:
                q = self.values
            else:
                q = quantize(self.values, qtype)
            self._pools[qtype] = np.ascontiguousarray(q).view(np.uint8).reshape(-1)
        return self._pools[qtype]

    def tensor(self, dims: tuple[int, ...], qtype: GGMLQuantizationType) -> np.ndarray:
        """The tensor's bytes as stored in the file (uint8, exactly _n_bytes long)."""
        if len(dims) == 1:
            return np.ones(dims, dtype=np.float32).view(np.uint8)  # RMSNorm weights
        block_bytes = GGML_QUANT_SIZES[qtype][1]
        src = self.pool(qtype)
        window = len(src) // 2 // block_bytes * block_bytes
        n = _n_bytes(dims, qtype)
        out = np.empty(n, dtype=np.uint8)
        pos = 0
        while pos < n:
            take = min(window, n - pos)
            start = int(self.rng.integers(0, (len(src) - take) // block_bytes + 1)) * block_bytes
            out[pos : pos + take] = src[start : start + take]
            pos += take
        return out


def _add_tokenizer(writer: GGUFWriter, vocab_size: int) -> None:
    # SPM ("llama") vocabulary: 3 control tokens, the 256 byte-fallback tokens <0xNN> (so any
    # UTF-8 text tokenizes), then unique filler pieces up to the embedding row count.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(_N_BYTE_TOKENS)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    types += [TokenType.BYTE] * _N_BYTE_TOKENS
    n_fill = vocab_size - len(tokens)
    tokens += [f"\u2581t{i}" for i in range(n_fill)]
    types += [TokenType.NORMAL] * n_fill
    scores = [0.0] * (_N_SPECIAL + _N_BYTE_TOKENS) + [-float(i) for i in range(n_fill)]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types([int(t) for t in types])
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def write_synthetic_gguf(
    path: str | os.PathLike[str],
    spec: ModelSpec | SyntheticShape,
    ftype: str = "Q8_0",
    seed: int = 0,
) -> Path:
    """Write a random-weight llama-architecture GGUF of `spec`'s shape; returns the path.

    The file appears atomically (temp file in the same directory, then os.replace)."""
    if ftype not in FTYPES:
        raise ValueError(f"ftype must be one of {', '.join(FTYPES)}, got {ftype!r}")
    shape = spec if isinstance(spec, SyntheticShape) else shape_of(spec)
    shape.validate()
    want, file_type = FTYPES[ftype]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    rng = np.random.default_rng(seed)
    writer = GGUFWriter(tmp, "llama")
    try:
        writer.add_name(shape.name)
        writer.add_context_length(shape.context_length)
        writer.add_embedding_length(shape.hidden_size)
        writer.add_block_count(shape.n_layers)
        writer.add_feed_forward_length(shape.intermediate_size)
        writer.add_head_count(shape.n_heads)
        writer.add_head_count_kv(shape.n_kv_heads)
        writer.add_key_length(shape.head_width)
        writer.add_value_length(shape.head_width)
        writer.add_rope_dimension_count(shape.head_width)
        writer.add_rope_freq_base(10000.0)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_vocab_size(shape.vocab_size)
        writer.add_file_type(int(file_type))
        writer.add_quantization_version(2)
        _add_tokenizer(writer, shape.vocab_size)

        if shape.n_experts:
            writer.add_expert_count(shape.n_experts)
            writer.add_expert_used_count(shape.experts_per_token)
        plan = [(n, dims, _tensor_type(n, dims, want)) for n, dims in tensor_plan(shape)]
        for name, dims, qtype in plan:
            # numpy element shape; GGUFWriter reverses it to ggml's (ne0, ne1, ...).
            writer.add_tensor_info(name, dims, np.dtype(np.float32), _n_bytes(dims, qtype), qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        blocks = _RandomBlocks(rng)
        for _name, dims, qtype in plan:
            writer.write_tensor_data(blocks.tensor(dims, qtype))
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the file is a plain shareable artifact
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
