"""Measured results in every export: what each run measured (bandwidth and compute for the
built-in run, decode and prefill for the model runners) beside the estimate made before it and
the error, a warning when the run came from a machine that is not in the plan; and an XLSX that
LibreOffice opens cleanly (checked headless with the real LibreOffice)."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest

from forgeplanner.domain.plan import AttachedRun
from forgeplanner.evidence.record import raw_digest
from forgeplanner.export import tables as t
from forgeplanner.export.html import render_html
from forgeplanner.export.markdown import render_markdown
from forgeplanner.export.render import export_plan
from forgeplanner.export.tabular import render_csv
from tests.plan.samples import NOW, sample_plan

GiB = 1 << 30


def builtin_run() -> AttachedRun:
    raw = '{"copy_gbps": 18.2}\n'
    return AttachedRun(
        run_id="9",
        runner="builtin",
        started_at="2026-11-21T09:00:00+00:00",
        fingerprint={"hostname": "buildbox", "cpu_brand": "AMD EPYC 7B13",
                     "memory_bytes": 24 * GiB},
        measured={"memory_bandwidth_gbps": 18.2, "triad_gbps": 19.0, "matmul_gflops": 210.0,
                  "decode_sim_gbps": 15.1},
        estimate={"memory_bandwidth_gbps": 20.0},
        raw_output=raw,
        raw_sha256=raw_digest(raw),
    )  # fmt: skip


def plan_with_both_runs():
    plan = sample_plan()
    return replace(plan, runs=(*plan.runs, builtin_run()))


def test_metric_rows_per_runner_with_units_errors_and_the_warning():
    rows = t.run_metric_rows(plan_with_both_runs())
    by = {(r["run_id"], r["metric"]): r for r in rows}
    assert by[("7", "decode_tps")]["in_plan"] and not by[("7", "decode_tps")]["warning"]
    bw = by[("9", "memory_bandwidth_gbps")]
    assert (bw["label"], bw["unit"], bw["estimated"], bw["measured"]) == (
        "Memory bandwidth",
        "GB/s",
        20.0,
        18.2,
    )
    assert bw["error_pct"] == pytest.approx(-9.0)
    mm = by[("9", "matmul_gflops")]
    assert (mm["label"], mm["unit"], mm["measured"], mm["estimated"]) == (
        "Matrix-multiply compute",
        "GFLOP/s",
        210.0,
        None,
    )
    assert not bw["in_plan"]
    assert bw["warning"].startswith("run 9 was measured on buildbox: AMD EPYC 7B13, 24 GiB")
    assert "not a machine in this plan" in bw["warning"]


def test_the_run_matches_a_plan_machine_by_chip_gpu_cores_and_memory():
    plan = sample_plan()
    run = replace(plan.runs[0], fingerprint={"cpu_brand": "Apple M2 Ultra", "gpu_cores": 76,
                                             "memory_bytes": 192 * GiB})  # fmt: skip
    assert t.run_machine(run, plan.build) == "mac-studio-m2-ultra-76c-192gb"
    smaller = replace(run, fingerprint={**run.fingerprint, "memory_bytes": 64 * GiB})
    assert t.run_machine(smaller, plan.build) is None
    other_bin = replace(run, fingerprint={**run.fingerprint, "gpu_cores": 60})
    assert t.run_machine(other_bin, plan.build) is None
    named = replace(run, fingerprint={}, config_id="mac-studio-m2-ultra-76c-192gb")
    assert t.run_machine(named, plan.build) == "mac-studio-m2-ultra-76c-192gb"


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_formats_show_bandwidth_compute_and_the_warning(fmt):
    text = (render_markdown if fmt == "md" else render_html)(plan_with_both_runs())
    needles = ("Memory bandwidth (GB/s)", "Matrix-multiply compute (GFLOP/s)", "20.0", "18.2",
               "-9.0 %", "Decode (tokens/s)", "not a machine in this plan")  # fmt: skip
    for needle in needles:
        assert needle in text, needle


def test_csv_has_one_row_per_run_and_metric():
    rows = list(csv.DictReader(io.StringIO(render_csv(plan_with_both_runs()).decode())))
    measured = [r for r in rows if r["section"] == "measured_results"]
    assert {(r["run_id"], r["metric"]) for r in measured} >= {
        ("7", "decode_tps"), ("7", "prefill_tps"), ("9", "memory_bandwidth_gbps"),
        ("9", "matmul_gflops"),
    }  # fmt: skip
    bw = next(r for r in measured if r["metric"] == "memory_bandwidth_gbps")
    assert float(bw["measured"]) == 18.2 and float(bw["error_pct"]) == pytest.approx(-9.0)
    assert "not a machine in this plan" in bw["warning"]


def test_pdf_has_the_measured_results(tmp_path: Path):
    from pypdf import PdfReader

    out = export_plan(plan_with_both_runs(), "pdf", tmp_path / "plan.pdf", now=NOW)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(out).pages)
    for needle in ("Memory bandwidth (GB/s)", "Decode (tokens/s)", "-9.0 %", "-5.6 %",
                   "not a machine in this plan"):  # fmt: skip
        assert needle in text, needle


def test_xlsx_headers_units_formats_and_frozen_header(tmp_path: Path):
    out = export_plan(plan_with_both_runs(), "xlsx", tmp_path / "plan.xlsx", now=NOW)
    book = openpyxl.load_workbook(out)
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws["A1"].font.bold
    est = book["Estimates"]
    header = [c.value for c in est[1]]
    assert "Total (GiB)" in header and "Decode (tokens/s)" in header
    total = est.cell(2, header.index("Total (GiB)") + 1)
    assert total.value == pytest.approx(44.5) and total.number_format == "0.0"
    m = book["Measured results"]
    header = [c.value for c in m[1]]
    assert header[:9] == ["Run", "Runner", "Model", "Quantization", "Metric", "Unit",
                          "Estimated", "Measured", "Error (%)"]  # fmt: skip
    err = [m.cell(r, 9) for r in range(2, m.max_row + 1)]
    assert all(c.number_format == "+0.0;-0.0;0.0" for c in err if c.value is not None)


@pytest.fixture(scope="session")
def soffice() -> str:
    """LibreOffice, installed from the distribution when missing (Debian/Ubuntu, as root):
    the check is against the real program, never skipped."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return found
    apt = shutil.which("apt-get")
    assert apt, "LibreOffice is needed (soffice) and there is no apt-get to install it"
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run([apt, "update", "-qq"], check=True, env=env, timeout=900)
    subprocess.run([apt, "install", "-y", "-qq", "--no-install-recommends",
                    "libreoffice-calc-nogui"], check=True, env=env, timeout=1800)  # fmt: skip
    found = shutil.which("soffice")
    assert found, "libreoffice-calc-nogui installed but soffice is not on PATH"
    return found


def test_libreoffice_opens_the_xlsx_cleanly(tmp_path: Path, soffice: str):
    out = export_plan(plan_with_both_runs(), "xlsx", tmp_path / "plan.xlsx", now=NOW)
    conv = tmp_path / "converted"
    # Every sheet to CSV (the filter's last option -1 = all sheets): LibreOffice has to read
    # the whole workbook, formats and all, to write them.
    proc = subprocess.run(
        [soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path / 'lo'}",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,"
         "false,-1", "--outdir", str(conv), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sheets = sorted(p.name for p in conv.iterdir())
    assert sheets == ["plan-Bill of materials.csv", "plan-Estimates.csv",
                      "plan-Measured results.csv"]  # fmt: skip
    with (conv / "plan-Measured results.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:9] == ["Run", "Runner", "Model", "Quantization", "Metric", "Unit",
                           "Estimated", "Measured", "Error (%)"]  # fmt: skip
    bw = next(r for r in rows if r[4] == "Memory bandwidth")
    assert (float(bw[6]), float(bw[7]), float(bw[8])) == (20.0, 18.2, -9.0)
    assert "not a machine in this plan" in bw[11]
