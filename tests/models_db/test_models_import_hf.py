"""config.json importer. The fixtures in data/hf/ carry the published config fields of each model
as copied in the sourced reference table (values cited there per row); the importer's computed
parameter counts must match the table, which was checked against vendor cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.errors import DataError
from models_db import load_models
from models_db.importers import import_hf_config

HF = Path(__file__).parent / "data" / "hf"


@pytest.mark.parametrize("path", sorted(HF.glob("*.json")), ids=lambda p: p.stem)
def test_import_matches_catalog(path):
    spec = import_hf_config(path)
    ref = load_models().get(path.stem)
    assert abs(spec.params_total - ref.params_total) <= 500_000
    if ref.params_active is None:
        assert spec.params_active is None
    else:
        assert spec.params_active is not None
        assert abs(spec.params_active - ref.params_active) <= 500_000
    for field in (
        "n_layers",
        "hidden_size",
        "n_heads",
        "n_kv_heads",
        "head_dim",
        "tie_word_embeddings",
        "max_context",
        "moe",
    ):
        assert getattr(spec, field) == getattr(ref, field), field
    a, r = spec.attention, ref.attention
    assert (a.kind, a.sliding_window, a.sliding_layers) == (
        r.kind,
        r.sliding_window,
        r.sliding_layers,
    )
    assert (a.mla_kv_lora_rank, a.mla_qk_rope_head_dim, a.mla_q_lora_rank) == (
        r.mla_kv_lora_rank,
        r.mla_qk_rope_head_dim,
        r.mla_q_lora_rank,
    )
    assert a.attention_layers == r.attention_layers
    assert a.recurrent_state_bytes_per_seq == r.recurrent_state_bytes_per_seq
    assert spec.origin == "import:config.json" and "sha256" in spec.source
    assert spec.license == "" and "license" in spec.extra["unknown"]  # type: ignore[operator]


def test_gemma3_text_config_defaults_are_reported():
    spec = import_hf_config(HF / "gemma-3-4b.json")
    assert spec.head_dim == 256 and spec.n_heads == 8 and spec.n_kv_heads == 4
    applied = spec.extra["defaults_applied"]
    assert isinstance(applied, dict) and applied["head_dim"] == 256


def test_directory_and_explicit_id(tmp_path):
    (tmp_path / "config.json").write_bytes((HF / "mistral-7b.json").read_bytes())
    spec = import_hf_config(tmp_path, model_id="my-mistral")
    assert spec.id == "my-mistral" and spec.hf_repo == "mistralai/Mistral-7B-Instruct-v0.3"
    assert import_hf_config(HF / "mistral-7b.json").id == "mistral-7b-instruct-v0.3"


def _mutated(tmp_path: Path, base: str, **changes: object) -> Path:
    data = json.loads((HF / f"{base}.json").read_text())
    for key, value in changes.items():
        if value is _DELETE:
            data.pop(key)
        else:
            data[key] = value
    p = tmp_path / "config.json"
    p.write_text(json.dumps(data))
    return p


_DELETE = object()


@pytest.mark.parametrize(
    ("base", "changes", "field", "value"),
    [
        ("llama-3.1-8b", {"model_type": "mamba2"}, "model_type", "mamba2"),
        (
            "llama-3.1-8b",
            {"model_type": _DELETE, "architectures": ["FooForCausalLM"]},
            "architectures",
            "FooForCausalLM",
        ),
        ("llama-3.1-8b", {"num_hidden_layers": -3}, "num_hidden_layers", -3),
        ("llama-3.1-8b", {"num_hidden_layers": 10**12}, "num_hidden_layers", 10**12),
        ("llama-3.1-8b", {"hidden_size": "4096"}, "hidden_size", "4096"),
        ("llama-3.1-8b", {"num_key_value_heads": 7}, "num_key_value_heads", 7),
        ("llama-3.1-8b", {"intermediate_size": _DELETE}, "intermediate_size", None),
        ("llama-3.1-8b", {"tie_word_embeddings": "yes"}, "tie_word_embeddings", "yes"),
        ("deepseek-v3", {"kv_lora_rank": None}, "kv_lora_rank", None),
        ("gpt-oss-20b", {"layer_types": ["full_attention"]}, "layer_types", ["full_attention"]),
        ("qwen3-next-80b-a3b", {"linear_num_key_heads": 0}, "linear_num_key_heads", 0),
        ("gemma-3-4b", {"text_config": 5}, "text_config", 5),
    ],
)
def test_bad_configs_name_file_field_value(tmp_path, base, changes, field, value):
    p = _mutated(tmp_path, base, **changes)
    with pytest.raises(DataError) as err:
        import_hf_config(p)
    assert err.value.file == str(p)
    assert err.value.field.endswith(field)
    assert err.value.value == value


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "line 1 column 2"),
        (b"[1, 2]", "(top level)"),
        (b"\xff\xfe\x00", "byte 0"),
        (b"[" * 100_000, "line 1 column 65"),  # refused before decoding: nested deeper than 64
    ],
)
def test_unparseable_config(tmp_path, content, field):
    p = tmp_path / "config.json"
    p.write_bytes(content)
    with pytest.raises(DataError) as err:
        import_hf_config(p)
    assert err.value.field == field


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        import_hf_config(tmp_path / "nope.json")


@pytest.mark.parametrize("model_id", ["qwen3.5-9b", "qwen3.5-35b-a3b"])
def test_qwen35_multimodal_configs_match_the_catalog(model_id):
    """Qwen3.5 configs (text_config of a *ForConditionalGeneration; values of the catalog rows)
    import as Gated DeltaNet hybrids with the catalog's params and per-sequence state."""
    from models_db import load_models

    cat = load_models().get(model_id)
    spec = import_hf_config(HF / f"{model_id}.json")
    assert abs(spec.params_total - cat.params_total) <= 500_000
    if cat.params_active is not None:
        assert spec.params_active is not None
        assert abs(spec.params_active - cat.params_active) <= 500_000
    a = spec.attention
    assert a.kind == "hybrid" and a.attention_layers == cat.attention.attention_layers
    assert a.recurrent_state_bytes_per_seq == cat.attention.recurrent_state_bytes_per_seq
    assert (
        a.recurrent is not None and a.recurrent.bytes_per_seq() == a.recurrent_state_bytes_per_seq
    )
    assert spec.extra["attention.recurrent"] == cat.extra["attention.recurrent"]


@pytest.mark.parametrize(
    "model_id", ["gemma-4-e2b", "gemma-4-e4b", "gemma-4-31b", "gemma-4-26b-a4b"]
)
def test_gemma4_configs_carry_the_new_layout(model_id):
    """The released Gemma 4 config.json files (as copied in maxtext, see data/README.md):
    global layers' own head width and KV heads, K = V, KV-shared tail, per-layer embeddings and
    the 26B's experts beside its dense MLP, all as the catalog rows carry them."""
    cat = load_models().get(model_id)
    spec = import_hf_config(HF / f"{model_id}.json")
    a, r = spec.attention, cat.attention
    assert a == r  # sliding layers, window, global_head_dim 512, global KV heads, K = V, sharing
    assert a.global_head_dim == 512 and spec.head_dim == 256
    assert spec.per_layer_embedding == cat.per_layer_embedding
    assert spec.moe == cat.moe
    if model_id == "gemma-4-26b-a4b":
        assert spec.moe is not None and spec.moe.shared_expert_ffn == 2112
        assert (a.global_n_kv_heads, a.global_v_is_k) == (2, True)
    if model_id == "gemma-4-e2b":
        assert a.kv_shared_layers == 20 and spec.per_layer_embedding is not None
        assert spec.per_layer_embedding.params == 262_144 * 35 * 256
    assert "count_gemma4_params" in str(spec.extra["params_computed_from"])
