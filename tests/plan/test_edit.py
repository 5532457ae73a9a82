"""Plan edits are pure: each returns a new plan and leaves the old one as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest

from forgeplanner.domain.plan import Build, PlanModel
from forgeplanner.errors import NotFoundError
from forgeplanner.plan import edit
from tests.plan.samples import NOW, run, sample_plan, studio

LATER = "2026-11-27T08:00:00Z"


def test_new_plan_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        edit.new_plan("  ", NOW)
    plan = edit.new_plan("lab", NOW)
    assert plan.created_at == plan.updated_at == NOW
    assert plan.build == Build()


def test_add_machine_merges_counts_and_keeps_the_old_plan() -> None:
    plan = sample_plan()
    more = edit.add_machine(plan, studio(count=2, usd=3799.0), LATER)
    assert plan.build.machines[0].count == 1  # untouched
    (machine,) = more.build.machines
    assert machine.count == 3
    assert machine.price.usd == 3799.0  # the latest look-up wins
    assert more.updated_at == LATER and more.created_at == NOW
    assert more.build.total_price_usd == pytest.approx(3 * 3799.0)


def test_set_count_zero_removes_and_unknown_machine_is_named() -> None:
    plan = sample_plan()
    assert edit.set_machine_count(plan, studio().config_id, 0, LATER).build.machines == ()
    assert edit.set_machine_count(plan, studio().config_id, 4, LATER).build.machines[0].count == 4
    with pytest.raises(NotFoundError, match="mac-studio-m2-ultra-76c-192gb"):
        edit.remove_machine(plan, "mac-mini-m4-16gb", LATER)
    with pytest.raises(ValueError):
        edit.set_machine_count(plan, studio().config_id, -1, LATER)


def test_add_model_replaces_the_same_model_in_place() -> None:
    plan = sample_plan()
    plan = edit.add_model(plan, PlanModel("qwen3-8b", "Q8_0"), LATER)
    plan = edit.add_model(plan, PlanModel("llama-3.3-70b", "Q5_K_M", context=32768), LATER)
    assert [(m.model_id, m.quant) for m in plan.build.models] == [
        ("llama-3.3-70b", "Q5_K_M"),
        ("qwen3-8b", "Q8_0"),
    ]
    plan = edit.remove_model(plan, "qwen3-8b", LATER)
    assert [m.model_id for m in plan.build.models] == ["llama-3.3-70b"]
    with pytest.raises(NotFoundError):
        edit.remove_model(plan, "qwen3-8b", LATER)


def test_alternatives_are_edited_by_name() -> None:
    plan = sample_plan()
    name = plan.alternatives[0].name
    with pytest.raises(ValueError, match="already has"):
        edit.add_alternative(plan, name, "", LATER)
    plan2 = edit.add_machine(plan, studio(), LATER, alternative=name)
    assert len(plan2.alternative(name).build.machines) == 2
    assert plan2.build == plan.build  # the main build is untouched
    with pytest.raises(NotFoundError, match="alternative 'nope'"):
        edit.add_machine(plan, studio(), LATER, alternative="nope")
    assert edit.remove_alternative(plan2, name, LATER).alternatives == ()


def test_attach_run_refreshes_same_id_and_detach() -> None:
    plan = sample_plan()
    plan = edit.attach_run(plan, run("7", decode=10.0), LATER)
    plan = edit.attach_run(plan, run("8"), LATER)
    assert [(r.run_id, r.measured["decode_tps"]) for r in plan.runs] == [("7", 10.0), ("8", 11.8)]
    plan = edit.detach_run(plan, "7", LATER)
    assert [r.run_id for r in plan.runs] == ["8"]
    with pytest.raises(NotFoundError):
        edit.detach_run(plan, "7", LATER)


def test_unknown_price_makes_the_total_unknown() -> None:
    plan = edit.add_machine(edit.new_plan("x", NOW), studio(usd=None), NOW)
    assert plan.build.total_price_usd is None
    assert plan.build.unpriced == (studio().config_id,)
    plan = edit.add_machine(plan, replace(studio(), config_id="other", price=studio().price), NOW)
    assert plan.build.known_price_usd == pytest.approx(3999.0)
