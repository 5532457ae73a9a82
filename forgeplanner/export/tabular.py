"""Plan -> CSV and XLSX: bill of materials, estimates (with their likely ranges), the published
runs nearest them and measured results (pandas for CSV, openpyxl for XLSX).

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
        "machine_name": label,
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
    """Sheet name -> DataFrame of raw values (already neutralised; keys as in `tables`). Empty
    sections are left out. (The XLSX export lays these out with readable headers.)"""
    out: dict[str, Any] = {}
    for name, rows in _sheet_rows(plan).items():
        if rows:
            out[name] = _frame(rows, clean)
    return out


def _sheet_rows(plan: Plan) -> dict[str, list[dict[str, Any]]]:
    estimates = [dict(r, build="this plan") for r in t.estimate_rows(plan.build)]
    for alt in plan.alternatives:
        estimates.extend(dict(r, build=alt.name) for r in t.estimate_rows(alt.build))
    return {
        "Bill of materials": bom_with_totals(plan),
        "Estimates": estimates,
        "Published runs": t.published_run_rows(plan.build),
        "Measured results": t.run_metric_rows(plan),
        "Gate verdicts": t.verdict_rows(plan),
    }


# XLSX columns per sheet: (key, header with its unit, number format, transform). Bytes become
# GiB (binary, 2^30) in the sheet; every number keeps a number format, so it sorts and sums.
_GIB = 1 << 30
USD_FMT = '"$"#,##0'
XLSX_COLUMNS: dict[str, list[tuple[str, str, str | None, Any]]] = {
    "Bill of materials": [
        ("build", "Build", None, None),
        ("machine_name", "Machine", None, None),
        ("config_id", "Configuration id", None, None),
        ("count", "Count", "0", None),
        ("unit_price_usd", "Unit price (USD)", USD_FMT, None),
        ("line_total_usd", "Line total (USD)", USD_FMT, None),
        ("price_basis", "Price basis", None, None),
        ("condition", "Condition", None, None),
        ("price_as_of", "Price date", None, None),
        ("idle_w", "Idle power (W)", "#,##0", None),
        ("max_w", "Max power (W)", "#,##0", None),
        ("annual_kwh", "Energy per year (kWh)", "#,##0", None),
        ("annual_cost", "Cost per year", "#,##0.00", None),
        ("price_source", "Source / basis", None, None),
    ],
    "Estimates": [
        ("build", "Build", None, None),
        ("model_id", "Model", None, None),
        ("quant", "Quantization", None, None),
        ("runtime", "Runtime", None, None),
        ("context", "Context (tokens)", "#,##0", None),
        ("target_name", "Machine", None, None),
        ("verdict", "Verdict", None, None),
        ("weights_bytes", "Weights (GiB)", "0.0", _GIB),
        ("kv_cache_bytes", "KV cache (GiB)", "0.00", _GIB),
        ("compute_bytes", "Compute buffer (GiB)", "0.00", _GIB),
        ("runtime_bytes", "Runtime (GiB)", "0.00", _GIB),
        ("total_bytes", "Total (GiB)", "0.0", _GIB),
        ("gpu_limit_bytes", "GPU limit (GiB)", "0.0", _GIB),
        ("physical_bytes", "Physical memory (GiB)", "0", _GIB),
        ("headroom_bytes", "Headroom (GiB)", "+0.0;-0.0;0.0", _GIB),
        ("decode_tps", "Decode (tokens/s)", "0.0", None),
        ("decode_tps_low", "Decode, likely low (tokens/s)", "0.0", None),
        ("decode_tps_high", "Decode, likely high (tokens/s)", "0.0", None),
        ("prefill_tps", "Prefill (tokens/s)", "0.0", None),
        ("prefill_tps_low", "Prefill, likely low (tokens/s)", "0.0", None),
        ("prefill_tps_high", "Prefill, likely high (tokens/s)", "0.0", None),
        ("ttft_s", "Time to first token (s)", "0.00", None),
        ("max_context_that_fits", "Largest context (tokens)", "#,##0", None),
        ("sysctl_command", "Raise the GPU limit with", None, None),
        ("speed_basis", "Speed basis", None, None),
        ("speed_range_basis", "Likely range basis", None, None),
    ],
    "Published runs": [
        ("estimate", "Nearest to the estimate", None, None),
        ("kind", "Kind", None, None),
        ("tokens_per_s", "Measured (tokens/s)", "#,##0.0", None),
        ("chip", "Chip", None, None),
        ("runtime", "Runtime", None, None),
        ("model", "Model", None, None),
        ("test", "Test", None, None),
        ("date", "Date", None, None),
        ("source", "Source", None, None),
    ],
    "Measured results": [
        ("run_id", "Run", None, None),
        ("runner", "Runner", None, None),
        ("model", "Model", None, None),
        ("quant", "Quantization", None, None),
        ("label", "Metric", None, None),
        ("unit", "Unit", None, None),
        ("estimated", "Estimated", "#,##0.00", None),
        ("measured", "Measured", "#,##0.00", None),
        ("error_pct", "Error (%)", "+0.0;-0.0;0.0", None),
        ("measured_on", "Measured on", None, None),
        ("in_plan", "Machine in the plan", None, None),
        ("warning", "Warning", None, None),
        ("started_at", "Started", None, None),
    ],
    "Gate verdicts": [
        ("rule", "Rule", None, None),
        ("subject", "Subject", None, None),
        ("outcome", "Verdict", None, None),
        ("observed", "Observed", None, None),
        ("limit", "Limit", None, None),
        ("reason", "Reason", None, None),
    ],
}


def render_csv(plan: Plan) -> bytes:
    """One rectangular CSV: bill of materials rows (the plan's and each alternative's, column
    `build`) then measured-result rows (one per run and metric, with the estimate, the error,
    the machine it ran on and a warning when that machine is not in the plan), told apart by the
    `section` column."""
    import pandas as pd

    frames = []
    bom = bom_with_totals(plan)
    if bom:
        frames.append(_frame(bom, section="bill_of_materials"))
    runs = t.run_metric_rows(plan)
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
    """The workbook: one sheet per section, readable headers with units, number formats,
    frozen header row and a filter on it; column widths from the content."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    def clean(v: str) -> str:
        return ILLEGAL_CHARACTERS_RE.sub("", v)

    book = Workbook()
    book.remove(book.active)
    data = {k: v for k, v in _sheet_rows(plan).items() if v}
    if not data:
        data = {"Bill of materials": []}
    bold = Font(bold=True)
    for name, rows in data.items():
        ws = book.create_sheet(name)
        columns = XLSX_COLUMNS[name]
        ws.append([header for _, header, _, _ in columns])
        for cell in ws[1]:
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in rows:
            values = []
            for key, _header, _fmt, scale in columns:
                v = row.get(key)
                if isinstance(v, bool):
                    v = "yes" if v else "no"
                elif isinstance(v, str):
                    v = neutralise(clean(v))
                elif scale and isinstance(v, (int, float)):
                    v = v / scale
                values.append(v)
            ws.append(values)
        widths = [len(h) for _, h, _, _ in columns]
        for r, row in enumerate(ws.iter_rows(min_row=2), start=2):
            for c, cell in enumerate(row):
                fmt = columns[c][2]
                if fmt and isinstance(cell.value, (int, float)):
                    cell.number_format = fmt
                text = (
                    f"{cell.value:,.2f}" if isinstance(cell.value, float) else str(cell.value or "")
                )
                widths[c] = max(widths[c], min(len(text), 60))
            if r > 2000:
                break
        for c, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(c)].width = min(max(w + 2, 8), 62)
        ws.freeze_panes = "A2"
        if ws.max_row > 1:
            ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
