"""`export_plan`: one entry point for every export format, each written atomically.

PDF is drawn with reportlab (forgeplanner.export.pdf), so every format exports headless,
without Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from forgeplanner.domain.plan import Plan
from forgeplanner.errors import ForgePlannerError
from forgeplanner.evidence.record import build_record
from forgeplanner.evidence.record import dumps as record_dumps
from forgeplanner.fileio import atomic_write
from forgeplanner.governance.gate import GateResult
from forgeplanner.governance.policy import Policy

FORMATS: tuple[str, ...] = ("md", "html", "pdf", "csv", "xlsx", "json")
SUFFIXES = {
    "md": ".md",
    "html": ".html",
    "pdf": ".pdf",
    "csv": ".csv",
    "xlsx": ".xlsx",
    "json": ".json",
}


def render_bytes(
    plan: Plan,
    fmt: str,
    *,
    now: str,
    gate: GateResult | None = None,
    policy: Policy | None = None,
) -> bytes:
    """Every format but PDF, as bytes."""
    if fmt == "md":
        from forgeplanner.export.markdown import render_markdown

        return render_markdown(plan).encode("utf-8")
    if fmt == "html":
        from forgeplanner.export.html import render_html

        return render_html(plan).encode("utf-8")
    if fmt == "csv":
        from forgeplanner.export.tabular import render_csv

        return render_csv(plan)
    if fmt == "xlsx":
        from forgeplanner.export.tabular import render_xlsx

        return render_xlsx(plan)
    if fmt == "json":
        return record_dumps(build_record(plan, now, gate, policy)).encode("utf-8")
    raise ForgePlannerError(f"unknown export format '{fmt}'; valid: {', '.join(FORMATS)}")


def export_plan(
    plan: Plan,
    fmt: str,
    out: str | Path,
    *,
    now: str,
    gate: GateResult | None = None,
    policy: Policy | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Write `plan` as `fmt` to `out`. `warn` hears what an export had to leave out or shorten
    (a PDF chart of a very large plan), as one line each."""
    out = Path(out)
    if fmt not in FORMATS:
        raise ForgePlannerError(f"unknown export format '{fmt}'; valid: {', '.join(FORMATS)}")
    if fmt == "pdf":
        from forgeplanner.export.pdf import write_pdf

        return write_pdf(plan, out, warn=warn)
    atomic_write(out, render_bytes(plan, fmt, now=now, gate=gate, policy=policy))
    return out
