"""The model service (forgeplanner.services.models): one lookup for every `--model ID`, and
import files read and saved under one rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeplanner.errors import DataError, NotFoundError
from forgeplanner.services.models import (
    detect_kind,
    find_model,
    list_user_models,
    read_model_file,
    save_user_model,
)
from models_db import load_models

CONFIG = Path(__file__).parents[1] / "models_db" / "data" / "hf" / "llama-3.1-8b.json"


def test_shipped_models_are_found_first():
    assert find_model("llama-3.1-8b") is load_models().get("llama-3.1-8b")


def test_an_imported_model_is_found_and_never_shadows_a_shipped_one():
    spec, kind = read_model_file(CONFIG)
    assert kind == "config" and spec.n_layers == 32
    assert save_user_model(spec) == spec.id == "llama-3.1-8b-instruct"
    assert find_model(spec.id).n_layers == 32
    # Imported under a shipped id: saved beside it, and the shipped model is still found.
    same, _ = read_model_file(CONFIG, model_id="llama-3.1-8b")
    assert save_user_model(same) == "llama-3.1-8b-import"
    assert find_model("llama-3.1-8b") is load_models().get("llama-3.1-8b")
    assert sorted(m.id for m in list_user_models()) == [
        "llama-3.1-8b-import",
        "llama-3.1-8b-instruct",
    ]


def test_an_unknown_id_lists_the_shipped_ids_first():
    with pytest.raises(NotFoundError) as err:
        find_model("no-such-model")
    assert err.value.valid[: len(load_models().ids())] == list(load_models().ids())


def test_a_file_that_is_no_model_is_one_clear_line(tmp_path: Path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(DataError, match=r"neither a config\.json"):
        detect_kind(bad)
    fake = tmp_path / "x.gguf"
    fake.write_bytes(b"NOPE")
    with pytest.raises(DataError, match="must start with b'GGUF'"):
        read_model_file(fake)
