"""Report blocks -> PDF with reportlab (no Qt): headings, paragraphs, tables and code, A4 with
page numbers. Used for lab records."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape

from forgeplanner.export.report import Block, Code, Heading, Para, Table


def write_blocks_pdf(blocks: Iterable[Block], title: str, out: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Paragraph,
        Preformatted,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )
    from reportlab.platypus import Table as RLTable

    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=7.5, leading=9)
    head = styles["BodyText"].clone("head", fontSize=7.5, leading=9, fontName="Helvetica-Bold")
    code = styles["Code"].clone("code", fontSize=7, leading=8.5)
    width = A4[0] - 30 * mm
    story = []
    for b in blocks:
        if isinstance(b, Heading):
            style = styles[f"Heading{min(max(b.level, 1), 4)}"]
            story.append(Paragraph(escape(b.text), style))
        elif isinstance(b, Para):
            story.append(Paragraph(escape(b.text), styles["BodyText"]))
        elif isinstance(b, Code):
            story.append(Preformatted(b.text, code, maxLineLength=110))
        elif isinstance(b, Table):
            data = [[Paragraph(escape(h), head) for h in b.headers]]
            data += [[Paragraph(escape(c), cell) for c in row] for row in b.rows]
            col = width / max(1, len(b.headers))
            t = RLTable(data, colWidths=[col] * len(b.headers), repeatRows=1)
            t.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f2f2")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story.append(t)
        story.append(Spacer(1, 2 * mm))

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, f"{title} - page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(out), pagesize=A4, title=title, author="ForgePlanner",
        leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
    )  # fmt: skip
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
