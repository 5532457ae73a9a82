"""Plan view (pytest-qt, offscreen): tables, edits through the engine, undo/redo, files,
exports and the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.plan.files import read_plan
from ui.context import AppContext
from ui.views.plan_view import EXAMPLE, PlanView, create_view

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def view(qtbot):
    ctx = AppContext(max_threads=1)
    widget = create_view(ctx)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    ctx.shutdown()


def wait_edit(qtbot, view: PlanView, action) -> None:
    with qtbot.waitSignal(view.doc.plan_changed, timeout=20000):
        action()
    qtbot.waitUntil(lambda: view.add_machine_button.isEnabled(), timeout=20000)


def test_opens_the_example_and_fills_every_table(view: PlanView, qtmodeltester) -> None:
    assert isinstance(view, PlanView)
    assert view.path == EXAMPLE
    plan = read_plan(EXAMPLE)
    assert view.name_edit.text() == plan.name
    assert view.bom_model.rowCount() == len(plan.build.machines)
    assert view.estimate_model.rowCount() == len(plan.build.estimates)
    assert view.total_labels["price"].text().startswith("$")
    assert view.total_labels["kwh"].text().endswith("kWh")
    assert view.build_combo.count() == 1 + len(plan.alternatives)
    for model in (
        view.bom_model,
        view.model_model,
        view.estimate_model,
        view.cluster_model,
        view.run_model,
        view.verdict_model,
    ):
        qtmodeltester.check(model)
    assert set(view.export_buttons) == {"md", "html", "pdf", "csv", "xlsx", "json"}


def test_alternatives_show_their_own_build(view: PlanView) -> None:
    plan = read_plan(EXAMPLE)
    minis = next(i for i, a in enumerate(plan.alternatives) if a.build.cluster is not None)
    view.build_combo.setCurrentIndex(minis + 1)
    assert view.cluster_model.rowCount() == len(
        plan.alternatives[minis].build.cluster.result["nodes"]
    )
    assert "decode" in view.cluster_summary.text()
    shelf = next(i for i, a in enumerate(plan.alternatives) if a.build.platform is not None)
    view.build_combo.setCurrentIndex(shelf + 1)
    assert "control-plane" in view.platform_text.toPlainText()


def test_edit_recomputes_and_undo_redo(qtbot, view: PlanView) -> None:
    before = view.doc.plan
    wait_edit(qtbot, view, lambda: view.add_machine("mac-mini-m4-pro-20c-64gb", 2))
    after = view.doc.plan
    assert [m.config_id for m in after.build.machines][-1] == "mac-mini-m4-pro-20c-64gb"
    assert len(after.build.estimates) == len(before.build.estimates) + 1  # recomputed
    assert after.build.running_cost.max_w > before.build.running_cost.max_w
    assert view.bom_model.rowCount() == 2
    assert "(modified)" in view.file_label.text()
    view.undo_action.trigger()
    assert view.doc.plan is before and view.bom_model.rowCount() == 1
    assert "(modified)" not in view.file_label.text()
    view.redo_action.trigger()
    assert view.doc.plan is after
    wait_edit(qtbot, view, lambda: view.add_model("qwen3-8b", "Q8_0"))
    assert view.model_model.rowCount() == 2
    assert view.doc.undo_stack.count() == 2


def test_save_and_open(qtbot, view: PlanView, tmp_path: Path) -> None:
    wait_edit(qtbot, view, lambda: view.add_machine("mac-studio-m2-ultra-76c-192gb"))
    target = tmp_path / "mine.fplan"
    assert view.save(target)
    assert view.doc.undo_stack.isClean() and str(target) in view.file_label.text()
    assert read_plan(target) == view.doc.plan
    view._new_clicked()
    assert view.bom_model.rowCount() == 0
    view.open(target)
    assert view.doc.plan == read_plan(target) and view.doc.undo_stack.count() == 0


def test_every_export_button_format(view: PlanView, tmp_path: Path) -> None:
    for fmt in view.export_buttons:
        out = view.export(fmt, tmp_path / f"plan.{fmt}")
        assert out is not None and out.stat().st_size > 0
    assert (tmp_path / "plan.pdf").read_bytes().startswith(b"%PDF-")
    record = json.loads((tmp_path / "plan.json").read_text())
    assert record["format"] == "forgeplanner.evidence"


def test_gate_verdicts_are_shown_and_undoable(view: PlanView) -> None:
    view.set_policy(str(ROOT / "examples" / "policy.toml"))
    view.evaluate_gate()
    assert view.verdict_model.rowCount() == 5
    assert view.gate_outcome.text() == "Overall: ESCALATE"
    view.undo_action.trigger()
    assert view.verdict_model.rowCount() == 0 and view.gate_outcome.text() == "Not evaluated."


def test_other_views_add_to_the_plan_through_the_engine(qtbot) -> None:
    from ui.views.plan_view import add_machine_to_plan

    ctx = AppContext(max_threads=1)
    try:
        assert ctx.plan.plan is None
        with qtbot.waitSignal(ctx.plan.plan_changed, timeout=20000):
            add_machine_to_plan(ctx, "mac-mini-m4-pro-20c-64gb", 2)
        plan = ctx.plan.plan
        assert plan.name == "Untitled plan"
        (machine,) = plan.build.machines
        # the price engine's answer: the M4 Pro Mac mini is no longer sold new (2026-08-25)
        assert machine.count == 2 and machine.price.basis == "unknown"
        assert "not sold new by Apple" in machine.price.reason
        assert plan.build.running_cost is not None and plan.build.running_cost.max_w > 0
        assert ctx.plan.undo_stack.count() == 1
    finally:
        ctx.shutdown()


def test_attach_a_run_from_the_store(qtbot, view: PlanView) -> None:
    from forgeplanner.store import BenchRunRepo

    with view.ctx.store().session() as s:
        repo = BenchRunRepo(s)
        run_id = repo.start(
            runner="llama.cpp",
            fingerprint={"chip": "Apple M4 Max", "key": "k"},
            tool_versions={"llama-bench": "b7000"},
            params={"model_id": "llama-3.3-70b", "quant": "Q4_K_M"},
            estimate={"decode_tps": 8.6, "prefill_tps": 80.5},
        )
        repo.finish(
            run_id,
            status="ok",
            measured={"decode_tps": 8.1, "prefill_tps": 77.0},
            raw_output='{"avg_ts": 8.1}\n',
        )
    view.refresh_runs()
    assert view.run_combo.count() == 1 and view.run_combo.currentData() == run_id
    view._attach_clicked()
    assert view.run_model.rowCount() == 1
    (run,) = view.doc.plan.runs
    assert run.measured["decode_tps"] == 8.1 and run.raw_sha256
    row = view.run_model.frame().iloc[0]
    assert row["error_pct_decode_tps"] == pytest.approx(100 * (8.1 - 8.6) / 8.6, abs=1e-3)
    view.run_view.selectRow(0)
    view._detach_clicked()
    assert view.doc.plan.runs == ()


def test_charts_tab_shows_the_exports_charts(view: PlanView) -> None:
    assert all(not w.isHidden() for w in view.chart_widgets.values())
    assert view.chart_widgets["memory"].renderer().isValid()
    assert view.charts_empty.isHidden()
    view._new_clicked()
    assert all(w.isHidden() for w in view.chart_widgets.values())
    assert not view.charts_empty.isHidden()


def test_plan_document_files_and_dirty_state(qtbot, tmp_path: Path) -> None:
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.plan import edit

    ctx = AppContext(max_threads=1)
    try:
        doc = ctx.plan
        doc.open(EXAMPLE)
        assert doc.path == EXAMPLE and not doc.is_dirty and doc.undo_stack.count() == 0
        doc.set_plan(edit.rename(doc.plan, "Mine", "2026-11-27T00:00:00Z"), "Rename")
        assert doc.is_dirty
        out = doc.save(tmp_path / "mine.fplan")
        assert out == tmp_path / "mine.fplan" and doc.path == out and not doc.is_dirty
        assert read_plan(out).name == "Mine"
        with pytest.raises(ForgePlannerError, match="no such plan file"):
            doc.open(tmp_path / "absent.fplan")
        assert doc.path == out  # a failed open changes nothing
    finally:
        ctx.shutdown()
