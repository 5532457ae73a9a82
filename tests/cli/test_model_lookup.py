"""A model the user imported (`forgeplanner models import`) is a valid `--model ID` for every
command that sizes a model, not only for `models list|show`.

A regression: `models import config.json --id my-llama` once saved the model and
`models list` showed it, but `estimate --model my-llama` said "unknown model 'my-llama'"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.cli.main import main

CONFIG = Path(__file__).parents[1] / "models_db" / "data" / "hf" / "llama-3.1-8b.json"
MACHINE = "mac-studio-m2-max-30c-64gb"


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def imported(capsys) -> str:
    out = run_json(capsys, "models", "import", str(CONFIG), "--id", "my-llama")
    assert out["saved_as"] == "my-llama"
    return "my-llama"


def test_estimate_takes_an_imported_model_and_sizes_it_like_the_shipped_one(capsys, imported):
    mine = run_json(capsys, "estimate", "--model", imported, "--machine", MACHINE,
                    "--quant", "Q4_K_M")  # fmt: skip
    shipped = run_json(capsys, "estimate", "--model", "llama-3.1-8b", "--machine", MACHINE,
                       "--quant", "Q4_K_M")  # fmt: skip
    assert mine["model"] == imported
    # Same published config.json -> same architecture -> the same memory and speed.
    assert mine["memory"] == shipped["memory"]
    assert mine["decode_tps"] == shipped["decode_tps"]


def test_cluster_recommend_and_platform_take_an_imported_model(capsys, imported):
    c = run_json(capsys, "cluster", "--model", imported, "--quant", "Q4_K_M",
                 "--node", "mac-mini-m4-pro-20c-64gbx2", "--link", "tb5")  # fmt: skip
    assert c["model_id"] == imported and c["verdict"] == "fits"
    r = run_json(capsys, "recommend", "--model", imported, "--context", "8192",
                 "--quant-min", "Q4_K_M")  # fmt: skip
    assert r["options"] and r["constraints"]["models"] == [imported]
    p = run_json(capsys, "platform", "layout", "--node", "a=mac-mini-2018-i7-32gb",
                 "--node", "b=mac-mini-2018-i5-16gb", "--node", "ai=mac-mini-m4-pro-20c-64gb",
                 "--model", imported, "--quant", "Q4_K_M")  # fmt: skip
    assert "ai" in p["assignments"].values() and p["unplaced"] == []


def test_an_unknown_id_still_lists_the_shipped_models_first(capsys, imported):
    assert main(["estimate", "--model", "no-such-model", "--machine", MACHINE]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("forgeplanner: error: unknown model 'no-such-model'; valid: llama-2-7b")
    assert "\n" not in err
