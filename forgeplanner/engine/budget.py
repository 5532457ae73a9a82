"""How much memory the model may use on a host.

Apple Silicon (unified memory): the GPU may wire only part of RAM. Metal reports the limit as
`recommendedMaxWorkingSetSize`; `sudo sysctl iogpu.wired_limit_mb=N` raises it until reboot
(0 = default). Order of precedence: a measured value (HostSpec.measured_gpu_limit_bytes) >
the user's iogpu.wired_limit_mb > the default-limit HEURISTIC below.

HEURISTIC (documented, not an Apple specification) fitted to the measured values in
shared/reference/README.md:
  16 GB M1 -> 10922.67 MiB (2/3), 32 GB M1 Max -> 21845 MiB (2/3), 36 GB M3 -> 28991 MB
  (75 %), 128 GB M1 Ultra -> ~96 GB (75 %); newer macOS: 16 GB M3 -> 11.84 GiB (74 %),
  128 GB M5 Max on macOS 26 -> 107.52 GiB (84 %).
  macOS before 26 (or unknown): 2/3 of RAM up to 32 GiB, 3/4 above.
  macOS 26 and later: 74 % at <= 16 GiB rising linearly in log2(RAM) to 84 % at >= 128 GiB.
  Unknown macOS version uses the older, more conservative rule.

The GPU budget is the whole story on unified memory: the model's weights, KV cache and compute
buffers live in that one pool, so CPU RAM is never added on top.

Raising the limit: we never suggest wiring all of RAM. macOS keeps a reserve of
clamp(10 % of RAM, 4 GiB, 8 GiB) (our choice: 4 GiB keeps a 16 GB machine usable for the OS and
a terminal; 8 GiB is the figure commonly left on 64-192 GB machines by people running large
models), so the highest limit worth setting is RAM - reserve.

Non-Apple hosts (Intel Macs, Linux/K3s nodes): CPU inference from RAM; the budget is RAM minus
an OS reserve (Linux/K3s node: 2 GiB; Intel macOS: 4 GiB).
"""

from __future__ import annotations

import math

from forgeplanner.domain.estimates import GpuBudget, HostSpec
from forgeplanner.domain.units import GiB, MiB

LINUX_RESERVE = 2 * GiB
INTEL_MACOS_RESERVE = 4 * GiB
MIN_MACOS_RESERVE = 4 * GiB
MAX_MACOS_RESERVE = 8 * GiB


def _major(version: str | None) -> int | None:
    if not version:
        return None
    try:
        return int(str(version).strip().split(".")[0])
    except ValueError:
        return None


def default_wired_fraction(memory_bytes: int, macos_version: str | None) -> tuple[float, str]:
    """(fraction of RAM the GPU may wire by default, basis text). A HEURISTIC."""
    major = _major(macos_version)
    gib_ = memory_bytes / GiB
    if major is not None and major >= 26:
        x = min(max(math.log2(max(gib_, 1.0)), 4.0), 7.0)
        frac = 0.74 + (x - 4.0) / 3.0 * 0.10
        return frac, (
            f"default wired limit heuristic (macOS {macos_version}: {frac:.1%} of RAM; "
            "fitted to 16 GB M3 11.84 GiB and 128 GB M5 Max 107.52 GiB)"
        )
    frac = 2 / 3 if gib_ <= 32 else 0.75
    shown = f"macOS {macos_version}" if macos_version else "macOS version unknown"
    rule = "2/3 of RAM up to 32 GiB" if frac < 0.7 else "3/4 of RAM above 32 GiB"
    return frac, f"default wired limit heuristic ({shown}: {rule})"


def macos_reserve(memory_bytes: int) -> int:
    """What we leave macOS when suggesting a raised limit: clamp(10 %, 4 GiB, 8 GiB)."""
    return int(min(max(memory_bytes // 10, MIN_MACOS_RESERVE), MAX_MACOS_RESERVE))


def gpu_budget(host: HostSpec) -> GpuBudget:
    ram = host.memory_bytes
    if ram <= 0:
        raise ValueError(f"host {host.name}: memory must be positive, got {ram} bytes")
    if not host.is_apple_silicon:
        reserve = INTEL_MACOS_RESERVE if host.macos_version else LINUX_RESERVE
        reserve = min(reserve, ram // 4)
        kind = "macOS (Intel)" if host.macos_version else "Linux/K3s"
        limit = ram - reserve
        return GpuBudget(
            physical_bytes=ram,
            gpu_limit_bytes=limit,
            basis=f"CPU inference: RAM minus {kind} reserve {reserve / GiB:.1f} GiB",
            os_reserve_bytes=reserve,
            max_raisable_limit_bytes=limit,
        )
    max_raise = ram - macos_reserve(ram)
    if host.measured_gpu_limit_bytes:
        limit = int(host.measured_gpu_limit_bytes)
        basis = f"measured GPU limit {limit / MiB:.0f} MiB (recommendedMaxWorkingSetSize)"
    elif host.wired_limit_mb:
        limit = int(host.wired_limit_mb) * MiB
        if limit > ram:
            raise ValueError(
                f"iogpu.wired_limit_mb={host.wired_limit_mb} is more than the "
                f"{ram // MiB} MiB of RAM on {host.name}"
            )
        basis = f"iogpu.wired_limit_mb={host.wired_limit_mb} (user-given)"
    else:
        frac, basis = default_wired_fraction(ram, host.macos_version)
        limit = int(ram * frac)
    return GpuBudget(
        physical_bytes=ram,
        gpu_limit_bytes=limit,
        basis=basis,
        os_reserve_bytes=ram - limit,
        max_raisable_limit_bytes=max(max_raise, limit),
    )
