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

import numpy as np

from forgeplanner.domain.estimates import (
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    Explanation,
    FitResult,
    GpuBudget,
    HostSpec,
    MemoryEstimate,
    RunOptions,
)
from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.units import GiB, MiB, fmt_gib
from forgeplanner.engine.budget import gpu_budget
from forgeplanner.engine.memory import apple_gpu
from forgeplanner.engine.pipeline import MIN_CONTEXT, prepare
from forgeplanner.engine.quant import QuantScheme, check_combination, quants_for

RAISE_SLACK = 1 * GiB


def _sysctl_mb(total: int, budget: GpuBudget) -> int:
    want = -(-(total + RAISE_SLACK) // GiB) * GiB
    return int(min(want, budget.max_raisable_limit_bytes) // MiB)


VERDICTS = (VERDICT_FITS, VERDICT_RAISED, VERDICT_NO)  # index = verdict_codes() value


def verdict_code_arrays(totals, limit, raisable, apple):
    """The verdict rule on arrays (numpy broadcasting): int8 codes indexing VERDICTS, 0 fits
    (total <= GPU limit), 1 fits with a raised limit (Apple Silicon, total <= RAM - macOS
    reserve), 2 does not fit. `limit`, `raisable`, `apple` may be arrays over hosts."""
    t = np.asarray(totals)
    raised = np.asarray(apple, dtype=bool) & (t <= raisable)
    return np.where(t <= limit, 0, np.where(raised, 1, 2)).astype(np.int8)


def verdict_codes(totals: np.ndarray, budget: GpuBudget, apple: bool) -> np.ndarray:
    """verdict_code_arrays for one host's budget."""
    return verdict_code_arrays(totals, budget.gpu_limit_bytes, budget.max_raisable_limit_bytes,
                               apple)  # fmt: skip


def verdict_for(total: int, budget: GpuBudget, apple: bool) -> str:
    return VERDICTS[int(verdict_codes(np.asarray(total), budget, apple))]


def fit(
    model: ModelSpec, quant: str | QuantScheme, host: HostSpec, options: RunOptions
) -> FitResult:
    p = prepare(model, quant, options, apple_gpu=apple_gpu(host))
    return fit_result(p.memory_estimate(options.context), gpu_budget(host), host.is_apple_silicon)


def fit_result(mem: MemoryEstimate, budget: GpuBudget, apple: bool) -> FitResult:
    """The verdict for a memory estimate under a GPU budget, with the sysctl to run."""
    total = mem.total_bytes
    verdict = verdict_for(total, budget, apple)
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


def max_context_that_fits(
    model: ModelSpec,
    quant: str | QuantScheme,
    host: HostSpec,
    options: RunOptions,
    allow_raised_limit: bool = False,
) -> int | None:
    """Largest context (tokens, multiple of 256, <= the model's max_context) whose total fits
    under the current GPU limit (or under RAM - reserve with allow_raised_limit). None when
    not even 256 tokens fit (pipeline.Prepared.max_context)."""
    budget = gpu_budget(host)
    limit = budget.max_raisable_limit_bytes if allow_raised_limit else budget.gpu_limit_bytes
    return prepare(model, quant, options, apple_gpu=apple_gpu(host)).max_context(limit)


def best_quant_that_fits(
    model: ModelSpec, host: HostSpec, options: RunOptions, allow_raised_limit: bool = False
) -> str | None:
    """Highest-quality quantization (quants_for order) that fits at options.context."""
    budget = gpu_budget(host)
    limit = budget.max_raisable_limit_bytes if allow_raised_limit else budget.gpu_limit_bytes
    for q in quants_for(model, options.runtime):
        p = prepare(model, q, options, apple_gpu=apple_gpu(host))
        if p.total_bytes(options.context) <= limit:
            return q.name
    return None


__all__ = [
    "MIN_CONTEXT",
    "VERDICTS",
    "best_quant_that_fits",
    "check_combination",
    "fit",
    "fit_result",
    "max_context_that_fits",
    "verdict_code_arrays",
    "verdict_codes",
    "verdict_for",
]
