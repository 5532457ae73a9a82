"""Does it fit? Verdict, headroom, the sysctl to run, the largest context, the best quant.

Verdicts (forgeplanner.domain.estimates):
- fits: total <= the GPU limit in force now (default heuristic, user's sysctl or measured).
- fits-with-raised-limit (Apple Silicon only): total <= RAM - macOS reserve (budget.py); the
  sysctl command sets iogpu.wired_limit_mb to the total plus 1 GiB of slack rounded up to a
  whole GiB (never above RAM - reserve), so macOS keeps as much as possible.
- does-not-fit otherwise.
headroom = limit now - total (negative when it does not fit at the current limit).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from forgeplanner.domain.estimates import (
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    Explanation,
    FitResult,
    GpuBudget,
    HostSpec,
    RunOptions,
)
from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.units import GiB, MiB, fmt_gib
from forgeplanner.engine.budget import gpu_budget
from forgeplanner.engine.memory import estimate_memory
from forgeplanner.engine.quant import QuantScheme, check_combination, get_quant, quants_for
from forgeplanner.engine.runtime_defaults import resolved_options

RAISE_SLACK = 1 * GiB
MIN_CONTEXT = 256  # llama.cpp pads n_ctx to 256 cells; nothing smaller is worth reporting


def _sysctl_mb(total: int, budget: GpuBudget) -> int:
    want = -(-(total + RAISE_SLACK) // GiB) * GiB
    return int(min(want, budget.max_raisable_limit_bytes) // MiB)


def verdict_for(total: int, budget: GpuBudget, apple: bool) -> str:
    if total <= budget.gpu_limit_bytes:
        return VERDICT_FITS
    if apple and total <= budget.max_raisable_limit_bytes:
        return VERDICT_RAISED
    return VERDICT_NO


VERDICTS = (VERDICT_FITS, VERDICT_RAISED, VERDICT_NO)  # index = verdict_codes() value


def verdict_codes(totals: np.ndarray, budget: GpuBudget, apple: bool) -> np.ndarray:
    """Vectorised verdict_for: int8 codes indexing VERDICTS (0 fits, 1 raised, 2 no)."""
    t = np.asarray(totals)
    out = np.full(t.shape, 2, dtype=np.int8)
    if apple:
        out[t <= budget.max_raisable_limit_bytes] = 1
    out[t <= budget.gpu_limit_bytes] = 0
    return out


def fit(
    model: ModelSpec, quant: str | QuantScheme, host: HostSpec, options: RunOptions
) -> FitResult:
    mem = estimate_memory(model, quant, options, host)
    budget = gpu_budget(host)
    total = mem.total_bytes
    verdict = verdict_for(total, budget, host.is_apple_silicon)
    headroom = budget.gpu_limit_bytes - total
    cmd = None
    left = None
    explain = [
        Explanation(
            term="budget",
            formula="GPU limit (unified memory: the one pool; CPU RAM not added)",
            numbers=f"{fmt_gib(budget.physical_bytes, 1)} RAM, limit "
            f"{fmt_gib(budget.gpu_limit_bytes, 2)}",
            value=fmt_gib(budget.gpu_limit_bytes, 2),
            source=budget.basis,
        ),
    ]
    if verdict == VERDICT_RAISED:
        n = _sysctl_mb(total, budget)
        cmd = f"sudo sysctl iogpu.wired_limit_mb={n}"
        left = budget.physical_bytes - n * MiB
        explain.append(
            Explanation(
                term="raised_limit",
                formula="N = ceil((total + 1 GiB) / 1 GiB) GiB, at most RAM - macOS reserve",
                numbers=f"total {fmt_gib(total, 2)} -> N = {n} MiB; macOS keeps {fmt_gib(left, 2)}",
                value=cmd,
                source="budget.py reserve rule clamp(10 % of RAM, 4 GiB, 8 GiB)",
            )
        )
    explain.append(
        Explanation(
            term="verdict",
            formula="total <= limit: fits; <= RAM - reserve: fits-with-raised-limit",
            numbers=f"{fmt_gib(total, 2)} vs {fmt_gib(budget.gpu_limit_bytes, 2)}",
            value=verdict,
        )
    )
    return FitResult(
        verdict=verdict,
        headroom_bytes=headroom,
        memory=mem,
        budget=budget,
        sysctl_command=cmd,
        memory_left_for_macos_bytes=left,
        explain=tuple(explain),
    )


def _fits_at(model, q, options, limit, ctx) -> bool:
    # options arrive resolved (flash attention a bool for this host)
    opts = dataclasses.replace(options, context=int(ctx), depth=min(options.depth, int(ctx)))
    return estimate_memory(model, q, opts).total_bytes <= limit


def max_context_that_fits(
    model: ModelSpec,
    quant: str | QuantScheme,
    host: HostSpec,
    options: RunOptions,
    allow_raised_limit: bool = False,
) -> int | None:
    """Largest context (tokens, multiple of 256, <= the model's max_context) whose total fits
    under the current GPU limit (or under RAM - reserve with allow_raised_limit). None when
    not even 256 tokens fit. Memory is monotone in context, so bisection is exact."""
    q = get_quant(quant)
    check_combination(model, q, options.runtime)
    options = resolved_options(model, options, host)
    budget = gpu_budget(host)
    limit = budget.max_raisable_limit_bytes if allow_raised_limit else budget.gpu_limit_bytes
    # llama.cpp's -c is shared by the parallel sequences; elsewhere context is per sequence
    per_seq_factor = options.parallel if options.runtime == "llama.cpp" else 1
    cap = model.max_context * per_seq_factor if model.max_context else 1 << 24
    lo = MIN_CONTEXT * per_seq_factor
    if lo > cap or not _fits_at(model, q, options, limit, lo):
        return None
    hi_ok = cap
    if _fits_at(model, q, options, limit, hi_ok):
        return int(hi_ok)
    lo_t, hi_t = lo // 256, hi_ok // 256  # search in steps of 256 tokens
    while hi_t - lo_t > 1:
        mid = (lo_t + hi_t) // 2
        if _fits_at(model, q, options, limit, mid * 256):
            lo_t = mid
        else:
            hi_t = mid
    return int(lo_t * 256)


def best_quant_that_fits(
    model: ModelSpec, host: HostSpec, options: RunOptions, allow_raised_limit: bool = False
) -> str | None:
    """Highest-quality quantization (quants_for order) that fits at options.context."""
    budget = gpu_budget(host)
    limit = budget.max_raisable_limit_bytes if allow_raised_limit else budget.gpu_limit_bytes
    options = resolved_options(model, options, host)
    for q in quants_for(model, options.runtime):
        if estimate_memory(model, q, options).total_bytes <= limit:
            return q.name
    return None


__all__ = [
    "VERDICTS",
    "best_quant_that_fits",
    "check_combination",
    "fit",
    "max_context_that_fits",
    "verdict_codes",
    "verdict_for",
]
