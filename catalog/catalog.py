"""The loaded hardware catalog: lookups over chips, configurations, links and observations."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.types import MachineModel, MarketNote
from forgeplanner.domain.hardware import ChipSpec, MachineConfig, StorageOption
from forgeplanner.domain.network import LinkSpec
from forgeplanner.domain.prices import PowerMeasurement, PriceObservation
from forgeplanner.errors import NotFoundError


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("-", " ").split())


@dataclass(frozen=True)
class Catalog:
    chips: dict[str, ChipSpec]
    configs: dict[str, MachineConfig]
    links: dict[str, LinkSpec]
    machines: dict[str, MachineModel]
    machine_of: dict[str, str]  # config id -> machine model id
    price_observations: tuple[PriceObservation, ...]
    power_measurements: tuple[PowerMeasurement, ...]
    market_notes: tuple[MarketNote, ...] = ()

    def __hash__(self) -> int:  # identity: one loaded catalog per data directory
        return id(self)

    def chip(self, chip_id: str) -> ChipSpec:
        try:
            return self.chips[chip_id]
        except KeyError:
            raise NotFoundError("chip", chip_id, sorted(self.chips)) from None

    def config(self, config_id: str) -> MachineConfig:
        try:
            return self.configs[config_id]
        except KeyError:
            raise NotFoundError("configuration", config_id, sorted(self.configs)) from None

    def link(self, link_id: str) -> LinkSpec:
        try:
            return self.links[link_id]
        except KeyError:
            raise NotFoundError("link", link_id, sorted(self.links)) from None

    def machine(self, machine_id: str) -> MachineModel:
        try:
            return self.machines[machine_id]
        except KeyError:
            raise NotFoundError("machine", machine_id, sorted(self.machines)) from None

    def chip_of(self, config_id: str) -> ChipSpec:
        return self.chips[self.config(config_id).chip_id]

    def find_chip(
        self, name: str, gpu_cores: int | None = None, memory_gb: int | None = None
    ) -> ChipSpec:
        """The bin of a chip by its marketing name: ("M3 Max", 30) -> the 300 GB/s bin;
        gpu_cores None -> the top bin (most GPU cores) among those sold with `memory_gb`, when
        given (an "M4 Max with 36 GB" is the 32-core bin: only it was sold with 36 GB). Names
        match case-insensitively and with '-' for spaces ("m3-max")."""
        wanted = _norm(name)
        bins = [c for c in self.chips.values() if _norm(c.name) == wanted]
        if not bins:
            # Apple names first (what people type), in catalog order, then the Intel CPUs.
            ordered = sorted(self.chips.values(), key=lambda c: c.vendor != "apple")
            names = list(dict.fromkeys(c.name for c in ordered))
            raise NotFoundError("chip name", name, names)
        if gpu_cores is None:
            selling = [c for c in bins if memory_gb in c.memory_options_gb]
            return max(selling or bins, key=lambda c: c.gpu_cores)
        for chip in bins:
            if chip.gpu_cores == gpu_cores:
                return chip
        valid = [f"{c.gpu_cores}" for c in sorted(bins, key=lambda c: c.gpu_cores)]
        raise NotFoundError(f"{bins[0].name} GPU-core count", str(gpu_cores), valid)

    def storage_option(self, option_id: str) -> tuple[MachineConfig, StorageOption]:
        """A chip x memory x storage configuration by its id
        ("mac-studio-m2-ultra-76c-192gb-2tb"), with the configuration it belongs to."""
        for cfg in self.configs.values():
            if option_id.startswith(cfg.id):
                for option in cfg.storage_options:
                    if option.id == option_id:
                        return cfg, option
        valid = [o.id for c in self.configs.values() for o in c.storage_options]
        raise NotFoundError("storage configuration", option_id, valid)

    def resolve(self, some_id: str) -> tuple[MachineConfig, StorageOption | None]:
        """A configuration id (chip x memory) or a storage configuration id."""
        if some_id in self.configs:
            return self.configs[some_id], None
        try:
            return self.storage_option(some_id)
        except NotFoundError:
            raise NotFoundError("configuration", some_id, sorted(self.configs)) from None

    def observations_for(self, config_id: str) -> tuple[PriceObservation, ...]:
        return tuple(o for o in self.price_observations if o.config_id == config_id)
