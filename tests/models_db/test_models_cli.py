"""`forgeplanner models list|show|import` end to end through the real entry point and the real
user database (SQLite under the test's FORGEPLANNER_HOME)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from models_db import load_models

DATA = Path(__file__).parent / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def test_list_json_has_every_catalog_model(capsys):
    rows = run_json(capsys, "models", "list")["models"]
    assert [r["id"] for r in rows] == list(load_models().ids())
    first = rows[0]
    assert {
        "id",
        "name",
        "family",
        "params_total",
        "params_active",
        "n_layers",
        "max_context",
        "attention",
        "moe",
        "license",
        "origin",
        "source",
    } <= set(first)


def test_list_filters(capsys):
    moe = run_json(capsys, "models", "list", "--moe")["models"]
    assert moe and all(r["moe"] for r in moe)
    assert "gpt-oss-20b" in {r["id"] for r in moe} and "llama-3.1-8b" not in {r["id"] for r in moe}
    fam = run_json(capsys, "models", "list", "--family", "gemma-3")["models"]
    assert {r["id"] for r in fam} == {
        "gemma-3-270m",
        "gemma-3-1b",
        "gemma-3-4b",
        "gemma-3-12b",
        "gemma-3-27b",
    }
    ctx = run_json(capsys, "models", "list", "--min-context", "200000")["models"]
    assert ctx and all(r["max_context"] >= 200000 for r in ctx)
    assert "glm-5" not in {r["id"] for r in ctx}  # unknown context never passes a filter
    lic = run_json(capsys, "models", "list", "--license", "mit", "--dense")["models"]
    assert "phi-4" in {r["id"] for r in lic} and all(not r["moe"] for r in lic)


def test_list_table_shows_unknown(capsys):
    rc, out, _ = run(capsys, "models", "list")
    assert rc == 0
    glm = next(line for line in out.splitlines() if line.startswith("glm-5 "))
    assert "unknown" in glm


def test_show(capsys):
    model = run_json(capsys, "models", "show", "gpt-oss-20b")["model"]
    assert model["native_quant"] == "MXFP4" and model["attention"]["sliding_window"] == 128
    rc, out, _ = run(capsys, "models", "show", "qwen3-next-80b-a3b")
    assert rc == 0 and "recurrent state" in out and "75.4 MiB" in out
    rc, _, err = run(capsys, "models", "show", "llama-9")
    assert rc == 2 and "unknown model 'llama-9'" in err and "llama-3.1-8b" in err


def test_import_each_kind_and_save(capsys, tmp_path, tiny_gguf):
    cfg = run_json(capsys, "models", "import", str(DATA / "hf" / "phi-3-mini.json"))
    assert cfg["saved"] and cfg["saved_as"] == "phi-3-mini-4k-instruct"
    gg = run_json(capsys, "models", "import", str(tiny_gguf), "--id", "tiny-one")
    assert gg["saved_as"] == "tiny-one" and gg["model"]["gguf_file_type"] == "Q8_0"
    assert len(gg["model"]["tensors"]) == 21
    ol = run_json(capsys, "models", "import", str(DATA / "ollama" / "show_qwen3-30b-a3b.json"))
    # Its name (Qwen3 + 30B-A3B) is a catalog id, which an import never shadows.
    assert ol["model"]["family"] == "qwen3moe" and ol["saved_as"] == "qwen3-30b-a3b-import"
    rows = run_json(capsys, "models", "list")["models"]
    origins = {r["id"]: r["origin"] for r in rows}
    assert origins["tiny-one"] == "import:gguf"
    assert origins["phi-3-mini-4k-instruct"] == "import:config.json"
    assert origins["qwen3-30b-a3b-import"] == "import:ollama"
    shown = run_json(capsys, "models", "show", "tiny-one")["model"]
    assert shown["n_layers"] == 2 and shown["tensors"][0]["name"] == "token_embd.weight"
    assert "tiny-one" not in {
        r["id"] for r in run_json(capsys, "models", "list", "--catalog-only")["models"]
    }


def test_import_no_save(capsys):
    out = run_json(capsys, "models", "import", str(DATA / "hf" / "mistral-7b.json"), "--no-save")
    assert out["saved"] is False and out["saved_as"] is None
    assert "mistral-7b-instruct-v0.3" not in {
        r["id"] for r in run_json(capsys, "models", "list")["models"]
    }


def test_import_from_ollama_url(capsys, ollama_url):
    out = run_json(capsys, "models", "import", "--ollama", "llama3.1:8b", "--url", ollama_url)
    assert out["model"]["params_total"] == 8_030_261_248 and out["saved_as"] == "llama3.1-8b"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"GGUF" + bytes(10), "truncated"),
        (b"not json at all", "neither GGUF nor JSON"),
        (b'{"hello": 1}', "neither a config.json"),
        (b'{"model_type": "llama"}', "num_hidden_layers"),
    ],
)
def test_bad_imports_exit_2_with_one_line_and_save_nothing(capsys, tmp_path, content, needle):
    path = tmp_path / "thing.bin"
    path.write_bytes(content)
    before = run_json(capsys, "models", "list")["models"]
    rc, out, err = run(capsys, "models", "import", str(path))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and str(path) in err
    assert run_json(capsys, "models", "list")["models"] == before


def test_import_usage_errors(capsys, tmp_path):
    rc, _, err = run(capsys, "models", "import")
    assert rc == 2 and "PATH or --ollama" in err
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGML" + bytes(100))
    rc, _, err = run(capsys, "models", "import", str(bad))
    assert rc == 2 and "magic" in err
