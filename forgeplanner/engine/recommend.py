"""Purchase recommendations: pick the quantization per machine, filter by the user's limits,
rank by price and mark the price / speed / watts Pareto frontier. Pure functions.

The numbers themselves come from the sizing engine (memory, fit verdict, speed) and the price
and power engines; the caller (forgeplanner.services.recommend.build_recommendation) evaluates
each machine or cluster with the same functions `forgeplanner estimate` / `forgeplanner cluster`
use, so an option always agrees with those commands. This module only decides:

- which quantization a machine runs: the highest quality (lowest quality tier) not below
  `--quant-min` whose memory fits (verdict fits, or fits with a raised wired limit, with the
  sysctl to run) and whose decode speed meets `--min-decode-tps`;
- why a machine is rejected, in numbers ("needs 43.1 GiB at Q4_K_M, GPU limit 36.0 GiB");
- the order (price, then faster, then fewer watts) and the Pareto frontier (no other option is
  at least as cheap, as fast and as frugal, and strictly better in one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from forgeplanner.domain.estimates import VERDICT_NO
from forgeplanner.domain.units import GiB


@dataclass(frozen=True, slots=True)
class QuantCandidate:
    """One quantization of one model on one machine (or cluster), as the engine sized it.
    Speed may be None (unknown bandwidth/compute) or not computed yet (`speed_known` False)."""

    quant: str
    quality_tier: int
    verdict: str
    total_bytes: int
    gpu_limit_bytes: int
    max_raisable_bytes: int
    decode_tps: float | None = None
    prefill_tps: float | None = None
    speed_note: str = ""  # why speed is unknown


@dataclass(frozen=True, slots=True)
class QuantChoice:
    chosen: QuantCandidate | None
    reason: str  # rejection reason when chosen is None, else ""


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


def memory_reason(c: QuantCandidate) -> str:
    """'needs 43.1 GiB at Q4_K_M, GPU limit 36.0 GiB' (+ the raisable limit when higher)."""
    text = f"needs {_gib(c.total_bytes)} at {c.quant}, GPU limit {_gib(c.gpu_limit_bytes)}"
    if c.max_raisable_bytes > c.gpu_limit_bytes:
        text += f" (raisable to {_gib(c.max_raisable_bytes)})"
    return text


def fitting(candidates: Sequence[QuantCandidate]) -> list[QuantCandidate]:
    return [c for c in candidates if c.verdict != VERDICT_NO]


def choose_quant(candidates: Sequence[QuantCandidate], min_decode_tps: float | None) -> QuantChoice:
    """The best-quality candidate that fits and is fast enough. `candidates` are sorted best
    quality first and already limited to quantizations not below --quant-min."""
    if not candidates:
        return QuantChoice(None, "no quantization at or above --quant-min for this runtime")
    fits = fitting(candidates)
    if not fits:
        smallest = min(candidates, key=lambda c: c.total_bytes)
        return QuantChoice(None, memory_reason(smallest))
    if min_decode_tps is None:
        return QuantChoice(fits[0], "")
    unknown = []
    for c in fits:
        if c.decode_tps is None:
            unknown.append(c)
            continue
        if c.decode_tps >= min_decode_tps:
            return QuantChoice(c, "")
    known = [c for c in fits if c.decode_tps is not None]
    if known:
        fastest = max(known, key=lambda c: c.decode_tps or 0.0)
        return QuantChoice(
            None,
            f"decode {fastest.decode_tps:.1f} tokens/s at {fastest.quant} (fastest that fits) "
            f"< required {min_decode_tps:g}",
        )
    note = unknown[0].speed_note or "bandwidth or compute unknown"
    return QuantChoice(None, f"decode speed unknown ({note}); --min-decode-tps cannot be checked")


@dataclass(frozen=True)
class Option:
    """One recommended purchase. `per_model` holds one entry per requested model; the
    top-level quant / speeds / verdict are those of the first model."""

    machines: tuple[tuple[str, int], ...]  # (config_id, count)
    runtime: str
    quant: str
    price_usd: float | None
    price_basis: str
    decode_tps: float | None
    prefill_tps: float | None
    verdict: str
    idle_w: float | None
    max_w: float | None
    annual_energy_kwh: float | None
    annual_energy_cost: float | None
    tokens_per_joule: float | None = None  # decode tokens/s / max W (engine.power)
    per_model: tuple[dict[str, object], ...] = ()
    price_detail: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    pareto: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "machines": [{"config_id": c, "count": n} for c, n in self.machines],
            "quant": self.quant,
            "runtime": self.runtime,
            "price_usd": None if self.price_usd is None else round(self.price_usd, 2),
            "price_basis": self.price_basis,
            "decode_tps": None if self.decode_tps is None else round(self.decode_tps, 3),
            "prefill_tps": None if self.prefill_tps is None else round(self.prefill_tps, 3),
            "verdict": self.verdict,
            "idle_w": self.idle_w,
            "max_w": self.max_w,
            "annual_energy_kwh": (
                None if self.annual_energy_kwh is None else round(self.annual_energy_kwh, 2)
            ),
            "annual_energy_cost": (
                None if self.annual_energy_cost is None else round(self.annual_energy_cost, 2)
            ),
            "pareto": self.pareto,
            "tokens_per_joule": (
                None if self.tokens_per_joule is None else round(self.tokens_per_joule, 4)
            ),
            "models": list(self.per_model),
            "price": self.price_detail,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    config_id: str
    reason: str
    count: int = 1

    def to_dict(self) -> dict[str, object]:
        return {"config_id": self.config_id, "count": self.count, "reason": self.reason}


def limit_reason(
    price_usd: float | None,
    max_w: float | None,
    budget_usd: float | None,
    max_watts: float | None,
) -> str | None:
    """Why an option breaks the user's budget or power limit, else None."""
    if budget_usd is not None:
        if price_usd is None:
            return f"price unknown, cannot check --budget-usd {budget_usd:g}"
        if price_usd > budget_usd:
            return f"price ${price_usd:,.0f} above budget ${budget_usd:,.0f}"
    if max_watts is not None:
        if max_w is None:
            return f"max watts unknown, cannot check --max-watts {max_watts:g}"
        if max_w > max_watts:
            return f"max {max_w:g} W above --max-watts {max_watts:g}"
    return None


def _key(o: Option) -> tuple[float, float, float]:
    inf = float("inf")
    return (
        inf if o.price_usd is None else o.price_usd,
        -(o.decode_tps if o.decode_tps is not None else -inf),
        inf if o.max_w is None else o.max_w,
    )


def _dominates(a: Option, b: Option) -> bool:
    pa, da, wa = _key(a)
    pb, db, wb = _key(b)
    return pa <= pb and da <= db and wa <= wb and (pa < pb or da < db or wa < wb)


def rank(options: Sequence[Option]) -> list[Option]:
    """Sorted by price (unknown last), then faster, then fewer watts; `pareto` set on the
    options no other option dominates on price, decode speed and max watts. An option with an
    unknown price, speed or wattage is never on the frontier: it cannot be placed on it (a
    cheap Intel mini whose speed is unknown is not "the fastest for its price")."""
    ordered = sorted(options, key=lambda o: (*_key(o), o.machines, o.runtime))
    return [
        replace(
            o,
            pareto=_fully_known(o)
            and not any(_dominates(other, o) for other in ordered if other is not o),
        )
        for o in ordered
    ]


def _fully_known(o: Option) -> bool:
    return o.price_usd is not None and o.decode_tps is not None and o.max_w is not None
