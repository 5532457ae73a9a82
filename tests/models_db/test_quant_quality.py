"""Published quality cost per quantization type, with its source; unknown stays unknown."""

from __future__ import annotations

import pytest

from forgeplanner.engine.quant import quants_for
from models_db import load_models
from models_db.quant_quality import low_bits_warning, quality_of


def test_published_figures_with_their_source():
    q = quality_of("Q4_K_M")
    assert q.known and q.ppl_delta == pytest.approx(0.175482) and q.kld == pytest.approx(0.031273)
    assert "llama.cpp" in q.source and "f364eb6f" in q.as_of
    assert q.summary() == "+2.8 % perplexity, KLD 0.031"
    assert quality_of("q8_0").ppl_delta < quality_of("Q6_K").ppl_delta < q.ppl_delta


# Types newer than the published table (llama.cpp's perplexity README at the cited revision):
# no figures, shown as unknown, never guessed.
NEWER_THAN_THE_TABLE = {"NVFP4", "MXFP4"}


def test_every_gguf_quant_the_engine_offers_has_figures_and_mlx_is_unknown():
    m = load_models().get("llama-3.1-8b")
    offered = [q.name for q in quants_for(m, "llama.cpp")]
    assert len([n for n in offered if n not in NEWER_THAN_THE_TABLE]) >= 20
    for name in offered:
        q = quality_of(name)
        if name in NEWER_THAN_THE_TABLE:
            assert not q.known and q.summary().startswith("unknown"), name
        else:
            assert q.known, name
    mlx = quality_of("MLX-4bit")
    assert not mlx.known and mlx.summary().startswith("unknown")


def test_warning_below_three_bits():
    assert low_bits_warning("Q4_K_M", 4.5) is None
    assert low_bits_warning("IQ3_XXS", 3.0625) is None
    text = low_bits_warning("IQ2_XXS", 2.0625)
    assert text.startswith("IQ2_XXS keeps 2.0625 bits per weight, below 3")
    assert "+126.1 % perplexity" in text
