"""Plan value types: a build plan the user can act on, share, and later check against measurements.

A `Plan` is an immutable value. Editing returns a new plan (`forgeplanner.plan.edit`); files and
the database hold its JSON form (`forgeplanner.plan.document`, schema-versioned). The parts other
features produce slot in as sections of a `Build`:

- machines (catalog configurations x count) with the price used and its basis,
- models (quantization, runtime, context),
- estimates (the engine's fit and speed for every model on every machine kind),
- an inference-cluster layout and a K3s platform layout (kept as the engines' JSON results),
- power and running cost (duty cycle and tariff from the plan, figures from the engine).

Measured benchmark runs attach to the plan as a whole; alternatives are other builds for the
same goal, priced and estimated the same way so they can be compared line by line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

PRICE_BASES: tuple[str, ...] = ("observed", "estimated", "launch", "list", "user", "unknown")
CONDITIONS: tuple[str, ...] = ("new", "used", "refurbished")
RUNTIMES: tuple[str, ...] = ("llama.cpp", "mlx", "ollama")
# Bounds on what a plan can hold; beyond them a value is a typo or a hostile file (a count of
# 10^30 machines made every later export crash). Same limits as forgeplanner.cli.argtypes.
MAX_MACHINES = 1000
MAX_TOKENS = 1 << 24
MAX_USD = 1e9
MAX_WATTS = 1e7


def _finite(what: str, value: float | None, lo: float, hi: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be {lo:g}..{hi:g}, got {value:g}")


_AS_OF = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def check_as_of(value: str | None) -> None:
    """YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date."""
    if value is None:
        return
    m = _AS_OF.fullmatch(value)
    try:
        if m is None:
            raise ValueError
        date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        raise ValueError(f"date '{value}' is not YYYY-MM-DD (or YYYY-MM)") from None


@dataclass(frozen=True, slots=True)
class PlanPrice:
    """The unit price a plan uses for one machine, and where it comes from.

    basis: "observed" (median of dated used/refurbished observations), "estimated" (fitted
    from launch price and age), "launch" (Apple's launch price), "list" (a later Apple list
    price, e.g. the 2026 repricing), "user" (typed by the user), "unknown" (no figure; `reason`
    says why). `as_of` is the date the figure describes.
    """

    usd: float | None
    basis: str
    as_of: str | None = None
    source: str = ""
    condition: str = "new"
    observations: int = 0
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.basis not in PRICE_BASES:
            raise ValueError(f"price basis '{self.basis}' unknown; valid: {', '.join(PRICE_BASES)}")
        if self.condition not in CONDITIONS:
            raise ValueError(
                f"condition '{self.condition}' unknown; valid: {', '.join(CONDITIONS)}"
            )
        if self.usd is None and not self.reason:
            raise ValueError("an unknown price needs a reason")
        _finite("price (USD)", self.usd, 0.0, MAX_USD)
        check_as_of(self.as_of)
        if self.usd is None and self.basis != "unknown":
            raise ValueError(f"price basis '{self.basis}' needs a value")


@dataclass(frozen=True, slots=True)
class PlanMachine:
    """`count` identical machines of one catalog configuration."""

    config_id: str
    count: int
    label: str  # "Mac Studio (2023) - M2 Ultra"
    chip_id: str
    memory_gb: int
    price: PlanPrice
    idle_w: float | None = None  # per machine, Apple's figure; None = unknown
    max_w: float | None = None
    power_source: str = ""
    role: str = ""  # free text: "inference", "k3s workers", ...

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_MACHINES:
            raise ValueError(f"machine count must be 1..{MAX_MACHINES}, got {self.count}")
        _finite("idle power (W)", self.idle_w, 0.0, MAX_WATTS)
        _finite("max power (W)", self.max_w, 0.0, MAX_WATTS)
        if self.memory_gb < 0:
            raise ValueError(f"memory must be >= 0 GB, got {self.memory_gb}")

    @property
    def line_total_usd(self) -> float | None:
        return None if self.price.usd is None else self.price.usd * self.count


@dataclass(frozen=True, slots=True)
class PlanModel:
    model_id: str
    quant: str
    runtime: str = "llama.cpp"
    context: int = 8192
    name: str = ""
    license: str = ""
    params_total: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.context <= MAX_TOKENS:
            raise ValueError(f"context must be 1..{MAX_TOKENS} tokens, got {self.context}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime '{self.runtime}' unknown; valid: {', '.join(RUNTIMES)}")


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    runtime_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.runtime_bytes


@dataclass(frozen=True, slots=True)
class SpeedPoint:
    """Estimated speed with `depth` tokens already in the cache (for speed-vs-context charts)."""

    depth: int
    decode_tps: float
    prefill_tps: float | None = None


@dataclass(frozen=True, slots=True)
class PlanEstimate:
    """The engine's answer for one model on one machine configuration (or on the cluster)."""

    model_id: str
    quant: str
    runtime: str
    context: int
    target: str  # a config_id, or "cluster"
    verdict: str  # fits | fits-with-raised-limit | does-not-fit
    headroom_bytes: int
    gpu_limit_bytes: int
    physical_bytes: int
    budget_basis: str
    memory: MemoryBreakdown
    decode_tps: float | None = None
    prefill_tps: float | None = None
    ttft_s: float | None = None
    max_context_that_fits: int | None = None
    sysctl_command: str | None = None
    speed_basis: str = ""
    speed_by_depth: tuple[SpeedPoint, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LayoutSection:
    """A cluster or K3s layout: the request it answers and the engine's JSON result.

    Kept as the engines' own JSON (the `cluster --json` / `platform layout --json` contract) so a
    plan carries exactly what the engine said; `inputs` lets an edit recompute it.
    """

    kind: str  # "cluster" | "platform"
    inputs: dict[str, Any]
    result: dict[str, Any]
    basis: str = ""


@dataclass(frozen=True, slots=True)
class RunningCost:
    """Power and running cost of a build at the plan's duty cycle and tariff."""

    idle_w: float | None
    max_w: float | None
    annual_kwh: float | None
    annual_cost: float | None
    currency: str
    basis: str  # the formula with its numbers, or why a figure is unknown
    unknown: tuple[str, ...] = ()  # config ids whose power is unknown
    max_btu_h: float | None = None


@dataclass(frozen=True, slots=True)
class PowerSettings:
    """How the lab is used: hours per day at load (the rest idle) and the electricity tariff."""

    duty_hours_per_day: float = 4.0
    tariff_per_kwh: float = 0.17
    currency: str = "USD"

    def __post_init__(self) -> None:
        _finite("duty cycle (hours a day)", self.duty_hours_per_day, 0.0, 24.0)
        _finite("tariff (per kWh)", self.tariff_per_kwh, 0.0, 1e3)
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"currency must be a 3-letter code like USD, got {self.currency!r}")


@dataclass(frozen=True, slots=True)
class Build:
    """One way to build the lab: machines, the models it runs, and what the engine says."""

    machines: tuple[PlanMachine, ...] = ()
    models: tuple[PlanModel, ...] = ()
    estimates: tuple[PlanEstimate, ...] = ()
    cluster: LayoutSection | None = None
    platform: LayoutSection | None = None
    running_cost: RunningCost | None = None

    @property
    def machine_count(self) -> int:
        return sum(m.count for m in self.machines)

    @property
    def total_price_usd(self) -> float | None:
        """Sum of known line totals; None when any price is unknown (see `unpriced`)."""
        if self.unpriced:
            return None
        return sum(m.line_total_usd or 0.0 for m in self.machines)

    @property
    def known_price_usd(self) -> float:
        return sum(m.line_total_usd or 0.0 for m in self.machines)

    @property
    def unpriced(self) -> tuple[str, ...]:
        return tuple(m.config_id for m in self.machines if m.price.usd is None)


@dataclass(frozen=True, slots=True)
class Alternative:
    name: str
    rationale: str
    build: Build


@dataclass(frozen=True, slots=True)
class AttachedRun:
    """A measured benchmark run attached to the plan, with the estimate made before it.

    `raw_output` is the tool's raw output as the store kept it; `raw_sha256` its SHA-256
    (hex of the UTF-8 bytes), so an evidence record can prove the numbers came from it.
    """

    run_id: str
    runner: str
    started_at: str
    model_ref: str = ""
    model_id: str = ""
    quant: str = ""
    config_id: str = ""  # the plan machine it measured, if the user said so
    status: str = "ok"
    fingerprint: dict[str, Any] = field(default_factory=dict)
    tool_versions: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)
    raw_output: str = ""
    raw_sha256: str = ""
    finished_at: str | None = None


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """One policy rule's verdict on a plan (see forgeplanner.governance)."""

    rule: str  # budget | power | memory-headroom | licence | agreement
    outcome: str  # ALLOW | DENY | ESCALATE
    reason: str
    subject: str = ""  # what the rule looked at: "build", a model id, "run 12 decode_tps"
    observed: str = ""
    limit: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    created_at: str  # ISO 8601 UTC
    updated_at: str
    build: Build = field(default_factory=Build)
    power: PowerSettings = field(default_factory=PowerSettings)
    alternatives: tuple[Alternative, ...] = ()
    runs: tuple[AttachedRun, ...] = ()
    verdicts: tuple[GateVerdict, ...] = ()  # the last gate evaluation, if any
    notes: str = ""
    engine_version: str = ""  # forgeplanner version that computed the estimates

    def alternative(self, name: str) -> Alternative:
        for alt in self.alternatives:
            if alt.name == name:
                return alt
        valid = ", ".join(a.name for a in self.alternatives) or "(none)"
        raise KeyError(f"no alternative '{name}' in plan '{self.name}'; valid: {valid}")
