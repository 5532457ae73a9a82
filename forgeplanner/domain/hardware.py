"""Hardware value types: chips (per GPU-core bin) and buyable machine configurations."""

from __future__ import annotations

from dataclasses import dataclass, field

from forgeplanner.domain.provenance import Figure
from forgeplanner.domain.units import GB, unified_memory_bytes


@dataclass(frozen=True, slots=True)
class MemorySpec:
    """The DRAM behind a chip, as the maker's specifications give it: type, transfer rate,
    channels and how it is fitted. `channels` x 8 bytes x `mts` is the peak bandwidth the
    catalog derives for chips whose maker publishes no GB/s figure (the Intel Mac minis)."""

    type: str  # "DDR4", "LPDDR3", "DDR3"
    mts: int | None  # mega-transfers per second ("DDR4-2666" -> 2666)
    channels: int | None  # 64-bit channels populated
    form: str  # "2 SO-DIMM slots (user-replaceable)" | "soldered"
    source: str
    as_of: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "mts": self.mts,
            "channels": self.channels,
            "form": self.form,
            "source": self.source,
            "as_of": self.as_of,
            "note": self.note,
        }


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
    memory: MemorySpec | None = None
    # Bins whose bandwidth depends on the memory fitted (M6: 153 GB/s at 16 GB, 170 GB/s with
    # 24/32 GB per Apple's specifications): (memory GB, figure) pairs overriding the bin figure.
    bandwidth_by_memory: tuple[tuple[int, Figure[float]], ...] = ()

    def bandwidth_figure(self, memory_gb: int | None = None) -> Figure[float]:
        """The bandwidth of this bin with `memory_gb` fitted (the bin figure by default)."""
        for mem, fig in self.bandwidth_by_memory:
            if mem == memory_gb:
                return fig
        return self.mem_bandwidth_gbps

    @property
    def bandwidth_bytes_per_s(self) -> float | None:
        v = self.mem_bandwidth_gbps.value
        return None if v is None else float(v) * GB

    @property
    def is_apple_silicon(self) -> bool:
        return self.vendor == "apple"


@dataclass(frozen=True, slots=True)
class ListPrice:
    """Apple's US list price of one storage option from `date` until the next entry.

    `status` "sold" with a known or unknown `price`, or "not-offered" (withdrawn, or not part of
    the price list of that date). `basis` says what the price rests on: "list" (Apple's price,
    or the sum of sourced price-list steps, the formula in `price.derived`), "scaled" (an
    estimate: Apple repriced the model and only some configurations' new prices are sourced;
    this one is its previous price x the sourced ratio, see `price.derived`) or "unknown"."""

    date: str
    status: str  # "sold" | "not-offered"
    price: Figure[float]
    basis: str  # "list" | "scaled" | "unknown"
    price_list: str  # "launch" or the label of the later price list
    grade: str = ""  # worst quality grade of the steps: A (Apple) .. C (general rule), L (low)

    def to_dict(self) -> dict[str, object]:
        return {
            "date": self.date,
            "status": self.status,
            "price_usd": self.price.to_dict(),
            "basis": self.basis,
            "price_list": self.price_list,
            "grade": self.grade,
        }


@dataclass(frozen=True, slots=True)
class StorageOption:
    """One chip x memory x storage configuration Apple sold, with its dated list prices."""

    id: str  # "mac-studio-m4-max-40c-64gb-1tb"
    storage_gb: int | None  # decimal GB; None when the source does not state it
    storage_kind: str  # "SSD" | "HDD" | "Fusion"
    history: tuple[ListPrice, ...]  # ascending by date; the first entry is the launch

    @property
    def launch(self) -> ListPrice:
        return self.history[0]

    @property
    def label(self) -> str:
        if self.storage_gb is None:
            return "storage not stated"
        size = (
            f"{self.storage_gb // 1000} TB"
            if self.storage_gb >= 1000 and self.storage_gb % 1000 == 0
            else f"{self.storage_gb} GB"
        )
        return size if self.storage_kind == "SSD" else f"{size} {self.storage_kind}"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "storage_gb": self.storage_gb,
            "storage_kind": self.storage_kind,
            "history": [h.to_dict() for h in self.history],
        }


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """One configuration of a machine: chip bin x memory. Its storage options (each a
    chip x memory x storage configuration with its own dated list prices) are in
    `storage_options`; `storage_gb` and `launch_price_usd` are those of the base storage."""

    id: str  # "mac-studio-m2-ultra-76c-192gb", "mac-mini-2018-i7-32gb"
    machine: str  # "Mac Studio (2023) - M2 Ultra"
    kind: str  # "mac-mini" | "mac-studio"
    year: int
    chip_id: str
    memory_gb: int  # marketing GB = GiB for Apple Silicon, GiB of DRAM for Intel
    storage_gb: int | None
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
    storage_options: tuple[StorageOption, ...] = ()
    discontinued: str | None = None  # when Apple stopped selling the machine model
    discontinued_source: str | None = None
    family: str = ""  # depreciation family: "mac-mini-intel", "mac-studio-ultra", ...

    @property
    def memory_bytes(self) -> int:
        return unified_memory_bytes(self.memory_gb)
