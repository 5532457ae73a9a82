"""Used-market price of a configuration, always labelled with its basis.

Pure functions over the catalog's dated observations (and the user's own); "today" is an
argument, never read from the clock.

Basis, in order of preference:
1. observed: the median of recent matching observations (same configuration id, same storage
   or storage not stated, refurbished/used listings or sales; reported figures and Apple list
   prices excluded). "Recent" = dated within `recent_months` before today.
2. estimated: launch price x a depreciation curve fitted on every observation that names a
   configuration with a known launch price: ln(price / launch) = a + b x age_years, least
   squares (numpy.polyfit). A two-parameter line because Apple-refurbished prices start ~15 %
   below new (the intercept) and then fall with age (the slope); the reference data is too thin
   for anything richer. Estimates outside the fitted age range say they are extrapolated.
3. unknown, with the reason.

The new price is the latest Apple list price: the launch price, or a later `apple_list`
observation for the same configuration and storage (2026 repricing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from forgeplanner.domain.hardware import MachineConfig
from forgeplanner.domain.prices import PriceObservation

# Price types that are a real listing or sale of a machine (not a quote in an article).
MARKET_TYPES = frozenset({"apple_refurbished", "used_listing", "used_sold", "listing"})
USED_CONDITIONS = frozenset({"used", "refurbished", "unknown"})
RECENT_MONTHS = 24
MIN_FIT_POINTS = 3


def year_fraction(date: str) -> float:
    """'2026' -> 2026.5 (mid-year), '2026-02' -> mid-February, '2026-02-18' -> that day.
    Partial dates take the middle of the period they name."""
    parts = [int(p) for p in date.split("-")]
    if len(parts) == 1:
        return parts[0] + 0.5
    if len(parts) == 2:
        return parts[0] + (parts[1] - 0.5) / 12.0
    # day of year by a 365.25-day year: precise enough for ages in years
    cum = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
    return parts[0] + (cum[parts[1] - 1] + parts[2] - 0.5) / 365.25


@dataclass(frozen=True, slots=True)
class DepreciationFit:
    """ln(price / launch price) = intercept + slope x age_years."""

    intercept: float
    slope: float
    n_points: int
    age_min: float
    age_max: float
    date_from: str
    date_to: str

    def ratio(self, age_years: float) -> float:
        return math.exp(self.intercept + self.slope * age_years)

    def describe(self) -> str:
        return (
            f"ln(price/launch) = {self.intercept:.3f} {self.slope:+.3f} x age "
            f"(fit on {self.n_points} observations aged {self.age_min:.1f}-{self.age_max:.1f} "
            f"years, {self.date_from}..{self.date_to})"
        )


@dataclass(frozen=True, slots=True)
class PriceBasis:
    price_usd: float | None
    basis: str  # "observed" | "estimated" | "list" | "unknown"
    condition: str  # "used" | "new"
    count: int = 0
    date_from: str | None = None
    date_to: str | None = None
    detail: str = ""

    @property
    def label(self) -> str:
        """One short line for tables and the JSON `price_basis`: basis, count and dates (the
        full reasoning is in `detail`)."""
        if self.basis == "unknown":
            return "unknown: " + self.detail.split(":")[0]
        if self.basis == "list":
            return f"new, Apple list price as of {self.date_to}"
        dates = (
            self.date_from
            if self.date_from == self.date_to
            else f"{self.date_from}..{self.date_to}"
        )
        if self.basis == "observed":
            return f"used, observed: median of {self.count} ({dates})"
        extra = ", extrapolated" if "EXTRAPOLATED" in self.detail else ""
        return f"used, estimated from launch price and age (fit on {self.count}, {dates}{extra})"

    def to_dict(self) -> dict[str, object]:
        return {
            "price_usd": None if self.price_usd is None else round(self.price_usd, 2),
            "basis": self.basis,
            "condition": self.condition,
            "count": self.count,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "detail": self.detail,
            "label": self.label,
        }


def matching_observations(
    config: MachineConfig, observations: Iterable[PriceObservation]
) -> list[PriceObservation]:
    """Market observations (used/refurbished listings and sales) of exactly this config."""
    out = []
    for o in observations:
        if o.config_id != config.id or o.price_type not in MARKET_TYPES:
            continue
        if o.condition not in USED_CONDITIONS:
            continue
        if o.storage_gb is not None and o.storage_gb != config.storage_gb:
            continue  # a bigger SSD is a different price
        out.append(o)
    return out


def fit_depreciation(
    configs: dict[str, MachineConfig], observations: Iterable[PriceObservation]
) -> DepreciationFit | None:
    """Fit the depreciation line on every market observation naming a configuration with a
    known launch price and release date. None with fewer than MIN_FIT_POINTS points."""
    ages: list[float] = []
    logs: list[float] = []
    dates: list[str] = []
    for o in observations:
        cfg = configs.get(o.config_id or "")
        if cfg is None or o.price_type not in MARKET_TYPES or o.condition not in USED_CONDITIONS:
            continue
        if o.storage_gb is not None and o.storage_gb != cfg.storage_gb:
            continue
        launch = cfg.launch_price_usd.value
        if launch is None:
            continue
        age = year_fraction(o.date) - year_fraction(cfg.release_date)
        if age < 0:
            continue
        ages.append(age)
        logs.append(math.log(o.point_price_usd / float(launch)))
        dates.append(o.date)
    if len(ages) < MIN_FIT_POINTS or max(ages) - min(ages) < 0.5:
        return None
    slope, intercept = np.polyfit(np.asarray(ages), np.asarray(logs), 1)
    return DepreciationFit(
        intercept=float(intercept),
        slope=float(slope),
        n_points=len(ages),
        age_min=min(ages),
        age_max=max(ages),
        date_from=min(dates),
        date_to=max(dates),
    )


def used_price(
    config: MachineConfig,
    observations: Sequence[PriceObservation],
    today: str,
    fit: DepreciationFit | None,
    recent_months: int = RECENT_MONTHS,
) -> PriceBasis:
    """The used price of one configuration (see the module docstring for the basis rules)."""
    now = year_fraction(today)
    matches = matching_observations(config, observations)
    recent = [o for o in matches if 0 <= now - year_fraction(o.date) <= recent_months / 12.0]
    if recent:
        prices = [o.point_price_usd for o in recent]
        dates = sorted(o.date for o in recent)
        return PriceBasis(
            price_usd=float(np.median(prices)),
            basis="observed",
            condition="used",
            count=len(recent),
            date_from=dates[0],
            date_to=dates[-1],
            detail="; ".join(sorted({o.source for o in recent}))[:300],
        )
    launch = config.launch_price_usd
    if launch.value is None:
        return PriceBasis(
            None,
            "unknown",
            "used",
            detail=f"no recent observations and launch price unknown: {launch.reason}",
        )
    if fit is None:
        return PriceBasis(
            None,
            "unknown",
            "used",
            detail="no recent observations and too few to fit a depreciation curve",
        )
    age = max(0.0, now - year_fraction(config.release_date))
    ratio = fit.ratio(age)
    extrapolated = not (fit.age_min <= age <= fit.age_max)
    detail = (
        f"${float(launch.value):,.0f} launch x {ratio:.2f} at {age:.1f} years; {fit.describe()}"
        + ("; EXTRAPOLATED beyond the fitted ages" if extrapolated else "")
    )
    older = f", {len(matches)} older observation(s) not recent" if matches else ""
    return PriceBasis(
        price_usd=float(launch.value) * ratio,
        basis="estimated",
        condition="used",
        count=fit.n_points,
        date_from=fit.date_from,
        date_to=fit.date_to,
        detail=detail + older,
    )


def new_price(config: MachineConfig, observations: Iterable[PriceObservation]) -> PriceBasis:
    """Apple's latest list price for this configuration: a later `apple_list` observation
    (same storage) if there is one, else the launch price."""
    later = [
        o
        for o in observations
        if o.config_id == config.id
        and o.price_type == "apple_list"
        and (o.storage_gb is None or o.storage_gb == config.storage_gb)
    ]
    launch = config.launch_price_usd
    if later:
        last = max(later, key=lambda o: year_fraction(o.date))
        return PriceBasis(
            last.price_usd,
            "list",
            "new",
            1,
            last.date,
            last.date,
            detail=f"{last.source} (launch price {launch.display('${:,.0f}')})",
        )
    if launch.value is None:
        return PriceBasis(None, "unknown", "new", detail=f"launch price unknown: {launch.reason}")
    as_of = launch.as_of or config.release_date
    return PriceBasis(
        float(launch.value),
        "list",
        "new",
        1,
        as_of,
        as_of,
        detail=launch.derived or launch.source or "",
    )


def withdrawn_by(config: MachineConfig, today: str) -> bool:
    """True when Apple stopped selling this option on or before today."""
    return config.withdrawn is not None and year_fraction(config.withdrawn) <= year_fraction(today)
