"""The recommendation search: the cheapest machines (new or used), or small clusters of
identical machines, that run the models at the context and speed needed, with a year's running
cost.

The glue between the catalog, the model database, the user's price observations and the pure
engines; `forgeplanner recommend` and the Recommend view call `build_recommendation`. Every
option's memory verdict and speed come from `forgeplanner.engine.estimate.estimate` (what
`forgeplanner estimate` prints) for single machines, and from the cluster service's pieces
(what `forgeplanner cluster` prints) for clusters.

The search is organised so that work that does not depend on the machine is done once: memory
totals and per-layer costs once per model x quantization x runtime, the catalog once, a host and
its speed once per configuration, and one layer-cost table for every size of a cluster of
identical machines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import ForgePlannerError

if TYPE_CHECKING:
    from forgeplanner.domain.estimates import GpuBudget, HostSpec, RunOptions, SpeedEstimate
    from forgeplanner.domain.hardware import MachineConfig
    from forgeplanner.domain.model import ModelSpec
    from forgeplanner.engine.cluster import ClusterPlan, LayerCosts, NodeSpec
    from forgeplanner.engine.quant import QuantScheme

RUNTIMES: tuple[Runtime, ...] = (Runtime.LLAMA_CPP, Runtime.MLX)
CLUSTER_RUNTIME = Runtime.LLAMA_CPP  # clusters are llama.cpp RPC
CONDITIONS = ("new", "used", "any")
CLUSTER_SIZES = (2, 3, 4)
DEFAULT_HOURS_AT_LOAD = 8.0
# Below ~4 bits per weight quality falls off fast, and a "cheapest machine" that only holds a
# 70B model at IQ1_S answers the wrong question; IQ1_S (or any lower quant) allows everything.
DEFAULT_QUANT_MIN = "Q4_K_M"


class RecommendInputError(ForgePlannerError):
    """Constraints that cannot be searched (negative budget, unknown quantization, ...)."""


@dataclass(frozen=True, slots=True)
class RecommendRequest:
    """What to search for. Prices are for the day `as_of` (ISO date; None: today): "new" is
    what Apple sold new that day (or dated remaining stock), used prices are the observations
    recent that day or the depreciation model's estimate at that age
    (`forgeplanner.engine.prices.price_for`)."""

    model_ids: tuple[str, ...]
    context: int
    quant_min: str | None = DEFAULT_QUANT_MIN
    min_decode_tps: float | None = None
    budget_usd: float | None = None
    condition: str = "any"
    max_watts: float | None = None
    allow_clusters: bool = False
    hours_at_load: float = DEFAULT_HOURS_AT_LOAD
    tariff: float | None = None
    as_of: str | None = None
    include_user_observations: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.model_ids, str):  # a single id would be iterated letter by letter
            raise RecommendInputError("model_ids must be a sequence of model ids, not one string")
        object.__setattr__(self, "model_ids", tuple(dict.fromkeys(self.model_ids)))
        if not self.model_ids:
            raise RecommendInputError("give at least one --model")
        if self.context <= 0:
            raise RecommendInputError(
                f"--context must be a positive number of tokens, got {self.context}"
            )
        for key in ("min_decode_tps", "budget_usd", "max_watts", "tariff"):
            v = getattr(self, key)
            if v is not None and not (v >= 0 and math.isfinite(v)):  # NaN: every check passed
                raise RecommendInputError(f"--{key.replace('_', '-')} must be >= 0, got {v:g}")
        h = self.hours_at_load
        if not 0 <= h <= 24:  # also False for NaN
            raise RecommendInputError(f"--hours-at-load must be 0-24 hours per day, got {h:g}")
        if self.condition not in CONDITIONS:
            raise RecommendInputError(
                f"--condition '{self.condition}' unknown; valid: {', '.join(CONDITIONS)}"
            )


@dataclass(frozen=True)
class Recommendation:
    options: tuple[Any, ...]  # engine.recommend.Option, ranked
    rejected: tuple[Any, ...]  # engine.recommend.Rejection
    constraints: dict[str, Any]
    notes: tuple[str, ...] = ()
    observations: tuple[Any, ...] = field(default_factory=tuple)  # PriceObservation used

    def to_dict(self) -> dict[str, Any]:
        return {
            "options": [o.to_dict() for o in self.options],
            "rejected": [r.to_dict() for r in self.rejected],
            "constraints": self.constraints,
            "notes": list(self.notes),
        }


def build_recommendation(request: RecommendRequest, *, catalog: Any = None) -> Recommendation:
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine import prices as px
    from forgeplanner.engine.quant import get_quant
    from forgeplanner.engine.recommend import Rejection, limit_reason, rank
    from forgeplanner.services.models import find_model
    from forgeplanner.services.prices import PriceInputError, price_day, user_price_observations

    try:
        day = price_day(request.as_of)
    except PriceInputError as exc:
        raise RecommendInputError(str(exc)) from None
    if catalog is None:
        from catalog import load_catalog

        catalog = load_catalog()
    models = [find_model(m) for m in request.model_ids]
    qmin = get_quant(request.quant_min) if request.quant_min else None
    notes: list[str] = []
    observations: tuple[Any, ...] = catalog.price_observations
    if request.include_user_observations:
        user_obs, user_notes = user_price_observations()
        observations = observations + user_obs
        notes += user_notes
    fit = px.fit_depreciation(catalog.configs, observations, catalog.chips)
    if fit is not None:
        notes.append(f"used-price estimates: {fit.describe()}")
    opts = {rt: RunOptions(context=request.context, runtime=rt) for rt in RUNTIMES}
    search = _Search(catalog, models, qmin, opts, request.min_decode_tps)

    def price_of(cfg: MachineConfig, count: int):
        return _price(cfg, count, request.condition, observations, day, fit)

    options = []
    rejected = []
    for cfg in catalog.configs.values():
        price = price_of(cfg, 1)
        single = [search.single(cfg, rt) for rt in RUNTIMES]
        found = [o for o in single if not isinstance(o, str)]
        reasons = [o for o in single if isinstance(o, str)]
        if (
            not found
            and request.allow_clusters
            and cfg.chip_id in catalog.chips
            and catalog.chips[cfg.chip_id].is_apple_silicon
        ):
            cluster = search.cluster(cfg)
            if isinstance(cluster, str):
                reasons.append(cluster)
            else:
                found.append(cluster)
        if not found:
            rejected.append(Rejection(cfg.id, "; ".join(reasons)))
            continue
        kept = 0
        why = ""
        for sized in found:
            count = sized["count"]
            p = price if count == 1 else price_of(cfg, count)
            if isinstance(p, str):
                why = p
                continue
            option = _option(cfg, sized, p, request.hours_at_load, request.tariff)
            why = (
                limit_reason(option.price_usd, option.max_w, request.budget_usd, request.max_watts)
                or ""
            )
            if why:
                continue
            options.append(option)
            kept += 1
        if not kept:
            rejected.append(Rejection(cfg.id, why, found[0]["count"]))
    if not request.allow_clusters:
        notes.append("clusters not searched (pass --allow-clusters)")
    constraints = {
        "models": [m.id for m in models],
        "quant_min": qmin.name if qmin else None,
        "context": request.context,
        "min_decode_tps": request.min_decode_tps,
        "budget_usd": request.budget_usd,
        "condition": request.condition,
        "max_watts": request.max_watts,
        "allow_clusters": request.allow_clusters,
        "hours_at_load": request.hours_at_load,
        "tariff_per_kwh": request.tariff,
        "today": day,
        "as_of": day,
        "runtimes": [str(rt) for rt in RUNTIMES],
    }
    return Recommendation(
        options=tuple(rank(options)),
        rejected=tuple(rejected),
        constraints=constraints,
        notes=tuple(notes),
        observations=observations,
    )


def _price(cfg, count: int, condition: str, observations, day: str, fit):
    """PriceBasis for `count` machines of this config under the condition on `day`, or a
    reason str (the rule is the price engine's: `forgeplanner.engine.prices.price_for`)."""
    from forgeplanner.engine import prices as px

    best = px.price_for(cfg, condition, day, observations, fit)
    if isinstance(best, str) or count == 1 or best.price_usd is None:
        return best
    return replace(best, price_usd=best.price_usd * count)


def node_capacity_bytes(budget: GpuBudget, is_apple_silicon: bool) -> int:
    """The most a node can hold and still not be does-not-fit (engine.fit.verdict_for): the
    highest limit it can be raised to on Apple Silicon, its GPU limit elsewhere."""
    if is_apple_silicon:
        return max(budget.gpu_limit_bytes, budget.max_raisable_limit_bytes)
    return budget.gpu_limit_bytes


def cluster_cannot_fit(costs: LayerCosts, specs: Sequence[NodeSpec]) -> bool:
    """True when no pipeline split of these nodes can fit, whatever the split: the cluster's
    total need is a fixed sum (`cluster_need_bytes`), and when it exceeds the sum of what the
    nodes can hold, some node is over its own: the plan's verdict is does-not-fit. A cheap sum
    that saves the layout search for clusters far too small."""
    from forgeplanner.services.cluster import cluster_need_bytes

    have = sum(node_capacity_bytes(s.budget, s.is_apple_silicon) for s in specs)
    return cluster_need_bytes(costs, len(specs)) > have


class _Search:
    """Sizes configurations with the sizing engine. Everything that does not depend on the
    machine is computed once per model x quantization x runtime (memory totals, per-layer
    costs), everything that does once per configuration (host, budget, speed)."""

    def __init__(self, cat, models, qmin, opts, min_decode_tps) -> None:
        from forgeplanner.engine.quant import quants_for

        self.cat = cat
        self.models = models
        self.opts = opts
        self.min_decode = min_decode_tps
        self.quants: dict[tuple[str, str], list[QuantScheme]] = {}
        self.no_weights: dict[tuple[str, str], str] = {}
        self._totals: dict[tuple[str, str, str], int] = {}
        self._hosts: dict[str, HostSpec] = {}
        self._speeds: dict[tuple[str, str, str, str], SpeedEstimate | None] = {}
        self._costs: dict[tuple[str, str, bool], LayerCosts | str] = {}
        self._needs: dict[tuple[str, str, int], int] = {}
        for m in models:
            for rt in RUNTIMES:
                qs = quants_for(m, rt)
                if not qs:
                    self.no_weights[(m.id, rt)] = (
                        f"{m.id} has no weights for {rt} (formats: {', '.join(m.formats)})"
                    )
                if qmin is not None:
                    qs = [q for q in qs if q.quality_tier <= qmin.quality_tier]
                self.quants[(m.id, rt)] = qs

    # -- cached pieces ----------------------------------------------------------------------

    def _total(self, model: ModelSpec, q: QuantScheme, rt: str) -> int:
        from forgeplanner.engine.memory import estimate_memory

        key = (model.id, q.name, rt)
        if key not in self._totals:
            self._totals[key] = estimate_memory(model, q, self.opts[rt]).total_bytes
        return self._totals[key]

    def _host(self, cfg: MachineConfig) -> HostSpec:
        from forgeplanner.host import host_from_config

        if cfg.id not in self._hosts:
            self._hosts[cfg.id] = host_from_config(cfg.id)
        return self._hosts[cfg.id]

    def _speed(self, model: ModelSpec, quant: str, cfg: MachineConfig, rt: str):
        from forgeplanner.engine.estimate import speed_estimate

        key = (model.id, quant, cfg.id, rt)
        if key not in self._speeds:
            self._speeds[key] = speed_estimate(model, quant, self._host(cfg), self.opts[rt])
        return self._speeds[key]

    def _layer_costs(self, model: ModelSpec, q: QuantScheme, apple_gpu: bool) -> LayerCosts | str:
        """The cluster's per-layer costs (one table for every cluster size), or why not."""
        from forgeplanner.services.cluster import cluster_costs

        key = (model.id, q.name, apple_gpu)
        if key not in self._costs:
            try:
                self._costs[key] = cluster_costs(
                    model, q.name, self.opts[CLUSTER_RUNTIME], apple_gpu=apple_gpu
                )
            except ForgePlannerError as exc:
                self._costs[key] = str(exc)
        return self._costs[key]

    def _need(self, model: ModelSpec, q: QuantScheme, costs: LayerCosts, n: int) -> int:
        from forgeplanner.services.cluster import cluster_need_bytes

        key = (model.id, q.name, n)
        if key not in self._needs:
            self._needs[key] = cluster_need_bytes(costs, n)
        return self._needs[key]

    # -- single machines ----------------------------------------------------------------------

    def single(self, cfg: MachineConfig, rt: str):
        """{"count": 1, "runtime", "per_model": [...]} or a rejection reason."""
        from forgeplanner.engine.budget import gpu_budget
        from forgeplanner.engine.estimate import estimate
        from forgeplanner.engine.fit import verdict_for
        from forgeplanner.engine.recommend import QuantCandidate, choose_quant

        host = self._host(cfg)
        if rt == "mlx" and not host.is_apple_silicon:
            return f"{rt}: runs on Apple Silicon only"
        budget = gpu_budget(host)
        per_model = []
        for m in self.models:
            qs = self.quants[(m.id, rt)]
            if not qs:
                why = self.no_weights.get(
                    (m.id, rt), f"{m.id} has no {rt} quantization at or above --quant-min"
                )
                return f"{rt}: {why}"
            cands = []
            for q in qs:
                total = self._total(m, q, rt)
                verdict = verdict_for(total, budget, host.is_apple_silicon)
                dec = pre = None
                note = ""
                if verdict != "does-not-fit":
                    sp = self._speed(m, q.name, cfg, rt)
                    if sp is None:
                        note = (
                            host.bandwidth_basis
                            if not host.bandwidth_bytes_per_s
                            else host.fp32_flops_basis
                        )
                    else:
                        dec, pre = sp.decode_tps, sp.prefill_tps
                cands.append(
                    QuantCandidate(
                        q.name,
                        q.quality_tier,
                        verdict,
                        total,
                        budget.gpu_limit_bytes,
                        budget.max_raisable_limit_bytes,
                        dec,
                        pre,
                        note,
                    )
                )
            choice = choose_quant(cands, self.min_decode)
            if choice.chosen is None:
                prefix = f"{rt}: " + (f"{m.id} " if len(self.models) > 1 else "")
                return prefix + choice.reason
            # The reported numbers are `forgeplanner estimate`'s, for the chosen quantization.
            e = estimate(m, choice.chosen.quant, host, self.opts[rt])
            per_model.append(_model_entry(e))
        return {"count": 1, "runtime": rt, "per_model": per_model, "notes": ()}

    # -- clusters of identical machines ---------------------------------------------------------

    def _node_specs(self, model: ModelSpec, q: QuantScheme, cfg: MachineConfig, names):
        from forgeplanner.services.cluster import node_spec

        sp = self._speed(model, q.name, cfg, CLUSTER_RUNTIME)
        if sp is None or not sp.decode_tps or not sp.prefill_tps:
            seconds: tuple[float | None, float | None] = (None, None)
        else:
            seconds = (1.0 / sp.decode_tps, 1.0 / sp.prefill_tps)
        host = self._host(cfg)
        return [node_spec(name, cfg, host, seconds) for name in names]

    def cluster(self, cfg: MachineConfig):
        """The smallest cluster of identical machines (2-4) that runs every model, as
        `forgeplanner cluster` would plan it (llama.cpp RPC, auto split), or a rejection
        reason. A cluster size that cannot hold a quantization whatever the split
        (`cluster_cannot_fit`) is not laid out; the reason for the last size tried is."""
        from forgeplanner.engine.budget import gpu_budget
        from forgeplanner.services.cluster import NodeGroup, expand_nodes, resolve_link

        rt = CLUSTER_RUNTIME
        options = self.opts[rt]
        host = self._host(cfg)
        capacity = node_capacity_bytes(gpu_budget(host), host.is_apple_silicon)
        # The reason of the last failed try, computed only if the configuration is rejected.
        last: Any = "no cluster size tried"
        for n in CLUSTER_SIZES:
            per_model = []
            notes: list[str] = []
            try:
                nodes = expand_nodes([NodeGroup(cfg.id, n)], self.cat)
                link, link_reason = resolve_link(None, nodes, self.cat)
            except ForgePlannerError as exc:
                last = f"cluster x{n}: {exc}"
                continue
            names = [name for name, _ in nodes]
            for m in self.models:
                chosen = None
                for q in self.quants[(m.id, rt)]:
                    costs = self._layer_costs(m, q, host.is_apple_silicon)
                    if isinstance(costs, str):
                        last = f"cluster x{n}: {costs}"
                        continue
                    if self._need(m, q, costs, n) > n * capacity:
                        # No split fits (cluster_cannot_fit): a does-not-fit plan, whose
                        # numbers are only needed if this is the last try; laid out then.
                        last = (n, m, q, costs, names, link)
                        continue
                    specs = self._node_specs(m, q, cfg, names)
                    try:
                        plan = _auto_plan(costs, specs, link, options)
                    except ValueError as exc:
                        last = f"cluster x{n}: {exc}"
                        continue
                    if plan.verdict == "does-not-fit":
                        last = _too_small(n, q, plan)
                        continue
                    if self.min_decode is not None and (
                        plan.decode_tps is None or plan.decode_tps < self.min_decode
                    ):
                        shown = "unknown" if plan.decode_tps is None else f"{plan.decode_tps:.1f}"
                        last = (
                            f"cluster x{n}: decode {shown} tokens/s at {q.name} < required "
                            f"{self.min_decode:g}"
                        )
                        continue
                    chosen = (q, plan)
                    break
                if chosen is None:
                    break
                q, plan = chosen
                per_model.append(
                    {
                        "model": m.id,
                        "quant": q.name,
                        "decode_tps": plan.decode_tps,
                        "prefill_tps": plan.prefill_tps,
                        "ttft_s": None,
                        "verdict": plan.verdict,
                        "total_bytes": sum(nd.total_bytes for nd in plan.nodes),
                        "gpu_limit_bytes": sum(nd.gpu_limit_bytes for nd in plan.nodes),
                        "sysctl_command": None,
                        "max_context_that_fits": None,
                        "cluster": {
                            "mode": plan.mode,
                            "link": None if plan.link is None else plan.link.to_dict(),
                            "summary": plan.summary,
                        },
                    }
                )
                notes.append(plan.summary)
                if link_reason:
                    notes.append(link_reason)
            if len(per_model) == len(self.models):
                return {
                    "count": n,
                    "runtime": rt,
                    "per_model": per_model,
                    "notes": tuple(dict.fromkeys(notes)),
                }
        if isinstance(last, tuple):
            n, m, q, costs, names, link = last
            specs = self._node_specs(m, q, cfg, names)
            last = _too_small(n, q, _auto_plan(costs, specs, link, options))
        return f"clusters of {CLUSTER_SIZES[0]}-{CLUSTER_SIZES[-1]}: {last}"


def _auto_plan(costs: LayerCosts, specs, link, options: RunOptions) -> ClusterPlan:
    """`forgeplanner cluster`'s default plan (services.cluster.plan_layout, pipeline, auto
    split) without its note on leaving nodes out, which costs a second layout search: the
    fastest split that gives every node layers, else the proportional split. ValueError when
    the layout engine refuses."""
    from forgeplanner.services.cluster import plan_layout

    return plan_layout(costs, specs, link, "pipeline", "auto", options, note_idle=False)


def _too_small(n: int, q: QuantScheme, plan: ClusterPlan) -> str:
    worst = max(plan.nodes, key=lambda nd: nd.total_bytes - nd.gpu_limit_bytes)
    return (
        f"cluster x{n}: node {worst.name} needs {worst.total_bytes / 2**30:.1f} GiB at "
        f"{q.name}, GPU limit {worst.gpu_limit_bytes / 2**30:.1f} GiB"
    )


def _model_entry(e) -> dict[str, Any]:
    s = e.speed
    return {
        "model": e.model_id,
        "quant": e.quant,
        "decode_tps": None if s is None else s.decode_tps,
        "prefill_tps": None if s is None else s.prefill_tps,
        "ttft_s": None if s is None else s.ttft_s,
        "verdict": e.fit.verdict,
        "total_bytes": e.fit.memory.total_bytes,
        "gpu_limit_bytes": e.fit.budget.gpu_limit_bytes,
        "sysctl_command": e.fit.sysctl_command,
        "max_context_that_fits": e.max_context_that_fits,
        "speed_basis": None if s is None else s.basis,
    }


def _option(cfg, sized: dict[str, Any], price, hours_at_load: float, tariff: float | None):
    from forgeplanner.engine.power import annual_energy, tokens_per_joule
    from forgeplanner.engine.recommend import Option

    n = sized["count"]
    idle = None if cfg.idle_w.value is None else float(cfg.idle_w.value) * n
    mx = None if cfg.max_w.value is None else float(cfg.max_w.value) * n
    energy = annual_energy(idle, mx, hours_at_load, tariff)
    first = sized["per_model"][0]
    per_model = tuple(
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in pm.items()}
        for pm in sized["per_model"]
    )
    label = price.label + (f", x{n} machines" if n > 1 else "")
    notes = [*sized.get("notes", ()), f"energy: {energy.formula}"]
    if cfg.max_w.reason:
        notes.append(f"max W: {cfg.max_w.reason}")
    return Option(
        machines=((cfg.id, n),),
        runtime=sized["runtime"],
        quant=first["quant"],
        price_usd=price.price_usd,
        price_basis=label,
        decode_tps=first["decode_tps"],
        prefill_tps=first["prefill_tps"],
        verdict=first["verdict"],
        idle_w=idle,
        max_w=mx,
        annual_energy_kwh=energy.kwh,
        annual_energy_cost=energy.cost,
        tokens_per_joule=tokens_per_joule(first["decode_tps"], mx),
        per_model=per_model,
        price_detail=price.to_dict(),
        notes=tuple(notes),
    )
