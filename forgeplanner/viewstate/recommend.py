"""The Recommend view's state: the constraints, the rows of the ranked options, the detail of
one option, and what "Add to plan" carries.

The search itself is the recommend service (`forgeplanner.services.recommend`, given
`RecommendInputs.request()`); this module reads its result. An option's detail is computed
again from the engine for that one option at the stated context: decode with the context filled
and the empty-context figure, the sysctl command and the memory it leaves macOS, the quality
cost of its quantization.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.units import GiB
from forgeplanner.errors import ForgePlannerError
from forgeplanner.viewstate.speed import likely_range, range_text
from forgeplanner.viewstate.vocabulary import (
    machine_name_of,
    plain_reason,
    runtime_label,
    tokens,
    verdict_word,
)

DEFAULT_MODEL = "llama-3.3-70b"
DEFAULT_CONTEXT = 16384
DEFAULT_QUANT_MIN = "Q4_K_M"
CONDITIONS = (("Any", "any"), ("New", "new"), ("Used", "used"))


@dataclass(frozen=True)
class RecommendInputs:
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    context: int = DEFAULT_CONTEXT
    quant_min: str | None = DEFAULT_QUANT_MIN
    min_decode_tps: float | None = None
    budget_usd: float | None = None
    condition: str = "any"
    max_watts: float | None = None
    allow_clusters: bool = False
    hours_at_load: float = 8.0
    tariff: float | None = None

    def request(self, *, include_user_observations: bool = True) -> Any:
        """The recommend search's typed request (services.recommend.RecommendRequest); raises
        its one-line RecommendInputError for constraints it cannot search with."""
        from forgeplanner.services.recommend import RecommendRequest

        return RecommendRequest(
            **self.search_arguments(), include_user_observations=include_user_observations
        )

    def search_arguments(self) -> dict[str, Any]:
        """The constraints by RecommendRequest's field names."""
        return {
            "model_ids": list(self.models),
            "context": self.context,
            "quant_min": self.quant_min,
            "min_decode_tps": self.min_decode_tps,
            "budget_usd": self.budget_usd,
            "condition": self.condition,
            "max_watts": self.max_watts,
            "allow_clusters": self.allow_clusters,
            "hours_at_load": self.hours_at_load,
            "tariff": self.tariff,
        }


def quant_min_choices() -> list[tuple[str, str | None]]:
    """(label, quant) for the "lowest quantization" field, from the engine's llama.cpp list,
    best first, with the bits per weight."""
    from forgeplanner.engine.quant import get_quant

    names = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "IQ3_XXS", "Q2_K", "IQ1_S"]
    out: list[tuple[str, str | None]] = [("any", None)]
    for n in names:
        q = get_quant(n)
        out.append((f"{n} ({q.bits_per_weight:g} bpw)", n))
    return out


def option_label(option: Any, catalog: Any) -> str:
    """ "2 x Mac mini (2024) - M4 Pro, 20-core GPU, 64 GB" for an option's machines."""
    parts = []
    for config_id, n in option.machines:
        name = machine_name_of(catalog, config_id)
        parts.append(f"{n} x {name}" if n > 1 else name)
    return " + ".join(parts)


def option_rows(rec: Any, catalog: Any, moe: bool = False) -> list[dict[str, Any]]:
    """The ranked table: raw values, machine names, the index of the option in `rec.options`,
    and the likely ranges of its speeds at the stated context (`moe`: the first model is a
    mixture of experts; the ranges are the engine's bands, see viewstate.speed)."""
    context = int(rec.constraints.get("context") or 0)
    rows = []
    for i, o in enumerate(rec.options):
        (cid, n), *_ = o.machines
        dec = likely_range(o.decode_tps, o.runtime, "decode", moe, context)
        pre = likely_range(o.prefill_tps, o.runtime, "prefill", moe, context)
        rows.append({
            "index": i, "pareto_mark": "yes" if o.pareto else "",
            "machines": option_label(o, catalog), "config_id": cid, "count": n,
            "runtime": runtime_label(o.runtime), "runtime_key": o.runtime, "quant": o.quant,
            "price_usd": o.price_usd, "price_basis": o.price_basis,
            "decode_tps": o.decode_tps, "prefill_tps": o.prefill_tps,
            "decode_range": range_text(*dec) if dec else None,
            "prefill_range": range_text(*pre, digits=0) if pre else None,
            "verdict": o.verdict, "max_w": o.max_w, "quality": _quality(o.quant),
            "annual_energy_kwh": o.annual_energy_kwh, "annual_energy_cost": o.annual_energy_cost,
        })  # fmt: skip
    return rows


def _quality(quant: str) -> str | None:
    from models_db.quant_quality import quality_of

    q = quality_of(quant)
    return q.summary() if q.known else None


def rejected_rows(rec: Any, catalog: Any) -> list[dict[str, Any]]:
    return [
        {
            "machine": machine_name_of(catalog, r.config_id)
            + (f" (x{r.count})" if getattr(r, "count", 1) > 1 else ""),
            "config_id": r.config_id,
            "reason": plain_reason(r.reason),
        }
        for r in rec.rejected
    ]


@dataclass(frozen=True)
class ModelDetail:
    model_id: str
    quant: str
    verdict: str
    decode_at_context: float | None
    decode_empty: float | None
    prefill: float | None
    ttft: float | None
    needs_gib: float
    limit_gib: float
    sysctl: str | None
    macos_left_gib: float | None
    quality: str
    below_target: bool
    warnings: tuple[str, ...] = ()
    decode_range: str = ""  # "likely 6.1-8.0" (empty: no range)


@dataclass(frozen=True)
class OptionDetail:
    title: str
    runtime: str
    price: str
    power: str
    models: tuple[ModelDetail, ...] = ()
    notes: tuple[str, ...] = ()
    problem: str = ""
    machines: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    def html(self) -> str:
        import html as h

        e = h.escape
        out = [f"<h3>{e(self.title)}</h3>", f"<p>{e(self.runtime)} &middot; {e(self.price)}"]
        out.append(f" &middot; {e(self.power)}</p>")
        if self.problem:
            out.append(f"<p><i>{e(self.problem)}</i></p>")
        for m in self.models:
            tps = "unknown" if m.decode_at_context is None else f"{m.decode_at_context:,.1f}"
            empty = "unknown" if m.decode_empty is None else f"{m.decode_empty:,.1f}"
            out.append(
                f"<p><b>{e(m.model_id)} {e(m.quant)}</b>: {e(verdict_word(m.verdict))}; "
                f"needs {m.needs_gib:,.1f} GiB of {m.limit_gib:,.1f} GiB GPU limit.<br>"
                f"Decode <b>{tps} tok/s</b>"
                + (f" ({e(m.decode_range)})" if m.decode_range else "")
                + f" with the context filled ({empty} empty)"
                + (" &mdash; <b>below your decode target</b>" if m.below_target else "")
                + ".<br>"
                f"Quality cost of {e(m.quant)}: {e(m.quality)}.</p>"
            )
            if m.sysctl:
                left = (
                    ""
                    if m.macos_left_gib is None
                    else f" (leaves macOS {m.macos_left_gib:,.1f} GiB)"
                )
                out.append(f"<p>Raise the GPU limit: <code>{e(m.sysctl)}</code>{e(left)}</p>")
            for w in m.warnings:
                out.append(f"<p><i>{e(w)}</i></p>")
        for n in self.notes:
            out.append(f"<p><small>{e(n)}</small></p>")
        return "".join(out)


def option_detail(option: Any, inputs: RecommendInputs, catalog: Any, models: Any) -> OptionDetail:
    """The selected option, sized again at the stated context (one machine: the engine's
    estimate; a cluster: the figures the search gave, per model)."""
    from forgeplanner.engine.estimate import estimate, speed_estimate
    from forgeplanner.host import host_from_chip
    from models_db.quant_quality import low_bits_warning, quality_of

    price = (
        "price unknown"
        if option.price_usd is None
        else f"${option.price_usd:,.0f} ({option.price_basis})"
    )
    power = "max power unknown" if option.max_w is None else f"max {option.max_w:,.0f} W"
    base = OptionDetail(
        title=option_label(option, catalog),
        runtime=runtime_label(option.runtime),
        price=price,
        power=power,
        notes=tuple(plain_reason(n) for n in getattr(option, "notes", ()) or ()),
        machines=tuple(option.machines),
    )
    (config_id, count), *_ = option.machines
    per_model = list(getattr(option, "per_model", ()) or ())
    details: list[ModelDetail] = []
    for i, model_id in enumerate(inputs.models):
        pm = per_model[i] if i < len(per_model) else {}
        quant = str(pm.get("quant") or option.quant)
        q = quality_of(quant)
        warnings: list[str] = []
        try:
            spec = models.get(model_id)
            from forgeplanner.engine.quant import get_quant

            low = low_bits_warning(quant, get_quant(quant).bits_per_weight)
            if low:
                warnings.append(low)
        except (ValueError, ForgePlannerError) as exc:
            return dataclasses.replace(base, problem=str(exc).splitlines()[0])
        if count == 1:
            cfg = catalog.configs[config_id]
            host = host_from_chip(catalog.chips[cfg.chip_id], cfg.memory_gb, config=cfg)
            filled = RunOptions(
                context=inputs.context, depth=inputs.context, prompt_tokens=inputs.context,
                runtime=option.runtime,
            )  # fmt: skip
            empty = dataclasses.replace(filled, depth=0, prompt_tokens=512)
            try:
                est = estimate(spec, quant, host, filled)
                sp0 = speed_estimate(spec, quant, host, empty)
            except (ValueError, ForgePlannerError) as exc:
                return dataclasses.replace(base, problem=str(exc).splitlines()[0])
            s = est.speed
            left = est.fit.memory_left_for_macos_bytes
            decode = None if s is None else s.decode_tps
            details.append(
                ModelDetail(
                    model_id=model_id,
                    quant=quant,
                    verdict=est.fit.verdict,
                    decode_at_context=decode,
                    decode_empty=None if sp0 is None else sp0.decode_tps,
                    prefill=None if s is None else s.prefill_tps,
                    ttft=None if s is None else s.ttft_s,
                    needs_gib=est.fit.memory.total_bytes / GiB,
                    limit_gib=est.fit.budget.gpu_limit_bytes / GiB,
                    sysctl=est.fit.sysctl_command,
                    macos_left_gib=None if left is None else left / GiB,
                    quality=q.summary(),
                    below_target=_below(decode, inputs.min_decode_tps),
                    warnings=tuple(warnings),
                    decode_range=""
                    if s is None
                    else range_text(s.decode_tps_low, s.decode_tps_high),
                )
            )
        else:
            decode = _f(pm.get("decode_tps"))
            dec = likely_range(decode, option.runtime, "decode", spec.moe is not None,
                               inputs.context)  # fmt: skip
            details.append(
                ModelDetail(
                    model_id=model_id,
                    quant=quant,
                    verdict=str(pm.get("verdict") or option.verdict),
                    decode_at_context=decode,
                    decode_empty=None,
                    prefill=_f(pm.get("prefill_tps")),
                    ttft=_f(pm.get("ttft_s")),
                    needs_gib=float(pm.get("total_bytes") or 0) / GiB,
                    limit_gib=float(pm.get("gpu_limit_bytes") or 0) / GiB,
                    sysctl=pm.get("sysctl_command"),
                    macos_left_gib=None,
                    quality=q.summary(),
                    below_target=_below(decode, inputs.min_decode_tps),
                    warnings=(
                        *warnings,
                        f"{count} machines over the network: figures from the "
                        "cluster search (layer split, link speed)",
                    ),
                    decode_range=range_text(*dec) if dec else "",
                )
            )
    return dataclasses.replace(base, models=tuple(details))


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _below(decode: float | None, target: float | None) -> bool:
    return target is not None and decode is not None and decode < target


@dataclass(frozen=True)
class PlanAddition:
    """What "Add to plan" puts in the plan: the machines, and each model with the quantization,
    runtime and context the option was found for."""

    machines: tuple[tuple[str, int], ...]
    condition: str
    models: tuple[tuple[str, str, str, int], ...]  # (model id, quant, runtime, context)

    def describe(self, catalog: Any) -> str:
        machines = " + ".join(
            f"{n} x {machine_name_of(catalog, c)}" if n > 1 else machine_name_of(catalog, c)
            for c, n in self.machines
        )
        models = ", ".join(
            f"{m} {q} ({runtime_label(r)}, {tokens(c)})" for m, q, r, c in self.models
        )
        return f"{machines} running {models}"


def plan_addition(option: Any, inputs: RecommendInputs) -> PlanAddition:
    per_model = list(getattr(option, "per_model", ()) or ())
    models = []
    for i, model_id in enumerate(inputs.models):
        pm = per_model[i] if i < len(per_model) else {}
        models.append(
            (model_id, str(pm.get("quant") or option.quant), option.runtime, inputs.context)
        )
    basis = str(getattr(option, "price_basis", "") or "")
    condition = "used" if basis.startswith("used") else "new"
    return PlanAddition(tuple(option.machines), condition, tuple(models))


__all__ = [
    "CONDITIONS",
    "OptionDetail",
    "PlanAddition",
    "RecommendInputs",
    "option_detail",
    "option_label",
    "option_rows",
    "plain_reason",
    "plan_addition",
    "quant_min_choices",
    "rejected_rows",
]
