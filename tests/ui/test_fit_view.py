"""Fit view: every figure is the engine's, the chart follows the slider in place, the
quantization table is complete and coloured by verdict, sysctl copy, explain panel."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from forgeplanner.domain.estimates import VERDICT_FITS, VERDICT_NO, VERDICT_RAISED, RunOptions
from forgeplanner.domain.units import GiB
from forgeplanner.engine.estimate import decode_curve, estimate, estimate_quants
from forgeplanner.engine.quant import quants_for
from tests.ui.conftest import wait_idle
from ui import theme
from ui.views import fit_view
from ui.views.fit_view import FitView, context_steps


def make_view(qtbot, ctx) -> FitView:
    view = fit_view.create_view(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: not view.busy(), timeout=10000)
    wait_idle(qtbot, ctx)
    return view


def select(view: FitView, model: str, machine: str, quant: str | None = None) -> None:
    view.model_combo.setCurrentIndex(view.model_combo.findData(model))
    view.machine_combo.setCurrentIndex(view.machine_combo.findData(machine))
    if quant:
        i = view.quant_combo.findData(quant)
        assert i >= 0, quant
        view.quant_combo.setCurrentIndex(i)


def engine_estimate(view: FitView):
    return estimate(view.model_spec(), view.quant_combo.currentData(), view.host(), view.options())


def bar_heights(view: FitView) -> dict[str, float]:
    return {k: float(item.opts["height"][0]) for k, item in view.bars.items()}


def test_numbers_are_the_engines(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.1-8b", "mac-mini-m4-pro-20c-64gb", "Q4_K_M")
    view.set_context(32768)
    est = engine_estimate(view)
    assert view.options().context == 32768
    assert view.estimate_now() == est
    mem, budget = est.fit.memory, est.fit.budget
    h = bar_heights(view)
    assert h["weights"] == pytest.approx(mem.weights_bytes / GiB)
    assert h["kv_cache"] == pytest.approx(mem.kv_cache_bytes / GiB)
    assert h["compute"] == pytest.approx(mem.compute_bytes / GiB)
    assert h["runtime"] == pytest.approx(mem.runtime_bytes / GiB)
    assert h["os_reserve"] == pytest.approx(budget.os_reserve_bytes / GiB)
    # stacked: each bar starts where the one below ends
    y0 = [float(item.opts["y0"][0]) for item in view.bars.values()]
    assert y0[1] == pytest.approx(h["weights"])
    assert view.limit_line.value() == pytest.approx(budget.gpu_limit_bytes / GiB)
    assert view.physical_line.value() == pytest.approx(budget.physical_bytes / GiB)
    assert view.summary["max_context"].text() == f"{est.max_context_that_fits:,} tokens"
    assert view.summary["decode"].text() == f"{est.speed.decode_tps:,.1f} tok/s"
    top = view.model_spec().max_context
    curve = decode_curve(view.model_spec(), "Q4_K_M", view.host(), view.options(), [0, top])
    xs, ys = view.curve.getData()
    assert xs[0] == 0 and xs[-1] == top  # decode speed over every depth the model allows
    assert ys[0] == pytest.approx(curve[0][1]) and ys[-1] == pytest.approx(curve[1][1])
    assert view.context_marker.value() == 32768  # the selected context on that curve


def test_slider_updates_chart_in_place(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.1-8b", "mac-mini-m4-pro-20c-64gb", "Q4_K_M")
    items_before = list(view.mem_plot.getPlotItem().items)
    view.set_context(4096)
    kv_small = bar_heights(view)["kv_cache"]
    with qtbot.waitSignal(view.chart_updated, timeout=1000):
        view.context_slider.setValue(view.context_slider.value() + 10)
    assert view.context() > 4096
    assert bar_heights(view)["kv_cache"] > kv_small
    assert view.context_label.text() == f"{view.context():,} tok"
    assert list(view.mem_plot.getPlotItem().items) == items_before  # no new items
    # the every-quantization table follows, debounced, for the new context
    qtbot.waitUntil(lambda: not view.busy(), timeout=5000)
    wait_idle(qtbot, ctx)
    expected = estimate_quants(view.model_spec(), view.host(), view.options())
    kv = {e.quant: e.fit.memory.kv_cache_bytes / GiB for e in expected.estimates}
    for r in range(view.quant_model.rowCount()):
        row = view.quant_model.row_dict(r)
        assert row["kv_gib"] == pytest.approx(kv[row["quant"]])


def test_slider_burst_is_coalesced_into_one_redraw(qtbot, ctx):
    view = make_view(qtbot, ctx)
    draws: list = []
    view.chart_updated.connect(lambda: draws.append(view.context()))
    start = view.context_slider.value()
    for i in range(1, 11):
        view.context_slider.setValue(start + i)
    qtbot.waitUntil(lambda: len(draws) >= 1, timeout=1000)
    qtbot.wait(20)
    assert draws == [view.context()]
    assert view.estimate_now().options.context == view.context()


def test_every_quantization_table(qtbot, qtmodeltester, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.3-70b", "mac-mini-m4-pro-20c-64gb", "Q4_K_M")
    qtbot.waitUntil(lambda: not view.busy(), timeout=5000)
    wait_idle(qtbot, ctx)
    expected = estimate_quants(view.model_spec(), view.host(), view.options())
    model = view.quant_model
    assert model.rowCount() == len(quants_for(view.model_spec(), "llama.cpp"))
    qtmodeltester.check(model)
    qtmodeltester.check(view.quant_proxy)
    verdicts = {e.quant: e.fit.verdict for e in expected.estimates}
    seen = set()
    vcol = model.column_index("verdict")
    for r in range(model.rowCount()):
        name = model.row_key(r)
        v = verdicts[name]
        seen.add(v)
        bg = model.index(r, vcol).data(Qt.ItemDataRole.BackgroundRole)
        assert bg == theme.verdict_tint(v)
        d = model.row_dict(r)
        e = next(x for x in expected.estimates if x.quant == name)
        assert d["decode_tps"] == pytest.approx(e.speed.decode_tps)
        assert d["prefill_tps"] == pytest.approx(e.speed.prefill_tps)
    assert {VERDICT_FITS, VERDICT_RAISED, VERDICT_NO} <= seen


def test_raised_limit_gives_sysctl_and_copy(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.3-70b", "mac-mini-m4-pro-20c-64gb", "Q5_K_M")
    view.set_context(8192)
    est = engine_estimate(view)
    assert est.fit.verdict == VERDICT_RAISED
    assert view.sysctl.text() == est.fit.sysctl_command
    assert view.sysctl.text().startswith("sudo sysctl iogpu.wired_limit_mb=")
    assert view.copy_button.isEnabled()
    view.copy_button.click()
    assert QGuiApplication.clipboard().text() == est.fit.sysctl_command
    assert view.verdict_label.text() == "Fits with a raised GPU limit"


def test_wired_limit_is_passed_to_the_engine(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.3-70b", "mac-mini-m4-pro-20c-64gb", "Q5_K_M")
    view.wired.setValue(58000)
    est = engine_estimate(view)
    assert view.host().wired_limit_mb == 58000
    assert view.estimate_now() == est
    assert "58000" in est.fit.budget.basis or est.fit.verdict == VERDICT_FITS


def test_explain_panel_shows_formulas_with_numbers(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "qwen3-30b-a3b", "mac-studio-m2-ultra-76c-192gb", "Q8_0")
    est = engine_estimate(view)
    assert view._explain_dirty  # laid out only when shown
    view.tabs.setCurrentWidget(view.explain)
    text = view.explain.toPlainText()
    for x in (*est.fit.memory.explain, *est.speed.explain):
        assert x.formula in text
        assert x.value in text
    assert est.host.name in text


def test_quantized_kv_never_runs_with_flash_attention_off(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.1-8b", "mac-mini-m4-pro-20c-64gb", "Q4_K_M")
    view.flash.setCurrentIndex(view.flash.findData(False))
    f16_kv = bar_heights(view)["kv_cache"]
    view.kv_combo.setCurrentIndex(view.kv_combo.findData("q8_0"))
    assert view.flash.currentData() is None  # back to the runtime's auto, which enables it
    assert view.options().kv_type == "q8_0"
    assert not view.message.isVisibleTo(view)
    assert bar_heights(view)["kv_cache"] < f16_kv


def test_runtime_switch_offers_that_runtimes_quants(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.1-8b", "mac-mini-m4-pro-20c-64gb")
    view.runtime_combo.setCurrentIndex(view.runtime_combo.findData("mlx"))
    names = [view.quant_combo.itemData(i) for i in range(view.quant_combo.count())]
    assert names == [q.name for q in quants_for(view.model_spec(), "mlx")]
    assert view.estimate_now().quant == view.quant_combo.currentData()


def test_engine_refusal_is_shown_inline(qtbot, ctx, monkeypatch):
    view = make_view(qtbot, ctx)
    import forgeplanner.engine.estimate as est_mod

    def refuse(*a, **k):
        raise ValueError("MXFP4 (llama.cpp MXFP4_MOE) quantizes MoE experts; x is dense")

    monkeypatch.setattr(est_mod, "estimate", refuse)
    view.recompute()
    assert view.message.isVisibleTo(view)
    assert "quantizes MoE experts" in view.message.text()
    assert view.estimate_now() is None


def test_this_machine_is_probed_in_a_worker(qtbot, ctx):
    view = make_view(qtbot, ctx)
    view.machine_combo.setCurrentIndex(view.machine_combo.findData(fit_view.THIS_MACHINE))
    wait_idle(qtbot, ctx)
    qtbot.waitUntil(lambda: view.estimate_now() is not None, timeout=10000)
    assert view.estimate_now().host.name.startswith("this machine")


def test_context_steps():
    steps = context_steps(131072)
    assert steps[0] == 512 and steps[-1] == 131072
    assert all(s % 256 == 0 for s in steps)
    assert {4096, 8192, 32768} <= set(steps)
    assert steps == sorted(set(steps))


def test_options_default(qtbot, ctx):
    view = make_view(qtbot, ctx)
    assert view.options() == RunOptions(context=8192)


def test_palette_change_restyles_plots_and_tints(qtbot, ctx):
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    view = make_view(qtbot, ctx)
    original = QApplication.palette()
    try:
        dark = QPalette(original)
        dark.setColor(QPalette.ColorRole.Window, QColor(30, 30, 30))
        dark.setColor(QPalette.ColorRole.Base, QColor(20, 20, 20))
        dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
        QApplication.setPalette(dark)
        qtbot.waitUntil(lambda: view.mem_plot.backgroundBrush().color() == QColor(20, 20, 20))
        r = 0
        verdict = view.quant_model.row_dict(r)["verdict"]
        bg = view.quant_model.index(r, 1).data(Qt.ItemDataRole.BackgroundRole)
        assert bg == theme.verdict_tint(verdict)
        assert bg.lightness() < 100
    finally:
        QApplication.setPalette(original)


def test_auto_flash_attention_shows_what_it_resolved_to(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(view, "llama-3.1-8b", "mac-mini-m4-pro-20c-64gb", "Q4_K_M")
    assert view.flash.currentData() is None
    # llama.cpp's -fa auto is on on Metal for head size 128
    assert view.flash.currentText() == "auto (runtime default: on)"
    assert "Metal supports FLASH_ATTN_EXT" in view.flash.toolTip()
    view.runtime_combo.setCurrentIndex(view.runtime_combo.findData("ollama"))
    view.recompute()
    # Ollama does not enable it by default for the llama architecture
    assert view.flash.currentText() == "auto (runtime default: off)"
    assert view.estimate_now().options.flash_attention is False
