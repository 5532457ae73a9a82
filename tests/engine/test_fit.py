"""GPU budget, verdicts, raised-limit command, largest context and best quantization."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forgeplanner.domain.estimates import (
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    HostSpec,
    RunOptions,
)
from forgeplanner.domain.units import GiB, MiB
from forgeplanner.engine.budget import gpu_budget, macos_reserve
from forgeplanner.engine.fit import best_quant_that_fits, fit, max_context_that_fits
from forgeplanner.engine.memory import estimate_memory
from forgeplanner.engine.quant import quants_for
from tests.engine.test_memory_units import DEEPSEEK_V3, GEMMA3_27B, LLAMA_8B, LLAMA_70B


def mac(gib: int, macos: str | None = None, **kw) -> HostSpec:
    return HostSpec(
        name=f"mac {gib}",
        is_apple_silicon=True,
        memory_bytes=gib * GiB,
        bandwidth_bytes_per_s=400e9,
        bandwidth_basis="test",
        macos_version=macos,
        **kw,
    )


# --- budget: the measured values of shared/reference/README.md --------------------------------


@pytest.mark.parametrize(
    ("gib", "macos", "expected"),
    [
        (16, "14.5", 16 * GiB * 2 // 3),  # 16 GB M1: 10922.67 MiB
        (32, None, 21845.33 * MiB),  # 32 GB M1 Max: 21845 MiB
        (36, "14.0", 28991029248),  # 36 GB M3: 28991 MB (75 %)
        (128, "13.0", 96 * GiB),  # 128 GB M1 Ultra: ~96 GB
        (16, "26.0", 11.84 * GiB),  # newer macOS: 16 GB -> 11.84 GiB
        (128, "26.1", 107.52 * GiB),  # 128 GB M5 Max, macOS 26 -> 107.52 GiB
    ],
)
def test_default_wired_limit_heuristic(gib, macos, expected) -> None:
    b = gpu_budget(mac(gib, macos))
    assert b.gpu_limit_bytes == pytest.approx(expected, rel=0.002)
    assert "heuristic" in b.basis
    assert b.physical_bytes == gib * GiB


def test_user_sysctl_and_measured_limit_take_precedence() -> None:
    b = gpu_budget(mac(64, wired_limit_mb=57344))
    assert b.gpu_limit_bytes == 57344 * MiB and "iogpu.wired_limit_mb=57344" in b.basis
    m = gpu_budget(mac(64, wired_limit_mb=57344, measured_gpu_limit_bytes=50 * GiB))
    assert m.gpu_limit_bytes == 50 * GiB and "measured" in m.basis
    with pytest.raises(ValueError, match="more than"):
        gpu_budget(mac(16, wired_limit_mb=20000))


def test_non_apple_hosts_use_ram_minus_os_reserve() -> None:
    linux = HostSpec("mini-2018", False, 32 * GiB, 40e9, "catalog")
    b = gpu_budget(linux)
    assert b.gpu_limit_bytes == 30 * GiB and b.max_raisable_limit_bytes == b.gpu_limit_bytes
    intel_mac = dataclasses.replace(linux, macos_version="13.6")
    assert gpu_budget(intel_mac).gpu_limit_bytes == 28 * GiB


def test_macos_reserve_rule() -> None:
    assert macos_reserve(16 * GiB) == 4 * GiB
    assert macos_reserve(64 * GiB) == int(6.4 * GiB)
    assert macos_reserve(512 * GiB) == 8 * GiB


# --- verdicts ------------------------------------------------------------------------------


def test_fits_with_headroom() -> None:
    r = fit(LLAMA_8B, "Q4_K_M", mac(16), RunOptions(context=8192))
    assert r.verdict == VERDICT_FITS
    assert r.headroom_bytes == r.budget.gpu_limit_bytes - r.memory.total_bytes > 0
    assert r.sysctl_command is None


def test_fits_with_raised_limit_gives_the_command() -> None:
    # Llama 3.1 8B Q8_0 at 20480 tokens: ~11 GiB, above the default 2/3 limit (10.67 GiB)
    # of a 16 GB Mac but under RAM - 4 GiB reserve
    opts = RunOptions(context=20480, flash_attention=True)
    r = fit(LLAMA_8B, "Q8_0", mac(16), opts)
    total = r.memory.total_bytes
    assert r.budget.gpu_limit_bytes < total <= 12 * GiB
    assert r.verdict == VERDICT_RAISED and r.headroom_bytes < 0
    n = int(r.sysctl_command.rsplit("=", 1)[1])
    assert r.sysctl_command == f"sudo sysctl iogpu.wired_limit_mb={n}"
    assert n * MiB >= total and n * MiB <= 16 * GiB - macos_reserve(16 * GiB)
    assert r.memory_left_for_macos_bytes == 16 * GiB - n * MiB >= 4 * GiB


def test_does_not_fit() -> None:
    r = fit(LLAMA_70B, "Q8_0", mac(64), RunOptions())
    assert r.verdict == VERDICT_NO and r.headroom_bytes < 0 and r.sysctl_command is None
    # DeepSeek-V3 Q4_K_M (~377 GiB of weights) fits a 512 GB Mac Studio, not a 256 GB one
    assert fit(DEEPSEEK_V3, "Q4_K_M", mac(512), RunOptions()).verdict == VERDICT_FITS
    assert fit(DEEPSEEK_V3, "Q4_K_M", mac(256), RunOptions()).verdict == VERDICT_NO


def test_unified_memory_counts_once() -> None:
    # the budget is a part of RAM, never RAM + GPU
    r = fit(LLAMA_8B, "F16", mac(16), RunOptions())
    assert r.budget.gpu_limit_bytes < r.budget.physical_bytes
    assert r.verdict == VERDICT_NO


# --- largest context, best quant -----------------------------------------------------------


@pytest.mark.parametrize("rt", ["llama.cpp", "ollama"])
@pytest.mark.parametrize("model", [LLAMA_8B, GEMMA3_27B])
def test_max_context_is_the_boundary(model, rt) -> None:
    host = mac(32)
    opts = RunOptions(runtime=rt, flash_attention=True)
    q = "Q4_K_M"
    n = max_context_that_fits(model, q, host, opts)
    limit = gpu_budget(host).gpu_limit_bytes
    assert n is not None and n % 256 == 0
    at = estimate_memory(model, q, dataclasses.replace(opts, context=n)).total_bytes
    assert at <= limit
    if n < model.max_context:
        above = estimate_memory(model, q, dataclasses.replace(opts, context=n + 256))
        assert above.total_bytes > limit


def test_max_context_respects_model_maximum_and_none() -> None:
    small = dataclasses.replace(LLAMA_8B, max_context=4096)
    assert max_context_that_fits(small, "Q4_K_M", mac(128), RunOptions()) == 4096
    assert max_context_that_fits(LLAMA_70B, "F16", mac(16), RunOptions()) is None


def test_best_quant_is_the_highest_quality_that_fits() -> None:
    host, opts = mac(16), RunOptions(context=8192, flash_attention=True)
    best = best_quant_that_fits(LLAMA_8B, host, opts)
    assert best == "Q8_0"
    order = [q.name for q in quants_for(LLAMA_8B, "llama.cpp")]
    limit = gpu_budget(host).gpu_limit_bytes
    for q in order[: order.index(best)]:
        assert estimate_memory(LLAMA_8B, q, opts).total_bytes > limit
    assert best_quant_that_fits(DEEPSEEK_V3, mac(64), opts) is None
    assert best_quant_that_fits(LLAMA_8B, host, dataclasses.replace(opts, runtime="mlx")) == (
        "MLX-8bit"
    )


def test_vectorised_memory_and_verdicts_match_scalar() -> None:
    from forgeplanner.engine.fit import VERDICTS, verdict_codes
    from forgeplanner.engine.memory import estimate_memory_array

    host = mac(32)
    budget = gpu_budget(host)
    ctx = np.array([512, 8192, 65536, 131072])
    for rt, fa in (("llama.cpp", True), ("ollama", False), ("mlx", False)):
        q = "MLX-4bit" if rt == "mlx" else "Q8_0"
        arr = estimate_memory_array(LLAMA_8B, q, ctx, flash_attention=fa, runtime=rt)
        codes = verdict_codes(arr["total_bytes"], budget, True)
        for i, c in enumerate(ctx):
            opts = RunOptions(context=int(c), runtime=rt, flash_attention=fa)
            r = fit(LLAMA_8B, q, host, opts)
            assert {k: int(v[i]) for k, v in arr.items()} == r.memory.to_dict()
            assert VERDICTS[codes[i]] == r.verdict
        # more context never improves the verdict
        assert codes.tolist() == sorted(codes.tolist())
    with pytest.raises(ValueError, match="positive"):
        estimate_memory_array(LLAMA_8B, "Q8_0", np.array([0]))
