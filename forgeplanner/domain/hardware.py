"""Hardware value types: chips (per GPU-core bin) and buyable machine configurations."""

from __future__ import annotations

from dataclasses import dataclass, field

from forgeplanner.domain.provenance import Figure
from forgeplanner.domain.units import GB, unified_memory_bytes


@dataclass(frozen=True, slots=True)
class ChipSpec:
    """One chip bin. Apple Silicon bins differ in GPU cores and sometimes bandwidth
    (M3 Max 30-core is 300 GB/s, 40-core 400 GB/s). Intel CPUs of the old Mac minis are
    chips too (vendor "intel", no GPU cores used for inference)."""

    id: str  # stable slug: "m2-ultra-76c", "intel-i7-8700b"
    name: str  # "M2 Ultra" / "Intel Core i7 3.2GHz 6-core"
    vendor: str  # "apple" | "intel"
    generation: str  # "M1".."M5" or "intel"
    tier: str  # "base" | "pro" | "max" | "ultra" | "intel"
    gpu_cores: int  # 0 for Intel (integrated GPU not used by the planner)
    cpu_cores: Figure[int]
    cpu_p_cores: Figure[int]
    cpu_e_cores: Figure[int]
    mem_bandwidth_gbps: Figure[float]  # decimal GB/s (10**9), as Apple quotes
    gpu_fp32_tflops: Figure[float]
    memory_options_gb: tuple[int, ...]  # marketing GB = GiB
    neural_engine_cores: Figure[int]
    neural_engine_tops: Figure[float]
    year: int
    ships_in: str
    sources: tuple[str, ...]
    notes: str = ""
    laptop_only: bool = False

    @property
    def bandwidth_bytes_per_s(self) -> float | None:
        v = self.mem_bandwidth_gbps.value
        return None if v is None else float(v) * GB

    @property
    def is_apple_silicon(self) -> bool:
        return self.vendor == "apple"


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """One buyable configuration of a machine: chip bin x memory (x base storage)."""

    id: str  # "mac-studio-m2-ultra-76c-192gb", "mac-mini-2018-i7-32gb"
    machine: str  # "Mac Studio (2023) - M2 Ultra"
    kind: str  # "mac-mini" | "mac-studio"
    year: int
    chip_id: str
    memory_gb: int  # marketing GB = GiB for Apple Silicon, GiB of DRAM for Intel
    storage_gb: int
    launch_price_usd: Figure[float]
    idle_w: Figure[float]
    max_w: Figure[float]
    idle_btu_h: Figure[float]
    max_btu_h: Figure[float]
    thunderbolt: str  # "TB4", "TB5", "TB3", "TB2", "TB1", "USB4"
    thunderbolt_ports: int
    ethernet_gbps: tuple[int, ...]  # options: (1,), (1, 10) if 10GbE is a BTO, (10,)
    release_date: str  # "YYYY-MM" or "YYYY-MM-DD"
    ram_upgradeable: bool
    sources: tuple[str, ...]
    notes: str = ""
    withdrawn: str | None = None  # when Apple stopped selling this option, if known
    extra: dict[str, Figure[float]] = field(default_factory=dict)

    @property
    def memory_bytes(self) -> int:
        return unified_memory_bytes(self.memory_gb)
