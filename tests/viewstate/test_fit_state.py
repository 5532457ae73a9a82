"""FitState without Qt: the context-true numbers, the memory bar, the typed fields."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import catalog
import models_db
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.units import GiB, MiB
from forgeplanner.engine.estimate import estimate, speed_estimate
from forgeplanner.engine.fit import max_context_that_fits
from forgeplanner.host import host_from_config
from forgeplanner.viewstate.fit import (
    FitInputs,
    FitState,
    InputError,
    context_presets,
    gpu_limit_presets,
    parse_context,
    parse_gpu_limit,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state() -> FitState:
    return FitState(catalog.load_catalog(), models_db.load_models())


def test_headline_is_decode_with_the_context_filled_and_ttft_for_that_prompt(state):
    inputs = FitInputs(model_id="llama-3.3-70b", machine="mac-mini-m4-pro-20c-64gb",
                       quant="Q4_K_M", context=16384)  # fmt: skip
    o = state.compute(inputs)
    assert o.ok and o.verdict == "fits"
    host = host_from_config("mac-mini-m4-pro-20c-64gb")
    model = models_db.load_models().get("llama-3.3-70b")
    filled = estimate(model, "Q4_K_M", host,
                      RunOptions(context=16384, depth=16384, prompt_tokens=16384))  # fmt: skip
    empty = speed_estimate(model, "Q4_K_M", host, RunOptions(context=16384))
    assert o.estimate.speed.decode_tps == pytest.approx(filled.speed.decode_tps)
    assert o.estimate.options.depth == 16384 and o.estimate.options.prompt_tokens == 16384
    # with 16K in context decode is slower than empty, and the page says both
    assert filled.speed.decode_tps < empty.decode_tps
    f = filled.speed
    assert o.headline.decode == (
        f"{f.decode_tps:,.1f} tok/s (likely {f.decode_tps_low:,.1f}-{f.decode_tps_high:,.1f}) "
        "at 16K"
    )
    assert o.headline.decode_empty == f"{empty.decode_tps:,.1f} tok/s empty"
    assert "for a prompt of 16,384 tokens (16K)" in o.headline.ttft
    assert o.headline.ttft_empty.endswith("for 512 tokens")


def test_memory_bar_keeps_macos_beside_the_stack_not_above_physical(state):
    o = state.compute(FitInputs(model_id="llama-3.3-70b", machine="mac-mini-m4-pro-20c-64gb",
                                quant="Q4_K_M", context=8192))  # fmt: skip
    bar = o.memory
    assert sum(g for _, _, g in bar.parts) == pytest.approx(bar.used_gib)
    assert bar.limit_gib + bar.macos_gib == pytest.approx(bar.physical_gib)
    assert bar.used_gib <= bar.physical_gib  # nothing stacked above the physical line
    assert bar.raised_gib is None and bar.macos_label == "macOS keeps 16.0 GiB"


def test_raised_limit_shows_the_sysctl_and_what_macos_keeps(state):
    o = state.compute(FitInputs(model_id="llama-3.3-70b", machine="mac-mini-m4-pro-20c-64gb",
                                quant="Q6_K", context=8192))  # fmt: skip
    assert o.verdict == "fits-with-raised-limit"
    fit = o.estimate.fit
    assert o.sysctl == fit.sysctl_command and o.sysctl.startswith(
        "sudo sysctl iogpu.wired_limit_mb="
    )
    left = fit.memory_left_for_macos_bytes / GiB
    assert o.memory.raised_gib + o.memory.macos_gib == pytest.approx(o.memory.physical_gib)
    assert o.memory.macos_gib == pytest.approx(left)
    assert f"leaves macOS {left:,.1f} GiB" in o.sysctl_note


def test_largest_context_for_the_current_and_the_raised_limit(state):
    inputs = FitInputs(model_id="llama-3.3-70b", machine="mac-mini-m4-pro-20c-64gb",
                       quant="Q4_K_M", context=8192)  # fmt: skip
    o = state.compute(inputs)
    host = host_from_config("mac-mini-m4-pro-20c-64gb")
    model = models_db.load_models().get("llama-3.3-70b")
    opts = inputs.options(filled=True)
    now = max_context_that_fits(model, "Q4_K_M", host, opts)
    raised = max_context_that_fits(model, "Q4_K_M", host, opts, allow_raised_limit=True)
    assert raised > now
    assert o.largest_context == (
        f"{now:,} tokens (25K) at this limit; {raised:,} tokens with the limit raised"
    )


def test_low_bits_warning_and_quality_cost(state):
    o = state.compute(FitInputs(model_id="llama-3.1-8b", machine="mac-mini-m4-pro-20c-64gb",
                                quant="Q2_K", context=4096))  # fmt: skip
    assert o.warnings and o.warnings[0].startswith("Q2_K keeps 2.625 bits per weight, below 3")
    assert o.quality.startswith("+56.5 % perplexity, KLD 0.445")
    q4 = state.compute(dataclasses.replace(o.inputs, quant="Q4_K_M"))
    assert not any("bits per weight" in w for w in q4.warnings)
    mlx = state.compute(FitInputs(model_id="llama-3.1-8b", machine="mac-mini-m4-pro-20c-64gb",
                                  runtime="mlx", quant="MLX-4bit", context=4096))  # fmt: skip
    assert mlx.quality.startswith("unknown")


def test_engine_refusal_is_a_message_not_an_exception(state):
    o = state.compute(FitInputs(machine="mac-mini-m4-pro-20c-64gb", gpu_limit_mb=200_000))
    assert not o.ok and "more than the" in o.message and o.verdict is None


def test_a_raised_limit_goes_back_to_default_on_a_smaller_machine(state):
    big = FitInputs(machine="mac-studio-m2-ultra-76c-192gb", gpu_limit_mb=180_000)
    assert state.limit_fits_machine(big) == big
    small = state.limit_fits_machine(dataclasses.replace(big, machine="mac-mini-m4-pro-20c-64gb"))
    assert small.gpu_limit_mb is None
    assert state.compute(small).ok


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("16K", 16384), ("16k", 16384), ("16384", 16384), ("16,384", 16384), ("20000", 20000),
     ("max", 131072), ("128K", 131072), (" 4 k ", 4096), ("0.5K", 512)],
)  # fmt: skip
def test_context_takes_typed_values(text, tokens):
    assert parse_context(text, 131072) == tokens


@pytest.mark.parametrize("text", ["", "lots", "100", "200K", "-4K", "1e9"])
def test_bad_context_is_one_line_naming_the_field(text):
    with pytest.raises(InputError, match=r"^Context '") as err:
        parse_context(text, 131072)
    assert "\n" not in str(err.value)


def test_context_presets_stop_at_the_models_maximum():
    assert [n for _, n in context_presets(32768)] == [4096, 8192, 16384, 32768]
    assert context_presets(32768)[-1][0] == "max (32K)"
    assert [label for label, _ in context_presets(None)] == [
        "4K",
        "8K",
        "16K",
        "32K",
        "64K",
        "128K",
    ]
    assert context_presets(40960)[-1] == ("max (40K)", 40960)


@pytest.mark.parametrize(
    ("text", "mb"),
    [("default", None), ("", None), ("0", None), ("49152", 49152), ("49152 MB", 49152),
     ("48 GB", 49152), ("48G", 49152), ("57344 MB (most; leaves macOS 8 GB)", 57344)],
)  # fmt: skip
def test_gpu_limit_takes_default_and_megabytes(text, mb):
    assert parse_gpu_limit(text) == mb


@pytest.mark.parametrize("text", ["lots", "48 TB", "-5", "4.8.1"])
def test_bad_gpu_limit_is_one_line(text):
    with pytest.raises(InputError, match=r"^GPU limit '"):
        parse_gpu_limit(text)


def test_gpu_limit_presets_end_at_the_most_that_leaves_macos_its_reserve():
    presets = gpu_limit_presets(64 * GiB, 56 * GiB)
    assert presets[0] == ("default", None)
    assert presets[-1] == ("57344 MB (most; leaves macOS 8 GB)", 57344)
    assert all(mb is None or mb * MiB <= 56 * GiB for _, mb in presets)


def test_fit_state_runs_with_qt_absent():
    code = r"""
import sys
class NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph"}:
            raise ImportError(name)
sys.meta_path.insert(0, NoQt())
import catalog, models_db
from forgeplanner.viewstate.fit import FitInputs, FitState
o = FitState(catalog.load_catalog(), models_db.load_models()).compute(FitInputs(context=16384))
print(o.verdict_text, o.headline.decode)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Fits ") and "at 16K" in out.stdout
