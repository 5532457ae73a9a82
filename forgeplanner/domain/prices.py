"""Dated market observations: used / refurbished / new prices, and measured power draw.

A price observation is one dated fact from one source (a refurb-store listing, a sold listing,
an Apple price change). It may name an exact catalog configuration, or only the machine model
(and chip) when the listing did not say the memory or storage; such rows are kept but only
match what they name.
"""

from __future__ import annotations

from dataclasses import dataclass

CONDITIONS: tuple[str, ...] = ("new", "refurbished", "used", "unknown")

# Kinds of price figures. "reported" rows are prices quoted in an article without a listing
# behind them; the price engine does not take medians over those.
PRICE_TYPES: tuple[str, ...] = (
    "apple_list",  # Apple's own new price (incl. later price changes)
    "apple_refurbished",  # Apple Certified Refurbished store listing
    "used_listing",  # an asking price on a marketplace / renewed / open box
    "used_sold",  # a completed sale
    "listing",  # a listing or sale the user imported (condition says new/used/refurbished)
    "reported",  # a figure quoted in an article, no listing behind it
    "new_stock",  # a new, unopened unit offered by a retailer after Apple stopped selling it
)


@dataclass(frozen=True, slots=True)
class PriceObservation:
    id: str  # stable within its origin: "ref-012" (catalog) or a user-db id
    item: str  # the listing title / config text as the source gave it
    price_usd: float  # for a range: the low end (see price_max_usd)
    condition: str  # one of CONDITIONS
    price_type: str  # one of PRICE_TYPES
    date: str  # "YYYY", "YYYY-MM" or "YYYY-MM-DD"
    source: str
    quality: str = ""
    machine_id: str | None = None  # catalog machine model, e.g. "mac-mini-m4"
    chip_id: str | None = None  # when the listing names the chip bin / CPU
    config_id: str | None = None  # when memory (and chip) are known
    storage_gb: int | None = None
    price_max_usd: float | None = None  # a range "540-600" has 540 and 600
    original_price: float | None = None  # in original_currency, before conversion
    original_currency: str = "USD"
    notes: str = ""
    origin: str = "catalog"  # "catalog" (shipped reference) | "user"
    seller: str = ""  # "Apple Certified Refurbished (US)", "eBay (US)", ...
    ten_gbe: bool = False  # the listing includes Apple's 10 Gb Ethernet option

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition '{self.condition}' unknown; valid: {CONDITIONS}")
        if self.price_type not in PRICE_TYPES:
            raise ValueError(f"price_type '{self.price_type}' unknown; valid: {PRICE_TYPES}")
        if not self.price_usd > 0:
            raise ValueError(f"price_usd must be positive, got {self.price_usd}")
        if self.price_max_usd is not None and self.price_max_usd < self.price_usd:
            raise ValueError("price_max_usd is below price_usd")

    @property
    def point_price_usd(self) -> float:
        """One number for the observation: the midpoint of a range, else the price."""
        if self.price_max_usd is None:
            return self.price_usd
        return (self.price_usd + self.price_max_usd) / 2.0

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "item": self.item,
            "price_usd": self.price_usd,
            "price_max_usd": self.price_max_usd,
            "condition": self.condition,
            "price_type": self.price_type,
            "date": self.date,
            "source": self.source,
            "quality": self.quality,
            "machine_id": self.machine_id,
            "chip_id": self.chip_id,
            "config_id": self.config_id,
            "storage_gb": self.storage_gb,
            "original_price": self.original_price,
            "original_currency": self.original_currency,
            "notes": self.notes,
            "origin": self.origin,
            "seller": self.seller,
            "ten_gbe": self.ten_gbe,
        }


MEASUREMENT_KINDS: tuple[str, ...] = (
    "measured_wall",  # wall meter reading
    "measured_wall_peak",  # wall meter, peak during the run
    "measured_software",  # powermetrics / iStat-style software reading
    "reported",  # a qualitative statement with a bound ("under 250 W")
)


@dataclass(frozen=True, slots=True)
class PowerMeasurement:
    """Measured (not Apple-published) power of one machine. Watts as (low, high): a single
    reading has low == high; "4-6 W" is (4, 6); an upper bound "<= 30 W" is (None, 30)."""

    id: str
    machine_id: str
    config_label: str
    kind: str  # one of MEASUREMENT_KINDS
    date: str
    source: str
    quality: str = ""
    config_id: str | None = None
    idle_w: tuple[float | None, float] | None = None
    load_w: tuple[float | None, float] | None = None
    workload: str = ""
    model: str = ""
    quant: str = ""
    runtime: str = ""
    tokens_per_s: float | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.kind not in MEASUREMENT_KINDS:
            raise ValueError(f"kind '{self.kind}' unknown; valid: {MEASUREMENT_KINDS}")
        for name, rng in (("idle_w", self.idle_w), ("load_w", self.load_w)):
            if rng is None:
                continue
            lo, hi = rng
            if not 0 < hi < 5000 or (lo is not None and not 0 < lo <= hi):
                raise ValueError(f"{name} {rng} is not a sane watt range")

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "machine_id": self.machine_id,
            "config_id": self.config_id,
            "config_label": self.config_label,
            "kind": self.kind,
            "idle_w": list(self.idle_w) if self.idle_w else None,
            "load_w": list(self.load_w) if self.load_w else None,
            "workload": self.workload,
            "model": self.model,
            "quant": self.quant,
            "runtime": self.runtime,
            "tokens_per_s": self.tokens_per_s,
            "date": self.date,
            "source": self.source,
            "quality": self.quality,
            "notes": self.notes,
        }
