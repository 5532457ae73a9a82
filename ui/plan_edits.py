"""Editing the current build plan from any view, through the engine, as one undoable step.

`edit_plan(ctx, fn, text)` applies a pure edit from `forgeplanner.plan.edit` (`fn(plan, now)`),
recomputes the plan's estimates, prices and running cost through the engine in a worker, and
sets the result on `ctx.plan` with the description `text` (Edit > Undo names it). With no plan
open, a new one is started. The helpers below are what the views' "Add to plan" buttons do.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from forgeplanner.errors import ForgePlannerError
from ui.document import now_iso
from ui.errors import show_error
from ui.workers import start_worker

_SOURCES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def plan_sources(ctx: Any) -> Any:
    """The engine behind plan edits (catalog and models shared with the other views)."""
    if ctx not in _SOURCES:
        from forgeplanner.plan.sources import EngineSources

        _SOURCES[ctx] = EngineSources(catalog=ctx.catalog, models=ctx.models)
    return _SOURCES[ctx]


def edit_plan(
    ctx: Any,
    fn: Callable[[Any, str], Any],
    text: str,
    *,
    recompute: bool = True,
    parent: QWidget | None = None,
    on_finished: Callable[[], None] | None = None,
) -> Any:
    """Apply `fn(plan, now)`, recompute in a worker, push one undoable step. Returns the worker
    (None when nothing runs in the background). Bad input (the edit's ValueError or one-line
    ForgePlannerError) goes to the error dialog."""
    from forgeplanner.plan import edit

    plan = ctx.plan.plan
    if plan is None:
        plan = edit.new_plan("Untitled plan", now_iso())
    try:
        edited = fn(plan, now_iso())
    except (ValueError, ForgePlannerError) as exc:
        show_error(parent, exc)
        if on_finished is not None:
            on_finished()
        return None
    if not recompute:
        ctx.plan.set_plan(edited, text)
        if on_finished is not None:
            on_finished()
        return None
    sources = plan_sources(ctx)

    def job(token):
        from forgeplanner.plan.compute import recompute as do_recompute

        yield "recomputing estimates"
        return do_recompute(edited, sources, edited.updated_at)

    return start_worker(
        ctx.pool,
        job,
        on_result=lambda new: ctx.plan.set_plan(new, text),
        on_error=lambda err: show_error(parent, err.reason, err.details),
        on_finished=on_finished,
    )


def add_machine_to_plan(
    ctx: Any,
    config_id: str,
    count: int = 1,
    condition: str = "new",
    alternative: str | None = None,
    parent: QWidget | None = None,
) -> Any:
    """Price the machine through the engine, add it, recompute, undoable."""
    from forgeplanner.plan import edit

    try:
        machine = plan_sources(ctx).machine(config_id, count, condition)
    except (ValueError, ForgePlannerError) as exc:
        show_error(parent, exc)
        return None
    return edit_plan(
        ctx, lambda p, now: edit.add_machine(p, machine, now, alternative),
        f"Add {count} x {config_id}", parent=parent,
    )  # fmt: skip


def add_models_and_machines(
    ctx: Any,
    machines: list[tuple[str, int]],
    condition: str,
    models: list[tuple[str, str, str, int]],
    text: str,
    parent: QWidget | None = None,
) -> Any:
    """One undoable step: the machines (priced for the condition) and each model with its
    quantization, runtime and context; then the plan is recomputed (estimates, power)."""
    from forgeplanner.plan import edit

    sources = plan_sources(ctx)
    try:
        plan_machines = [sources.machine(c, n, condition) for c, n in machines]
        plan_models = [sources.model(m, q, r, c) for m, q, r, c in models]
    except (ValueError, ForgePlannerError) as exc:
        show_error(parent, exc)
        return None

    def apply(plan: Any, now: str) -> Any:
        present = {m.config_id for m in plan.build.machines}
        for pm in plan_machines:
            if pm.config_id in present:
                current = next(m for m in plan.build.machines if m.config_id == pm.config_id)
                plan = edit.set_machine_count(plan, pm.config_id, max(current.count, pm.count), now)
            else:
                plan = edit.add_machine(plan, pm, now)
        have = {m.model_id for m in plan.build.models}
        for model in plan_models:
            if model.model_id in have:
                plan = edit.remove_model(plan, model.model_id, now)
            plan = edit.add_model(plan, model, now)
        return plan

    return edit_plan(ctx, apply, text, parent=parent)


def set_layout_in_plan(
    ctx: Any, kind: str, inputs: dict[str, Any], text: str, parent: QWidget | None = None
) -> Any:
    """A cluster or K3s platform layout into the plan (replacing the one it has), computed by
    the same engine call as `plan set-cluster` / `plan set-platform`, in a worker."""
    from forgeplanner.plan import edit

    sources = plan_sources(ctx)
    plan = ctx.plan.plan or edit.new_plan("Untitled plan", now_iso())

    def job(token):
        from forgeplanner.plan.compute import recompute as do_recompute

        yield "laying out"
        section = sources.layout(kind, inputs)
        now = now_iso()
        return do_recompute(edit.set_layout(plan, section, kind, now), sources, now)

    return start_worker(
        ctx.pool,
        job,
        on_result=lambda new: ctx.plan.set_plan(new, text),
        on_error=lambda err: show_error(parent, err.reason, err.details),
    )


__all__ = [
    "add_machine_to_plan",
    "add_models_and_machines",
    "edit_plan",
    "plan_sources",
    "set_layout_in_plan",
]
