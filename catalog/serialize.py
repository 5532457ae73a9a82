"""Plain-dict views of catalog values for JSON output (CLI `--json`, exports, the UI).

Every figure is written as {value, source, as_of, reason, derived}: a known figure has value,
source and as_of; an unknown one has value null and the reason.
"""

from __future__ import annotations

from typing import Any

from catalog.catalog import Catalog
from forgeplanner.domain.hardware import ChipSpec, MachineConfig
from forgeplanner.domain.network import LinkSpec
from forgeplanner.domain.provenance import Figure


def figure_dict(fig: Figure) -> dict[str, Any]:
    return fig.to_dict()


def chip_dict(chip: ChipSpec) -> dict[str, Any]:
    return {
        "id": chip.id,
        "name": chip.name,
        "vendor": chip.vendor,
        "generation": chip.generation,
        "tier": chip.tier,
        "gpu_cores": chip.gpu_cores,
        "year": chip.year,
        "laptop_only": chip.laptop_only,
        "ships_in": chip.ships_in,
        "memory_options_gb": list(chip.memory_options_gb),
        "cpu_cores": figure_dict(chip.cpu_cores),
        "cpu_p_cores": figure_dict(chip.cpu_p_cores),
        "cpu_e_cores": figure_dict(chip.cpu_e_cores),
        "mem_bandwidth_gbps": figure_dict(chip.mem_bandwidth_gbps),
        "gpu_fp32_tflops": figure_dict(chip.gpu_fp32_tflops),
        "neural_engine_cores": figure_dict(chip.neural_engine_cores),
        "neural_engine_tops": figure_dict(chip.neural_engine_tops),
        "sources": list(chip.sources),
        "notes": chip.notes,
        "memory": None if chip.memory is None else chip.memory.to_dict(),
        "bandwidth_by_memory_gbps": [
            {"memory_gb": mem, **figure_dict(fig)} for mem, fig in chip.bandwidth_by_memory
        ],
    }


def config_dict(cat: Catalog, cfg: MachineConfig) -> dict[str, Any]:
    return {
        "id": cfg.id,
        "machine_id": cat.machine_of[cfg.id],
        "machine": cfg.machine,
        "kind": cfg.kind,
        "year": cfg.year,
        "release_date": cfg.release_date,
        "chip_id": cfg.chip_id,
        "chip": cat.chips[cfg.chip_id].name,
        "gpu_cores": cat.chips[cfg.chip_id].gpu_cores,
        "memory_gb": cfg.memory_gb,
        "memory_bytes": cfg.memory_bytes,
        "storage_gb": cfg.storage_gb,
        "launch_price_usd": figure_dict(cfg.launch_price_usd),
        "idle_w": figure_dict(cfg.idle_w),
        "max_w": figure_dict(cfg.max_w),
        "idle_btu_h": figure_dict(cfg.idle_btu_h),
        "max_btu_h": figure_dict(cfg.max_btu_h),
        "thunderbolt": cfg.thunderbolt,
        "thunderbolt_ports": cfg.thunderbolt_ports,
        "ethernet_gbps": list(cfg.ethernet_gbps),
        "ram_upgradeable": cfg.ram_upgradeable,
        "withdrawn": cfg.withdrawn,
        "discontinued": cfg.discontinued,
        "discontinued_source": cfg.discontinued_source,
        "family": cfg.family,
        "storage_options": [o.to_dict() for o in cfg.storage_options],
        "notes": cfg.notes,
        "sources": list(cfg.sources),
    }


def link_dict(link: LinkSpec) -> dict[str, Any]:
    return {
        "id": link.id,
        "name": link.name,
        "medium": link.medium,
        "transport": link.transport,
        "topology": link.topology,
        "nominal_bandwidth_bytes_per_s": figure_dict(link.nominal_bandwidth_bytes_per_s),
        "measured_bandwidth_bytes_per_s": figure_dict(link.measured_bandwidth_bytes_per_s),
        "latency_s": figure_dict(link.latency_s),
        "os_requirement": link.os_requirement,
        "macs": link.macs,
        "notes": link.notes,
        "sources": list(link.sources),
    }
