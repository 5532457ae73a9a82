"""The job "a build plan with measured results" through the widgets: run the built-in benchmark
in the Benchmarks view, see it appear in the Plan view's run list without a Refresh, attach it,
export the plan to PDF and XLSX (checked: the run's bandwidth and compute beside the estimate,
the warning that this test machine is not in the plan; the XLSX opened by LibreOffice), export
the evidence record and verify it from the File menu."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader
from PySide6.QtWidgets import QMessageBox

from forgeplanner.bench.builtin import BuiltinConfig
from forgeplanner.domain.units import MiB
from tests.export.test_measured_results_exports import soffice  # noqa: F401 (fixture)
from tests.ui.conftest import wait_idle
from ui import app as app_mod
from ui.context import AppContext

SMALL = BuiltinConfig(array_bytes=8 * MiB, repetitions=3, matmul_n=128)


def test_plan_with_a_measured_run_exported_and_verified(qtbot, tmp_path: Path, soffice):  # noqa: F811
    ctx = AppContext()
    w = app_mod.MainWindow(ctx)
    qtbot.addWidget(
        w,
        before_close_func=lambda win: setattr(
            win.ctx.documents, "ask_save_changes", lambda: QMessageBox.StandardButton.Discard
        ),
    )
    w.restore_state("plan")
    w.show()
    plan_view = w.page("plan")
    wait_idle(qtbot, ctx)
    assert plan_view.run_combo.count() == 0  # no runs stored yet

    # 1. measure this machine in the Benchmarks view
    bench = w.show_view("bench")
    bench.builtin_config = SMALL
    bench.runner_combo.setCurrentIndex(bench.runner_combo.findData("builtin"))
    bench.run_button.click()
    qtbot.waitUntil(lambda: bench.last_result is not None or bool(bench.last_error), timeout=120000)
    assert bench.last_error is None, bench.status_label.text()
    assert bench.last_result is not None, bench.status_label.text()
    assert bench.last_result.status == "ok"
    run_id = bench.last_result.id

    # 2. the plan's run list has it, without a Refresh
    w.show_view("plan")
    qtbot.waitUntil(lambda: plan_view.run_combo.findData(run_id) >= 0, timeout=10000)
    plan_view.run_combo.setCurrentIndex(plan_view.run_combo.findData(run_id))
    plan_view.attach_button.click()
    qtbot.waitUntil(lambda: len(ctx.plan.plan.runs) == 1, timeout=10000)
    metrics = {r["metric"]: r for r in plan_view.run_model.records()}
    assert {"memory_bandwidth_gbps", "matmul_gflops"} <= set(metrics)
    assert metrics["memory_bandwidth_gbps"]["unit"] == "GB/s"
    assert metrics["matmul_gflops"]["measured"] > 0
    # this test machine is not the plan's Mac Studio: the view says so
    assert "not a machine in this plan" in plan_view.run_warnings.text()
    assert w.isWindowModified()

    # 3. export PDF and XLSX from the File menu's export
    docs = ctx.documents
    pdf = docs.export("pdf", tmp_path / "lab.pdf")
    xlsx = docs.export("xlsx", tmp_path / "lab.xlsx")
    assert pdf is not None and xlsx is not None
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pdf).pages)
    measured_bw = ctx.plan.plan.runs[0].measured["memory_bandwidth_gbps"]
    for needle in ("Measured runs: estimate vs measured", "Memory bandwidth (GB/s)",
                   "Matrix-multiply compute (GFLOP/s)", f"{measured_bw:,.1f}",
                   "not a machine in this plan"):  # fmt: skip
        assert needle in text, needle
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Measured results"]
    header = [c.value for c in sheet[1]]
    rows = [
        dict(zip(header, [c.value for c in r], strict=True)) for r in sheet.iter_rows(min_row=2)
    ]
    bw = next(r for r in rows if r["Metric"] == "Memory bandwidth")
    # a spreadsheet keeps 15 significant digits (the last binary digit may differ)
    assert bw["Unit"] == "GB/s" and bw["Measured"] == pytest.approx(measured_bw, rel=1e-13)
    assert bw["Machine in the plan"] == "no" and "not a machine in this plan" in bw["Warning"]
    assert sheet.freeze_panes == "A2"
    conv = tmp_path / "lo-out"
    proc = subprocess.run(
        [soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path / 'lo'}",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,"
         "false,-1", "--outdir", str(conv), str(xlsx)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with (conv / "lab-Measured results.csv").open(encoding="utf-8") as f:
        lo_rows = list(csv.reader(f))
    assert any(r[4] == "Memory bandwidth" for r in lo_rows[1:])

    # 4. the evidence record, verified from the app
    record = docs.export("json", tmp_path / "lab.evidence.json")
    ok, message = docs.verify_evidence(record)
    assert ok and message.startswith(f"{record}: intact (")
    docs.last_dialog.close()
