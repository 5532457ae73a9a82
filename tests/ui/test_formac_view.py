"""Models for my Mac (the reverse question) and the Models view's fit badges and row actions:
the ranking is `models fit`'s; filters hide rows; Open in Fit, Recommend hardware and Add to plan
reach the other views."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from forgeplanner.host import host_from_config
from forgeplanner.services.models_fit import fit_models
from tests.ui.conftest import wait_idle
from ui import app as app_mod
from ui.context import AppContext
from ui.views.formac_view import ForMacView

MINI = "mac-mini-m4-pro-20c-64gb"


@pytest.fixture
def window(qtbot):
    ctx = AppContext()
    w = app_mod.MainWindow(ctx)
    qtbot.addWidget(
        w,
        before_close_func=lambda win: setattr(
            win.ctx.documents, "ask_save_changes", lambda: QMessageBox.StandardButton.Discard
        ),
    )
    w.show()
    return w


def formac(qtbot, window) -> ForMacView:
    view = window.show_view("formac")
    qtbot.waitUntil(lambda: view.result is not None and not view.busy(), timeout=60000)
    return view


def test_every_model_ranked_for_the_machine(qtbot, window, qtmodeltester):
    view = formac(qtbot, window)
    expected = fit_models(window.ctx.all_models(), host_from_config(MINI), context=16384)
    assert [m.model_id for m in view.result.models] == [m.model_id for m in expected.models]
    qtmodeltester.check(view.model)
    shown = view.shown_ids()
    fitting = [m.model_id for m in expected.models if m.best_quant is not None]
    assert shown == fitting  # "only models that fit" is on by default
    first = view.model.row_dict(0)
    assert first["best_quant"] and first["decode_tps"] and first["quality"]
    assert "Ranked:" in view.summary.text() and "Mac mini (2024) - M4 Pro" in view.summary.text()


def test_filters(qtbot, window):
    view = formac(qtbot, window)
    view.use_combo.setCurrentIndex(view.use_combo.findData("code"))
    uses = {m.model_id: m.uses for m in view.result.models}
    assert view.shown_ids() and all("code" in uses[m] for m in view.shown_ids())
    assert "qwen2.5-coder-32b" in view.shown_ids()
    view.use_combo.setCurrentIndex(0)
    view.moe_combo.setCurrentIndex(view.moe_combo.findData(True))
    moe = {m.model_id for m in view.result.models if m.moe}
    assert view.shown_ids() and set(view.shown_ids()) <= moe
    view.moe_combo.setCurrentIndex(0)
    view.size_combo.setCurrentIndex(view.size_combo.findData("40-100"))
    sizes = {m.model_id: m.params_b for m in view.result.models}
    assert all(40 <= sizes[m] < 100 for m in view.shown_ids())
    view.size_combo.setCurrentIndex(0)
    view.licence_combo.setCurrentIndex(view.licence_combo.findData("Apache-2.0"))
    lic = {m.model_id: m.licence for m in view.result.models}
    assert view.shown_ids() and all(lic[m] == "Apache-2.0" for m in view.shown_ids())
    view.fits_only.setChecked(False)
    assert len(view.shown_ids()) == sum(1 for m in view.result.models if m.licence == "Apache-2.0")


def test_machine_context_and_target_recompute(qtbot, window):
    view = formac(qtbot, window)
    first = view.result
    view.machine_picker.set_key("mac-studio-m4-max-40c-128gb")
    view.decode_spin.setValue(8.0)
    qtbot.waitUntil(lambda: view.result is not first and not view.busy(), timeout=60000)
    assert view.result.min_decode_tps == 8.0
    chosen = [m for m in view.result.models if m.best_quant]
    assert chosen and all(m.decode_tps >= 8.0 for m in chosen)


def test_row_actions_reach_fit_recommend_and_the_plan(qtbot, window):
    view = formac(qtbot, window)
    proxy = view.proxy
    col = view.model.column_index("model_id")
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, col).data() == "llama-3.3-70b")
    view.table.selectRow(row)
    quant = view.model.row_dict(view.proxy.mapToSource(proxy.index(row, 0)).row())["best_quant"]
    view.actions.fit_button.click()
    fit = window.page("fit")
    assert window.current_view_key() == "fit"
    qtbot.waitUntil(lambda: fit.estimate_now() is not None, timeout=20000)
    i = fit.inputs()
    assert (i.model_id, i.machine, i.quant, i.context) == ("llama-3.3-70b", MINI, quant, 16384)
    window.show_view("formac")
    view.actions.recommend_button.click()
    rec = window.page("recommend")
    assert window.current_view_key() == "recommend" and rec.model_ids() == ["llama-3.3-70b"]
    window.show_view("formac")
    with qtbot.waitSignal(window.ctx.plan.plan_changed, timeout=30000):
        view.actions.add_to_plan()
    models = {m.model_id: m for m in window.ctx.plan.plan.build.models}
    assert models["llama-3.3-70b"].quant == quant and models["llama-3.3-70b"].context == 16384
    wait_idle(qtbot, window.ctx, 60000)


def test_models_view_badges_and_actions(qtbot, window):
    view = window.show_view("models")
    qtbot.waitUntil(lambda: not view.busy() and bool(view._fits), timeout=60000)
    col = view.model.column_index("fit")
    texts = {
        view.model.row_key(r): view.model.index(r, col).data() for r in range(view.model.rowCount())
    }
    expected = {m.model_id: m for m in fit_models(window.ctx.all_models(), host_from_config(MINI),
                                                  context=8192).models}  # fmt: skip
    assert texts["llama-3.3-70b"] == f"Fits · {expected['llama-3.3-70b'].best_quant}"
    assert texts["deepseek-r1"] == "Does not fit"
    bg = view.model.index(0, col).data(Qt.ItemDataRole.BackgroundRole)
    assert bg is not None
    view.use_combo.setCurrentIndex(view.use_combo.findData("reasoning"))
    assert view.proxy.rowCount() > 0
    assert view.select("deepseek-r1")
    view.actions.fit_button.click()
    assert window.current_view_key() == "fit"
    qtbot.waitUntil(lambda: window.page("fit").inputs().model_id == "deepseek-r1", timeout=20000)
