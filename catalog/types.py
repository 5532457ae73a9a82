"""Catalog-only value types: a machine model (the family its configurations belong to) and a
dated market note. Chips, configurations, links, prices and power use the domain types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MachineModel:
    id: str  # "mac-mini-m4-pro"
    name: str  # "Mac mini (2024) - M4 Pro"
    kind: str  # "mac-mini" | "mac-studio"
    year: int
    release_date: str
    config_ids: tuple[str, ...]
    sources: tuple[str, ...]
    notes: str = ""


@dataclass(frozen=True, slots=True)
class MarketNote:
    """A dated statement about prices that names no single configuration (refurb discount
    levels, depreciation claims, shortages). Shown next to prices; never used as a price."""

    date: str
    text: str
    source: str
    quality: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "date": self.date,
            "text": self.text,
            "source": self.source,
            "quality": self.quality,
        }
