"""Refresh what a plan derives from its inputs: estimates, layouts, running cost.

`recompute` is pure given its `PlanSources`: every number comes from the sources (machines'
prices and power too, so a hand-edited figure does not survive a recompute), which
`forgeplanner.plan.sources.EngineSources` backs with the real catalog, model database and
engine. Estimates are made for every model on every distinct machine configuration of a build
(one machine kind that runs the model alone), and the cluster/K3s layouts are re-run from the
inputs stored with them, so a plan never shows numbers from before its last edit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from forgeplanner.domain.plan import (
    Build,
    LayoutSection,
    Plan,
    PlanEstimate,
    PlanMachine,
    PlanModel,
    PowerSettings,
    RunningCost,
)


class PlanSources(Protocol):
    engine_version: str

    def machine(self, config_id: str, count: int, condition: str) -> PlanMachine: ...

    def model(self, model_id: str, quant: str, runtime: str, context: int) -> PlanModel: ...

    def estimate(self, model: PlanModel, config_id: str) -> PlanEstimate: ...

    def running_cost(
        self, machines: tuple[PlanMachine, ...], power: PowerSettings
    ) -> RunningCost | None: ...

    def layout(self, kind: str, inputs: dict[str, Any]) -> LayoutSection: ...


def refresh_machine(machine: PlanMachine, sources: PlanSources) -> PlanMachine:
    """The machine as the catalog (and the user's price observations) describe it today: label,
    chip, memory, power and price. What the user chose stays: the count, the condition, the
    role, and a price the user entered (basis "user")."""
    fresh = sources.machine(machine.config_id, machine.count, machine.price.condition)
    price = machine.price if machine.price.basis == "user" else fresh.price
    return replace(fresh, price=price, role=machine.role)


def recompute_build(build: Build, sources: PlanSources, power: PowerSettings) -> Build:
    build = replace(build, machines=tuple(refresh_machine(m, sources) for m in build.machines))
    configs: list[str] = []
    for m in build.machines:
        if m.config_id not in configs:
            configs.append(m.config_id)
    estimates = tuple(sources.estimate(model, cfg) for model in build.models for cfg in configs)
    cluster = build.cluster and sources.layout("cluster", build.cluster.inputs)
    platform = build.platform and sources.layout("platform", build.platform.inputs)
    running = sources.running_cost(build.machines, power) if build.machines else None
    return replace(
        build, estimates=estimates, cluster=cluster, platform=platform, running_cost=running
    )


def recompute(plan: Plan, sources: PlanSources, now: str) -> Plan:
    build = recompute_build(plan.build, sources, plan.power)
    alternatives = tuple(
        replace(a, build=recompute_build(a.build, sources, plan.power)) for a in plan.alternatives
    )
    return replace(
        plan,
        build=build,
        alternatives=alternatives,
        engine_version=sources.engine_version,
        updated_at=now,
    )
