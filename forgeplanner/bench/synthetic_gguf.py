"""Random-weight GGUF files with the real shapes of a llama-architecture model.

Used to benchmark and validate engines (llama.cpp) on this machine without downloading weights:
the tensor shapes, tensor types and therefore bytes read per token are those of the real model;
only the values are random. Written with the official `gguf` package (GGUFWriter for the file,
gguf.quants.quantize for Q8_0/Q4_0), with an SPM ("llama") tokenizer that has the 256 byte
tokens, which llama.cpp needs to tokenize any text (checked to load and generate, see
/work/shared/guide/LLAMACPP.md).

Memory stays flat: tensor infos are declared first, then every tensor is generated, quantized in
row chunks and written one at a time, so peak memory is about one tensor, not the model.
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
_CHUNK_ELEMENTS = 1 << 22  # rows are generated + quantized ~4M values at a time
_N_SPECIAL = 3  # <unk>, <s>, </s>
_N_BYTE_TOKENS = 256


class UnsupportedShapeError(ForgePlannerError, ValueError):
    """The model cannot be written as a llama-architecture file without misstating it."""


@dataclass(frozen=True, slots=True)
class SyntheticShape:
    """The shape of a dense llama-architecture decoder (GQA when n_kv_heads < n_heads)."""

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
        if self.vocab_size < _N_SPECIAL + _N_BYTE_TOKENS + 1:
            raise ValueError(
                f"vocab_size {self.vocab_size} too small for the byte-level SPM tokenizer "
                f"(needs > {_N_SPECIAL + _N_BYTE_TOKENS})"
            )


def shape_of(spec: ModelSpec, context_length: int | None = None) -> SyntheticShape:
    """The llama-architecture shape of a catalog model. Only dense full-attention models map;
    anything else would benchmark a different model, so it is refused with the reason. Small
    per-layer extras of some families (Qwen2 QKV biases, Qwen3 QK-norm weights, Gemma's extra
    norms) are not written: they are vectors, well under 0.1 % of the weight bytes."""
    if spec.moe is not None:
        raise UnsupportedShapeError(
            f"{spec.id} is MoE; a dense llama-architecture file would misstate it"
        )
    if spec.attention.kind != "full":
        raise UnsupportedShapeError(
            f"{spec.id} uses {spec.attention.kind} attention, which the llama architecture "
            "cannot express; a synthetic file would misstate its KV cache"
        )
    if spec.intermediate_size is None:
        raise UnsupportedShapeError(f"{spec.id} has no dense FFN width")
    ctx = context_length or spec.max_context or 4096
    return SyntheticShape(
        n_layers=spec.n_layers,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        n_heads=spec.n_heads,
        n_kv_heads=spec.n_kv_heads,
        vocab_size=spec.vocab_size,
        head_dim=spec.head_dim,
        tie_word_embeddings=spec.tie_word_embeddings,
        context_length=ctx,
        name=f"synthetic-{spec.id}",
    )


def tensor_plan(shape: SyntheticShape) -> list[tuple[str, tuple[int, int] | tuple[int]]]:
    """(GGUF tensor name, numpy shape (rows, cols)) in llama.cpp's naming, in file order."""
    h, hd = shape.hidden_size, shape.head_width
    q_out, kv_out = shape.n_heads * hd, shape.n_kv_heads * hd
    plan: list[tuple[str, tuple[int, int] | tuple[int]]] = [
        ("token_embd.weight", (shape.vocab_size, h))
    ]
    for i in range(shape.n_layers):
        plan += [
            (f"blk.{i}.attn_norm.weight", (h,)),
            (f"blk.{i}.attn_q.weight", (q_out, h)),
            (f"blk.{i}.attn_k.weight", (kv_out, h)),
            (f"blk.{i}.attn_v.weight", (kv_out, h)),
            (f"blk.{i}.attn_output.weight", (h, q_out)),
            (f"blk.{i}.ffn_norm.weight", (h,)),
            (f"blk.{i}.ffn_gate.weight", (shape.intermediate_size, h)),
            (f"blk.{i}.ffn_up.weight", (shape.intermediate_size, h)),
            (f"blk.{i}.ffn_down.weight", (h, shape.intermediate_size)),
        ]
    plan.append(("output_norm.weight", (h,)))
    if not shape.tie_word_embeddings:
        plan.append(("output.weight", (shape.vocab_size, h)))
    return plan


def _tensor_type(dims: tuple[int, ...], want: GGMLQuantizationType) -> GGMLQuantizationType:
    # Norm vectors stay F32 (llama.cpp expects that); a row length that is not a multiple of the
    # quant block falls back to F16, as llama.cpp's own quantizer does.
    if len(dims) == 1:
        return GGMLQuantizationType.F32
    block = GGML_QUANT_SIZES[want][0]
    if dims[-1] % block:
        return GGMLQuantizationType.F16
    return want


def _n_bytes(dims: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(dims)) // block * size


def _random_pool(rng: np.random.Generator) -> np.ndarray:
    # Uniform in +-sqrt(3)*std with std 0.02: well-behaved activations through many layers.
    # One pool of random values is drawn per file and every chunk is a randomly offset window
    # of it: drawing fresh values for ~0.5B weights would cost more time than writing them.
    bound = np.float32(0.02 * np.sqrt(3.0))
    pool = rng.random(2 * _CHUNK_ELEMENTS, dtype=np.float32)
    pool -= np.float32(0.5)
    pool *= 2 * bound
    return pool


def _random_tensor(
    rng: np.random.Generator, pool: np.ndarray, dims: tuple[int, ...], qtype: GGMLQuantizationType
) -> np.ndarray:
    if len(dims) == 1:
        return np.ones(dims, dtype=np.float32)  # RMSNorm weights
    rows, cols = dims
    step = max(1, _CHUNK_ELEMENTS // cols)
    out: np.ndarray | None = None
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        n = (stop - start) * cols
        if n > pool.size:  # a single row longer than the pool: draw it fresh
            chunk = rng.random((stop - start, cols), dtype=np.float32) * np.float32(0.07) - 0.035
        else:
            offset = int(rng.integers(0, pool.size - n + 1))
            chunk = pool[offset : offset + n].reshape(stop - start, cols)
        q = quantize(chunk, qtype) if qtype != GGMLQuantizationType.F32 else chunk
        if out is None:
            out = np.empty((rows, q.shape[1]), dtype=q.dtype)
        out[start:stop] = q
    assert out is not None
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

        plan = [(name, dims, _tensor_type(dims, want)) for name, dims in tensor_plan(shape)]
        for name, dims, qtype in plan:
            # numpy element shape (rows, cols); GGUFWriter reverses it to ggml's (ne0, ne1).
            writer.add_tensor_info(name, dims, np.dtype(np.float32), _n_bytes(dims, qtype), qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        pool = _random_pool(rng)
        for _name, dims, qtype in plan:
            writer.write_tensor_data(_random_tensor(rng, pool, dims, qtype))
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the file is a plain shareable artifact
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
