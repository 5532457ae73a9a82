"""`EngineSources`: the real numbers behind a plan.

Machines come from the hardware catalog (`catalog.load_catalog()`), models from the model
database (`models_db.load_models()`), estimates from `forgeplanner.engine.estimate` on the
host `forgeplanner.host.host_from_config` builds, cluster and K3s layouts and the user's price
observations from `forgeplanner.services` (what the CLI and the app use), new and used prices
from `forgeplanner.engine.prices` and power and running cost from `forgeplanner.engine.power`.
Nothing here computes a figure itself; an unknown figure stays unknown with the engine's reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from forgeplanner import __version__
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.plan import (
    LayoutSection,
    MemoryBreakdown,
    PlanEstimate,
    PlanMachine,
    PlanModel,
    PlanPrice,
    PowerSettings,
    RunningCost,
    SpeedPoint,
)
from forgeplanner.errors import ForgePlannerError

# Depths (fractions of the context) at which the speed-vs-context curve is sampled.
CURVE_FRACTIONS: tuple[float, ...] = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


_UNSET = object()


class EngineSources:
    engine_version = __version__

    def __init__(
        self,
        catalog: Any = None,
        models: Any = None,
        today: str | None = None,
        user_prices: bool = True,
    ) -> None:
        self._catalog = catalog
        self._models = models
        # Used prices depend on the date (recent observations, age); the caller may fix it.
        self.today = today or date.today().isoformat()
        self._fit: Any = _UNSET
        self.user_prices = user_prices
        self._observations: tuple[Any, ...] | None = None
        self._estimates: dict[tuple[str, str, str, int, str], PlanEstimate] = {}
        self._user_models: dict[str, Any] | None = None

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            from catalog import load_catalog

            self._catalog = load_catalog()
        return self._catalog

    @property
    def models(self) -> Any:
        if self._models is None:
            from models_db import load_models

            self._models = load_models()
        return self._models

    # -- machines and prices ------------------------------------------------------------------

    def machine(self, config_id: str, count: int, condition: str = "new") -> PlanMachine:
        cfg = self.catalog.config(config_id)  # NotFoundError lists the valid ids
        return PlanMachine(
            config_id=cfg.id,
            count=count,
            label=cfg.machine,
            chip_id=cfg.chip_id,
            memory_gb=cfg.memory_gb,
            price=self.price(cfg, condition),
            idle_w=cfg.idle_w.value,
            max_w=cfg.max_w.value,
            power_source=cfg.max_w.source or (cfg.max_w.reason or ""),
        )

    def observations(self) -> tuple[Any, ...]:
        """The shipped price observations plus the user's own from the user database (the
        same set `prices show` and `recommend` use)."""
        if self._observations is None:
            user: tuple[Any, ...] = ()
            if self.user_prices:
                from forgeplanner.services.prices import user_price_observations

                user, _ = user_price_observations()
            self._observations = tuple(self.catalog.price_observations) + tuple(user)
        return self._observations

    def price(self, cfg: Any, condition: str) -> PlanPrice:
        """New: Apple's latest list price (launch price, or a later repricing). Used or
        refurbished: the used-price engine's median of recent observations, else its estimate
        from launch price and age; unknown with the reason otherwise."""
        from forgeplanner.engine import prices

        observations = self.observations()
        if self._fit is _UNSET:
            self._fit = prices.fit_depreciation(
                self.catalog.configs, observations, self.catalog.chips
            )
        if condition == "new":
            res = prices.new_price(cfg, self.today, observations, self._fit)
        else:
            res = prices.used_price(cfg, observations, self.today, self._fit)
        if res.price_usd is None or res.basis == "unknown":
            return PlanPrice(usd=None, basis="unknown", condition=condition, reason=res.label)
        # the plan's price bases: a scaled list price is an estimate, remaining stock observed
        basis = {"scaled": "estimated", "stock": "observed"}.get(res.basis, res.basis)
        if basis == "list":
            launch = cfg.launch_price_usd
            basis = (
                "launch"
                if launch.value == res.price_usd
                and res.count <= 1
                and (res.date_to in (launch.as_of, cfg.release_date))
                else "list"
            )
        return PlanPrice(
            usd=round(float(res.price_usd), 2),
            basis=basis,
            as_of=res.date_to,
            source=f"{res.label}: {res.detail}" if res.detail else res.label,
            condition=condition,
            observations=res.count if basis == "observed" else 0,
        )

    # -- models and estimates -----------------------------------------------------------------

    def spec(self, model_id: str) -> Any:
        """A shipped model, else one the user imported (`models import`); NotFoundError with
        the nearest ids otherwise. Shipped ids win, as everywhere (services.models.find_model)."""
        if model_id in self.models:
            return self.models.get(model_id)
        if self._user_models is None:
            self._user_models = {}
            if self.user_prices:  # the same switch: no user database at all
                from forgeplanner.services.models import list_user_models

                self._user_models = {m.id: m for m in list_user_models()}
        if model_id in self._user_models:
            return self._user_models[model_id]
        from forgeplanner.errors import NotFoundError

        raise NotFoundError("model", model_id, [*self.models.ids(), *self._user_models])

    def model(self, model_id: str, quant: str, runtime: str, context: int) -> PlanModel:
        from forgeplanner.engine.quant import check_combination, get_quant

        spec = self.spec(model_id)
        try:
            RunOptions(context=context, runtime=runtime)
            q = get_quant(quant)
            check_combination(spec, q, runtime)
        except ValueError as exc:
            raise ForgePlannerError(f"{model_id} {quant} on {runtime}: {exc}") from None
        return PlanModel(
            model_id=spec.id,
            quant=q.name,
            runtime=runtime,
            context=context,
            name=spec.name,
            license=spec.license,
            params_total=spec.params_total,
        )

    def estimate(self, model: PlanModel, config_id: str) -> PlanEstimate:
        key = (model.model_id, model.quant, model.runtime, model.context, config_id)
        if key not in self._estimates:
            self._estimates[key] = self._estimate(model, config_id)
        return self._estimates[key]

    def _estimate(self, model: PlanModel, config_id: str) -> PlanEstimate:
        from forgeplanner.engine.estimate import decode_curve, estimate
        from forgeplanner.host import host_from_config

        spec = self.spec(model.model_id)
        host = host_from_config(config_id)
        options = RunOptions(context=model.context, runtime=model.runtime)
        try:
            est = estimate(spec, model.quant, host, options)
            depths = sorted({int(model.context * f) for f in CURVE_FRACTIONS})  # 0 .. full
            curve = decode_curve(spec, model.quant, host, options, depths)
        except ValueError as exc:
            raise ForgePlannerError(
                f"{model.model_id} {model.quant} on {config_id}: {exc}"
            ) from None
        mem = est.fit.memory
        speed = est.speed
        return PlanEstimate(
            model_id=model.model_id,
            quant=est.quant,
            runtime=model.runtime,
            context=model.context,
            target=config_id,
            verdict=est.fit.verdict,
            headroom_bytes=est.fit.headroom_bytes,
            gpu_limit_bytes=est.fit.budget.gpu_limit_bytes,
            physical_bytes=est.fit.budget.physical_bytes,
            budget_basis=est.fit.budget.basis,
            memory=MemoryBreakdown(
                mem.weights_bytes, mem.kv_cache_bytes, mem.compute_bytes, mem.runtime_bytes
            ),
            decode_tps=None if speed is None else round(speed.decode_tps, 3),
            prefill_tps=None if speed is None else round(speed.prefill_tps, 3),
            ttft_s=None if speed is None else round(speed.ttft_s, 4),
            max_context_that_fits=est.max_context_that_fits,
            sysctl_command=est.fit.sysctl_command,
            speed_basis="" if speed is None else speed.basis,
            speed_by_depth=tuple(SpeedPoint(d, round(tps, 3)) for d, tps in curve),
            warnings=tuple(est.warnings),
        )

    # -- power and running cost ---------------------------------------------------------------

    def running_cost(
        self, machines: tuple[PlanMachine, ...], power: PowerSettings
    ) -> RunningCost | None:
        """Watts and BTU/h of the shelf (engine.power.shelf_totals over the catalog's sourced
        figures) and energy and money per year at the plan's duty cycle and tariff
        (engine.power.annual_energy, load = Apple's max figure)."""
        from forgeplanner.engine.power import ShelfItem, annual_energy, shelf_totals

        items = []
        for m in machines:
            cfg = self.catalog.config(m.config_id)
            items.append(
                ShelfItem(cfg.id, m.count, cfg.idle_w, cfg.max_w, cfg.idle_btu_h, cfg.max_btu_h)
            )
        shelf = shelf_totals(items)
        energy = annual_energy(
            shelf.idle_w, shelf.max_w, power.duty_hours_per_day, power.tariff_per_kwh
        )
        basis = energy.formula.replace("/kWh", f" {power.currency}/kWh")
        if shelf.unknown:
            basis += "; unknown: " + "; ".join(shelf.unknown)
        return RunningCost(
            idle_w=shelf.idle_w,
            max_w=shelf.max_w,
            annual_kwh=None if energy.kwh is None else round(energy.kwh, 2),
            annual_cost=None if energy.cost is None else round(energy.cost, 2),
            currency=power.currency,
            basis=f"load = Apple's max power figure; {basis}",
            unknown=tuple(shelf.unknown),
            max_btu_h=None if shelf.max_btu_h is None else round(shelf.max_btu_h, 1),
        )

    # -- layouts ------------------------------------------------------------------------------

    def layout(self, kind: str, inputs: dict[str, Any]) -> LayoutSection:
        try:
            if kind == "cluster":
                return self._cluster(inputs)
            if kind == "platform":
                return self._platform(inputs)
        except (KeyError, TypeError, AttributeError) as exc:
            # A hand-edited plan whose layout request lost a field or changed its type.
            raise ForgePlannerError(
                f"the plan's {kind} layout inputs are incomplete or malformed ({exc!r}); "
                f"set the layout again with `forgeplanner plan set-{kind}`"
            ) from None
        raise ValueError(f"layout kind must be cluster or platform, got {kind!r}")

    def _cluster(self, inputs: dict[str, Any]) -> LayoutSection:
        from forgeplanner.services.cluster import ClusterRequest, NodeGroup, build_cluster

        request = ClusterRequest(
            model_id=inputs["model_id"],
            quant=inputs["quant"],
            nodes=tuple(NodeGroup(n["config_id"], int(n["count"])) for n in inputs["nodes"]),
            link_id=inputs.get("link"),
            mode=inputs.get("mode", "pipeline"),
            context=int(inputs.get("context", 8192)),
            runtime=inputs.get("runtime") or "llama.cpp",
        )
        result = build_cluster(request, catalog=self.catalog)
        return LayoutSection(
            kind="cluster",
            inputs=dict(inputs),
            result=_plain(result.to_dict()),
            basis="forgeplanner cluster (engine.cluster)",
        )

    def _platform(self, inputs: dict[str, Any]) -> LayoutSection:
        from forgeplanner.services.platform import PlatformRequest, ShelfNode, build_platform

        request = PlatformRequest(
            nodes=tuple(ShelfNode(n["name"], n["config_id"]) for n in inputs["nodes"]),
            model_id=inputs.get("model_id"),
            quant=inputs.get("quant"),
            runtime=inputs.get("runtime") or "ollama",
            context=int(inputs.get("context", 8192)),
        )
        result = build_platform(request, catalog=self.catalog)
        return LayoutSection(
            kind="platform",
            inputs=dict(inputs),
            result=_plain(result.to_dict()),
            basis="forgeplanner platform layout (engine.platform_layout)",
        )


def _plain(value: Any) -> Any:
    """JSON-plain copy (tuples -> lists, numpy scalars -> numbers) so the plan round-trips."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value
