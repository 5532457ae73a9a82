"""Build a `HostSpec` (the machine an estimate is for) from the catalog, from a chip name given
on the command line, or from the machine ForgePlanner runs on.

Unknown figures stay unknown (None) with the reason in the basis string, never guessed:
- bandwidth: the catalog figure, or for this machine the latest stored measurement
  (a host calibration or a built-in bandwidth benchmark run), else unknown;
- peak FP32 compute: the catalog figure where Apple/third parties published one, else derived
  as GPU cores x per-core throughput of that generation (the median TFLOPS / cores of the
  catalog chips of that generation that have a published figure) and labelled "derived";
  Intel CPUs: cores x base clock x FP32 FLOPs per cycle of the microarchitecture.
"""

from __future__ import annotations

import re
from typing import Any

from forgeplanner.domain.estimates import HostSpec
from forgeplanner.domain.hardware import ChipSpec, MachineConfig
from forgeplanner.domain.units import GB, MiB, unified_memory_bytes
from forgeplanner.errors import ForgePlannerError, NotFoundError

# FP32 FLOPs per cycle per core of the Intel Mac mini CPUs (vector width x FMA units):
# Ivy Bridge (2012): AVX 8-wide add + 8-wide mul = 16; Haswell (2014) and Coffee Lake (2018):
# two 8-wide FMA units = 32. Intel 64 and IA-32 Architectures Optimization Reference Manual
# (order 248966), tables "Peak FLOPS per cycle" for Sandy Bridge/Haswell/Skylake.
INTEL_FP32_FLOPS_PER_CYCLE = {2012: 16, 2014: 32, 2018: 32}
# Their widest vector extensions (Intel ARK, "Instruction Set Extensions": Ivy Bridge AVX;
# Haswell and Coffee Lake AVX2; none has AVX-512): ggml's CPU kernels are chosen by these, so
# they pick which measured CPU-backend constants apply (forgeplanner.engine.speed_constants_cpu).
INTEL_VECTOR_ISA = {2012: "avx", 2014: "avx2", 2018: "avx2"}
_GHZ = re.compile(r"(\d+(?:\.\d+)?)\s*GHz", re.IGNORECASE)


class HostError(ForgePlannerError):
    """A host that cannot be built from what the user gave."""


_PER_CORE: dict[str, float] | None = None


def per_core_fp32_table(chips=None) -> dict[str, float]:
    """Peak FP32 FLOP/s per GPU core by generation: the median of published TFLOPS / cores
    over the catalog chips of that generation with a published figure (a derived fact)."""
    import statistics

    if chips is None:
        from catalog import load_catalog

        chips = load_catalog().chips.values()
    by_gen: dict[str, list[float]] = {}
    for c in chips:
        if c.is_apple_silicon and c.gpu_cores and c.gpu_fp32_tflops.value is not None:
            by_gen.setdefault(c.generation, []).append(
                float(c.gpu_fp32_tflops.value) * 1e12 / c.gpu_cores
            )
    return {g: statistics.median(v) for g, v in sorted(by_gen.items())}


def _per_core_table() -> dict[str, float]:
    global _PER_CORE
    if _PER_CORE is None:
        _PER_CORE = per_core_fp32_table()
    return dict(_PER_CORE)


def chip_fp32(chip: ChipSpec, per_core: dict[str, float] | None = None) -> tuple[float | None, str]:
    """(peak FP32 FLOP/s, basis) of the device that runs inference on this chip."""
    fig = chip.gpu_fp32_tflops
    if chip.is_apple_silicon:
        if fig.value is not None:
            return float(fig.value) * 1e12, f"catalog: {fig.value} TFLOPS ({fig.source})"
        table = per_core if per_core is not None else _per_core_table()
        gen = chip.generation
        if gen in table:
            v = table[gen]
            return (
                chip.gpu_cores * v,
                f"derived: {chip.gpu_cores} GPU cores x {v / 1e9:.1f} GFLOPS/core "
                f"({gen} per-core throughput fitted from published {gen} figures)",
            )
        known = [g for g in sorted(table) if g.startswith("M")]
        if known:
            last = known[-1]
            v = table[last]
            return (
                chip.gpu_cores * v,
                f"derived: {chip.gpu_cores} GPU cores x {v / 1e9:.1f} GFLOPS/core "
                f"(no published {gen} figure: assumes the {last} per-core throughput)",
            )
        return None, f"unknown: {fig.reason}"
    # Intel CPU: cores x base clock x FLOPs/cycle
    cores = chip.cpu_cores.value
    m = _GHZ.search(chip.name)
    fpc = INTEL_FP32_FLOPS_PER_CYCLE.get(chip.year)
    if cores and m and fpc:
        ghz = float(m.group(1))
        return (
            cores * ghz * 1e9 * fpc,
            f"derived: {cores} cores x {ghz} GHz base x {fpc} FP32 FLOPs/cycle "
            "(Intel optimization manual)",
        )
    return None, "unknown: CPU cores, clock or microarchitecture not known"


def host_from_chip(
    chip: ChipSpec,
    memory_gb: int | None = None,
    *,
    config: MachineConfig | None = None,
    macos_version: str | None = None,
    wired_limit_mb: int | None = None,
    per_core: dict[str, float] | None = None,
) -> HostSpec:
    """A host with this chip bin and `memory_gb` (default: the largest option)."""
    options = chip.memory_options_gb
    if memory_gb is None:
        if not options:
            raise HostError(
                f"{chip.name} ({chip.id}) has no known memory options; give --memory-gb"
            )
        memory_gb = max(options)
    if memory_gb <= 0:
        raise HostError(f"memory must be positive, got {memory_gb} GB")
    if options and memory_gb not in options and config is None:
        raise HostError(
            f"{chip.name} {chip.gpu_cores}-core GPU is sold with "
            f"{', '.join(str(o) for o in options)} GB, not {memory_gb} GB"
        )
    bw_fig = chip.bandwidth_figure(memory_gb)  # some bins' bandwidth depends on the memory
    bw = None if bw_fig.value is None else float(bw_fig.value) * GB
    bw_basis = (
        f"catalog: {bw_fig.value} GB/s ({bw_fig.source})"
        if bw is not None
        else f"unknown: {bw_fig.reason}"
    )
    flops, flops_basis = chip_fp32(chip, per_core)
    name = chip.name if not chip.gpu_cores else f"{chip.name} {chip.gpu_cores}-core GPU"
    return HostSpec(
        name=f"{config.machine if config else name}, {memory_gb} GB",
        is_apple_silicon=chip.is_apple_silicon,
        memory_bytes=unified_memory_bytes(memory_gb)
        if chip.is_apple_silicon
        else memory_gb * (1 << 30),
        bandwidth_bytes_per_s=bw,
        bandwidth_basis=bw_basis,
        fp32_flops=flops,
        gpu_cores=chip.gpu_cores,
        cpu_cores=chip.cpu_cores.value,
        chip_id=chip.id,
        config_id=config.id if config else None,
        macos_version=macos_version,
        wired_limit_mb=wired_limit_mb,
        chip_tier=chip.tier,
        fp32_flops_basis=flops_basis,
        chip_generation=chip.generation,
        cpu_isa=None if chip.is_apple_silicon else INTEL_VECTOR_ISA.get(chip.year),
    )


# ---------------------------------------------------------------------------------------------
# catalog-facing resolvers
# ---------------------------------------------------------------------------------------------


def host_from_config(
    config_id: str, *, macos_version: str | None = None, wired_limit_mb: int | None = None
) -> HostSpec:
    from catalog import load_catalog

    cat = load_catalog()
    cfg = cat.config(config_id)
    chip = cat.chip(cfg.chip_id)
    return host_from_chip(
        chip,
        cfg.memory_gb,
        config=cfg,
        macos_version=macos_version,
        wired_limit_mb=wired_limit_mb,
    )


def host_from_chip_name(
    name: str,
    gpu_cores: int | None = None,
    memory_gb: int | None = None,
    *,
    macos_version: str | None = None,
    wired_limit_mb: int | None = None,
) -> HostSpec:
    from catalog import load_catalog

    chip = load_catalog().find_chip(name, gpu_cores, memory_gb)
    return host_from_chip(
        chip, memory_gb, macos_version=macos_version, wired_limit_mb=wired_limit_mb
    )


# ---------------------------------------------------------------------------------------------
# this machine
# ---------------------------------------------------------------------------------------------


def _sysctl(name: str) -> str | None:
    import subprocess  # here: only this machine's probe runs tools; estimates start faster

    try:
        out = subprocess.run(
            ["/usr/sbin/sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


_GPU_CORES = re.compile(r'"gpu-core-count"\s*=\s*(\d+)')


def _gpu_cores() -> int | None:
    """Apple GPU core count: the AGX accelerator's `gpu-core-count` property in the I/O
    registry (sysctl does not expose it)."""
    import subprocess

    try:
        out = subprocess.run(
            ["/usr/sbin/ioreg", "-rd1", "-c", "IOAccelerator"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    m = _GPU_CORES.search(out.stdout or "")
    return int(m.group(1)) if m else None


def cpu_isa_from_flags(flags: set[str]) -> str | None:
    """The x86 vector-extension kind that decides ggml's CPU kernels, from CPU feature flags
    (Linux /proc/cpuinfo `flags`, lower case; macOS machdep.cpu.features + leaf7_features,
    lowered): "avx512" (AVX-512F), "avx2", "avx", or None (no AVX, or not x86)."""
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "avx" if "avx" in flags or "avx1.0" in flags else None


def _cpu_flags() -> set[str]:
    import platform

    if platform.system() == "Darwin":
        text = " ".join(
            _sysctl(k) or "" for k in ("machdep.cpu.features", "machdep.cpu.leaf7_features")
        )
        return set(text.lower().split())
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def probe_this_machine() -> dict[str, Any]:
    """Raw facts about this machine (psutil/platform; on macOS sysctl)."""
    import platform

    import psutil

    facts: dict[str, Any] = {
        "system": platform.system(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "memory_bytes": int(psutil.virtual_memory().total),
        "cpu_cores": psutil.cpu_count(logical=False) or psutil.cpu_count(),
        "cpu_brand": platform.processor() or platform.machine(),
        "macos_version": None,
        "wired_limit_mb": None,
        "cpu_isa": cpu_isa_from_flags(_cpu_flags()),
    }
    if facts["system"] == "Darwin":
        facts["macos_version"] = platform.mac_ver()[0] or None
        brand = _sysctl("machdep.cpu.brand_string")
        if brand:
            facts["cpu_brand"] = brand
        mem = _sysctl("hw.memsize")
        if mem and mem.isdigit():
            facts["memory_bytes"] = int(mem)
        wl = _sysctl("iogpu.wired_limit_mb")
        if wl and wl.lstrip("-").isdigit():
            facts["wired_limit_mb"] = int(wl)
        cores = _sysctl("hw.perflevel0.physicalcpu")  # P cores on Apple Silicon
        facts["p_cores"] = int(cores) if cores and cores.isdigit() else None
        facts["gpu_cores"] = _gpu_cores()
    return facts


def stored_measurements(hostname: str) -> dict[str, Any]:
    """This machine's measurements in the user store: bandwidth from the latest host
    calibration, else (and compute, for CPU hosts) from the built-in benchmark runs
    (`forgeplanner bench run builtin`), chosen by forgeplanner.measurement.host_runs: the median of
    the recent quiet runs; noisy runs never. Keys: bandwidth, bandwidth_basis, flops,
    flops_basis (values None when not stored or every run was noisy, the basis says which),
    and which runs were used (`*_runs`), their load tier (`*_tier`: quiet, accepted, not
    recorded, calibration) and the noisy runs left out (`*_left_out`)."""
    out: dict[str, Any] = {
        "bandwidth": None,
        "bandwidth_basis": "unknown: no stored bandwidth benchmark for this machine "
        "(run `forgeplanner bench run builtin`)",
        "flops": None,
        "flops_basis": "unknown: no stored compute benchmark for this machine",
    }
    try:
        from forgeplanner.measurement.host_runs import host_measurements
        from forgeplanner.store.db import open_store
        from forgeplanner.store.repos import BenchRunRepo, CalibrationRepo
    except ImportError:  # pragma: no cover - the store ships with the package
        return out
    try:
        with open_store() as store, store.session() as s:
            runs = [
                r
                for r in BenchRunRepo(s).list(status="ok")
                if r.fingerprint.get("hostname") == hostname
            ]
            out.update(host_measurements(runs))
            # the latest host calibration wins (it is fitted on this machine's quiet
            # llama.cpp runs, forgeplanner.bench.calibrate)
            done_bw = done_fl = False
            for rec in CalibrationRepo(s).list():
                if rec.fingerprint.get("hostname") != hostname:
                    continue
                if rec.bandwidth_bytes_per_s and not done_bw:
                    out["bandwidth"] = float(rec.bandwidth_bytes_per_s)
                    out["bandwidth_basis"] = f"measured: calibration {rec.id}"
                    out["bandwidth_runs"], out["bandwidth_tier"] = tuple(rec.run_ids), "calibration"
                    done_bw = True
                if rec.compute_flops and not done_fl:
                    out["flops"] = float(rec.compute_flops)
                    out["flops_basis"] = f"measured: calibration {rec.id}"
                    done_fl = True
    except ForgePlannerError:
        raise
    except Exception as exc:  # a broken store must not break `estimate`; say why
        out["bandwidth_basis"] = f"unknown: could not read the benchmark store ({exc})"
    return out


def _catalog_unless_quiet(
    chip: ChipSpec, bw: float | None, bw_basis: str, tier: str | None, memory_bytes: int
) -> tuple[float | None, str]:
    """This Mac's bandwidth: the stored measurement when it comes from a calibration or from
    runs judged quiet (or kept with --accept-load); else the catalog figure, saying why. A run
    stored before load sampling is not trusted over a published figure: it may be the one
    loaded run that made estimates wrong (forgeplanner.measurement.host_runs)."""
    from forgeplanner.measurement.load import NOT_RECORDED

    if bw is not None and tier != NOT_RECORDED:
        return bw, bw_basis
    # some bins' bandwidth depends on the memory fitted (unified memory in whole GB)
    fig = chip.bandwidth_figure(round(memory_bytes / 2**30))
    if fig.value is None:
        return bw, bw_basis
    why = (
        f"no quiet built-in run of this machine ({bw_basis.removeprefix('measured: ')})"
        if bw is not None
        else f"no quiet built-in run of this machine ({bw_basis.removeprefix('unknown: ')})"
    )
    return float(fig.value) * GB, f"catalog: {fig.value} GB/s ({fig.source}); {why}"


def host_this_machine(
    *, macos_version: str | None = None, wired_limit_mb: int | None = None
) -> HostSpec:
    facts = probe_this_machine()
    brand = str(facts.get("cpu_brand") or "")
    is_apple = facts["system"] == "Darwin" and brand.startswith("Apple M")
    stored = stored_measurements(str(facts["hostname"]))
    bw, bw_basis = stored["bandwidth"], stored["bandwidth_basis"]
    chip = None
    if is_apple:
        try:
            from catalog import load_catalog

            chip = load_catalog().find_chip(
                brand.removeprefix("Apple ").strip(), facts.get("gpu_cores")
            )
        except (ForgePlannerError, ImportError):
            chip = None
    # Apple GPU: peak from the catalog chip; CPU hosts: a stored matmul measurement
    flops, flops_basis = stored["flops"], stored["flops_basis"]
    if chip is not None:
        bw, bw_basis = _catalog_unless_quiet(
            chip, bw, bw_basis, stored.get("bandwidth_tier"), int(facts["memory_bytes"])
        )
    gpu_cores = 0
    tier = None
    chip_id = None
    generation = None
    if chip is not None:
        flops, flops_basis = chip_fp32(chip)
        gpu_cores = chip.gpu_cores
        tier = chip.tier
        chip_id = chip.id
        generation = chip.generation
    return HostSpec(
        name=f"this machine ({brand or facts['machine']})",
        is_apple_silicon=is_apple,
        memory_bytes=int(facts["memory_bytes"]),
        bandwidth_bytes_per_s=bw,
        bandwidth_basis=bw_basis,
        fp32_flops=flops,
        gpu_cores=gpu_cores,
        cpu_cores=facts.get("cpu_cores"),
        chip_id=chip_id,
        macos_version=macos_version or facts.get("macos_version"),
        wired_limit_mb=wired_limit_mb
        if wired_limit_mb is not None
        else facts.get("wired_limit_mb"),
        chip_tier=tier,
        fp32_flops_basis=flops_basis,
        chip_generation=generation,
        cpu_isa=None if is_apple else facts.get("cpu_isa"),
    )


def describe_bandwidth(host: HostSpec) -> str:
    if host.bandwidth_bytes_per_s is None:
        return host.bandwidth_basis
    return f"{host.bandwidth_bytes_per_s / GB:.0f} GB/s ({host.bandwidth_basis})"


def host_measurements_summary(host: HostSpec) -> dict[str, Any]:
    """The figures an estimate for this machine used and where they came from (the runs,
    the calibration or the catalog; forgeplanner.measurement.host_runs): the `host_measurements`
    key of `estimate --this-machine --json`."""
    bw = host.bandwidth_bytes_per_s
    return {
        "bandwidth_gbps": None if bw is None else bw / GB,
        "bandwidth_basis": host.bandwidth_basis,
        "fp32_flops": host.fp32_flops,
        "fp32_flops_basis": host.fp32_flops_basis,
    }


def wired_limit_bytes(mb: int) -> int:
    return mb * MiB


__all__ = [
    "HostError",
    "NotFoundError",
    "chip_fp32",
    "host_from_chip",
    "host_from_chip_name",
    "host_from_config",
    "host_this_machine",
    "probe_this_machine",
]
