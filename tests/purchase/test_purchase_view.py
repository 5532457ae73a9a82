"""Recommend view (pytest-qt, offscreen): the job "what do I buy for a 70B" through the widgets
(model picked by name, context and decode target typed, chart and table linked, the detail with
the sysctl command, Add to plan carrying model, quant, runtime and context); CSV import preview
then commit."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.host import host_from_config
from tests.ui.conftest import wait_idle
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


def type_into(qtbot, combo, text: str) -> None:
    edit = combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def wait_search(qtbot, view: RecommendView, old) -> None:
    qtbot.waitUntil(lambda: view.result is not old and not view._search.busy(), timeout=90000)


def test_the_70b_purchase(qtbot, view: RecommendView, qtmodeltester):
    """Pick the 70B by its published name, 16K of context, at least 5 tok/s, a budget; read
    the chart and the table, hover and click a dot, read the detail, add it to the plan."""
    old = view.result
    type_into(qtbot, view.model_picker, "Llama-3.3-70B-Instruct")
    assert view.model_ids() == ["llama-3.3-70b"]
    view.context_combo.setCurrentIndex(view.context_combo.findData(16384))
    view.decode_spin.setValue(5.0)
    view.budget_spin.setValue(6000)
    view.search()
    wait_search(qtbot, view, old)
    rec = view.result
    assert view.error is None and rec.options
    assert rec.constraints["context"] == 16384 and rec.constraints["min_decode_tps"] == 5.0
    assert all(o.price_usd is not None and o.price_usd <= 6000 for o in rec.options)
    for model in (view.option_model, view.rejected_model, view.obs_model):
        qtmodeltester.check(model)
    # machine names, not ids, in the table; no command-line flags in the words
    names = [view.option_model.row_dict(r)["machines"] for r in range(view.option_model.rowCount())]
    assert all(not n.startswith("mac-") for n in names)
    assert "--" not in view.summary_label.text()
    # chart <-> table
    priced = [o for o in rec.options if o.price_usd is not None and o.decode_tps is not None]
    xs, ys = view.scatter.getData()
    assert len(xs) == len(priced)
    tip = view.tips.text_at(float(xs[0]), float(ys[0]))
    assert tip is not None and "$" in tip and "tok/s decode" in tip
    point = view.scatter.points()[0]
    view._dot_clicked(view.scatter, [point])
    index = view.selected_index()
    assert index == point.data()
    sx, sy = view.selected_dot.getData()
    assert (float(sx[0]), float(sy[0])) == (float(xs[0]), float(ys[0]))
    # the detail: sized again at 16K with the context filled, the sysctl and what it leaves
    option = rec.options[index]
    d = view.detail_value.models[0]
    cfg, n = option.machines[0]
    if n == 1:
        want = estimate(view.ctx.model("llama-3.3-70b"), d.quant, host_from_config(cfg),
                        RunOptions(context=16384, depth=16384, prompt_tokens=16384,
                                   runtime=option.runtime))  # fmt: skip
        assert d.decode_at_context == pytest.approx(want.speed.decode_tps)
    html = view.detail.toPlainText()
    assert "with the context filled" in html and d.quant in html
    if d.sysctl:
        assert d.sysctl in html and "leaves macOS" in html
    # Add to plan carries model, quant, runtime and context; power totals are known
    with qtbot.waitSignal(view.ctx.plan.plan_changed, timeout=30000):
        assert view.add_selected_to_plan()
    plan = view.ctx.plan.plan
    assert [(m.config_id, m.count) for m in plan.build.machines] == [(cfg, n)]
    (model,) = plan.build.models
    assert (model.model_id, model.quant, model.runtime, model.context) == (
        "llama-3.3-70b",
        option.quant,
        option.runtime,
        16384,
    )
    assert plan.build.estimates and plan.build.running_cost is not None
    assert plan.build.running_cost.max_w > 0
    assert view.ctx.plan.undo_stack.count() == 1
    view.ctx.plan.undo_stack.undo()
    assert view.ctx.plan.plan is None


def test_model_picker_completes_by_name(qtbot, view: RecommendView):
    assert "qwen2.5-coder-32b" in view.model_picker.matches("Coder-32B")
    assert view.model_picker.resolve("Qwen2.5-Coder-32B-Instruct") == "qwen2.5-coder-32b"
    type_into(qtbot, view.model_picker, "no such model at all")
    assert view.error is not None and "no model of that name" in view.error


def test_constraints_reach_the_search(qtbot, view: RecommendView):
    view.set_models(["llama-3.1-8b"])
    view.context_combo.setCurrentIndex(view.context_combo.findData(4096))
    view.budget_spin.setValue(700)
    view.condition_combo.setCurrentIndex(view.condition_combo.findData("used"))
    req = view.request()  # the service's typed request
    assert req.budget_usd == 700 and req.min_decode_tps is None
    assert req.context == 4096 and req.condition == "used"
    assert req.model_ids == ("llama-3.1-8b",)
    old = view.result
    view.search()
    wait_search(qtbot, view, old)
    assert view.result.options
    assert all(o.price_usd <= 700 for o in view.result.options)


def test_recommend_hardware_request(qtbot, view: RecommendView):
    old = view.result
    view.apply_request(model_id="qwen3-30b-a3b", context=32768)
    wait_search(qtbot, view, old)
    assert view.result.constraints["models"] == ["qwen3-30b-a3b"]
    assert view.result.constraints["context"] == 32768


def test_import_preview_then_commit(view: RecommendView, qtbot, tmp_path):
    csv = tmp_path / "sold.csv"
    csv.write_text("title,price,currency,date,condition\n"
                   "Mac mini M4 16GB,480,USD,2026-10-02,used\n"
                   "Mac Studio M2 Ultra 76-core GPU 192GB,4450,EUR,2026-11-01,refurbished\n",
                   encoding="utf-8")  # fmt: skip
    wait_idle(qtbot, view.ctx)
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


def _select_observation(view: RecommendView, obs_id: str) -> None:
    rows = [view.obs_model.row_dict(r)["obs_id"] for r in range(view.obs_model.rowCount())]
    source = view.obs_model.index(rows.index(obs_id), 0)
    view.obs_table.selectRow(view.obs_table.model().mapFromSource(source).row())


def test_delete_own_price_observation(view: RecommendView, qtbot):
    """A price observation of the user's own is deleted from the app through the same store
    call as `forgeplanner prices delete user-N`; a shipped one cannot be."""
    from datetime import date

    from forgeplanner.store.repos import PriceRepo

    wait_idle(qtbot, view.ctx)
    config_id = next(iter(view.ctx.catalog.configs))
    with view.ctx.store().session() as s:
        rec, created = PriceRepo(s).add(price=512.0, currency="USD", observed_on=date(2026, 10, 3),
                                        condition="used", source="a local listing",
                                        config_id=config_id)  # fmt: skip
    assert created
    view.refresh_observations()
    mine = f"user-{rec.id}"
    shipped = next(
        str(view.obs_model.row_dict(r)["obs_id"])
        for r in range(view.obs_model.rowCount())
        if view.obs_model.row_dict(r)["origin"] != "user"
    )
    _select_observation(view, shipped)
    assert not view.delete_button.isEnabled()
    assert view.delete_observations([shipped], confirm=False) == 0
    assert "cannot be deleted" in view.import_label.text()
    _select_observation(view, mine)
    assert view.delete_button.isEnabled() and view.selected_observation_ids() == [mine]
    assert view.delete_observations(confirm=False) == 1
    assert f"Deleted {mine} (2026-10-03 $512.00)." == view.import_label.text()
    ids = {view.obs_model.row_dict(r)["obs_id"] for r in range(view.obs_model.rowCount())}
    assert mine not in ids and shipped in ids
    with view.ctx.store().session() as s:
        assert all(r.id != rec.id for r in PriceRepo(s).list())
