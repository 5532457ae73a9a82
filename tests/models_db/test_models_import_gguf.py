"""GGUF importer: metadata and exact tensor table from real files written with the gguf package,
and one clear DataError for every kind of broken or hostile header."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf
from forgeplanner.errors import DataError
from models_db.importers import import_gguf
from models_db.importers.gguf_header import precheck_gguf

# ggml block layouts (ggml-common.h): Q8_0 = 32 values in 34 bytes; F32 4 bytes per value.
Q8_0_BYTES_PER_32 = 34


def test_tiny_llama_metadata_and_exact_tensor_bytes(tiny_gguf):
    spec = import_gguf(tiny_gguf)
    assert (spec.family, spec.n_layers, spec.hidden_size) == ("llama", 2, 64)
    assert (spec.n_heads, spec.n_kv_heads, spec.head_dim) == (4, 2, 16)
    assert (spec.vocab_size, spec.max_context, spec.intermediate_size) == (300, 256, 128)
    assert spec.tie_word_embeddings is False and spec.gguf_file_type == "Q8_0"
    assert spec.origin == "import:gguf" and spec.attention.kind == "full" and spec.moe is None
    assert len(spec.tensors) == 1 + 2 * 9 + 2
    by_name = {t.name: t for t in spec.tensors}
    q = by_name["blk.0.attn_q.weight"]
    assert (q.shape, q.ggml_type, q.n_bytes) == ((64, 64), "Q8_0", 64 * 64 // 32 * 34)
    k = by_name["blk.1.attn_k.weight"]
    assert (k.shape, k.n_bytes) == ((64, 32), 64 * 32 // 32 * Q8_0_BYTES_PER_32)
    norm = by_name["blk.0.attn_norm.weight"]
    assert (norm.ggml_type, norm.n_bytes) == ("F32", 64 * 4)
    assert by_name["token_embd.weight"].shape == (64, 300)
    # Exact: the tensor bytes (each padded to the 32-byte alignment) fill the data section.
    summary = precheck_gguf(tiny_gguf)
    padded = sum(-(-t.n_bytes // 32) * 32 for t in spec.tensors)
    assert summary.data_offset + padded == tiny_gguf.stat().st_size
    per_layer = 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 64 * 128
    assert spec.params_total == 2 * 300 * 64 + 2 * per_layer + 64


def test_tied_embeddings_detected(tmp_path):
    shape = SyntheticShape(2, 64, 128, 4, 4, 300, tie_word_embeddings=True)
    spec = import_gguf(write_synthetic_gguf(tmp_path / "t.gguf", shape, "F16"))
    assert spec.tie_word_embeddings is True
    assert "output.weight" not in {t.name for t in spec.tensors}
    assert spec.gguf_file_type == "F16"


def test_gemma3_swa_pattern_from_llamacpp_rule(meta_gguf):
    kv = {
        "gemma3.block_count": 12,
        "gemma3.embedding_length": 32,
        "gemma3.attention.head_count": 4,
        "gemma3.attention.head_count_kv": 1,
        "gemma3.attention.key_length": 256,
        "gemma3.context_length": 131072,
        "gemma3.feed_forward_length": 64,
        "gemma3.attention.sliding_window": 1024,
        "general.name": "Gemma 3 test",
        "general.license": "gemma",
    }
    spec = import_gguf(meta_gguf("gemma3", kv))
    assert spec.attention.kind == "sliding" and spec.attention.sliding_window == 1024
    assert spec.attention.sliding_layers == (0, 1, 2, 3, 4, 6, 7, 8, 9, 10)
    assert spec.head_dim == 256 and spec.license == "gemma" and spec.id == "gemma-3-test"
    assert spec.vocab_size == 8  # from token_embd rows when no vocab key or token list


def test_gpt_oss_moe_active_params_from_expert_tensors(meta_gguf):
    kv = {
        "gpt-oss.block_count": 1,
        "gpt-oss.embedding_length": 32,
        "gpt-oss.attention.head_count": 4,
        "gpt-oss.attention.head_count_kv": 2,
        "gpt-oss.attention.key_length": 8,
        "gpt-oss.context_length": 4096,
        "gpt-oss.attention.sliding_window": 128,
        "gpt-oss.expert_count": 4,
        "gpt-oss.expert_used_count": 1,
        "gpt-oss.expert_feed_forward_length": 32,
    }
    tensors = [
        ("token_embd.weight", (10, 32)),
        ("output.weight", (10, 32)),
        ("blk.0.ffn_gate_exps.weight", (4, 32, 32)),
        ("blk.0.ffn_up_exps.weight", (4, 32, 32)),
        ("blk.0.ffn_down_exps.weight", (4, 32, 32)),
    ]
    spec = import_gguf(meta_gguf("gpt-oss", kv, tensors))
    assert spec.moe is not None and spec.moe.n_experts == 4 and spec.native_quant == "MXFP4"
    assert spec.attention.sliding_layers == (0,)
    assert spec.params_total == 2 * 320 + 3 * 4 * 1024
    assert spec.params_active == spec.params_total - 320 - 3 * 3 * 1024


def test_deepseek2_mla_fields(meta_gguf):
    kv = {
        "deepseek2.block_count": 4,
        "deepseek2.embedding_length": 64,
        "deepseek2.attention.head_count": 8,
        "deepseek2.attention.head_count_kv": 1,
        "deepseek2.attention.key_length": 576,
        "deepseek2.attention.value_length": 512,
        "deepseek2.attention.key_length_mla": 192,
        "deepseek2.attention.value_length_mla": 128,
        "deepseek2.attention.kv_lora_rank": 512,
        "deepseek2.attention.q_lora_rank": 1536,
        "deepseek2.rope.dimension_count": 64,
        "deepseek2.context_length": 163840,
        "deepseek2.feed_forward_length": 128,
    }
    a = import_gguf(meta_gguf("deepseek2", kv)).attention
    assert (a.kind, a.mla_kv_lora_rank, a.mla_qk_rope_head_dim) == ("mla", 512, 64)
    assert (a.mla_qk_nope_head_dim, a.mla_v_head_dim, a.mla_q_lora_rank) == (128, 128, 1536)


def test_qwen3next_hybrid_state(meta_gguf):
    kv = {
        "qwen3next.block_count": 8,
        "qwen3next.embedding_length": 32,
        "qwen3next.attention.head_count": 4,
        "qwen3next.attention.head_count_kv": 2,
        "qwen3next.attention.key_length": 256,
        "qwen3next.context_length": 262144,
        "qwen3next.feed_forward_length": 64,
        "qwen3next.full_attention_interval": 4,
        "qwen3next.ssm.conv_kernel": 4,
        "qwen3next.ssm.state_size": 128,
        "qwen3next.ssm.group_count": 16,
        "qwen3next.ssm.inner_size": 4096,
    }
    a = import_gguf(meta_gguf("qwen3next", kv)).attention
    assert a.attention_layers == (3, 7)
    assert a.recurrent_state_bytes_per_seq == (24_576 + 524_288) * 4 * 6


def test_unknown_architecture(meta_gguf):
    base = {"foo.block_count": 2, "foo.embedding_length": 32, "foo.attention.head_count": 4}
    spec = import_gguf(meta_gguf("foo", base))
    assert spec.attention.kind == "full" and "assumed" in spec.extra
    with pytest.raises(DataError) as err:
        import_gguf(meta_gguf("foo", base | {"foo.attention.sliding_window": 64}, name="b.gguf"))
    assert err.value.field == "general.architecture" and err.value.value == "foo"


def test_huge_sparse_file_is_not_read(tmp_path):
    """A 64 GiB tensor in a sparse file: importing must read only the header."""
    path = tmp_path / "huge.gguf"
    w = GGUFWriter(path, "llama")
    for key, value in {
        "llama.block_count": 1,
        "llama.embedding_length": 4096,
        "llama.attention.head_count": 32,
    }.items():
        w.add_uint32(key, value)
    rows, cols = 1 << 22, 4096  # 2**34 F32 values = 64 GiB
    w.add_tensor_info(
        "token_embd.weight",
        (rows, cols),
        np.dtype(np.float32),
        rows * cols * 4,
        GGMLQuantizationType.F32,
    )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    data_start = precheck_header_end(path)
    with path.open("r+b") as fh:
        fh.truncate(data_start + rows * cols * 4)
    start = time.perf_counter()
    spec = import_gguf(path)
    assert time.perf_counter() - start < 5
    assert spec.tensors[0].n_bytes == 64 * 2**30 and spec.params_total == 2**34


def precheck_header_end(path: Path) -> int:
    size = path.stat().st_size
    return size + (-size % 32)


# --- hostile headers: each must be one DataError naming file, field and value ---------------


def _header(tensor_count: int, kv_count: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensor_count, kv_count)


def _kv_string(key: str, value_bytes: bytes, declared_len: int | None = None) -> bytes:
    k = key.encode()
    n = len(value_bytes) if declared_len is None else declared_len
    return struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, n) + value_bytes


HOSTILE = {
    "empty": (b"", "magic"),
    "wrong magic": (b"GGML" + bytes(40), "magic"),
    "short header": (b"GGUF\x03\x00", "header"),
    "version 99": (_header(0, 0, 99), "version"),
    "2**60 tensors": (_header(2**60, 0), "tensor_count"),
    "2**60 kv pairs": (_header(0, 2**60), "kv_count"),
    "string past end": (
        _header(0, 1) + _kv_string("general.name", b"abc", 2**40),
        "general.name (string length)",
    ),
    "key length past end": (
        _header(0, 1) + struct.pack("<Q", 10**9) + bytes(30),
        "kv[0].key (string length)",
    ),
    "array of 2**60 u8": (
        _header(0, 1) + struct.pack("<Q", 1) + b"a" + struct.pack("<IIQ", 9, 0, 2**60),
        "a (array length)",
    ),
    "unknown value type": (
        _header(0, 1) + struct.pack("<Q", 1) + b"a" + struct.pack("<I", 77),
        "a (value type)",
    ),
    "bad utf8 key": (
        _header(0, 1) + struct.pack("<Q", 2) + b"\xff\xfe" + struct.pack("<IB", 0, 1),
        "kv[0].key",
    ),
    "nested arrays": (
        _header(0, 1)
        + struct.pack("<Q", 1)
        + b"a"
        + struct.pack("<IIQ", 9, 9, 1)
        + struct.pack("<IQ", 9, 1) * 4
        + struct.pack("<IQ", 0, 0),
        "a[0][0][0]",
    ),
    "duplicate key": (
        _header(0, 2) + (struct.pack("<Q", 1) + b"a" + struct.pack("<IB", 0, 1)) * 2,
        "kv[1].key",
    ),
    "3M-item array": (
        _header(0, 1)
        + struct.pack("<Q", 1)
        + b"a"
        + struct.pack("<IIQ", 9, 0, 3_000_000)
        + bytes(3_000_000),
        "a (array length)",
    ),
    "bad alignment": (
        _header(0, 1) + struct.pack("<Q", 17) + b"general.alignment" + struct.pack("<II", 4, 3),
        "general.alignment",
    ),
}


def _tensor_info(name: str, dims: list[int], ggml_type: int, offset: int) -> bytes:
    n = name.encode()
    out = struct.pack("<Q", len(n)) + n + struct.pack("<I", len(dims))
    out += b"".join(struct.pack("<Q", d) for d in dims)
    return out + struct.pack("<IQ", ggml_type, offset)


HOSTILE |= {
    "5 dims": (_header(1, 0) + _tensor_info("t", [1] * 5, 0, 0), "t.n_dims"),
    "unknown ggml type": (_header(1, 0) + _tensor_info("t", [4], 4242, 0), "t.type"),
    "absurd dims": (_header(1, 0) + _tensor_info("t", [2**40, 2**40], 0, 0), "t.dims"),
    "data past end": (_header(1, 0) + _tensor_info("t", [1024], 0, 0), "t.offset"),
    "misaligned offset": (_header(1, 0) + _tensor_info("t", [8], 0, 3), "t.offset"),
    "bad block multiple": (_header(1, 0) + _tensor_info("t", [33], 8, 0), "t.dims"),
    "duplicate tensor": (
        _header(2, 0) + _tensor_info("t", [8], 0, 0) * 2 + bytes(128),
        "tensor[1].name",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_header_gives_one_dataerror(tmp_path, case):
    content, field = HOSTILE[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        import_gguf(path)
    assert time.perf_counter() - start < 1
    assert err.value.file == str(path)
    assert err.value.field == field
    assert str(path) in str(err.value)


def test_truncated_real_file_names_the_tensor(tiny_gguf, tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(tiny_gguf.read_bytes()[:-100])
    with pytest.raises(DataError) as err:
        import_gguf(path)
    assert err.value.field == "output.weight.offset" and "truncated" in err.value.problem


def test_missing_required_metadata(meta_gguf):
    with pytest.raises(DataError) as err:
        import_gguf(meta_gguf("llama", {"llama.block_count": 2}))
    assert err.value.field == "llama.embedding_length" and err.value.value is None


def test_not_a_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        import_gguf(tmp_path / "missing.gguf")


def _split_gguf(tmp_path: Path) -> list[Path]:
    base = tmp_path / "split.gguf"
    w = GGUFWriter(base, "llama", split_max_tensors=2)
    for key, value in {
        "llama.block_count": 1,
        "llama.embedding_length": 32,
        "llama.attention.head_count": 4,
        "llama.context_length": 64,
    }.items():
        w.add_uint32(key, value)
    for name, shape in [
        ("token_embd.weight", (10, 32)),
        ("blk.0.attn_norm.weight", (32,)),
        ("blk.0.attn_q.weight", (32, 32)),
        ("output.weight", (10, 32)),
        ("output_norm.weight", (32,)),
    ]:
        w.add_tensor(name, np.ones(shape, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sorted(tmp_path.glob("split-*-of-*.gguf"))


def test_split_gguf_merges_all_shards(tmp_path):
    shards = _split_gguf(tmp_path)
    assert [s.name for s in shards] == [f"split-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    for given in (shards[0], shards[2]):
        spec = import_gguf(given)
        assert len(spec.tensors) == 5 and spec.n_layers == 1 and spec.max_context == 64
        assert spec.params_total == 10 * 32 * 2 + 32 + 32 * 32 + 32
        assert "in 3 shards" in spec.source
    shards[1].unlink()
    with pytest.raises(DataError) as err:
        import_gguf(shards[0])
    assert err.value.field == "split.count" and "split-00002-of-00003.gguf" in err.value.problem


def test_qwen35_hybrid_uses_the_qwen3next_state_keys(meta_gguf):
    """Qwen3.5/3.6 GGUFs ("qwen35"/"qwen35moe") carry the same ssm.* keys as Qwen3-Next; the
    Qwen3.5-9B dims give the catalog row's per-sequence state."""
    kv = {
        "qwen35.block_count": 32,
        "qwen35.embedding_length": 64,
        "qwen35.attention.head_count": 16,
        "qwen35.attention.head_count_kv": 4,
        "qwen35.attention.key_length": 256,
        "qwen35.context_length": 262144,
        "qwen35.feed_forward_length": 128,
        "qwen35.full_attention_interval": 4,
        "qwen35.ssm.conv_kernel": 4,
        "qwen35.ssm.state_size": 128,
        "qwen35.ssm.group_count": 16,
        "qwen35.ssm.inner_size": 4096,
    }
    a = import_gguf(meta_gguf("qwen35", kv)).attention
    assert a.kind == "hybrid" and len(a.attention_layers) == 8
    from models_db import load_models

    assert a.recurrent_state_bytes_per_seq == (
        load_models().get("qwen3.5-9b").attention.recurrent_state_bytes_per_seq
    )


def test_gemma4_global_heads_and_shared_kv_layers(meta_gguf):
    """gemma4: key_length is the global layers' width, key_length_swa the windowed ones';
    attention.shared_kv_layers sets the KV-sharing tail (llama.cpp src/models/gemma4.cpp)."""
    n = 12
    kv = {
        "gemma4.block_count": n,
        "gemma4.embedding_length": 64,
        "gemma4.attention.head_count": 8,
        "gemma4.attention.head_count_kv": 2,
        "gemma4.attention.key_length": 512,
        "gemma4.attention.value_length": 512,
        "gemma4.attention.key_length_swa": 256,
        "gemma4.attention.value_length_swa": 256,
        "gemma4.attention.sliding_window": 512,
        "gemma4.attention.sliding_window_pattern": [(i + 1) % 6 != 0 for i in range(n)],
        "gemma4.attention.shared_kv_layers": 4,
        "gemma4.context_length": 131072,
        "gemma4.feed_forward_length": 128,
    }
    spec = import_gguf(meta_gguf("gemma4", kv))
    a = spec.attention
    assert a.kind == "sliding" and a.sliding_layers == (0, 1, 2, 3, 4, 6, 7, 8, 9, 10)
    assert spec.head_dim == 256 and a.global_head_dim == 512 and a.kv_shared_layers == 4
