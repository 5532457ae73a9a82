"""Model names as people type them resolve wherever a model id is accepted: the database's
aliases (HF repo ids, Ollama tags, display names), case-insensitively."""

from __future__ import annotations

import json

import pytest

from forgeplanner.cli.main import main
from forgeplanner.errors import DataError, NotFoundError
from forgeplanner.services.models import find_model
from models_db import load_models, read_models_file
from models_db.loader import DATA_FILE

# (typed name, canonical id): the names the issue lists plus one of each kind.
TYPED = [
    ("Qwen3-Coder-30B-A3B", "qwen3-coder-30b-a3b"),
    ("qwen3-coder:30b", "qwen3-coder-30b-a3b"),
    ("llama3.3:70b", "llama-3.3-70b"),
    ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"),
    ("META-LLAMA/LLAMA-3.3-70B-INSTRUCT", "llama-3.3-70b"),
    ("Qwen/Qwen3.5-35B-A3B", "qwen3.5-35b-a3b"),
    ("gemma4:26b", "gemma-4-26b-a4b"),
    ("google/gemma-4-31B-it", "gemma-4-31b"),
    ("Qwen/Qwen3-Coder-Next", "qwen3-coder-next"),
    ("  GLM-4.7-Flash ", "glm-4.7-flash"),
    ("LLAMA-3.1-8B", "llama-3.1-8b"),
    ("Mistral Large", "mistral-large-2411"),
    ("mistral-large:123b", "mistral-large-2411"),
]


@pytest.mark.parametrize(("typed", "model_id"), TYPED)
def test_typed_names_resolve_to_the_model(typed, model_id):
    db = load_models()
    assert typed in db
    assert db.get(typed).id == model_id
    assert find_model(typed).id == model_id


def test_every_alias_of_every_model_resolves_to_it():
    db = load_models()
    n = 0
    for m in db.all():
        for alias in (m.hf_repo, *m.aliases):
            if alias:
                assert db.get(alias) is m and db.get(alias.upper()) is m, (alias, m.id)
                n += 1
    assert n > 300  # aliases are real data, not a handful


def test_unknown_name_still_lists_valid_ids():
    with pytest.raises(NotFoundError) as err:
        find_model("qwen9:1t")
    assert "qwen3-coder-30b-a3b" in err.value.valid


def test_cli_commands_accept_aliases(capsys):
    assert main(["models", "show", "Qwen3-Coder-30B-A3B", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["id"] == "qwen3-coder-30b-a3b"
    rc = main(
        ["estimate", "--model", "llama3.3:70b", "--machine", "mac-studio-m4-max-40c-128gb",
         "--quant", "Q4_K_M", "--context", "16384", "--json"]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and "llama-3.3-70b" in json.dumps(out)


def test_alias_naming_two_models_is_refused(tmp_path):
    text = DATA_FILE.read_text(encoding="utf-8")
    # give llama-3.1-8b an alias that already names llama-3.3-70b
    bad = text.replace(
        'aliases = ["meta-llama/Llama-3.1-8B-Instruct"',
        'aliases = ["LLAMA3.3:70b", "meta-llama/Llama-3.1-8B-Instruct"',
        1,
    )
    assert bad != text
    path = tmp_path / "models.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_models_file(path)
    # one line naming the file, the field and the alias; the second model to claim it is named
    assert ".aliases" in str(err.value) and "llama3.3:70b" in str(err.value).lower()
    assert "llama-3.1-8b" in str(err.value) and "llama-3.3-70b" in str(err.value)
