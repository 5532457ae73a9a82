"""Plan -> PDF with reportlab (platypus page layout, reportlab.graphics charts); no Qt.

The report is the same list of blocks the Markdown and HTML exports render
(forgeplanner.export.report): headings, paragraphs, tables, code and charts, in the same order.
Tables repeat their header row on every page and never split a row across pages; header cells
wrap at word boundaries (a column is never narrower than its header's longest word when the
page allows). Charts are the HTML's figures (forgeplanner.export.charts) drawn as vector
graphics.

Large plans stay bounded in time and memory: tables are LongTables (split in linear time), the
memory chart is cut into page-sized parts, the speed chart into parts of at most as many lines
as it has colours, and a chart shows at most `MAX_CHART_ITEMS` estimates; past that the PDF
says so under the chart and the caller is warned (every figure stays in the tables).

`write_pdf` renders to a temporary file in the target's directory, checks the result (not
empty, starts with %PDF-), then replaces the target atomically; the temporary file goes on any
failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from forgeplanner.domain.plan import Plan
from forgeplanner.errors import ForgePlannerError
from forgeplanner.export import charts as ch
from forgeplanner.export.report import Block, Chart, Code, Heading, Para, Table, report_blocks

MAX_CHART_ITEMS = 60  # estimates drawn per chart; the rest are in the Estimates table
SPEED_LINES_PER_PART = len(ch.LINE_COLOURS)  # one colour per line within a part
FONT, FONT_BOLD, FONT_ITALIC, FONT_MONO = (
    "Helvetica",
    "Helvetica-Bold",
    "Helvetica-Oblique",
    "Courier",
)
TABLE_FONT_SIZE = 7.5
CELL_PAD = 3.0  # points, each side
VERDICT_FILL = {"ALLOW": "#d4edda", "DENY": "#f8d7da", "ESCALATE": "#fff3cd"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Warn = Callable[[str], None]


def _text(value: str) -> str:
    """User text as Paragraph markup: control characters dropped, markup characters escaped,
    line breaks kept."""
    return escape(_CONTROL.sub("", value)).replace("\n", "<br/>")


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    body = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=12.5, spaceAfter=5)
    heads = {
        level: ParagraphStyle(
            f"h{level}",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=size,
            leading=size * 1.25,
            spaceBefore=size * 0.8,
            spaceAfter=size * 0.4,
            keepWithNext=1,
        )
        for level, size in ((1, 18.0), (2, 14.0), (3, 12.0), (4, 10.5))
    }
    return {
        "body": body,
        "heads": heads,
        "caption": ParagraphStyle(
            "caption", parent=body, fontName=FONT_ITALIC, fontSize=8.5, textColor="#555555"
        ),
        "note": ParagraphStyle("note", parent=body, fontSize=8.5, textColor="#8a4b00"),
        "cell": ParagraphStyle(
            "cell", fontName=FONT, fontSize=TABLE_FONT_SIZE, leading=TABLE_FONT_SIZE * 1.2
        ),
        "head_cell": ParagraphStyle(
            "head_cell",
            fontName=FONT_BOLD,
            fontSize=TABLE_FONT_SIZE,
            leading=TABLE_FONT_SIZE * 1.2,
            splitLongWords=0,  # a header breaks between words only
        ),
        "code": ParagraphStyle(
            "code", fontName=FONT_MONO, fontSize=7.5, leading=9.0, backColor="#f6f6f6"
        ),
    }


def column_widths(
    headers: Sequence[str], rows: Sequence[Sequence[str]], available: float
) -> list[float]:
    """Widths (points) that fit `available`: each column gets at least its header's longest
    word (so headers wrap at word boundaries) and the longest token of its cells up to a
    third of the page; the rest is shared in proportion to how much wider the column's widest
    cell would like to be."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    def width(text: str, font: str = FONT) -> float:
        return stringWidth(text, font, TABLE_FONT_SIZE) + 2 * CELL_PAD + 1

    cap = available / 3
    minimum, natural = [], []
    for i, header in enumerate(headers):
        cells = [str(r[i]) for r in rows if i < len(r)]
        head_word = max((width(w, FONT_BOLD) for w in header.split()), default=0.0)
        token = max((width(t) for c in cells for t in c.split()), default=0.0)
        widest = max([width(header, FONT_BOLD)] + [width(c) for c in cells])
        low = max(head_word, min(token, cap))
        minimum.append(low)
        natural.append(max(low, min(widest, cap)))
    if sum(natural) <= available:
        return natural
    if sum(minimum) >= available:  # even the minimums do not fit: scale them down
        return [w * available / sum(minimum) for w in minimum]
    spare = available - sum(minimum)
    wants = [n - m for n, m in zip(natural, minimum, strict=True)]
    return [m + spare * w / sum(wants) for m, w in zip(minimum, wants, strict=True)]


def _table(block: Table, styles: dict[str, Any], available: float):
    from reportlab.lib import colors
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import LongTable, Paragraph, TableStyle

    widths = column_widths(block.headers, block.rows, available)

    def cell(value: str, col: int, style: str, font: str) -> Any:
        # A Paragraph only where the text must wrap: a plain string costs far less to lay out,
        # which is what keeps a table of thousands of cells fast.
        text = _CONTROL.sub("", value)
        room = widths[col] - 2 * CELL_PAD
        if "\n" not in text and stringWidth(text, font, TABLE_FONT_SIZE) <= room:
            return text
        return Paragraph(_text(value), styles[style])

    head = [cell(h, i, "head_cell", FONT_BOLD) for i, h in enumerate(block.headers)]
    body = [[cell(str(c), i, "cell", FONT) for i, c in enumerate(row)] for row in block.rows]
    table = LongTable([head, *body], colWidths=widths, repeatRows=1, splitInRow=0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, TABLE_FONT_SIZE, TABLE_FONT_SIZE * 1.2),
        ("FONT", (0, 0), (-1, 0), FONT_BOLD, TABLE_FONT_SIZE, TABLE_FONT_SIZE * 1.2),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#cccccc")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f2f2")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if "Verdict" in block.headers:  # gate verdicts coloured as in the HTML export
        col = block.headers.index("Verdict")
        for r, row in enumerate(block.rows, start=1):
            fill = VERDICT_FILL.get(row[col]) if col < len(row) else None
            if fill:
                commands.append(("BACKGROUND", (col, r), (col, r), colors.HexColor(fill)))
    table.setStyle(TableStyle(commands))
    return table


def _code(block: Code, styles: dict[str, Any], available: float):
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Preformatted

    per_line = max(20, int(available / stringWidth("M", FONT_MONO, styles["code"].fontSize)) - 2)
    return Preformatted(_CONTROL.sub("", block.text), styles["code"], maxLineLength=per_line)


# -- charts ---------------------------------------------------------------------------------


def drawing(fig: ch.Figure, max_width: float, max_height: float):
    """A Figure as a reportlab Drawing (y flipped: the figure's y runs down), scaled down to
    fit when it is larger than the space."""
    from reportlab.graphics.shapes import Circle, Drawing, Group, Line, PolyLine, Rect, String
    from reportlab.lib.colors import HexColor

    H = fig.height

    def colour(value: str | None):
        if value is None:
            return None
        if len(value) == 4:  # CSS shorthand #rgb = #rrggbb; reportlab reads it as a number
            value = "#" + "".join(c * 2 for c in value[1:])
        return HexColor(value)

    group = Group()
    group.add(Rect(0, 0, fig.width, H, fillColor=HexColor("#ffffff"), strokeColor=None))
    for s in fig.shapes:
        if isinstance(s, ch.Text):
            font = FONT_BOLD if s.bold else FONT
            text = String(0, 0, _CONTROL.sub("", s.text), fontName=font, fontSize=s.size)
            text.textAnchor = s.anchor
            text.fillColor = colour(ch.TEXT_COLOUR)
            holder = Group(text)
            holder.translate(s.x, H - s.y)
            if s.rotate:
                holder.rotate(-s.rotate)  # the figure's y runs down: the angle flips
            group.add(holder)
        elif isinstance(s, ch.Line):
            group.add(
                Line(
                    s.x1,
                    H - s.y1,
                    s.x2,
                    H - s.y2,
                    strokeColor=colour(s.stroke),
                    strokeWidth=1 if s.width is None else s.width,
                    strokeDashArray=list(s.dash) or None,
                )
            )
        elif isinstance(s, ch.Rect):
            group.add(
                Rect(
                    s.x,
                    H - s.y - s.h,
                    s.w,
                    s.h,
                    fillColor=colour(s.fill),
                    strokeColor=colour(s.stroke),
                    strokeWidth=1,
                )
            )
        elif isinstance(s, ch.PolyLine):
            flat = [v for x, y in s.points for v in (x, H - y)]
            group.add(PolyLine(flat, strokeColor=colour(s.stroke), strokeWidth=s.width))
        else:
            group.add(Circle(s.cx, H - s.cy, s.r, fillColor=colour(s.fill), strokeColor=None))
    scale = min(1.0, max_width / fig.width, max_height / fig.height)
    group.scale(scale, scale)
    d = Drawing(fig.width * scale, fig.height * scale)
    d.add(group)
    d.hAlign = "LEFT"
    return d


def _parts(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def chart_figures(plan: Plan, name: str, page_height: float) -> tuple[list[ch.Figure], str]:
    """The figures of one chart for the PDF (page-sized parts) and a note when it shows only
    some of the estimates ("" otherwise)."""
    if name == "memory":
        every = list(plan.build.estimates)
        shown = every[:MAX_CHART_ITEMS]
        fixed = ch.MEMORY_TOP + ch.MEMORY_BOTTOM + 40  # margins and the caption under it
        per_page = max(1, int((page_height - fixed) // (ch.MEMORY_BAR_H + ch.MEMORY_GAP)))
        figs = [ch.memory_figure(plan, part) for part in _parts(shown, per_page)]
    elif name == "speed":
        every = ch.speed_series(plan)
        shown = every[:MAX_CHART_ITEMS]
        figs = [
            ch.speed_figure(plan, part, height=300 + 18 * len(part))
            for part in _parts(shown, SPEED_LINES_PER_PART)
        ]
    else:
        every = shown = []
        figs = [ch.price_speed_figure(plan)]
    note = ""
    if len(shown) < len(every):
        note = (
            f"This chart shows the first {len(shown)} of {len(every)} estimates; the Estimates "
            "table lists every one."
        )
    return [f for f in figs if f is not None], note


# -- document -------------------------------------------------------------------------------


def _page_footer(title: str):
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor("#777777")
        width, _ = doc.pagesize
        canvas.drawRightString(
            width - doc.rightMargin,
            doc.bottomMargin / 2,
            f"{title} - page {canvas.getPageNumber()}",
        )
        canvas.restoreState()

    return draw


def render_pdf(plan: Plan, path: str | Path, *, warn: Warn | None = None) -> None:
    """Write the report of `plan` as a PDF at `path` (as it is: `write_pdf` is the atomic one)."""
    render_blocks(
        report_blocks(plan),
        path,
        title=f"{plan.name} - ForgePlanner build plan",
        subject="Build plan",
        charts=lambda name, height: chart_figures(plan, name, height),
        warn=warn,
    )


ChartSource = Callable[[str, float], tuple[list[Any], str]]


def render_blocks(
    blocks: Iterable[Block],
    path: str | Path,
    *,
    title: str,
    subject: str,
    charts: ChartSource | None = None,
    warn: Warn | None = None,
) -> None:
    """Write report blocks (forgeplanner.export.report) as a PDF at `path`: the plan's report,
    or any other report made of the same blocks (a lab record). `charts(name, page_height)`
    gives a Chart block's figures and note; without it Chart blocks are left out."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

    doc = SimpleDocTemplate(
        str(path),
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=_CONTROL.sub("", title),
        author="ForgePlanner",
        creator="ForgePlanner",
        subject=subject,
    )
    styles = _styles()
    width, height = doc.width, doc.height
    story: list[Any] = []
    for block in blocks:
        if isinstance(block, Heading):
            story.append(Paragraph(_text(block.text), styles["heads"][min(block.level, 4)]))
        elif isinstance(block, Para):
            story.append(Paragraph(_text(block.text), styles["body"]))
        elif isinstance(block, Table):
            story.append(_table(block, styles, width))
            story.append(Spacer(1, 6))
        elif isinstance(block, Code):
            story.append(_code(block, styles, width))
            story.append(Spacer(1, 6))
        elif isinstance(block, Chart) and charts is not None:
            figs, note = charts(block.name, height)
            if not figs:  # no data for this chart, as in the HTML export
                continue
            caption = Paragraph(_text(block.caption), styles["caption"])
            for i, fig in enumerate(figs):
                parts = [drawing(fig, width, height - 30)]
                if i == len(figs) - 1:
                    parts.append(caption)
                story.append(KeepTogether(parts))
            if note:
                story.append(Paragraph(_text(note), styles["note"]))
                if warn is not None:
                    warn(f"PDF: {block.caption.lower()}: {note}")
    doc.build(story, onFirstPage=_page_footer(title), onLaterPages=_page_footer(title))


def check_pdf(path: str | Path) -> None:
    """A written PDF is not empty and starts with the PDF header; ForgePlannerError if not."""
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(5)
    if size == 0 or head != b"%PDF-":
        raise ForgePlannerError(
            f"{p}: the PDF renderer wrote {size} bytes starting {head!r}, not a PDF; "
            "nothing was replaced"
        )


def write_pdf(plan: Plan, out: str | Path, *, warn: Warn | None = None) -> Path:
    """Render to a temporary file beside `out`, check it, then replace `out` atomically; the
    temporary file is removed on any failure and `out` is left as it was."""
    from forgeplanner.fileio import atomic_path, pdf_verifier

    # check_pdf names what was wrong; pdf_verifier also refuses a file cut short (no %%EOF).
    with atomic_path(out, verify=pdf_verifier) as tmp:
        render_pdf(plan, tmp, warn=warn)
        check_pdf(tmp)
    return Path(out)


def write_blocks_pdf(blocks: Iterable[Block], out: str | Path, *, title: str, subject: str) -> Path:
    """`render_blocks` written as `write_pdf` writes a plan: checked, then atomically."""
    from forgeplanner.fileio import atomic_path, pdf_verifier

    with atomic_path(out, verify=pdf_verifier) as tmp:
        render_blocks(blocks, tmp, title=title, subject=subject)
        check_pdf(tmp)
    return Path(out)
