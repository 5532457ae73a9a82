"""Network links between Macs: Ethernet, IP over Thunderbolt, RDMA over Thunderbolt 5.

Bandwidth is bytes per second (decimal, as link rates are quoted) and latency is seconds, both
as `Figure`s: a nominal line rate is not what a TCP stream or an RDMA verb achieves, so the
catalog keeps the nominal rate and the measured figure (with its test conditions) apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.domain.provenance import Figure


@dataclass(frozen=True, slots=True)
class LinkSpec:
    id: str  # "1gbe", "2.5gbe", "10gbe", "tb3", "tb4", "tb5", "tb5-rdma"
    name: str
    medium: str  # "ethernet" | "thunderbolt"
    transport: str  # "tcp" | "rdma"
    nominal_bandwidth_bytes_per_s: Figure[float]
    measured_bandwidth_bytes_per_s: Figure[float]
    latency_s: Figure[float]
    topology: str  # "switched" | "point-to-point"
    os_requirement: str
    macs: str  # which Macs have it
    sources: tuple[str, ...]
    notes: str = ""

    @property
    def effective_bandwidth_bytes_per_s(self) -> float | None:
        """The measured figure when there is one, else the nominal line rate, else None."""
        for fig in (self.measured_bandwidth_bytes_per_s, self.nominal_bandwidth_bytes_per_s):
            if fig.value is not None:
                return float(fig.value)
        return None
