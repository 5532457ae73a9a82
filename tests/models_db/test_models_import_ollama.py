"""Ollama /api/show importer. Ollama cannot be installed here: the replies in data/ollama/ follow
Ollama's documented /api/show format (see data/README.md); the live path runs the official
`ollama` client against a loopback HTTP server that replays them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.errors import DataError
from models_db import load_models
from models_db.importers import import_ollama_model, import_ollama_show

DATA = Path(__file__).parent / "data" / "ollama"
LLAMA = DATA / "show_llama3.1-8b.json"
QWEN = DATA / "show_qwen3-30b-a3b.json"


def test_llama_reply_from_file():
    spec = import_ollama_show(LLAMA)
    ref = load_models().get("llama-3.1-8b")
    assert spec.params_total == 8_030_261_248
    assert abs(spec.params_total - ref.params_total) <= 500_000
    for field in (
        "n_layers",
        "hidden_size",
        "n_heads",
        "n_kv_heads",
        "head_dim",
        "vocab_size",
        "max_context",
        "intermediate_size",
    ):
        assert getattr(spec, field) == getattr(ref, field), field
    assert spec.gguf_file_type == "Q4_K_M" and spec.license == "llama3.1"
    assert spec.origin == "import:ollama" and spec.moe is None and spec.tensors == ()
    assert spec.extra["ollama_parameter_size"] == "8.0B"


def test_verbose_moe_reply_with_tensors():
    spec = import_ollama_show(QWEN, model_id="qwen3-local")
    ref = load_models().get("qwen3-30b-a3b")
    assert spec.id == "qwen3-local" and spec.family == "qwen3moe"
    assert spec.moe is not None and spec.moe == ref.moe
    assert spec.vocab_size == 151936 and spec.tie_word_embeddings is False
    assert spec.params_total == 30_532_122_624
    assert spec.params_active is not None and ref.params_active is not None
    assert abs(spec.params_active - ref.params_active) <= 500_000
    by_name = {t.name: t for t in spec.tensors}
    # Q4_K: 256 values in 144 bytes; Q6_K: 256 in 210 (ggml-common.h block layouts).
    assert by_name["token_embd.weight"].n_bytes == 2048 * 151936 // 256 * 144
    assert by_name["output.weight"].n_bytes == 2048 * 151936 // 256 * 210
    assert by_name["blk.0.attn_norm.weight"].n_bytes == 2048 * 4


def _write(tmp_path: Path, payload: object) -> Path:
    p = tmp_path / "show.json"
    p.write_text(json.dumps(payload))
    return p


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (lambda d: d.pop("model_info"), "model_info", None),
        (lambda d: d["model_info"].pop("general.architecture"), "general.architecture", None),
        (lambda d: d["model_info"].update({"llama.block_count": -1}), "llama.block_count", -1),
        (lambda d: d["model_info"].update({"llama.block_count": "32"}), "llama.block_count", "32"),
        (lambda d: d["model_info"].pop("llama.vocab_size"), "llama.vocab_size", None),
        (
            lambda d: d["model_info"].update({"llama.attention.head_count_kv": 5}),
            "llama.attention.head_count_kv",
            5,
        ),
        (
            lambda d: d.update({"tensors": [{"name": "x", "type": "Q9_Z", "shape": [32]}]}),
            "x.type",
            "Q9_Z",
        ),
        (
            lambda d: d.update({"tensors": [{"name": "x", "type": "Q8_0", "shape": [33]}]}),
            "x.shape",
            [33],
        ),
        (lambda d: d.update({"details": "x"}), "details", "x"),
    ],
)
def test_bad_replies(tmp_path, mutate, field, value):
    data = json.loads(LLAMA.read_text())
    mutate(data)
    p = _write(tmp_path, data)
    with pytest.raises(DataError) as err:
        import_ollama_show(p)
    assert (err.value.file, err.value.field, err.value.value) == (str(p), field, value)


def test_unparseable_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        import_ollama_show(p)
    for payload in ([1], "x"):
        with pytest.raises(DataError, match="expected a JSON object"):
            import_ollama_show(_write(tmp_path, payload))
    with pytest.raises(DataError, match="Ollama returned an error"):
        import_ollama_show(_write(tmp_path, {"error": "model 'x' not found"}))


# --- live path: the official client against a loopback server replaying the reply -----------


def test_live_show_via_official_client(ollama_url, ollama_requests):
    spec = import_ollama_model("llama3.1:8b", url=ollama_url)
    assert ollama_requests == [{"path": "/api/show", "body": {"model": "llama3.1:8b"}}]
    assert spec.id == "llama3.1-8b" and spec.name == "llama3.1:8b"
    assert spec.params_total == 8_030_261_248 and spec.n_layers == 32
    assert ollama_url in spec.source and spec.origin == "import:ollama"


def test_live_unknown_model(ollama_url):
    with pytest.raises(DataError) as err:
        import_ollama_model("nope:1b", url=ollama_url)
    assert (err.value.field, err.value.value) == ("model", "nope:1b")
    assert "not found" in err.value.problem


def test_live_nothing_listening():
    with pytest.raises(DataError) as err:
        import_ollama_model("llama3.1:8b", url="http://127.0.0.1:9")
    assert err.value.field == "(connection)"
