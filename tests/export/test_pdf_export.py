"""The PDF export (reportlab, no Qt), read back with poppler's pdftotext: the same sections as
the other exports, tables that repeat their header and never split a row across pages, charts
drawn from the same figures as the HTML's, atomic writes, bounded output for large plans, and
no Qt anywhere on the way."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from forgeplanner.errors import ForgePlannerError
from forgeplanner.export import pdf
from forgeplanner.export.charts import memory_figure, speed_figure
from forgeplanner.export.render import export_plan
from forgeplanner.export.report import Chart, Heading, Para, Table, report_blocks
from forgeplanner.plan.files import write_plan
from tests.plan.samples import NOW, large_plan, sample_plan

ROOT = Path(__file__).resolve().parents[2]


def _text(pdftotext: str, path: Path, first: int | None = None, last: int | None = None) -> str:
    argv = [pdftotext, "-layout"]
    if first is not None:
        argv += ["-f", str(first), "-l", str(last or first)]
    done = subprocess.run([*argv, str(path), "-"], capture_output=True, timeout=120, check=True)
    return done.stdout.decode("utf-8")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _pages(pdftotext: str, path: Path) -> list[str]:
    done = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    n = int(re.search(r"^Pages:\s+(\d+)", done.stdout, re.M).group(1))
    return [_text(pdftotext, path, i) for i in range(1, n + 1)]


def test_every_section_of_the_report_is_in_the_pdf_in_order(pdftotext, tmp_path):
    plan = sample_plan()
    out = export_plan(plan, "pdf", tmp_path / "plan.pdf", now=NOW)
    text = _flat(_text(pdftotext, out))
    position = 0
    for block in report_blocks(plan):
        if isinstance(block, Heading | Para):
            found = text.find(_flat(block.text), position)
            assert found >= 0, f"missing or out of order: {block.text!r}"
            position = found
        elif isinstance(block, Table):
            for header in block.headers:
                assert header.split()[0] in text
            for row in block.rows:
                assert _flat(row[0]) in text
        elif isinstance(block, Chart):
            assert _flat(block.caption) in text
    # The charts are vector drawings: their own titles, axes and legends are text.
    for words in (
        "Memory per model and machine (GiB)",
        "GPU limit",
        "physical memory",
        "Decode speed vs context depth",
        "tokens already in context",
        "Price vs decode speed",
        "total price (USD)",
        "Three Mac mini M4 Pro 64 GB",
    ):
        assert words in text, words


def test_the_charts_are_the_html_figures(pdftotext, tmp_path):
    """Every text element of the HTML's figures is drawn in the PDF."""
    plan = sample_plan()
    out = export_plan(plan, "pdf", tmp_path / "plan.pdf", now=NOW)
    text = _flat(_text(pdftotext, out))
    for fig in (memory_figure(plan), speed_figure(plan)):
        for shape in fig.shapes:
            if hasattr(shape, "text"):
                assert _flat(shape.text) in text, shape.text


def test_long_tables_repeat_their_header_and_never_split_a_row(pdftotext, tmp_path):
    plan = large_plan(70)
    out = export_plan(plan, "pdf", tmp_path / "large.pdf", now=NOW)
    pages = _pages(pdftotext, out)
    rows_per_page: dict[int, list[str]] = {}
    for number, page in enumerate(pages, start=1):
        for m in re.finditer(r"\b(model-\d{3})\b.*?\b(1000\d\d)\b", page):
            rows_per_page.setdefault(number, []).append(m.group(1))
            # the row's first cell (model id) and last (its largest context) on one page
            assert int(m.group(2)) == 100_000 + int(m.group(1)[-3:])
    estimate_pages = [n for n, ids in rows_per_page.items() if ids]
    assert len(estimate_pages) >= 2, "70 estimates take more than one page"
    for n in estimate_pages:
        assert "Max context" in pages[n - 1] and "GPU limit" in pages[n - 1], n
    seen = [i for n in sorted(rows_per_page) for i in rows_per_page[n]]
    assert seen == [f"model-{i:03d}" for i in range(1, 71)]  # each row once, in order


def test_header_cells_wrap_between_words_only():
    from reportlab.pdfbase.pdfmetrics import stringWidth

    headers = ("Model", "Decode tok/s", "Prefill tok/s", "Max context", "Verdict")
    rows = [("llama-3.3-70b-instruct-with-a-long-name", "12.5", "140", "131072", "fits")]
    for available in (120.0, 300.0, 2000.0):
        widths = pdf.column_widths(headers, rows, available)
        assert sum(widths) <= available + 1e-6
        for header, width in zip(headers, widths, strict=True):
            longest = max(
                stringWidth(w, pdf.FONT_BOLD, pdf.TABLE_FONT_SIZE) for w in header.split()
            )
            if available >= 300:
                assert width >= longest + 2 * pdf.CELL_PAD, (available, header)


def test_a_large_plan_is_bounded_and_says_so(pdftotext, tmp_path, capsys):
    path = tmp_path / "large.fplan"
    n = pdf.MAX_CHART_ITEMS + 10
    write_plan(path, large_plan(n))
    out = tmp_path / "large.pdf"
    argv = ["export", str(path), "--format", "pdf", "--out", str(out), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    note = f"shows the first {pdf.MAX_CHART_ITEMS} of {n} estimates"
    assert any(note in w for w in report["warnings"])
    assert "forgeplanner: warning: PDF: memory breakdown per model" in captured.err
    text = _flat(_text(pdftotext, out))
    assert note in text and "the Estimates table lists every one" in text
    assert f"model-{n:03d}" in text  # the table still lists every estimate


def test_a_failed_render_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "plan.pdf"
    out.write_bytes(b"%PDF-previous")

    def not_a_pdf(plan, path, *, warn=None):
        Path(path).write_bytes(b"<html>not a pdf</html>")

    monkeypatch.setattr(pdf, "render_pdf", not_a_pdf)
    with pytest.raises(ForgePlannerError, match="not a PDF; nothing was replaced"):
        export_plan(sample_plan(), "pdf", out, now=NOW)
    assert out.read_bytes() == b"%PDF-previous"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.pdf"]

    def crashes(plan, path, *, warn=None):
        Path(path).write_bytes(b"%PDF-1.4 half")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(pdf, "render_pdf", crashes)
    with pytest.raises(RuntimeError):
        export_plan(sample_plan(), "pdf", out, now=NOW)
    assert out.read_bytes() == b"%PDF-previous"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.pdf"]


def test_pdf_export_runs_headless_with_qt_absent(tmp_path, pdftotext):
    plan_file = tmp_path / "lab.fplan"
    write_plan(plan_file, sample_plan())
    out = tmp_path / "lab.pdf"
    script = f"""
import sys

class _NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"PySide6", "shiboken6", "pyqtgraph", "ui"}}:
            raise ImportError("Qt is absent in this test: " + name)
        return None

sys.meta_path.insert(0, _NoQt())
from forgeplanner.cli.main import main
sys.exit(main(["export", {str(plan_file)!r}, "--format", "pdf", "--out", {str(out)!r}]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "FORGEPLANNER_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Build plan: 70B at home" in _text(pdftotext, out)
