"""The shipped model database: contents, parsed patterns, validation of bad data files."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import pytest

from forgeplanner.errors import DataError, NotFoundError
from models_db import load_models, read_models_file, reference_csv, spec_from_dict, spec_to_dict
from models_db.loader import DATA_FILE
from models_db.reference_csv import CSV_FILE, generate

REFERENCE_CSV = CSV_FILE

REQUIRED_IDS = (
    "llama-2-7b llama-3.1-8b llama-3.2-1b llama-3.2-3b llama-3.1-70b llama-3.3-70b llama-3.1-405b "
    "qwen2.5-7b qwen2.5-14b qwen2.5-32b qwen2.5-72b qwen3-8b qwen3-14b qwen3-32b qwen3-30b-a3b "
    "qwen3-235b-a22b gpt-oss-20b gpt-oss-120b gemma-3-4b gemma-3-12b gemma-3-27b mistral-7b "
    "mixtral-8x7b deepseek-v3 deepseek-r1-distill-llama-70b phi-4"
).split()


def test_required_ids_and_size():
    db = load_models()
    assert len(db.all()) >= 40
    missing = [i for i in REQUIRED_IDS if i not in db]
    assert missing == []
    assert db.ids() == tuple(m.id for m in db.all())
    assert load_models() is db  # cached


def test_unknown_id_lists_valid_ids():
    with pytest.raises(NotFoundError) as err:
        load_models().get("llama-9")
    assert "llama-3.1-8b" in err.value.valid


def test_every_model_has_a_source_and_round_trips():
    for m in load_models().all():
        assert m.source.strip(), m.id
        assert spec_from_dict(spec_to_dict(m), "roundtrip") == m


def test_data_file_matches_reference_table():
    """The shipped file is exactly what the generator makes from the reviewed table (nothing
    hand-edited out of sync); and the headline numbers match the table row by row."""
    assert generate(REFERENCE_CSV) == DATA_FILE.read_text(encoding="utf-8")
    db = load_models()
    with REFERENCE_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(db.all()) >= 120
    for row in rows:
        m = db.get(row["id"])
        assert m.params_total == round(float(row["params_total_b"]) * 1e9)
        assert m.n_layers == int(row["n_layers"])
        assert m.vocab_size == int(row["vocab_size"])
        assert m.attention.kind in (row["attention"], "full")


def test_hand_edit_of_generated_file_is_caught(tmp_path, monkeypatch, capsys):
    """`python -m models_db.reference_csv --check` (and the test above) refuse a models.toml that
    was edited by hand instead of regenerated from models.csv."""
    edited = tmp_path / "models.toml"
    text = DATA_FILE.read_text(encoding="utf-8")
    edited.write_text(text.replace("n_layers = 80", "n_layers = 81", 1), encoding="utf-8")
    monkeypatch.setattr(reference_csv, "TOML_FILE", edited)
    assert reference_csv.main(["--check"]) == 1
    assert "hand-edited" in capsys.readouterr().out
    edited.write_text(text, encoding="utf-8")
    assert reference_csv.main(["--check"]) == 0


def test_every_model_has_source_licence_and_release_date_or_a_reason():
    db = load_models()
    complete = 0
    for m in db.all():
        unknown = m.extra.get("unknown", {})
        assert m.source.strip() and m.extra.get("review") in ("primary", "secondary", "unverified")
        assert m.license or unknown.get("license"), m.id
        assert m.release_date or unknown.get("release_date"), m.id
        if m.license:
            assert m.extra.get("license_source") or "icen" in m.source, m.id
        if m.release_date:
            assert m.extra.get("release_date_source"), m.id
        complete += bool(m.license and m.release_date)
    # The issue asks for at least 120 models each with source, licence and release date; 122
    # of the 125 rows have both (the 3 without one are listed, with reasons, in docs/models.md).
    # This floor keeps what was sourced from silently regressing.
    assert complete >= 122, f"only {complete} models have both a licence and a release date"


def test_gemma3_sliding_pattern():
    db = load_models()
    for mid, window in (("gemma-3-1b", 512), ("gemma-3-4b", 1024), ("gemma-3-27b", 1024)):
        m = db.get(mid)
        assert m.attention.kind == "sliding" and m.attention.sliding_window == window
        assert m.attention.sliding_layers == tuple(i for i in range(m.n_layers) if (i + 1) % 6 != 0)
    assert len(db.get("gemma-3-27b").attention.sliding_layers) == 62 - 10


def test_gpt_oss_even_layers_slide_and_native_mxfp4():
    m = load_models().get("gpt-oss-120b")
    assert m.attention.sliding_window == 128
    assert m.attention.sliding_layers == tuple(range(0, 36, 2))
    assert m.native_quant == "MXFP4"
    assert m.moe is not None and (m.moe.n_experts, m.moe.experts_per_token) == (128, 4)
    assert m.params_total == 116_829_000_000 and m.params_active == 5_133_000_000


def test_llama4_chunked_and_maverick_interleave():
    db = load_models()
    scout, maverick = db.get("llama-4-scout"), db.get("llama-4-maverick")
    assert scout.attention.chunked and scout.attention.sliding_window == 8192
    assert len(scout.attention.sliding_layers) == 36 and 3 not in scout.attention.sliding_layers
    assert maverick.moe is not None and maverick.moe.interleave_step == 2
    assert scout.moe is not None and scout.moe.interleave_step == 1


def test_mla_fields():
    m = load_models().get("deepseek-v3")
    a = m.attention
    assert (a.kind, a.mla_kv_lora_rank, a.mla_qk_rope_head_dim) == ("mla", 512, 64)
    assert (a.mla_qk_nope_head_dim, a.mla_v_head_dim, a.mla_q_lora_rank) == (128, 128, 1536)
    assert m.moe is not None and m.moe.first_dense_layers == 3 and m.moe.shared_experts == 1
    assert load_models().get("deepseek-v3.2").attention.indexer_head_dim == 128


def test_hybrid_layers_and_recurrent_state():
    db = load_models()
    nxt = db.get("qwen3-next-80b-a3b")
    assert nxt.attention.attention_layers == tuple(range(3, 48, 4))
    # README note: conv 24,576 + recurrent 524,288 elements per layer, F32, 36 layers (~75 MiB).
    assert nxt.attention.recurrent_state_bytes_per_seq == (24_576 + 524_288) * 4 * 36
    big = db.get("qwen3.5-397b-a17b")
    assert big.attention.recurrent_state_bytes_per_seq == (36_864 + 1_048_576) * 4 * 45


def test_unknowns_are_unknown_with_reasons():
    db = load_models()
    glm = db.get("glm-5")
    assert glm.max_context is None and "max_context" in glm.extra["unknown"]
    assert glm.license == "MIT" and "Gallery" in str(glm.extra["license_source"])
    assert "n_kv_heads" in glm.extra["derived"]
    glm52 = db.get("glm-5.2")
    assert glm52.license == "" and glm52.extra["unknown"]["license"]
    assert db.get("deepseek-v3.1").max_context is None
    phi3 = db.get("phi-3-mini")
    assert phi3.attention.kind == "full" and phi3.attention.sliding_window is None
    assert phi3.extra["declared_sliding_window"] == 2047


def test_dense_active_params_exclude_input_embedding_when_untied():
    m = load_models().get("llama-3.1-8b")
    assert m.active_params == m.params_total - 128256 * 4096


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "models.toml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = DATA_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            "n_kv_heads = 8\nhead_dim = 128\nvocab_size = 128_256\ntie_word_embeddings = false\n"
            "max_context = 131_072",
            "n_kv_heads = 7\nhead_dim = 128\nvocab_size = 128_256\n"
            "tie_word_embeddings = false\nmax_context = 131_072",
            "n_kv_heads",
        ),
        ("params_total = 6_738_000_000", 'params_total = "6.7B"', "params_total"),
        ("tie_word_embeddings = false", "tie_word_embeddings = 0", "tie_word_embeddings"),
        ('kind = "sliding"', 'kind = "slidng"', "attention.kind"),
        ("sliding_window = 128", "sliding_window = -5", "attention.sliding_window"),
        ("sliding_layers = [0, 2,", "sliding_layers = [999, 2,", "attention.sliding_layers"),
        ("experts_per_token = 4", "experts_per_token = 400", "moe.experts_per_token"),
        ('id = "phi-4"', 'id = "Phi 4!"', "id"),
        ("n_layers = 32", "n_layrs = 32", "n_layrs"),
    ],
)
def test_bad_data_file_gives_one_dataerror(tmp_path, old, new, field):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(DataError) as err:
        read_models_file(path)
    assert err.value.file == str(path)
    assert err.value.field.endswith(field)


def test_syntax_error_and_duplicates(tmp_path):
    with pytest.raises(DataError, match="not valid TOML"):
        read_models_file(_write(tmp_path, "[[models]\nid = "))
    dup = GOOD.replace('id = "llama-2-13b"', 'id = "llama-2-7b"')
    with pytest.raises(DataError, match="duplicate model id"):
        read_models_file(_write(tmp_path, dup))
    with pytest.raises(DataError, match="cannot read"):
        read_models_file(tmp_path / "missing.toml")


def test_unknown_without_reason_is_refused(tmp_path):
    text = GOOD.replace(
        'max_context = "not found in the sources read (reference table marks it INCOMPLETE)"',
        'max_context = ""',
        1,
    )
    with pytest.raises(DataError, match="needs a reason"):
        read_models_file(_write(tmp_path, text))


def test_shipped_file_is_plain_toml():
    data = tomllib.loads(GOOD)
    assert {m["id"] for m in data["models"]} == set(load_models().ids())


def test_new_layouts_survive_the_user_database_codec():
    """Every catalog model (Gemma 4 global heads, PLE tables, Mamba-2/KDA state, aliases)
    round-trips through the JSON codec the user database stores models with."""
    from forgeplanner.store.codec import model_from_json, model_to_json

    for m in load_models().all():
        assert model_from_json(json.loads(json.dumps(model_to_json(m)))) == m, m.id
