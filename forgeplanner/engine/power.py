"""Power, heat and running cost of machines. Pure arithmetic, stated in the docstrings.

- Energy per year: load watts x hours at load per day + idle watts x the other hours, x 365
  days, / 1000 -> kWh. Load watts default to Apple's "max" figure (Apple measures it with a
  compute-intensive app; measured LLM inference on an M3 Ultra drew 223-290 W against Apple's
  270 W, on an M4 mini 30-31 W against 65 W: see the catalog's power measurements), so it is an
  upper-ish planning figure; pass a measured load to use that instead.
- Money per year: kWh x tariff (currency per kWh, whatever currency the tariff is in).
- A shelf of machines sums watts and BTU/h; one unknown figure makes the sum unknown and says
  which machine is missing it.
- Tokens per joule at load: decode tokens/s / load watts (1 W = 1 J/s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forgeplanner.domain.provenance import Figure

HOURS_PER_DAY = 24.0
DAYS_PER_YEAR = 365.0
BTU_PER_WATT = 3.412  # 1 W = 3.412 BTU/h (Apple's power pages use this factor)


@dataclass(frozen=True, slots=True)
class AnnualEnergy:
    kwh: float | None
    cost: float | None  # in the tariff's currency; None without a tariff or with unknown watts
    formula: str

    def to_dict(self) -> dict[str, object]:
        return {
            "kwh": None if self.kwh is None else round(self.kwh, 2),
            "cost": None if self.cost is None else round(self.cost, 2),
            "formula": self.formula,
        }


def annual_energy(
    idle_w: float | None,
    load_w: float | None,
    hours_at_load_per_day: float,
    tariff_per_kwh: float | None = None,
) -> AnnualEnergy:
    """kWh and money per year for one machine (or a shelf's summed watts)."""
    if not 0 <= hours_at_load_per_day <= HOURS_PER_DAY:
        raise ValueError(f"hours at load per day must be 0-24, got {hours_at_load_per_day}")
    if tariff_per_kwh is not None and tariff_per_kwh < 0:
        raise ValueError(f"tariff must be >= 0 per kWh, got {tariff_per_kwh}")
    h = hours_at_load_per_day
    if idle_w is None or load_w is None:
        missing = "idle" if idle_w is None else "load"
        return AnnualEnergy(None, None, f"unknown: {missing} watts unknown")
    wh_day = load_w * h + idle_w * (HOURS_PER_DAY - h)
    kwh = wh_day * DAYS_PER_YEAR / 1000.0
    formula = (
        f"({load_w:g} W x {h:g} h + {idle_w:g} W x {HOURS_PER_DAY - h:g} h) x 365 / 1000 "
        f"= {kwh:.1f} kWh"
    )
    cost = None
    if tariff_per_kwh is not None:
        cost = kwh * tariff_per_kwh
        formula += f"; x {tariff_per_kwh:g}/kWh = {cost:.2f}"
    return AnnualEnergy(kwh, cost, formula)


@dataclass(frozen=True, slots=True)
class ShelfTotals:
    idle_w: float | None
    max_w: float | None
    idle_btu_h: float | None
    max_btu_h: float | None
    unknown: tuple[str, ...]  # "<name>: max_w (reason)" for every missing figure

    def to_dict(self) -> dict[str, object]:
        return {
            "idle_w": self.idle_w,
            "max_w": self.max_w,
            "idle_btu_h": None if self.idle_btu_h is None else round(self.idle_btu_h, 1),
            "max_btu_h": None if self.max_btu_h is None else round(self.max_btu_h, 1),
            "unknown": list(self.unknown),
        }


@dataclass(frozen=True, slots=True)
class ShelfItem:
    name: str
    count: int
    idle_w: Figure
    max_w: Figure
    idle_btu_h: Figure
    max_btu_h: Figure


def shelf_totals(items: Sequence[ShelfItem]) -> ShelfTotals:
    """Total watts and BTU/h of a shelf or closet of machines."""
    sums: dict[str, float | None] = {
        "idle_w": 0.0,
        "max_w": 0.0,
        "idle_btu_h": 0.0,
        "max_btu_h": 0.0,
    }
    unknown: list[str] = []
    for it in items:
        if it.count < 0:
            raise ValueError(f"{it.name}: count must be >= 0, got {it.count}")
        for key in sums:
            fig: Figure = getattr(it, key)
            if fig.value is None:
                unknown.append(f"{it.name}: {key} ({fig.reason})")
                sums[key] = None
            elif sums[key] is not None:
                sums[key] = sums[key] + float(fig.value) * it.count  # type: ignore[operator]
    return ShelfTotals(
        sums["idle_w"], sums["max_w"], sums["idle_btu_h"], sums["max_btu_h"], tuple(unknown)
    )


def tokens_per_joule(decode_tps: float | None, load_w: float | None) -> float | None:
    """Decode tokens per joule at load (tokens/s / W)."""
    if decode_tps is None or load_w is None or load_w <= 0:
        return None
    return decode_tps / load_w


def watts_to_btu_h(watts: float) -> float:
    return watts * BTU_PER_WATT
