"""Models for one machine: `forgeplanner.services.models_fit` and `forgeplanner models fit`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import models_db
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.engine.fit import best_quant_that_fits
from forgeplanner.host import host_from_config
from forgeplanner.services.models_fit import fit_models, fit_one, model_uses

ROOT = Path(__file__).resolve().parents[2]
MACHINE = "mac-mini-m4-pro-20c-64gb"


@pytest.fixture(scope="module")
def ranked():
    return fit_models(models_db.load_models().all(), host_from_config(MACHINE), context=16384)


def test_every_model_is_ranked_fitting_ones_first(ranked):
    assert len(ranked.models) == len(models_db.load_models())
    order = {"fits": 0, "fits-with-raised-limit": 1, "does-not-fit": 2}
    verdicts = [order[m.verdict] for m in ranked.models]
    assert verdicts == sorted(verdicts)
    fits = [m for m in ranked.models if m.verdict == "fits"]
    assert fits and all(m.best_quant and m.decode_tps for m in fits)
    assert all(
        m.best_quant is None and m.reason for m in ranked.models if m.verdict == "does-not-fit"
    )


def test_best_quant_agrees_with_the_engine_and_speed_is_context_true(ranked):
    spec = models_db.load_models().get("llama-3.3-70b")
    host = host_from_config(MACHINE)
    m = next(x for x in ranked.models if x.model_id == "llama-3.3-70b")
    opts = RunOptions(context=16384, depth=16384, prompt_tokens=16384)
    assert m.best_quant == best_quant_that_fits(spec, host, opts) == "Q4_K_M"
    e = estimate(spec, m.best_quant, host, opts)
    assert m.decode_tps == pytest.approx(e.speed.decode_tps)
    assert m.decode_tps_empty > m.decode_tps
    assert m.max_context == e.max_context_that_fits < m.max_context_raised
    assert m.quality.startswith("+2.8 % perplexity") and m.licence == "Llama 3.3 Community License"


def test_min_decode_picks_a_faster_quantization_or_says_why():
    spec = models_db.load_models().get("llama-3.3-70b")
    host = host_from_config(MACHINE)
    slow = fit_one(spec, host, 16384)
    fast = fit_one(spec, host, 16384, min_decode_tps=slow.decode_tps + 0.5)
    assert fast.best_quant != slow.best_quant and fast.decode_tps >= slow.decode_tps + 0.5
    assert "faster quantizations only" in fast.reason
    none = fit_one(spec, host, 16384, min_decode_tps=500)
    assert none.best_quant is None and "below 500 tok/s" in none.reason


def test_uses():
    db = models_db.load_models()
    assert model_uses(db.get("qwen2.5-coder-32b")) == ("chat", "code")
    assert model_uses(db.get("deepseek-r1")) == ("chat", "reasoning")
    assert model_uses(db.get("llama-3.3-70b")) == ("chat",)
    assert model_uses(db.get("qwen2.5-7b")) == ()  # a base model


def test_cli_json_and_table():
    out = subprocess.run(
        [sys.executable, "-m", "forgeplanner", "models", "fit", "--machine", MACHINE,
         "--context", "16384", "--min-decode-tps", "8", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["context"] == 16384 and doc["min_decode_tps"] == 8 and doc["ranking"]
    chosen = [m for m in doc["models"] if m["best_quant"]]
    assert chosen and all(m["decode_tps"] >= 8 for m in chosen)
    table = subprocess.run(
        [sys.executable, "-m", "forgeplanner", "models", "fit", "--machine", MACHINE],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert table.returncode == 0 and "best quant" in table.stdout and "ranked:" in table.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "forgeplanner", "models", "fit", "--machine", "nope"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("forgeplanner: error: unknown configuration 'nope'")
    assert bad.stderr.count("\n") == 1
