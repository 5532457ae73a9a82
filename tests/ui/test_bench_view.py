"""Benchmarks view: a real built-in run through the worker pool, cancel, history, scatter,
calibration errors surfaced, lab protocols as guided steps."""

from __future__ import annotations

import pytest

from forgeplanner.bench.builtin import BuiltinConfig
from forgeplanner.domain.units import MiB
from tests.ui.conftest import wait_idle
from ui.views.bench_view import BenchView, create_view

SMALL = BuiltinConfig(
    array_bytes=16 * MiB, repetitions=2, matmul_n=256, decode_weight_bytes=8 * MiB,
    decode_tokens=2,
)  # fmt: skip


@pytest.fixture
def view(qtbot, ctx):
    v = create_view(ctx)
    assert isinstance(v, BenchView)
    qtbot.addWidget(v)
    v.builtin_config = SMALL
    qtbot.waitUntil(lambda: not v.busy(), timeout=20000)
    yield v
    v.shutdown()
    wait_idle(qtbot, ctx, 60000)


def test_builtin_run_updates_progress_plot_and_history(qtbot, ctx, view) -> None:
    assert view.history.rowCount() == 0
    view.runner_combo.setCurrentIndex(view.runner_combo.findData("builtin"))
    view.start_run()
    assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    wait_idle(qtbot, ctx, 60000)
    assert view.last_error is None
    assert view.last_result is not None and view.last_result.status == "ok"
    assert view.progress.value() == 1000
    assert view.history.rowCount() == 1
    assert view.history.item(0, 2).text() == "builtin"
    xs, ys = view.live_curve.getData()
    assert xs is not None and len(xs) >= 2 and all(y > 0 for y in ys)
    text = view.result_text.toPlainText()
    assert "Memory copy bandwidth: " in text and " GB/s" in text and "GFLOP/s" in text
    assert "copy_gbps" not in text  # readable labels, not the stored keys
    assert (
        view.live_plot.getPlotItem().getAxis("left").labelText.endswith("(GB/s)")
        or ("(GFLOP/s)" in view.live_plot.getPlotItem().getAxis("left").labelText)
        or "(tokens/s)" in view.live_plot.getPlotItem().getAxis("left").labelText
    )
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
    view.history.selectRow(0)
    assert "Machine: " in view.history_detail.toPlainText()


def test_cancel_stores_a_cancelled_run(qtbot, ctx, view) -> None:
    view.builtin_config = BuiltinConfig(array_bytes=64 * MiB, repetitions=200, matmul_n=256)
    view.runner_combo.setCurrentIndex(view.runner_combo.findData("builtin"))
    view.start_run()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=30000)
    view.cancel()
    wait_idle(qtbot, ctx, 60000)
    assert view.status_label.text() == "Cancelled."
    assert view.history.item(0, 3).text() == "cancelled"


def test_scatter_plots_estimate_against_measured(ctx, view) -> None:
    from forgeplanner.store import BenchRunRepo

    store = ctx.store()
    with store.session() as s:
        repo = BenchRunRepo(s)
        rid = repo.start(runner="llama.cpp", fingerprint={"key": "k", "hostname": "h"},
                         tool_versions={}, params={}, estimate={"decode_tps": 20.0,
                                                                "prefill_tps": 200.0})  # fmt: skip
        repo.finish(rid, status="ok", measured={"decode_tps": 18.0, "prefill_tps": 150.0},
                    error_pct={"decode_tps": 11.1})  # fmt: skip
    view.refresh_history()
    assert view.scatter_points == {"decode_tps": [(20.0, 18.0)], "prefill_tps": [(200.0, 150.0)]}
    assert "1 decode and 1 prefill" in view.scatter_note.text()
    assert view.history.item(0, 7).text() == "+11.1 %"


def test_calibrate_without_runs_reports_why(qtbot, ctx, view, monkeypatch) -> None:
    shown = []
    monkeypatch.setattr("ui.views.bench_view.show_error", lambda *a, **k: shown.append(a))
    view.start_calibrate()
    wait_idle(qtbot, ctx, 30000)
    assert view.last_error is not None and "nothing to calibrate" in view.last_error
    assert shown and "nothing to calibrate" in shown[0][1]


def test_labs_are_guided_steps(qtbot, ctx, view) -> None:
    view.lab_combo.setCurrentText("L-002")
    assert view.lab_steps.count() == 4
    assert "70B" in view.lab_steps.item(1).text()
    view.lab_steps.setCurrentRow(2)
    assert "llama-bench" in view.lab_step_text.toPlainText()
    assert "Observation prompts" in view.lab_prompts.toPlainText()
    view.lab_combo.setCurrentText("L-001")
    assert view.lab_sheet.rowCount() >= 10
    view.start_lab()
    wait_idle(qtbot, ctx, 120000)
    assert view.last_error is None, view.last_error
    assert view.last_result.ref == "L-001"
    assert "[done]" in view.lab_steps.item(0).text()
    values = [view.lab_sheet.item(i, 2).text() for i in range(view.lab_sheet.rowCount())]
    assert sum(1 for v in values if v) >= 6
