"""Building and editing a plan: pure functions that return a new Plan.

No clock here: callers pass `now` (ISO 8601 UTC), so edits are reproducible and testable. An
edit to "the build" targets the primary build, or the alternative named by `alternative`.
Edits change inputs only; `forgeplanner.plan.compute.recompute` refreshes the estimates, layouts
and running cost from them through the engine.
"""

from __future__ import annotations

from dataclasses import replace

from forgeplanner.domain.plan import (
    Alternative,
    AttachedRun,
    Build,
    GateVerdict,
    LayoutSection,
    Plan,
    PlanMachine,
    PlanModel,
    PowerSettings,
)
from forgeplanner.errors import NotFoundError


def new_plan(name: str, now: str, notes: str = "") -> Plan:
    if not name.strip():
        raise ValueError("a plan needs a name")
    return Plan(name=name, created_at=now, updated_at=now, notes=notes)


def get_build(plan: Plan, alternative: str | None = None) -> Build:
    if alternative is None:
        return plan.build
    return _find_alternative(plan, alternative).build


def set_build(plan: Plan, build: Build, now: str, alternative: str | None = None) -> Plan:
    if alternative is None:
        return replace(plan, build=build, updated_at=now)
    _find_alternative(plan, alternative)
    alts = tuple(replace(a, build=build) if a.name == alternative else a for a in plan.alternatives)
    return replace(plan, alternatives=alts, updated_at=now)


def _find_alternative(plan: Plan, name: str) -> Alternative:
    for alt in plan.alternatives:
        if alt.name == name:
            return alt
    raise NotFoundError("alternative", name, [a.name for a in plan.alternatives])


def add_machine(plan: Plan, machine: PlanMachine, now: str, alternative: str | None = None) -> Plan:
    """Add machines; adding a configuration already in the build adds to its count and takes
    the new price (the latest look-up)."""
    build = get_build(plan, alternative)
    machines = list(build.machines)
    for i, m in enumerate(machines):
        if m.config_id == machine.config_id:
            machines[i] = replace(
                machine, count=m.count + machine.count, role=m.role or machine.role
            )
            break
    else:
        machines.append(machine)
    return set_build(plan, replace(build, machines=tuple(machines)), now, alternative)


def set_machine_count(
    plan: Plan, config_id: str, count: int, now: str, alternative: str | None = None
) -> Plan:
    """Set a machine's count; 0 removes it."""
    build = get_build(plan, alternative)
    ids = [m.config_id for m in build.machines]
    if config_id not in ids:
        raise NotFoundError("machine in plan", config_id, ids)
    if count < 0:
        raise ValueError(f"machine count must be >= 0, got {count}")
    machines = tuple(
        replace(m, count=count) if m.config_id == config_id else m
        for m in build.machines
        if not (m.config_id == config_id and count == 0)
    )
    return set_build(plan, replace(build, machines=machines), now, alternative)


def remove_machine(plan: Plan, config_id: str, now: str, alternative: str | None = None) -> Plan:
    return set_machine_count(plan, config_id, 0, now, alternative)


def add_model(plan: Plan, model: PlanModel, now: str, alternative: str | None = None) -> Plan:
    """Add a model; a model already in the build is replaced (new quant/runtime/context)."""
    build = get_build(plan, alternative)
    models = [m for m in build.models if m.model_id != model.model_id]
    position = next(
        (i for i, m in enumerate(build.models) if m.model_id == model.model_id), len(models)
    )
    models.insert(position, model)
    return set_build(plan, replace(build, models=tuple(models)), now, alternative)


def remove_model(plan: Plan, model_id: str, now: str, alternative: str | None = None) -> Plan:
    build = get_build(plan, alternative)
    ids = [m.model_id for m in build.models]
    if model_id not in ids:
        raise NotFoundError("model in plan", model_id, ids)
    models = tuple(m for m in build.models if m.model_id != model_id)
    return set_build(plan, replace(build, models=models), now, alternative)


def set_layout(
    plan: Plan, section: LayoutSection | None, kind: str, now: str, alternative: str | None = None
) -> Plan:
    if kind not in ("cluster", "platform"):
        raise ValueError(f"layout kind must be cluster or platform, got {kind!r}")
    build = get_build(plan, alternative)
    return set_build(plan, replace(build, **{kind: section}), now, alternative)


def add_alternative(
    plan: Plan, name: str, rationale: str, now: str, build: Build | None = None
) -> Plan:
    if not name.strip():
        raise ValueError("an alternative needs a name")
    if any(a.name == name for a in plan.alternatives):
        raise ValueError(f"plan '{plan.name}' already has an alternative '{name}'")
    alt = Alternative(name=name, rationale=rationale, build=build or Build())
    return replace(plan, alternatives=(*plan.alternatives, alt), updated_at=now)


def remove_alternative(plan: Plan, name: str, now: str) -> Plan:
    _find_alternative(plan, name)
    alts = tuple(a for a in plan.alternatives if a.name != name)
    return replace(plan, alternatives=alts, updated_at=now)


def attach_run(plan: Plan, run: AttachedRun, now: str) -> Plan:
    """Attach a measured run; attaching the same run id again refreshes it in place."""
    runs = list(plan.runs)
    for i, r in enumerate(runs):
        if r.run_id == run.run_id:
            runs[i] = run
            break
    else:
        runs.append(run)
    return replace(plan, runs=tuple(runs), updated_at=now)


def detach_run(plan: Plan, run_id: str, now: str) -> Plan:
    ids = [r.run_id for r in plan.runs]
    if run_id not in ids:
        raise NotFoundError("run in plan", run_id, ids)
    return replace(plan, runs=tuple(r for r in plan.runs if r.run_id != run_id), updated_at=now)


def set_power(plan: Plan, power: PowerSettings, now: str) -> Plan:
    return replace(plan, power=power, updated_at=now)


def set_verdicts(plan: Plan, verdicts: tuple[GateVerdict, ...], now: str) -> Plan:
    return replace(plan, verdicts=verdicts, updated_at=now)


def rename(plan: Plan, name: str, now: str) -> Plan:
    if not name.strip():
        raise ValueError("a plan needs a name")
    return replace(plan, name=name, updated_at=now)


def set_notes(plan: Plan, notes: str, now: str) -> Plan:
    return replace(plan, notes=notes, updated_at=now)
