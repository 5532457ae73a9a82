"""Fit view: the job "does a 70B fit my Mac at 16K" through the widgets; every figure is the
engine's with the context filled; the memory bar keeps macOS beside the stack; typed context
and GPU-limit values; the chart follows the slider in place; the quantization table."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from forgeplanner.domain.estimates import VERDICT_FITS, VERDICT_NO, VERDICT_RAISED, RunOptions
from forgeplanner.domain.units import GiB
from forgeplanner.engine.estimate import decode_curve, estimate, estimate_quants, speed_estimate
from forgeplanner.engine.fit import max_context_that_fits
from forgeplanner.engine.quant import quants_for
from forgeplanner.host import host_from_config
from forgeplanner.viewstate.vocabulary import THIS_MACHINE
from tests.ui.conftest import wait_idle
from ui import theme
from ui.views import fit_view
from ui.views.fit_view import FitView

MINI = "mac-mini-m4-pro-20c-64gb"


def make_view(qtbot, ctx) -> FitView:
    view = fit_view.create_view(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: not view.busy(), timeout=15000)
    wait_idle(qtbot, ctx)
    return view


def type_into(qtbot, combo, text: str) -> None:
    """What a user does: select the field's text, type, press Enter."""
    edit = combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def select(qtbot, view: FitView, model: str, machine: str, quant: str | None = None) -> None:
    type_into(qtbot, view.model_picker, model)
    view.machine_picker.set_key(machine)
    if quant:
        i = view.quant_combo.findData(quant)
        assert i >= 0, quant
        view.quant_combo.setCurrentIndex(i)
    assert view.inputs().model_id == model and view.inputs().machine == machine


def engine(view: FitView, filled: bool = True):
    i = view.inputs()
    host = (
        host_from_config(i.machine)
        if i.gpu_limit_mb is None
        else view.state.host(i.machine, i.gpu_limit_mb)
    )
    return estimate(view.state.model(i.model_id), i.quant, host, i.options(filled=filled))


def bar_heights(view: FitView) -> dict[str, float]:
    return {k: float(item.opts["height"][0]) for k, item in view.bars.items()}


def test_a_70b_at_16k_on_a_mac_mini(qtbot, ctx):
    """The job: pick the model by typing its name, the machine, type 16K; read the verdict,
    the decode speed with 16K in context (and empty), the TTFT for a 16K prompt, the memory
    bar and the largest context under the current and the raised limit."""
    view = make_view(qtbot, ctx)
    type_into(qtbot, view.model_picker, "Llama-3.3-70B-Instruct")
    view.machine_picker.set_key(MINI)
    type_into(qtbot, view.context_combo, "16K")
    assert view.context() == 16384 and view.context_combo.currentText() == "16K"
    est = engine(view)
    assert est.options.depth == 16384 and est.options.prompt_tokens == 16384
    assert view.estimate_now() == est and est.fit.verdict == VERDICT_FITS
    model, host = view.state.model("llama-3.3-70b"), host_from_config(MINI)
    empty = speed_estimate(model, "Q4_K_M", host, RunOptions(context=16384))
    assert view.verdict_label.text().startswith("Fits on Mac mini (2024) - M4 Pro")
    assert view.verdict_label.autoFillBackground()
    decode = view.summary["decode"].text()
    s = est.speed
    assert (
        f"{s.decode_tps:,.1f} tok/s (likely {s.decode_tps_low:,.1f}-{s.decode_tps_high:,.1f}) "
        "at 16K" in decode
    )
    assert view.summary["prefill"].text() == (
        f"{s.prefill_tps:,.0f} tok/s (likely {s.prefill_tps_low:,.0f}-{s.prefill_tps_high:,.0f})"
    )
    assert view.summary["band"].text().startswith(s.band_basis)
    assert f"{empty.decode_tps:,.1f} tok/s empty" in decode
    assert est.speed.decode_tps < empty.decode_tps  # 16K in context is slower
    assert "for a prompt of 16,384 tokens (16K)" in view.summary["ttft"].text()
    raised = max_context_that_fits(model, "Q4_K_M", host, est.options, allow_raised_limit=True)
    largest = view.summary["max_context"].text()
    assert f"{est.max_context_that_fits:,} tokens" in largest and f"{raised:,} tokens" in largest
    assert "+2.8 % perplexity" in view.summary["quality"].text()
    # memory bar: the used parts, the limit, what macOS keeps, physical; nothing above physical
    mem, budget = est.fit.memory, est.fit.budget
    h = bar_heights(view)
    assert h["weights"] == pytest.approx(mem.weights_bytes / GiB)
    assert h["kv_cache"] == pytest.approx(mem.kv_cache_bytes / GiB)
    assert sum(h.values()) == pytest.approx(mem.total_bytes / GiB)
    assert view.limit_line.value() == pytest.approx(budget.gpu_limit_bytes / GiB)
    assert view.physical_line.value() == pytest.approx(budget.physical_bytes / GiB)
    band = view.macos_band.opts
    assert band["y0"][0] + band["height"][0] == pytest.approx(budget.physical_bytes / GiB)
    assert band["height"][0] == pytest.approx(
        (budget.physical_bytes - budget.gpu_limit_bytes) / GiB
    )
    assert "macOS keeps 16.0 GiB" in view.mem_legend.text()
    assert view.mem_tips.text_at(0.0, 10.0).startswith("Weights:")
    assert view.context_marker.value() == 16384


def test_raised_limit_gives_sysctl_memory_left_and_copy(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.3-70b", MINI, "Q6_K")
    view.set_context(8192)
    est = engine(view)
    assert est.fit.verdict == VERDICT_RAISED
    assert view.sysctl.text() == est.fit.sysctl_command
    left = est.fit.memory_left_for_macos_bytes / GiB
    assert f"leaves macOS {left:,.1f} GiB" in view.sysctl_note.text()
    assert view.raised_line.isVisible()
    assert view.raised_line.value() == pytest.approx(budget_top(est))
    view.copy_button.click()
    assert QGuiApplication.clipboard().text() == est.fit.sysctl_command
    assert view.verdict_label.text().startswith("Fits with a raised GPU limit on ")


def budget_top(est) -> float:
    return (est.fit.budget.physical_bytes - est.fit.memory_left_for_macos_bytes) / GiB


def test_gpu_limit_takes_default_and_mb_without_traps(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.3-70b", MINI, "Q6_K")
    type_into(qtbot, view.limit_combo, "58000")
    assert view.inputs().gpu_limit_mb == 58000
    assert view.estimate_now().host.wired_limit_mb == 58000
    assert view.estimate_now().fit.budget.basis.startswith("iogpu.wired_limit_mb=58000")
    type_into(qtbot, view.limit_combo, "48 GB")
    assert view.inputs().gpu_limit_mb == 49152
    type_into(qtbot, view.limit_combo, "default")
    assert view.inputs().gpu_limit_mb is None and view.limit_combo.currentText() == "default"
    type_into(qtbot, view.limit_combo, "lots")
    assert view.message.text().startswith("GPU limit 'lots': expected default")
    assert view.inputs().gpu_limit_mb is None
    type_into(qtbot, view.limit_combo, "100000")  # more than the machine has
    assert "more than this machine's 65536 MB" in view.message.text()
    assert view.inputs().gpu_limit_mb is None and view.estimate_now() is not None


def test_smaller_machine_drops_a_raised_limit_and_never_shows_an_empty_banner(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", "mac-studio-m2-ultra-76c-192gb", "Q4_K_M")
    type_into(qtbot, view.limit_combo, "180000")
    assert view.inputs().gpu_limit_mb == 180000
    view.machine_picker.set_key(MINI)
    assert view.inputs().gpu_limit_mb is None
    assert "back to the macOS default" in view.message.text()
    assert view.estimate_now() is not None and view.verdict_label.text().startswith("Fits")
    # an impossible input gives a message and no coloured banner at all
    view._inputs = view._inputs.__class__(**{**view._inputs.__dict__, "gpu_limit_mb": 500_000})
    view._update.run_now()
    assert view.estimate_now() is None and view.message.isVisibleTo(view)
    assert view.verdict_label.text() == "" and not view.verdict_label.autoFillBackground()


def test_context_typed_and_presets(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", MINI, "Q4_K_M")
    presets = [view.context_combo.itemText(i) for i in range(view.context_combo.count())]
    assert presets == ["4K", "8K", "16K", "32K", "64K", "max (128K)"]
    view.context_combo.setCurrentIndex(view.context_combo.count() - 1)
    view.context_combo.activated.emit(view.context_combo.count() - 1)
    assert view.context() == 131072
    type_into(qtbot, view.context_combo, "20000")
    assert view.context() == 20000 and view.estimate_now().options.context == 20000
    type_into(qtbot, view.context_combo, "max")
    assert view.context() == 131072
    type_into(qtbot, view.context_combo, "9M")
    assert view.message.text().startswith("Context '9M': this model takes at most 131,072")
    assert view.context() == 131072


def test_slider_updates_chart_in_place(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", MINI, "Q4_K_M")
    items_before = list(view.mem_plot.getPlotItem().items)
    view.set_context(4096)
    kv_small = bar_heights(view)["kv_cache"]
    with qtbot.waitSignal(view.chart_updated, timeout=2000):
        view.context_slider.setValue(view.context_slider.value() + 10)
    assert view.context() > 4096
    assert bar_heights(view)["kv_cache"] > kv_small
    assert view.context_combo.currentText().replace(",", "").replace("K", "") != "4"
    assert list(view.mem_plot.getPlotItem().items) == items_before  # no new items
    # the every-quantization table follows, debounced, for the new context (filled)
    qtbot.waitUntil(lambda: not view.busy(), timeout=10000)
    wait_idle(qtbot, ctx)
    i = view.inputs()
    expected = estimate_quants(view.state.model(i.model_id), host_from_config(MINI),
                               i.options(filled=True))  # fmt: skip
    by = {e.quant: e for e in expected.estimates}
    for r in range(view.quant_model.rowCount()):
        row = view.quant_model.row_dict(r)
        assert row["kv_gib"] == pytest.approx(by[row["quant"]].fit.memory.kv_cache_bytes / GiB)
        assert row["decode_tps"] == pytest.approx(by[row["quant"]].speed.decode_tps)
    decode_title = view.quant_model.headerData(
        view.quant_model.column_index("decode_tps"), Qt.Orientation.Horizontal
    )
    assert decode_title.startswith("Decode at ")


def test_slider_burst_is_coalesced_into_one_redraw(qtbot, ctx):
    view = make_view(qtbot, ctx)
    draws: list = []
    view.chart_updated.connect(lambda: draws.append(view.context()))
    start = view.context_slider.value()
    for i in range(1, 11):
        view.context_slider.setValue(start + i)
    qtbot.waitUntil(lambda: len(draws) >= 1, timeout=2000)
    qtbot.wait(20)
    assert draws == [view.context()]
    assert view.estimate_now().options.context == view.context()


def test_decode_curve_is_the_engines(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", MINI, "Q4_K_M")
    i = view.inputs()
    top = view.state.model(i.model_id).max_context
    curve = decode_curve(view.state.model(i.model_id), "Q4_K_M", host_from_config(MINI),
                         i.options(filled=False), [0, top])  # fmt: skip
    xs, ys = view.curve.getData()
    assert xs[0] == 0 and xs[-1] == top
    assert ys[0] == pytest.approx(curve[0][1]) and ys[-1] == pytest.approx(curve[1][1])
    assert "tokens/s with" in (view.speed_tips.text_at(float(xs[3]), float(ys[3])) or "")


def test_every_quantization_table(qtbot, qtmodeltester, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.3-70b", MINI, "Q4_K_M")
    qtbot.waitUntil(lambda: not view.busy(), timeout=10000)
    wait_idle(qtbot, ctx)
    model = view.quant_model
    spec = view.state.model("llama-3.3-70b")
    assert model.rowCount() == len(quants_for(spec, "llama.cpp"))
    qtmodeltester.check(model)
    qtmodeltester.check(view.quant_proxy)
    expected = estimate_quants(spec, host_from_config(MINI), view.inputs().options(filled=True))
    verdicts = {e.quant: e.fit.verdict for e in expected.estimates}
    vcol = model.column_index("verdict")
    seen = set()
    for r in range(model.rowCount()):
        name = model.row_key(r)
        seen.add(verdicts[name])
        bg = model.index(r, vcol).data(Qt.ItemDataRole.BackgroundRole)
        assert bg == theme.verdict_tint(verdicts[name])
    assert {VERDICT_FITS, VERDICT_RAISED, VERDICT_NO} <= seen
    q2 = next(r for r in range(model.rowCount()) if model.row_key(r) == "Q2_K")
    assert model.row_dict(q2)["quality"].startswith("+56.5 % perplexity")


def test_below_three_bits_is_warned(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.3-70b", MINI, "IQ2_XXS")
    assert view.message.isVisibleTo(view)
    assert "IQ2_XXS keeps 2.0625 bits per weight, below 3" in view.message.text()


def test_explain_panel_shows_formulas_with_numbers(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "qwen3-30b-a3b", "mac-studio-m2-ultra-76c-192gb", "Q8_0")
    est = view.estimate_now()
    view.tabs.setCurrentWidget(view.explain)
    text = view.explain.toPlainText()
    for x in (*est.fit.memory.explain, *est.speed.explain):
        assert x.formula in text
        assert x.value in text
    assert f"Decode measured with {est.options.context:,} tokens already in context" in text


def test_quantized_kv_never_runs_with_flash_attention_off(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", MINI, "Q4_K_M")
    view.flash_combo.setCurrentIndex(view.flash_combo.findData("off"))
    f16_kv = bar_heights(view)["kv_cache"]
    view.kv_combo.setCurrentIndex(view.kv_combo.findData("q8_0"))
    assert view.flash_combo.currentData() == "auto"  # back to the runtime's auto
    assert view.inputs().kv_type == "q8_0"
    assert bar_heights(view)["kv_cache"] < f16_kv


def test_runtime_switch_offers_that_runtimes_quants(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", MINI)
    view.runtime_combo.setCurrentIndex(view.runtime_combo.findData("mlx"))
    names = [view.quant_combo.itemData(i) for i in range(view.quant_combo.count())]
    assert names == [q.name for q in quants_for(view.state.model("llama-3.1-8b"), "mlx")]
    assert view.estimate_now().quant == view.quant_combo.currentData()
    assert view.summary["quality"].text().endswith("unknown (no published figures for this type)")


def test_this_machine_is_probed_in_a_worker(qtbot, ctx):
    view = make_view(qtbot, ctx)
    view.machine_picker.set_key(THIS_MACHINE)
    wait_idle(qtbot, ctx)
    qtbot.waitUntil(lambda: view.estimate_now() is not None, timeout=15000)
    assert view.estimate_now().host.name.startswith("this machine")


def test_inputs_are_remembered(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "qwen3-8b", MINI, "Q8_0")
    type_into(qtbot, view.context_combo, "12000")
    type_into(qtbot, view.limit_combo, "50000")
    from ui import persist

    persist.save(view, "fit")
    view.shutdown()
    again = make_view(qtbot, ctx)
    i = again.inputs()
    assert (i.model_id, i.quant, i.context, i.gpu_limit_mb) == ("qwen3-8b", "Q8_0", 12000, 50000)


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
        verdict = view.quant_model.row_dict(0)["verdict"]
        col = view.quant_model.column_index("verdict")
        bg = view.quant_model.index(0, col).data(Qt.ItemDataRole.BackgroundRole)
        assert bg == theme.verdict_tint(verdict)
        assert bg.lightness() < 100
    finally:
        QApplication.setPalette(original)


def test_auto_flash_attention_shows_what_it_resolved_to(qtbot, ctx):
    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.1-8b", MINI, "Q4_K_M")
    assert view.flash_combo.currentData() == "auto"
    assert view.flash_combo.currentText() == "auto (on)"
    assert "Metal supports FLASH_ATTN_EXT" in view.flash_combo.toolTip()
    view.runtime_combo.setCurrentIndex(view.runtime_combo.findData("ollama"))
    assert view.flash_combo.currentText() == "auto (off)"
    assert view.estimate_now().options.flash_attention is False


def test_open_in_fit_request(qtbot, ctx):
    view = make_view(qtbot, ctx)
    view.apply_request(model_id="qwen3-30b-a3b", machine="mac-studio-m2-ultra-76c-192gb",
                       quant="Q8_0", context=32768)  # fmt: skip
    i = view.inputs()
    assert (i.model_id, i.machine, i.quant, i.context) == (
        "qwen3-30b-a3b",
        "mac-studio-m2-ultra-76c-192gb",
        "Q8_0",
        32768,
    )
    assert view.estimate_now().options.depth == 32768


def test_nearest_published_runs_beside_the_estimate(qtbot, ctx):
    """The Fit view lists the published measurements nearest to the estimate (the lookup
    `forgeplanner estimate` prints): value, chip, runtime with its version, date and source,
    and the quantization table carries each estimate's likely range."""
    from forgeplanner.calibration.published import for_estimate

    view = make_view(qtbot, ctx)
    select(qtbot, view, "llama-3.3-70b", MINI, "Q4_K_M")
    qtbot.waitUntil(lambda: view.published_model.rowCount() > 0, timeout=15000)
    active_b = view.state.model("llama-3.3-70b").active_params / 1e9
    found = for_estimate("M4 Pro", 20, "llama.cpp", "llama-3.3-70b", active_b, False, n=3,
                         quant="Q4_K_M")  # fmt: skip
    rows = [view.published_model.row_dict(r) for r in range(view.published_model.rowCount())]
    expected = [(k, r["tokens_per_s"], r["source"]) for k in ("decode", "prefill")
                for r in found[k]]  # fmt: skip
    assert [(r["kind"], r["tokens_per_s"], r["source"]) for r in rows] == expected
    first = rows[0]
    assert first["chip"] and first["date"] and first["source"].startswith("https://")
    assert first["runtime"].split()[0] in ("llama.cpp", "LM", "Ollama", "MLX", "mlx-lm")
    assert "nearest published runs are under Published runs" in view.summary["band"].text()
    assert view.tabs.tabText(view.tabs.indexOf(view.published_table)) == "Published runs"
    wait_idle(qtbot, ctx)
    q = next(
        view.quant_model.row_dict(r)
        for r in range(view.quant_model.rowCount())
        if view.quant_model.row_dict(r)["quant"] == "Q4_K_M"
    )
    s = engine(view).speed
    assert q["decode_range"] == f"likely {s.decode_tps_low:,.1f}-{s.decode_tps_high:,.1f}"
