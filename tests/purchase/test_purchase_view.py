"""Recommend view (pytest-qt, offscreen): search through the CLI's code, scatter and frontier,
tables, CSV import preview then commit, and adding a choice to the plan."""

from __future__ import annotations

import pytest

from ui.context import AppContext
from ui.views.recommend_view import RecommendView, create_view


@pytest.fixture
def view(qtbot):
    ctx = AppContext(max_threads=1)
    widget = create_view(ctx)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.result is not None or widget.error is not None, timeout=60000)
    yield widget
    widget.shutdown()
    ctx.shutdown()


def test_search_fills_plot_and_tables(view: RecommendView, qtmodeltester):
    assert isinstance(view, RecommendView) and view.error is None
    rec = view.result
    assert view.option_model.rowCount() == len(rec.options) > 0
    assert view.rejected_model.rowCount() == len(rec.rejected) > 0
    priced = [o for o in rec.options if o.price_usd is not None and o.decode_tps is not None]
    xs, _ys = view.scatter.getData()
    assert len(xs) == len(priced)
    fx, fy = view.frontier.getData()
    assert len(fx) >= 1 and fx[0] == min(o.price_usd for o in priced)
    assert list(fy) == sorted(fy)  # the price / speed frontier only goes up
    for model in (view.option_model, view.rejected_model, view.obs_model):
        qtmodeltester.check(model)
    first = view.option_table.model().index(0, view.option_model.column_index("price_usd"))
    cheapest = min(o.price_usd for o in rec.options if o.price_usd is not None)
    assert view.option_table.model().data(first) == f"${cheapest:,.0f}"


def test_constraints_reach_the_engine(view: RecommendView, qtbot):
    view.models_edit.setText("llama-3.1-8b")
    view.context_spin.setValue(4096)
    view.budget_spin.setValue(700)
    view.condition_combo.setCurrentText("used")
    req = view.request()
    assert req["budget_usd"] == 700 and req["min_decode_tps"] is None
    old = view.result
    view.search()
    qtbot.waitUntil(lambda: view.result is not old, timeout=60000)
    assert view.result.options
    assert all(o.price_usd <= 700 for o in view.result.options)


def test_import_preview_then_commit(view: RecommendView, qtbot, tmp_path):
    csv = tmp_path / "sold.csv"
    csv.write_text("title,price,currency,date,condition\n"
                   "Mac mini M4 16GB,480,USD,2026-10-02,used\n"
                   "Mac Studio M2 Ultra 76-core GPU 192GB,4450,EUR,2026-11-01,refurbished\n",
                   encoding="utf-8")  # fmt: skip
    before = view.obs_model.rowCount()
    view.preview_csv(str(csv))  # no EUR rate: the whole file is refused
    qtbot.waitUntil(lambda: view.import_label.text().startswith("Not imported"), timeout=30000)
    assert "line 3" in view.import_label.text() and not view.commit_button.isEnabled()
    view.fx_edit.setText("EUR=1.08")
    view.preview_csv(str(csv))
    qtbot.waitUntil(lambda: view.preview is not None, timeout=30000)
    assert view.preview_model.rowCount() == 2 and view.commit_button.isEnabled()
    assert view.obs_model.rowCount() == before  # preview writes nothing
    assert view.commit_import() == 2
    assert view.obs_model.rowCount() == before + 2
    assert "Imported 2 row(s)" in view.import_label.text()


def test_add_choice_to_plan(view: RecommendView, qtbot):
    view.option_table.selectRow(0)
    opt = view.selected_option()
    assert opt is not None
    with qtbot.waitSignal(view.ctx.plan.plan_changed, timeout=10000):
        assert view.add_selected_to_plan()
    plan = view.ctx.plan.plan
    assert [(m.config_id, m.count) for m in plan.build.machines] == [
        (opt["config_id"], opt["count"])
    ]
    view.ctx.plan.undo_stack.undo()
    assert view.ctx.plan.plan is None
