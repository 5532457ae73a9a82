"""New and used prices of a configuration on a given date, always labelled with their basis.

Pure functions over the catalog's dated list prices and market observations (and the user's
own); the date asked (`as_of`) is an argument, never read from the clock.

New (`new_price(cfg, as_of)`): "new" means sold new by Apple on that date.
1. Apple's list price in effect on the date (the cheapest storage option on sale): a sourced
   price ("list"), or, after a repricing whose new step prices are unsourced, the previous price
   scaled by the sourced rise ("scaled", an estimate saying so).
2. On sale, but Apple's price of that configuration unknown: the list-price model's estimate
   ("estimated", with its cross-validated error).
3. Not on sale (before release, withdrawn, discontinued): new only as dated, sourced remaining
   stock - a `new_stock` observation of the configuration no older than STOCK_WINDOW_DAYS
   ("stock", median, count and dates); else not sold new, with the reason.

Used (`used_price(cfg, observations, as_of, model)`):
1. observed: the median of recent market observations of the configuration (Apple refurbished,
   used and open-box listings, sales; figures quoted in articles and Apple's new prices
   excluded), "recent" = dated within RECENT_MONTHS before the date asked; at the base storage
   (or storage not stated) when there are such, else at the smallest storage observed.
2. estimated: the configuration's reference list price x the depreciation ratio of its family
   at its age (`UsedPriceModel`), labelled with the family's cross-validated error; never above
   Apple's new price of the configuration that day, when Apple sells it.
3. unknown, with the reason.

Depreciation model (per family: Intel Mac minis, Mac minis, Mac mini Pro, Mac Studio Max,
Mac Studio Ultra): ln(price / reference list price) = a_f + b_f x age_years + s_f x shortage,
where `shortage` is 1 for prices from SHORTAGE_FROM on (the 2026 memory shortage: used Macs
listed above their usual level, Apple repricing and withdrawing high-memory models) and 0
before; a price asked for a date in that period includes the premium. The reference list
price of an observation is Apple's list price of the same storage option on the observation's
date, or its last list price when Apple no longer sold it then (Apple's refurbished prices
follow Apple's current new price, so a 2026 price rise shows in both). Each family's line is a
ridge fit pulled towards the pooled line (PRIOR_WEIGHT observations' worth), so a family with
few observations borrows strength from the others instead of extrapolating a noisy slope.
Error: leave-one-configuration-out cross-validation - every configuration's observations are
predicted by a model fitted without that configuration - reported per family as the median
and mean absolute percentage error.

List-price model (for configurations whose Apple price is unknown): ln(launch list price) =
a + b_tier + c ln(memory GB) + d ln(GPU cores) + e (year - 2020), least squares on every Apple
Silicon configuration with a sourced launch price, leave-one-out cross-validated.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from forgeplanner.domain.hardware import ChipSpec, ListPrice, MachineConfig, StorageOption
from forgeplanner.domain.prices import PriceObservation

# Price types that are a real listing or sale of a machine (not a quote in an article).
MARKET_TYPES = frozenset({"apple_refurbished", "used_listing", "used_sold", "listing"})
USED_CONDITIONS = frozenset({"used", "refurbished", "unknown"})
RECENT_MONTHS = 24
# Start of the 2026 memory-shortage market (catalog market notes: Mac mini and Mac Studio
# shortages reported 2026-02-18, the 512GB M3 Ultra withdrawn 2026-03, marked-up minis on eBay
# 2026-04-25, Apple's 2026-06-25 price rise attributed to memory costs). No end is known, so a
# date after it is priced in it.
SHORTAGE_FROM = "2026-02"
# A dated new-stock listing of a machine Apple no longer sells counts for three months.
STOCK_WINDOW_DAYS = 92
MIN_FIT_POINTS = 3
# Strength of the pull towards the pooled line, in observations (ridge prior weight).
PRIOR_WEIGHT = 8.0
FAMILY_NAMES = {
    "mac-mini-intel": "Intel Mac mini",
    "mac-mini": "Mac mini",
    "mac-mini-pro": "Mac mini (Pro chip)",
    "mac-studio-max": "Mac Studio (Max chip)",
    "mac-studio-ultra": "Mac Studio (Ultra chip)",
}
_TIERS = ("base", "pro", "max", "ultra")


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


def _on_or_before(date: str, as_of: str) -> bool:
    """A (possibly partial) date is in effect on `as_of` when its period has started."""
    return date[: len(as_of)] <= as_of[: len(date)] if len(date) <= len(as_of) else date <= as_of


# ------------------------------------------------------------------------------------ basis


@dataclass(frozen=True, slots=True)
class PriceBasis:
    price_usd: float | None
    basis: str  # "list" | "scaled" | "estimated" | "observed" | "stock" | "unknown"
    condition: str  # "used" | "new"
    count: int = 0
    date_from: str | None = None
    date_to: str | None = None
    detail: str = ""
    storage: str | None = None  # the storage option the price is for ("1 TB")
    model: str | None = None  # the model behind an estimate
    error_pct: float | None = None  # its cross-validated median absolute error, percent
    on_sale: bool | None = None  # new: sold new by Apple on the date asked

    @property
    def label(self) -> str:
        """One short line for tables and the JSON `price_basis`: basis, count and dates, or
        model and error (the full reasoning is in `detail`)."""
        at = f" ({self.storage})" if self.storage else ""
        err = f", CV error {self.error_pct:.0f}%" if self.error_pct is not None else ""
        dates = (
            self.date_from
            if self.date_from == self.date_to
            else f"{self.date_from}..{self.date_to}"
        )
        if self.basis == "unknown":
            return "unknown: " + self.detail.split(": ")[0].split("; ")[0]
        if self.basis == "list":
            return f"new, Apple list price from {self.date_to}{at}"
        if self.basis == "scaled":
            return f"new, estimated: last list price scaled by Apple's {self.date_to} rise{at}"
        if self.basis == "stock":
            return f"new, remaining stock: median of {self.count} listings ({dates}){at}"
        if self.basis == "observed":
            return f"used, observed: median of {self.count} ({dates}){at}"
        if self.condition == "new":
            return f"new, estimated by the {self.model}{err}{at}"
        extra = ", extrapolated" if "EXTRAPOLATED" in self.detail else ""
        return f"used, estimated by the {self.model}{err}{extra}{at}"

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
            "storage": self.storage,
            "model": self.model,
            "error_pct": None if self.error_pct is None else round(self.error_pct, 1),
            "on_sale": self.on_sale,
        }


# ------------------------------------------------------------------------------ list prices


def list_entry(option: StorageOption, as_of: str) -> ListPrice | None:
    """The entry of the option's price history in effect on `as_of` (None before launch)."""
    current = None
    for entry in option.history:
        if _on_or_before(entry.date, as_of):
            current = entry
        else:
            break
    return current


def last_list_price(option: StorageOption, as_of: str) -> ListPrice | None:
    """The last known price Apple sold this option at, on or before `as_of`."""
    best = None
    for entry in option.history:
        if not _on_or_before(entry.date, as_of):
            break
        if entry.status == "sold" and entry.price.value is not None:
            best = entry
    return best


def on_sale(cfg: MachineConfig, as_of: str) -> list[tuple[StorageOption, ListPrice]]:
    """The storage options Apple sold new on `as_of`, with their price entries."""
    out = []
    for option in cfg.storage_options:
        entry = list_entry(option, as_of)
        if entry is not None and entry.status == "sold":
            out.append((option, entry))
    return out


def _off_sale_reason(cfg: MachineConfig, as_of: str) -> str:
    if cfg.storage_options and not _on_or_before(cfg.release_date, as_of):
        return f"not released until {cfg.release_date}"
    ends = []
    if cfg.withdrawn and _on_or_before(cfg.withdrawn, as_of):
        ends.append((cfg.withdrawn, f"withdrawn by Apple {cfg.withdrawn}"))
    if cfg.discontinued and _on_or_before(cfg.discontinued, as_of):
        ends.append((cfg.discontinued, f"discontinued by Apple {cfg.discontinued}"))
    if ends:
        return min(ends)[1]  # the first of the two
    reasons = [list_entry(o, as_of) for o in cfg.storage_options]
    shown = next((e.price.reason for e in reasons if e is not None and e.price.reason), None)
    return shown or "not in Apple's price list on that date"


def withdrawn_by(config: MachineConfig, as_of: str) -> bool:
    """True when Apple did not sell this configuration new on `as_of` although it had been
    released (withdrawn option or discontinued model)."""
    if not _on_or_before(config.release_date, as_of):
        return False
    if not config.storage_options:
        return config.withdrawn is not None and _on_or_before(config.withdrawn, as_of)
    return not on_sale(config, as_of)


def _stock(
    cfg: MachineConfig, as_of: str, observations: Iterable[PriceObservation]
) -> PriceBasis | None:
    now = year_fraction(as_of)
    rows = [
        o
        for o in observations
        if o.config_id == cfg.id
        and o.price_type == "new_stock"
        and 0 <= now - year_fraction(o.date) <= STOCK_WINDOW_DAYS / 365.25
    ]
    if not rows:
        return None
    dates = sorted(o.date for o in rows)
    return PriceBasis(
        price_usd=float(np.median([o.point_price_usd for o in rows])),
        basis="stock",
        condition="new",
        count=len(rows),
        date_from=dates[0],
        date_to=dates[-1],
        detail="; ".join(sorted({o.source for o in rows}))[:300],
        on_sale=False,
    )


def new_price(
    cfg: MachineConfig,
    as_of: str,
    observations: Iterable[PriceObservation] = (),
    model: UsedPriceModel | None = None,
) -> PriceBasis:
    """The price of this configuration new on `as_of` (see the module docstring)."""
    sold = on_sale(cfg, as_of)
    if not sold:
        stock = _stock(cfg, as_of, observations)
        if stock is not None:
            return stock
        return PriceBasis(
            None,
            "unknown",
            "new",
            detail=(
                f"not sold new by Apple on {as_of}: {_off_sale_reason(cfg, as_of)}; no dated "
                f"remaining-stock listing within {STOCK_WINDOW_DAYS} days"
            ),
            on_sale=False,
        )
    known = [(o, e) for o, e in sold if e.price.value is not None]
    if known:
        option, entry = min(known, key=lambda oe: float(oe[1].price.value))  # type: ignore[arg-type]
        fig = entry.price
        detail = "; ".join(
            x
            for x in (
                f"{entry.price_list} price list"
                + (f", grade {entry.grade}" if entry.grade else ""),
                fig.derived,
                fig.reason,
                fig.source,
            )
            if x
        )
        return PriceBasis(
            float(fig.value),  # type: ignore[arg-type]
            "scaled" if entry.basis == "scaled" else "list",
            "new",
            1,
            entry.date,
            entry.date,
            detail=detail,
            storage=option.label,
            on_sale=True,
        )
    reason = sold[0][1].price.reason or "price unknown"
    lm = model.list_model if model is not None else None
    if lm is not None:
        est = lm.predict(cfg)
        if est is not None:
            price, why = est
            return PriceBasis(
                price,
                "estimated",
                "new",
                lm.n_points,
                as_of,
                as_of,
                detail=f"Apple's price unknown ({reason}); {why}",
                storage=sold[0][0].label,
                model="list-price model",
                error_pct=lm.cv_median_pct,
                on_sale=True,
            )
    return PriceBasis(None, "unknown", "new", detail=f"list price unknown: {reason}", on_sale=True)


# -------------------------------------------------------------------------- list-price model


@dataclass(frozen=True)
class ListPriceModel:
    """ln(launch list price) = a + b_tier + c ln(memory GB) + d ln(GPU cores) + e (year-2020)."""

    coef: tuple[float, ...]
    chips: Mapping[str, ChipSpec] = field(repr=False)
    n_points: int = 0
    cv_median_pct: float | None = None
    cv_mean_pct: float | None = None

    @staticmethod
    def features(cfg: MachineConfig, chip: ChipSpec) -> list[float]:
        tier = [1.0 if chip.tier == t else 0.0 for t in _TIERS[1:]]
        return [
            1.0,
            *tier,
            math.log(cfg.memory_gb),
            math.log(chip.gpu_cores),
            float(cfg.year - 2020),
        ]

    def predict(self, cfg: MachineConfig) -> tuple[float, str] | None:
        chip = self.chips.get(cfg.chip_id)
        if chip is None or not chip.is_apple_silicon:
            return None
        x = np.asarray(self.features(cfg, chip))
        price = float(math.exp(float(x @ np.asarray(self.coef))))
        err = (
            f"; leave-one-out error median {self.cv_median_pct:.0f}%, mean {self.cv_mean_pct:.0f}%"
            if self.cv_median_pct is not None and self.cv_mean_pct is not None
            else ""
        )
        return price, (
            f"list-price model: ln(price) from chip tier, ln(memory), ln(GPU cores) and year, "
            f"fit on {self.n_points} Apple Silicon launch prices{err}"
        )


def fit_list_model(
    configs: Mapping[str, MachineConfig], chips: Mapping[str, ChipSpec]
) -> ListPriceModel | None:
    rows = []
    for cfg in configs.values():
        chip = chips.get(cfg.chip_id)
        if chip is None or not chip.is_apple_silicon:
            continue
        fig = cfg.launch_price_usd
        if fig.value is None or not cfg.storage_options:
            continue
        if cfg.storage_options[0].launch.basis != "list":
            continue
        rows.append((ListPriceModel.features(cfg, chip), math.log(float(fig.value))))
    if len(rows) < 10:
        return None
    x = np.asarray([r[0] for r in rows])
    y = np.asarray([r[1] for r in rows])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    errs = []
    for i in range(len(rows)):
        keep = np.arange(len(rows)) != i
        c = np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
        errs.append(abs(math.exp(float(x[i] @ c) - y[i]) - 1.0) * 100)
    return ListPriceModel(
        coef=tuple(float(v) for v in coef),
        chips=chips,
        n_points=len(rows),
        cv_median_pct=float(np.median(errs)),
        cv_mean_pct=float(np.mean(errs)),
    )


# ------------------------------------------------------------------------ depreciation model


@dataclass(frozen=True, slots=True)
class FamilyFit:
    """ln(price / reference list price) = intercept + slope x age_years + shortage x [date in
    the 2026 shortage] for one family."""

    family: str
    intercept: float
    slope: float
    shortage: float
    n_points: int
    n_configs: int
    age_min: float
    age_max: float
    date_from: str
    date_to: str
    cv_median_pct: float | None = None
    cv_mean_pct: float | None = None
    cv_points: int = 0

    def ratio(self, age_years: float, date: str | None = None) -> float:
        """Price / reference list price at this age, on `date` (in or before the shortage)."""
        short = self.shortage if date is not None and in_shortage(date) else 0.0
        return math.exp(self.intercept + self.slope * age_years + short)

    @property
    def name(self) -> str:
        return FAMILY_NAMES.get(self.family, self.family)

    def describe(self) -> str:
        err = (
            f"; leave-one-configuration-out error median {self.cv_median_pct:.0f}%, "
            f"mean {self.cv_mean_pct:.0f}% over {self.cv_points} observations"
            if self.cv_median_pct is not None and self.cv_mean_pct is not None
            else "; too few configurations to cross-validate"
        )
        return (
            f"{self.name}: ln(price/list) = {self.intercept:.3f} {self.slope:+.3f} x age "
            f"{self.shortage:+.3f} x shortage"
            f" (fit on {self.n_points} observations of {self.n_configs} configurations aged "
            f"{self.age_min:.1f}-{self.age_max:.1f} years, {self.date_from}..{self.date_to})" + err
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "family": self.family,
            "name": self.name,
            "intercept": round(self.intercept, 4),
            "slope_per_year": round(self.slope, 4),
            "shortage": round(self.shortage, 4),
            "n_points": self.n_points,
            "n_configs": self.n_configs,
            "age_min": round(self.age_min, 2),
            "age_max": round(self.age_max, 2),
            "date_from": self.date_from,
            "date_to": self.date_to,
            "cv_median_pct": None if self.cv_median_pct is None else round(self.cv_median_pct, 1),
            "cv_mean_pct": None if self.cv_mean_pct is None else round(self.cv_mean_pct, 1),
            "cv_points": self.cv_points,
            "formula": self.describe(),
        }


@dataclass(frozen=True)
class UsedPriceModel:
    families: dict[str, FamilyFit]
    pooled: FamilyFit
    list_model: ListPriceModel | None = None
    cv_median_pct: float | None = None  # all families
    cv_mean_pct: float | None = None
    skipped: int = 0  # market observations without a configuration or reference price

    @property
    def n_points(self) -> int:
        return self.pooled.n_points

    @property
    def date_from(self) -> str:
        return self.pooled.date_from

    @property
    def date_to(self) -> str:
        return self.pooled.date_to

    def fit_for(self, family: str) -> FamilyFit:
        return self.families.get(family, self.pooled)

    def describe(self) -> str:
        err = (
            f"; cross-validated error median {self.cv_median_pct:.0f}%, mean "
            f"{self.cv_mean_pct:.0f}%"
            if self.cv_median_pct is not None and self.cv_mean_pct is not None
            else ""
        )
        return (
            f"per-family depreciation fit on {self.pooled.n_points} observations "
            f"({self.pooled.date_from}..{self.pooled.date_to}), {len(self.families)} families" + err
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "families": [f.to_dict() for f in self.families.values()],
            "pooled": self.pooled.to_dict(),
            "cv_median_pct": None if self.cv_median_pct is None else round(self.cv_median_pct, 1),
            "cv_mean_pct": None if self.cv_mean_pct is None else round(self.cv_mean_pct, 1),
            "skipped_observations": self.skipped,
            "list_model": None
            if self.list_model is None
            else {
                "n_points": self.list_model.n_points,
                "cv_median_pct": round(self.list_model.cv_median_pct or 0.0, 1),
                "cv_mean_pct": round(self.list_model.cv_mean_pct or 0.0, 1),
            },
        }


@dataclass(frozen=True, slots=True)
class _Point:
    config_id: str
    family: str
    age: float
    y: float  # ln(price / reference)
    date: str
    price: float
    reference: float


def _option_for(cfg: MachineConfig, storage_gb: int | None) -> StorageOption | None:
    if not cfg.storage_options:
        return None
    if storage_gb is None:
        return next(
            (o for o in cfg.storage_options if o.storage_gb == cfg.storage_gb),
            cfg.storage_options[0],
        )
    return next((o for o in cfg.storage_options if o.storage_gb == storage_gb), None)


def reference_price(
    cfg: MachineConfig, storage_gb: int | None, date: str, ten_gbe: bool = False
) -> float | None:
    """Apple's list price of this storage option on `date` (or its last list price before,
    when Apple no longer sold it), plus the 10GbE option when the listing has it. None when
    unknown (or the 10GbE price is unknown)."""
    option = _option_for(cfg, storage_gb)
    if option is None:
        return None
    entry = last_list_price(option, date)
    if entry is None:
        return None
    ref = float(entry.price.value)  # type: ignore[arg-type]
    if ten_gbe and cfg.kind == "mac-mini":
        step = cfg.extra.get("ten_gbe_usd")
        if step is None or step.value is None:
            return None
        ref += float(step.value)
    return ref


def _points(
    configs: Mapping[str, MachineConfig], observations: Iterable[PriceObservation]
) -> tuple[list[_Point], int]:
    points: list[_Point] = []
    skipped = 0
    for o in observations:
        if o.price_type not in MARKET_TYPES or o.condition not in USED_CONDITIONS:
            continue
        cfg = configs.get(o.config_id or "")
        if cfg is None or not cfg.family:
            skipped += 1
            continue
        age = year_fraction(o.date) - year_fraction(cfg.release_date)
        ref = reference_price(cfg, o.storage_gb, o.date, o.ten_gbe)
        if age < 0 or ref is None:
            skipped += 1
            continue
        points.append(
            _Point(
                cfg.id,
                cfg.family,
                age,
                math.log(o.point_price_usd / ref),
                o.date,
                o.point_price_usd,
                ref,
            )
        )
    return points, skipped


def in_shortage(date: str) -> bool:
    return date[:7] >= SHORTAGE_FROM


def _design(points: Sequence[_Point]) -> np.ndarray:
    return np.asarray([[1.0, p.age, 1.0 if in_shortage(p.date) else 0.0] for p in points])


def _ridge(x: np.ndarray, ys: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """Least squares, pulled towards `prior` coefficients with PRIOR_WEIGHT observations'
    worth (a ridge on the difference), so a thin family borrows the pooled line. Columns a
    family has no spread in (all before the shortage, one age) then keep the pooled value."""
    if prior is None:
        return np.linalg.lstsq(x, ys, rcond=None)[0]
    w = math.sqrt(PRIOR_WEIGHT)
    scale = np.maximum(x.std(axis=0), 0.5)
    scale[0] = 1.0
    xa = np.vstack([x, w * np.diag(scale)])
    ya = np.concatenate([ys, w * scale * prior])
    return np.linalg.lstsq(xa, ya, rcond=None)[0]


def _fit(points: Sequence[_Point]) -> tuple[FamilyFit, dict[str, FamilyFit]] | None:
    if len(points) < MIN_FIT_POINTS:
        return None
    x = _design(points)
    ys = np.asarray([p.y for p in points])
    # the pooled line; a column without variation is fitted against a zero prior instead
    pooled_coef = _ridge(x, ys, None if np.linalg.matrix_rank(x) == 3 else np.zeros(3))
    pooled = _family_fit("all", points, pooled_coef)
    by_family: dict[str, list[_Point]] = defaultdict(list)
    for p in points:
        by_family[p.family].append(p)
    fams = {}
    for fam, pts in sorted(by_family.items()):
        coef = _ridge(_design(pts), np.asarray([p.y for p in pts]), pooled_coef)
        fams[fam] = _family_fit(fam, pts, coef)
    return pooled, fams


def _family_fit(family: str, pts: Sequence[_Point], coef: np.ndarray) -> FamilyFit:
    dates = sorted(p.date for p in pts)
    return FamilyFit(
        family=family,
        intercept=float(coef[0]),
        slope=float(coef[1]),
        shortage=float(coef[2]),
        n_points=len(pts),
        n_configs=len({p.config_id for p in pts}),
        age_min=min(p.age for p in pts),
        age_max=max(p.age for p in pts),
        date_from=dates[0],
        date_to=dates[-1],
    )


def fit_depreciation(
    configs: Mapping[str, MachineConfig],
    observations: Iterable[PriceObservation],
    chips: Mapping[str, ChipSpec] | None = None,
) -> UsedPriceModel | None:
    """Fit the per-family depreciation model on every market observation that names a
    configuration with a known reference list price, and cross-validate it leaving one
    configuration out at a time. None with fewer than MIN_FIT_POINTS observations."""
    points, skipped = _points(configs, observations)
    fitted = _fit(points)
    if fitted is None:
        return None
    pooled, fams = fitted
    # leave-one-configuration-out: predict each configuration's observations without it
    errors: dict[str, list[float]] = defaultdict(list)
    for cid in sorted({p.config_id for p in points}):
        rest = [p for p in points if p.config_id != cid]
        held = [p for p in points if p.config_id == cid]
        cv = _fit(rest)
        if cv is None:
            continue
        cv_pooled, cv_fams = cv
        for p in held:
            fit = cv_fams.get(p.family, cv_pooled)
            predicted = p.reference * fit.ratio(p.age, p.date)
            errors[p.family].append(abs(predicted / p.price - 1.0) * 100)
    fams = {
        fam: replace(
            fit,
            cv_median_pct=float(np.median(errors[fam])) if errors[fam] else None,
            cv_mean_pct=float(np.mean(errors[fam])) if errors[fam] else None,
            cv_points=len(errors[fam]),
        )
        for fam, fit in fams.items()
    }
    every = [e for errs in errors.values() for e in errs]
    list_model = fit_list_model(configs, chips) if chips is not None else None
    return UsedPriceModel(
        families=fams,
        pooled=pooled,
        list_model=list_model,
        cv_median_pct=float(np.median(every)) if every else None,
        cv_mean_pct=float(np.mean(every)) if every else None,
        skipped=skipped,
    )


# ------------------------------------------------------------------------------- used price


def matching_observations(
    config: MachineConfig, observations: Iterable[PriceObservation]
) -> list[PriceObservation]:
    """Market observations (used/refurbished listings and sales) of exactly this config,
    without the paid 10GbE option of a Mac mini (a different price)."""
    out = []
    for o in observations:
        if o.config_id != config.id or o.price_type not in MARKET_TYPES:
            continue
        if o.condition not in USED_CONDITIONS:
            continue
        if o.ten_gbe and config.kind == "mac-mini":
            continue
        out.append(o)
    return out


def used_price(
    config: MachineConfig,
    observations: Sequence[PriceObservation],
    as_of: str,
    model: UsedPriceModel | None,
    recent_months: int = RECENT_MONTHS,
) -> PriceBasis:
    """The used price of one configuration on `as_of` (see the module docstring)."""
    if not _on_or_before(config.release_date, as_of):
        return PriceBasis(
            None, "unknown", "used", detail=f"not released until {config.release_date}"
        )
    now = year_fraction(as_of)
    matches = matching_observations(config, observations)
    recent = [o for o in matches if 0 <= now - year_fraction(o.date) <= recent_months / 12.0]
    if recent:
        base = [o for o in recent if o.storage_gb in (None, config.storage_gb)]
        storage = config.storage_gb
        if not base:
            storage = min(o.storage_gb for o in recent if o.storage_gb is not None)
            base = [o for o in recent if o.storage_gb == storage]
        option = _option_for(config, storage)
        dates = sorted(o.date for o in base)
        return PriceBasis(
            price_usd=float(np.median([o.point_price_usd for o in base])),
            basis="observed",
            condition="used",
            count=len(base),
            date_from=dates[0],
            date_to=dates[-1],
            detail="; ".join(sorted({o.source for o in base}))[:300],
            storage=None if option is None else option.label,
        )
    older = f"; {len(matches)} older observation(s), not recent" if matches else ""
    if model is None:
        return PriceBasis(
            None,
            "unknown",
            "used",
            detail="no recent observations and too few to fit a depreciation model" + older,
        )
    fit = model.fit_for(config.family)
    age = max(0.0, now - year_fraction(config.release_date))
    ref = reference_price(config, config.storage_gb, as_of)
    ref_text = "" if ref is None else f"Apple list price ${ref:,.0f}"
    error = fit.cv_median_pct
    if ref is None and model.list_model is not None:
        est = model.list_model.predict(config)
        if est is not None:
            ref, why = est
            ref_text = f"list price estimated at ${ref:,.0f} ({why})"
            lm_err = model.list_model.cv_median_pct
            if error is not None and lm_err is not None:
                # independent errors of the two models, combined in quadrature
                error = math.hypot(error, lm_err)
    if ref is None:
        reason = config.launch_price_usd.reason or "list price unknown"
        return PriceBasis(
            None,
            "unknown",
            "used",
            detail=f"no recent observations and launch price unknown: {reason}" + older,
        )
    ratio = fit.ratio(age, as_of)
    extrapolated = not (fit.age_min - 0.25 <= age <= fit.age_max + 0.25)
    option = _option_for(config, config.storage_gb)
    period = " in the 2026 shortage" if in_shortage(as_of) else ""
    price = ref * ratio
    cap = ""
    new = new_price(config, as_of)
    if new.basis == "list" and new.price_usd is not None and price > new.price_usd:
        # Nobody pays more for a used machine than Apple asks for it new that day.
        price = new.price_usd
        cap = f"; capped at Apple's new price that day (${new.price_usd:,.0f})"
    detail = (
        f"{ref_text} x {ratio:.2f} at {age:.1f} years{period}; {fit.describe()}"
        + ("; EXTRAPOLATED beyond the fitted ages" if extrapolated else "")
        + cap
        + older
    )
    return PriceBasis(
        price_usd=price,
        basis="estimated",
        condition="used",
        count=fit.n_points,
        date_from=fit.date_from,
        date_to=fit.date_to,
        detail=detail,
        storage=None if option is None else option.label,
        model=f"{fit.name} depreciation model",
        error_pct=error,
    )


# ----------------------------------------------------------------- the purchase planner's rule


def price_for(
    cfg: MachineConfig,
    condition: str,
    as_of: str,
    observations: Sequence[PriceObservation],
    model: UsedPriceModel | None,
) -> PriceBasis | str:
    """The price the purchase planner uses for one machine under `condition` ("new", "used"
    or "any": the cheaper known one) on `as_of`, or the reason it cannot be bought that way.
    A machine Apple does not sell new on that date is never priced new, unless dated
    remaining stock was seen."""
    new = None
    if condition in ("new", "any"):
        new = new_price(cfg, as_of, observations, model)
        if new.on_sale is False and new.price_usd is None:
            if condition == "new":
                return new.detail
            new = None
    used = used_price(cfg, observations, as_of, model) if condition in ("used", "any") else None
    choices = [b for b in (new, used) if b is not None and b.price_usd is not None]
    if choices:
        return min(choices, key=lambda b: float(b.price_usd))  # type: ignore[arg-type]
    basis = used if used is not None else new
    if basis is None:
        return "no price"
    return basis  # unknown basis: kept, sorted last, unless a budget is set
