"""Speeds as the views show them, without Qt: the likely range of a point speed is the engine's
own band (the same numbers an estimate carries), the nearest published runs are the ones
`forgeplanner estimate` prints, with the runtime named for people."""

from __future__ import annotations

import pytest

import catalog
import models_db
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.host import host_from_config
from forgeplanner.viewstate.speed import (
    likely_range,
    published_runs,
    range_text,
    runtime_with_version,
    speed_with_range,
)

MINI = "mac-mini-m4-pro-20c-64gb"


@pytest.mark.parametrize(
    ("model_id", "quant", "runtime", "context"),
    [
        ("llama-3.3-70b", "Q4_K_M", "llama.cpp", 16384),
        ("qwen3-30b-a3b", "Q4_K_M", "llama.cpp", 4096),
        ("llama-3.1-8b", "MLX-4bit", "mlx", 1024),
    ],
)
def test_likely_range_of_a_point_speed_is_the_estimates_own(model_id, quant, runtime, context):
    spec = models_db.load_models().get(model_id)
    opts = RunOptions(context=context, depth=context, prompt_tokens=context, runtime=runtime)
    s = estimate(spec, quant, host_from_config(MINI), opts).speed
    moe = spec.moe is not None
    assert likely_range(s.decode_tps, runtime, "decode", moe, context) == pytest.approx(
        (s.decode_tps_low, s.decode_tps_high)
    )
    assert likely_range(s.prefill_tps, runtime, "prefill", moe, context) == pytest.approx(
        (s.prefill_tps_low, s.prefill_tps_high)
    )
    assert likely_range(None, runtime, "decode", moe, context) is None


def test_texts():
    assert range_text(2.43, 4.16) == "likely 2.4-4.2"
    assert range_text(None, 4.0) == ""
    assert speed_with_range(3.59, 2.43, 4.16) == "3.6 tok/s (likely 2.4-4.2)"
    assert speed_with_range(34.6, 24.4, 41.0, digits=0) == "35 tok/s (likely 24-41)"
    assert speed_with_range(None, 1.0, 2.0) == "unknown"
    assert runtime_with_version("llama.cpp", "b7315") == "llama.cpp b7315"
    assert runtime_with_version("lmstudio-gguf", "LM Studio 0.3.10") == (
        "LM Studio 0.3.10 (llama.cpp engine)"
    )
    assert runtime_with_version("mlx", None) == "MLX"


def test_published_runs_are_the_estimate_commands():
    from forgeplanner.calibration.published import for_estimate

    cat = catalog.load_catalog()
    spec = models_db.load_models().get("llama-3.3-70b")
    host = host_from_config(MINI)
    runs = published_runs(cat, host, "llama.cpp", spec, "Q4_K_M", n=3)
    found = for_estimate("M4 Pro", 20, "llama.cpp", spec.id, spec.active_params / 1e9, False,
                         n=3, quant="Q4_K_M")  # fmt: skip
    assert [(r.kind, r.tokens_per_s, r.source, r.date) for r in runs] == [
        (k, f["tokens_per_s"], f["source"], f.get("date") or "undated")
        for k in ("decode", "prefill")
        for f in found[k]
    ]
    assert all(r.chip.startswith("M") and r.source_title for r in runs)


def test_no_published_runs_for_a_machine_without_an_apple_chip():
    cat = catalog.load_catalog()
    intel = next(c for c in cat.configs.values() if not cat.chips[c.chip_id].is_apple_silicon)
    spec = models_db.load_models().get("llama-3.1-8b")
    assert published_runs(cat, host_from_config(intel.id), "llama.cpp", spec, "Q4_K_M") == ()
