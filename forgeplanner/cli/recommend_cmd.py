"""`forgeplanner recommend`: the cheapest machines (new or used), or small clusters, that run
the models at the context and speed needed, with a year's running cost.

    forgeplanner recommend --model ID [--model ID ...] [--quant-min Q] --context N
        [--min-decode-tps X] [--budget-usd N] [--condition new|used|any] [--max-watts W]
        [--allow-clusters] [--hours-at-load H] [--tariff PRICE_PER_KWH] [--as-of YYYY-MM-DD]
        [--json]

`--as-of` is the day the prices are for: "new" means sold new by Apple on that day (or dated
remaining stock), used prices are the observations recent on that day or the depreciation
model's estimate at that age (`forgeplanner.engine.prices.price_for`).

JSON (stable keys, issue 6): `options` sorted by price, each with `machines` [{config_id,
count}], `quant`, `runtime`, `price_usd`, `price_basis`, `decode_tps`, `prefill_tps`,
`verdict`, `idle_w`, `max_w`, `annual_energy_kwh`, `annual_energy_cost`, `pareto` (plus
`models`: the same figures per requested model, `price`: the price basis in detail, `notes`);
and `rejected`: [{config_id, count, reason}].

`build_recommendation` is the glue between the catalog, the model database, the user's price
observations and the pure engines; the desktop view calls it too. Every option's memory verdict
and speed come from `forgeplanner.engine.estimate.estimate` (what `forgeplanner estimate`
prints) for single machines, and from `build_cluster` (what `forgeplanner cluster` prints) for
clusters.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError

RUNTIMES = ("llama.cpp", "mlx")
CONDITIONS = ("new", "used", "any")
CLUSTER_SIZES = (2, 3, 4)
DEFAULT_HOURS_AT_LOAD = 8.0


class RecommendInputError(ForgePlannerError):
    """Constraints that cannot be searched (negative budget, unknown quantization, ...)."""


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


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="cheapest machines (or small clusters) that run your models",
        description=(
            "Search the catalog's configurations (new or used) and quantizations for the "
            "cheapest way to run the models at the context and speed you need."
        ),
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="ID",
        help="model id (repeat for several; every option runs all of them)",
    )
    # Default Q4_K_M, as the Recommend view: below ~4 bits per weight quality falls off fast,
    # and a "cheapest machine" that only holds a 70B model at IQ1_S answers the wrong question.
    # `--quant-min IQ1_S` (or any lower quant) allows everything.
    p.add_argument(
        "--quant-min",
        metavar="Q",
        default="Q4_K_M",
        help="lowest acceptable quantization (default Q4_K_M; IQ1_S allows every quant)",
    )
    p.add_argument(
        "--context", type=argtypes.tokens, required=True, metavar="N", help="context (tokens)"
    )
    p.add_argument(
        "--min-decode-tps", type=argtypes.tokens_per_s, metavar="X", help="minimum decode tok/s"
    )
    p.add_argument("--budget-usd", type=argtypes.money, metavar="N", help="maximum price in USD")
    p.add_argument("--condition", choices=CONDITIONS, default="any", help="new, used or any")
    p.add_argument("--max-watts", type=argtypes.watts, metavar="W", help="maximum total max W")
    p.add_argument(
        "--allow-clusters",
        action="store_true",
        help="also try 2-4 identical machines (llama.cpp RPC over Thunderbolt)",
    )
    p.add_argument(
        "--hours-at-load",
        type=argtypes.hours_per_day,
        default=DEFAULT_HOURS_AT_LOAD,
        metavar="H",
        help=f"duty cycle: hours at load per day (default {DEFAULT_HOURS_AT_LOAD:g})",
    )
    p.add_argument(
        "--tariff",
        type=argtypes.tariff,
        metavar="PRICE",
        help="electricity price per kWh (for annual_energy_cost; none by default)",
    )
    p.add_argument(
        "--as-of",
        "--today",
        dest="as_of",
        type=argtypes.iso_date,
        metavar="YYYY-MM-DD",
        help="the day prices are for: what Apple sold new then, used prices then (default today)",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------


def _check(args_like: dict[str, Any]) -> None:
    ctx = args_like["context"]
    if ctx <= 0:
        raise RecommendInputError(f"--context must be a positive number of tokens, got {ctx}")
    for key in ("min_decode_tps", "budget_usd", "max_watts", "tariff"):
        v = args_like.get(key)
        if v is not None and not (v >= 0 and math.isfinite(v)):  # NaN: every check passed
            raise RecommendInputError(f"--{key.replace('_', '-')} must be >= 0, got {v:g}")
    h = args_like["hours_at_load"]
    if not 0 <= h <= 24:  # also False for NaN
        raise RecommendInputError(f"--hours-at-load must be 0-24 hours per day, got {h:g}")
    if args_like["condition"] not in CONDITIONS:
        raise RecommendInputError(
            f"--condition '{args_like['condition']}' unknown; valid: {', '.join(CONDITIONS)}"
        )


def _today(text: str | None) -> str:
    if text is None:
        return _dt.date.today().isoformat()
    try:
        return _dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise RecommendInputError(f"--as-of '{text}': expected YYYY-MM-DD") from None


def user_price_observations() -> tuple[tuple[Any, ...], list[str]]:
    """The user's own price observations from the user database, as domain values. Only
    USD rows naming a catalog configuration can price a configuration; the rest are counted."""
    from forgeplanner.domain.prices import PriceObservation

    notes: list[str] = []
    try:
        from forgeplanner.store.db import open_store
        from forgeplanner.store.repos import PriceRepo
    except ImportError:
        return (), ["user database not available: only the shipped price observations are used"]
    out = []
    skipped = 0
    with open_store() as store, store.session() as s:
        for rec in PriceRepo(s).list():
            cond = rec.condition if rec.condition in ("new", "used", "refurbished") else "unknown"
            if rec.config_id is None or rec.currency != "USD" or rec.price <= 0:
                skipped += 1
                continue
            out.append(
                PriceObservation(
                    id=f"user-{rec.id}",
                    item=rec.title or rec.config_id,
                    price_usd=rec.price,
                    condition=cond,
                    price_type="listing",
                    date=rec.observed_on.isoformat(),
                    source=rec.source,
                    config_id=rec.config_id,
                    origin="user",
                )
            )
    if skipped:
        notes.append(
            f"{skipped} of your price observations name no catalog configuration or "
            "are not in USD; they are listed but not used for prices"
        )
    return tuple(out), notes


def build_recommendation(
    model_ids: Sequence[str],
    context: int,
    *,
    quant_min: str | None = None,
    min_decode_tps: float | None = None,
    budget_usd: float | None = None,
    condition: str = "any",
    max_watts: float | None = None,
    allow_clusters: bool = False,
    hours_at_load: float = DEFAULT_HOURS_AT_LOAD,
    tariff: float | None = None,
    today: str | None = None,
    include_user_observations: bool = True,
    as_of: str | None = None,
) -> Recommendation:
    from catalog import load_catalog
    from forgeplanner.cli.model_lookup import find_model
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine import prices as px
    from forgeplanner.engine.quant import get_quant

    _check(
        {
            "context": context,
            "min_decode_tps": min_decode_tps,
            "budget_usd": budget_usd,
            "max_watts": max_watts,
            "tariff": tariff,
            "hours_at_load": hours_at_load,
            "condition": condition,
        }
    )
    day = _today(as_of or today)
    cat = load_catalog()
    models = [find_model(m) for m in dict.fromkeys(model_ids)]
    qmin = get_quant(quant_min) if quant_min else None
    notes: list[str] = []
    observations: tuple[Any, ...] = cat.price_observations
    if include_user_observations:
        user_obs, user_notes = user_price_observations()
        observations = observations + user_obs
        notes += user_notes
    fit = px.fit_depreciation(cat.configs, observations, cat.chips)
    if fit is not None:
        notes.append(f"used-price estimates: {fit.describe()}")
    opts = {rt: RunOptions(context=context, runtime=rt) for rt in RUNTIMES}
    search = _Search(cat, models, qmin, opts, min_decode_tps)

    from forgeplanner.engine.recommend import Rejection, limit_reason, rank

    options = []
    rejected = []
    for cfg in cat.configs.values():
        price = _price(cfg, 1, condition, observations, day, fit)
        single = [search.single(cfg, rt) for rt in RUNTIMES]
        found = [o for o in single if not isinstance(o, str)]
        reasons = [o for o in single if isinstance(o, str)]
        if (
            not found
            and allow_clusters
            and cfg.chip_id in cat.chips
            and cat.chips[cfg.chip_id].is_apple_silicon
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
            p = price if count == 1 else _price(cfg, count, condition, observations, day, fit)
            if isinstance(p, str):
                why = p
                continue
            option = _option(cfg, sized, p, hours_at_load, tariff)
            why = limit_reason(option.price_usd, option.max_w, budget_usd, max_watts) or ""
            if why:
                continue
            options.append(option)
            kept += 1
        if not kept:
            rejected.append(Rejection(cfg.id, why, found[0]["count"]))
    if not allow_clusters:
        notes.append("clusters not searched (pass --allow-clusters)")
    constraints = {
        "models": [m.id for m in models],
        "quant_min": qmin.name if qmin else None,
        "context": context,
        "min_decode_tps": min_decode_tps,
        "budget_usd": budget_usd,
        "condition": condition,
        "max_watts": max_watts,
        "allow_clusters": allow_clusters,
        "hours_at_load": hours_at_load,
        "tariff_per_kwh": tariff,
        "today": day,
        "as_of": day,
        "runtimes": list(RUNTIMES),
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
    from dataclasses import replace

    from forgeplanner.engine import prices as px

    best = px.price_for(cfg, condition, day, observations, fit)
    if isinstance(best, str) or count == 1 or best.price_usd is None:
        return best
    return replace(best, price_usd=best.price_usd * count)


class _Search:
    """Sizes one configuration with the sizing engine, memoizing per-model memory totals
    (memory does not depend on the machine)."""

    def __init__(self, cat, models, qmin, opts, min_decode_tps) -> None:
        from forgeplanner.engine.quant import quants_for

        self.cat = cat
        self.models = models
        self.opts = opts
        self.min_decode = min_decode_tps
        self.quants: dict[tuple[str, str], list[Any]] = {}
        self.totals: dict[tuple[str, str, str], int] = {}
        self.no_weights: dict[tuple[str, str], str] = {}
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

    def _total(self, model, q, rt: str) -> int:
        from forgeplanner.engine.memory import estimate_memory

        key = (model.id, q.name, rt)
        if key not in self.totals:
            self.totals[key] = estimate_memory(model, q, self.opts[rt]).total_bytes
        return self.totals[key]

    def single(self, cfg, rt: str):
        """{"count": 1, "runtime", "per_model": [...]} or a rejection reason."""
        from forgeplanner.engine.budget import gpu_budget
        from forgeplanner.engine.estimate import estimate, speed_estimate
        from forgeplanner.engine.fit import verdict_for
        from forgeplanner.engine.recommend import QuantCandidate, choose_quant
        from forgeplanner.host import host_from_config

        host = host_from_config(cfg.id)
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
                    sp = speed_estimate(m, q, host, self.opts[rt])
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

    def cluster(self, cfg):
        """The smallest cluster of identical machines (2-4) that runs every model, via the
        cluster engine (llama.cpp RPC), or a rejection reason."""
        try:
            from forgeplanner.cli.cluster_cmd import build_cluster
        except ModuleNotFoundError as exc:  # the cluster feature is a separate module
            if exc.name != "forgeplanner.cli.cluster_cmd":
                raise
            return "clusters: the cluster engine is not available in this build"

        rt = "llama.cpp"
        last = "no cluster size tried"
        for n in CLUSTER_SIZES:
            per_model = []
            notes: list[str] = []
            for m in self.models:
                chosen = None
                for q in self.quants[(m.id, rt)]:
                    try:
                        res = build_cluster(
                            m.id, q.name, [f"{cfg.id}x{n}"], context=self.opts[rt].context
                        )
                    except ForgePlannerError as exc:
                        last = f"cluster x{n}: {exc}"
                        continue
                    plan = res.plan
                    if plan.verdict == "does-not-fit":
                        worst = max(plan.nodes, key=lambda nd: nd.total_bytes - nd.gpu_limit_bytes)
                        last = (
                            f"cluster x{n}: node {worst.name} needs "
                            f"{worst.total_bytes / 2**30:.1f} GiB at {q.name}, GPU limit "
                            f"{worst.gpu_limit_bytes / 2**30:.1f} GiB"
                        )
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
                    chosen = (q, plan, res)
                    break
                if chosen is None:
                    break
                q, plan, res = chosen
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
                if res.link_default_reason:
                    notes.append(res.link_default_reason)
            if len(per_model) == len(self.models):
                return {
                    "count": n,
                    "runtime": rt,
                    "per_model": per_model,
                    "notes": tuple(dict.fromkeys(notes)),
                }
        return f"clusters of {CLUSTER_SIZES[0]}-{CLUSTER_SIZES[-1]}: {last}"


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


# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    rec = build_recommendation(
        args.model,
        args.context,
        quant_min=args.quant_min,
        min_decode_tps=args.min_decode_tps,
        budget_usd=args.budget_usd,
        condition=args.condition,
        max_watts=args.max_watts,
        allow_clusters=args.allow_clusters,
        hours_at_load=args.hours_at_load,
        tariff=args.tariff,
        as_of=args.as_of,
    )
    if args.json:
        print_json(rec.to_dict())
        return 0
    c = rec.constraints
    print(
        f"{', '.join(c['models'])} at context {c['context']}"
        + (f", quant >= {c['quant_min']}" if c["quant_min"] else "")
        + (f", decode >= {c['min_decode_tps']:g} t/s" if c["min_decode_tps"] else "")
        + f", {c['condition']} machines, prices as of {c['today']}"
    )
    print()
    rows = []
    for o in rec.options:
        (cid, n), *_ = o.machines
        rows.append(
            [
                "*" if o.pareto else "",
                f"{cid}" + (f" x{n}" if n > 1 else ""),
                o.runtime,
                o.quant,
                "unknown" if o.price_usd is None else f"${o.price_usd:,.0f}",
                o.price_basis,
                "unknown" if o.decode_tps is None else f"{o.decode_tps:.1f}",
                "unknown" if o.prefill_tps is None else f"{o.prefill_tps:.0f}",
                o.verdict,
                "unknown" if o.max_w is None else f"{o.max_w:g}",
                "unknown" if o.annual_energy_kwh is None else f"{o.annual_energy_kwh:.0f}",
            ]
        )
    if rows:
        print_table(
            [
                "P",
                "machines",
                "runtime",
                "quant",
                "price",
                "price basis",
                "decode t/s",
                "prefill t/s",
                "verdict",
                "max W",
                "kWh/yr",
            ],
            rows,
        )
        print(
            "\nP = on the price / speed / watts Pareto frontier; "
            f"energy assumes {c['hours_at_load']:g} h/day at Apple's max W"
        )
    else:
        print("no configuration meets the constraints")
    if rec.rejected:
        print(f"\nrejected ({len(rec.rejected)}):")
        print_table(["config", "reason"], [[r.config_id, r.reason] for r in rec.rejected])
    for n in rec.notes:
        print(f"note: {n}")
    return 0
