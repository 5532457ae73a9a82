"""Every export that shows a speed shows its likely range and the published runs nearest it.

The plan is examples/70b-home-lab.fplan, which the real engine wrote (tests/plan/test_example.py
keeps it current), so the ranges and runs are the engine's, not hand-made."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import openpyxl

from forgeplanner.export.markdown import render_markdown
from forgeplanner.export.render import export_plan
from forgeplanner.plan.files import read_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "70b-home-lab.fplan"


def test_plan_estimates_carry_ranges_and_published_runs() -> None:
    plan = read_plan(EXAMPLE)
    est = plan.build.estimates[0]
    assert est.decode_tps_low is not None and est.decode_tps_high is not None
    assert est.decode_tps_low < est.decode_tps < est.decode_tps_high
    assert est.prefill_tps_low < est.prefill_tps < est.prefill_tps_high
    assert "held-out published runs" in est.speed_range_basis
    kinds = {r.kind for r in est.published_runs}
    assert kinds == {"decode", "prefill"}
    for r in est.published_runs:
        assert r.tokens_per_s > 0 and r.source.startswith(("http", "www.")) and r.chip


def test_markdown_shows_the_range_beside_the_estimate_and_the_runs() -> None:
    plan = read_plan(EXAMPLE)
    est = plan.build.estimates[0]
    md = render_markdown(plan)
    shown = f"{est.decode_tps:.1f} ({est.decode_tps_low:.1f}-{est.decode_tps_high:.1f})"
    assert shown in md
    section = md.split("Published runs nearest the estimates", 1)[1]
    first = est.published_runs[0]
    assert first.source in section
    assert re.search(rf"\| {first.tokens_per_s:.1f} \|", section)


def test_xlsx_has_range_columns_and_a_published_runs_sheet(tmp_path: Path) -> None:
    plan = read_plan(EXAMPLE)
    out = tmp_path / "plan.xlsx"
    export_plan(plan, "xlsx", out, now=datetime(2026, 12, 7, tzinfo=UTC))
    wb = openpyxl.load_workbook(out, read_only=True)
    assert "Published runs" in wb.sheetnames
    est_rows = list(wb["Estimates"].iter_rows(values_only=True))
    header = [str(h) for h in est_rows[0]]
    low = next(i for i, h in enumerate(header) if "decode" in h.lower() and "low" in h.lower())
    assert est_rows[1][low] == plan.build.estimates[0].decode_tps_low
    runs = list(wb["Published runs"].iter_rows(values_only=True))
    assert len(runs) - 1 == len(
        {
            (r.kind, r.source, r.model, r.quant, r.chip)
            for r in plan.build.estimates[0].published_runs
        }
    )
