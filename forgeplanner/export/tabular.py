"""Plan -> CSV and XLSX: bill of materials, estimates and measured results (pandas + openpyxl).

Spreadsheet formula injection: a cell whose text starts with `=`, `+`, `-`, `@`, a tab or a
carriage return is executed as a formula by Excel, LibreOffice and Sheets (and openpyxl itself
writes any string starting with `=` as a formula). Every text cell is neutralised by prefixing
a single quote, as OWASP's "CSV Injection" guidance recommends; numbers stay numbers, so a
negative headroom is still -3.2 and not text. XLSX also drops the control characters the file
format cannot hold (openpyxl would refuse the whole file).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from forgeplanner.domain.plan import Plan
from forgeplanner.export import tables as t

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_LEAD = re.compile(r"^[\s\x00-\x1f\x7f]+")


def neutralise(value: Any) -> Any:
    """Prefix a quote to text a spreadsheet would run. Leading spaces and control characters
    are looked through too: some spreadsheets trim them on import and then see the `=`."""
    if isinstance(value, str) and (
        value.startswith(FORMULA_TRIGGERS) or _LEAD.sub("", value).startswith(FORMULA_TRIGGERS)
    ):
        return "'" + value
    return value


def _frame(rows: list[dict[str, Any]], clean=None, **extra: Any):
    """DataFrame of `rows` with every text value neutralised before pandas sees it (pandas 3
    stores text in its own string dtype, so neutralising after the fact by dtype would miss
    columns). `clean` runs first (XLSX drops characters the format cannot hold)."""
    import pandas as pd

    records = []
    for r in rows:
        rec = {}
        for k, v in {**extra, **r}.items():
            if isinstance(v, str):
                v = neutralise(clean(v) if clean else v)
            rec[k] = v
        records.append(rec)
    frame = pd.DataFrame(records)
    for col in frame.columns:
        values = [r[col] for r in records if r.get(col) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            # A count stays 3 (not 3.0) where other rows leave the column empty.
            frame[col] = frame[col].astype("Int64")
    return frame


def _total_row(plan_build, label: str) -> dict[str, Any]:
    tot = t.totals(plan_build)
    return {
        "machine": label,
        "count": tot["machines"],
        "line_total_usd": tot["total_price_usd"],
        "max_w": tot["max_w"],
        "idle_w": tot["idle_w"],
        "annual_kwh": tot["annual_kwh"],
        "annual_cost": tot["annual_cost"],
        "price_source": tot["power_basis"],
    }


def bom_with_totals(plan: Plan) -> list[dict[str, Any]]:
    """Bill of materials of the plan and of each alternative (column `build`), each followed
    by its TOTAL row."""
    bom: list[dict[str, Any]] = []
    for name, build in [("this plan", plan.build)] + [(a.name, a.build) for a in plan.alternatives]:
        rows = t.bom_rows(build)
        if rows:
            bom.extend(dict(r, build=name) for r in rows)
            bom.append(dict(_total_row(build, "TOTAL"), build=name))
    return bom


def sheets(plan: Plan, clean=None) -> dict[str, Any]:
    """Sheet name -> DataFrame (already neutralised). Empty sections are left out."""
    bom = bom_with_totals(plan)
    estimates = [dict(r, build="this plan") for r in t.estimate_rows(plan.build)]
    for alt in plan.alternatives:
        estimates.extend(dict(r, build=alt.name) for r in t.estimate_rows(alt.build))
    out: dict[str, Any] = {}
    for name, rows in (
        ("Bill of materials", bom),
        ("Estimates", estimates),
        ("Published runs", t.published_run_rows(plan.build)),
        ("Measured results", t.run_rows(plan)),
        ("Gate verdicts", t.verdict_rows(plan)),
    ):
        if rows:
            out[name] = _frame(rows, clean)
    return out


def render_csv(plan: Plan) -> bytes:
    """One rectangular CSV: bill of materials rows (the plan's and each alternative's, column
    `build`) then measured-result rows, told apart by the `section` column."""
    import pandas as pd

    frames = []
    bom = bom_with_totals(plan)
    if bom:
        frames.append(_frame(bom, section="bill_of_materials"))
    runs = t.run_rows(plan)
    if runs:
        frames.append(_frame(runs, section="measured_results"))
    if not frames:
        frame = pd.DataFrame({"section": [], "machine": []})
    elif len(frames) == 1:
        frame = frames[0]
    else:
        frame = pd.concat(frames, ignore_index=True, sort=False)
    # Every text cell quoted (OWASP's advice too): a CR or LF inside a name stays in its cell.
    return frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).encode(
        "utf-8"
    )


def render_xlsx(plan: Plan) -> bytes:
    import pandas as pd
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    data = sheets(plan, clean=lambda v: ILLEGAL_CHARACTERS_RE.sub("", v))
    if not data:
        data = {"Bill of materials": pd.DataFrame({"machine": []})}
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        for name, frame in data.items():
            frame.to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            for col_cells in sheet.columns:  # readable widths
                width = max(len(str(c.value or "")) for c in col_cells[:200])
                sheet.column_dimensions[col_cells[0].column_letter].width = min(max(width, 8), 60)
    return buf.getvalue()
