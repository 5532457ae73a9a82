"""Synthetic random-weight GGUFs: real llama shapes, valid quantized data, loadable by llama.cpp."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

import forgeplanner.bench.synthetic_gguf as sg
from forgeplanner.bench.synthetic_gguf import SyntheticShape, shape_of, write_synthetic_gguf
from models_db import load_models
from models_db.importers import import_gguf

GQA = SyntheticShape(
    n_layers=2,
    hidden_size=256,
    intermediate_size=512,
    n_heads=8,
    n_kv_heads=2,
    vocab_size=1000,
    context_length=512,
    name="gqa",
)
TIED = SyntheticShape(
    n_layers=2,
    hidden_size=128,
    intermediate_size=344,
    n_heads=4,
    n_kv_heads=4,
    vocab_size=600,
    tie_word_embeddings=True,
    context_length=512,
)


@pytest.mark.parametrize("ftype", ["F32", "F16", "Q8_0", "Q4_0"])
def test_shapes_and_types(tmp_path, ftype):
    spec = import_gguf(write_synthetic_gguf(tmp_path / "m.gguf", GQA, ftype, seed=3))
    assert spec.gguf_file_type == ftype and spec.n_kv_heads == 2 and spec.head_dim == 32
    t = {x.name: x for x in spec.tensors}
    # ggml order: ne0 = input features.
    assert t["blk.0.attn_q.weight"].shape == (256, 256)
    assert t["blk.0.attn_k.weight"].shape == (256, 64)
    assert t["blk.1.ffn_down.weight"].shape == (512, 256)
    assert t["token_embd.weight"].shape == (256, 1000) and "output.weight" in t
    assert t["blk.0.ffn_norm.weight"].ggml_type == "F32"
    assert t["blk.0.ffn_up.weight"].ggml_type == ftype
    assert spec.vocab_size == 1000 and spec.max_context == 512


def test_tied_and_fallback_to_f16_for_odd_rows(tmp_path):
    spec = import_gguf(write_synthetic_gguf(tmp_path / "t.gguf", TIED, "Q4_0"))
    names = {x.name: x for x in spec.tensors}
    assert spec.tie_word_embeddings and "output.weight" not in names
    # 344 is not a multiple of Q4_0's 32-value block: ffn_down rows fall back to F16.
    assert names["blk.0.ffn_down.weight"].ggml_type == "F16"
    assert names["blk.0.ffn_up.weight"].ggml_type == "Q4_0"


def test_quantized_values_are_real_q8_0(tmp_path):
    path = write_synthetic_gguf(tmp_path / "q.gguf", GQA, "Q8_0", seed=1)
    reader = GGUFReader(path)
    t = next(x for x in reader.tensors if x.name == "blk.0.attn_q.weight")
    values = dequantize(t.data, t.tensor_type)
    assert values.shape == (256, 256) and np.isfinite(values).all()
    assert 0.018 < float(values.std()) < 0.022 and abs(float(values.mean())) < 0.005
    del reader


def test_catalog_shapes(tmp_path):
    db = load_models()
    shape = shape_of(db.get("llama-3.2-1b"), context_length=2048)
    assert (shape.n_layers, shape.hidden_size, shape.n_kv_heads, shape.head_dim) == (
        16,
        2048,
        8,
        64,
    )
    assert shape.tie_word_embeddings and shape.context_length == 2048
    mixtral = shape_of(db.get("mixtral-8x7b"))
    assert (mixtral.n_experts, mixtral.experts_per_token, mixtral.intermediate_size) == (
        8,
        2,
        14336,
    )
    qwen = shape_of(db.get("qwen3-30b-a3b"))
    assert (qwen.n_experts, qwen.intermediate_size, qwen.head_dim) == (128, 768, 128)
    for mid, why in (
        ("gemma-3-4b", "sliding"),
        ("deepseek-v3", "mla"),
        ("qwen3-next-80b-a3b", "hybrid"),
        ("glm-4.5-air", "shared experts"),
    ):
        with pytest.raises(ValueError, match=why):
            shape_of(db.get(mid))


MOE = SyntheticShape(
    n_layers=2,
    hidden_size=128,
    intermediate_size=64,
    n_heads=4,
    n_kv_heads=2,
    vocab_size=600,
    context_length=512,
    n_experts=4,
    experts_per_token=2,
)


def test_moe_expert_tensors(tmp_path):
    spec = import_gguf(write_synthetic_gguf(tmp_path / "moe.gguf", MOE, "Q8_0", seed=4))
    assert spec.moe is not None and (spec.moe.n_experts, spec.moe.experts_per_token) == (4, 2)
    t = {x.name: x for x in spec.tensors}
    # ggml order: {n_embd, n_ff, n_expert} for gate/up, {n_ff, n_embd, n_expert} for down.
    assert t["blk.0.ffn_gate_exps.weight"].shape == (128, 64, 4)
    assert t["blk.1.ffn_down_exps.weight"].shape == (64, 128, 4)
    assert t["blk.0.ffn_gate_inp.weight"].shape == (128, 4)
    assert t["blk.0.ffn_gate_inp.weight"].ggml_type == "F32"
    assert t["blk.0.ffn_up_exps.weight"].n_bytes == 128 * 64 * 4 // 32 * 34
    experts = 3 * 128 * 64
    assert spec.params_active == spec.params_total - 2 * 2 * experts - 600 * 128


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="ftype"):
        write_synthetic_gguf(tmp_path / "x.gguf", GQA, "Q5_K")
    with pytest.raises(ValueError, match="n_kv_heads"):
        write_synthetic_gguf(tmp_path / "x.gguf", SyntheticShape(1, 64, 64, 4, 3, 600), "F16")
    with pytest.raises(ValueError, match="vocab_size"):
        write_synthetic_gguf(tmp_path / "x.gguf", SyntheticShape(1, 64, 64, 4, 4, 100), "F16")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sg, "quantize", broken)
    with pytest.raises(RuntimeError):
        write_synthetic_gguf(tmp_path / "x.gguf", GQA, "Q8_0")
    assert list(tmp_path.iterdir()) == []


# --- real llama.cpp (llama-cpp-python) -------------------------------------------------------


@pytest.fixture
def llama_no_repack(monkeypatch):
    """llama_cpp with ggml's "extra buffer types" (AMX / CPU_REPACK) off. On this KVM Xeon with
    AMX, decoding any Q8_0/Q4_0 model through the AMX buffer segfaults inside ggml (checked:
    F16/F32 fine, the same Q8_0 file fine with use_extra_bufts=False). The weights, shapes and
    kernels under test are the same; only the CPU-specific repacked copy is skipped."""
    import llama_cpp
    import llama_cpp.llama_cpp as capi

    original = capi.llama_model_default_params

    def params():
        p = original()
        p.use_extra_bufts = False
        return p

    monkeypatch.setattr(capi, "llama_model_default_params", params)
    return llama_cpp


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shape", "ftype"),
    [(GQA, "F16"), (GQA, "Q8_0"), (GQA, "Q4_0"), (TIED, "Q8_0"), (MOE, "Q8_0"), (MOE, "Q4_0")],
)
def test_llama_cpp_loads_and_generates(tmp_path, llama_no_repack, shape, ftype):
    path = write_synthetic_gguf(tmp_path / "m.gguf", shape, ftype, seed=5)
    llm = llama_no_repack.Llama(
        model_path=str(path), n_ctx=256, verbose=False, seed=1, logits_all=True
    )
    assert llm.n_vocab() == shape.vocab_size and llm.n_embd() == shape.hidden_size
    tokens = llm.tokenize(b"Hello, world! \xc3\xa9")  # byte tokens cover any UTF-8
    assert len(tokens) > 3
    llm.eval(tokens)
    assert np.isfinite(llm.scores[len(tokens) - 1]).all()
    out = llm.create_completion("The quick brown fox", max_tokens=6, temperature=0.0)
    assert out["usage"]["completion_tokens"] >= 1
    llm.close()


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "ftype"), [(GQA, "F16"), (GQA, "Q4_0"), (MOE, "Q8_0")])
def test_llama_bench_runs_the_file(tmp_path, llamacpp_bin, shape, ftype):
    """The real llama-bench CLI measures the synthetic file (`--repack 0`: see llama_no_repack)."""
    import json
    import subprocess

    path = write_synthetic_gguf(tmp_path / "m.gguf", shape, ftype, seed=2)
    argv = [
        str(llamacpp_bin / "llama-bench"),
        "-m",
        str(path),
        "-p",
        "16",
        "-n",
        "4",
        "-r",
        "1",
        "-o",
        "json",
        "--repack",
        "0",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert {(r["n_prompt"], r["n_gen"]) for r in rows} == {(16, 0), (0, 4)}
    assert all(r["avg_ts"] > 0 for r in rows)
    # llama.cpp's model size is the sum of its tensors' bytes: the importer's exact table.
    assert rows[0]["model_size"] == sum(t.n_bytes for t in import_gguf(path).tensors)
