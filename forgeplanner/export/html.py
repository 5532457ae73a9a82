"""Plan -> one self-contained HTML file: inline CSS, charts as inline SVG, no script, no
external reference (a Content-Security-Policy forbids loading anything). Every piece of user
text is HTML-escaped."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from forgeplanner.domain.plan import Plan
from forgeplanner.export.charts import all_charts
from forgeplanner.export.report import Block, Chart, Code, Heading, Para, Table, report_blocks

CSS = """
body { font-family: -apple-system, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
td.DENY { background: #f8d7da; } td.ESCALATE { background: #fff3cd; }
td.ALLOW { background: #d4edda; }
"""


def render_html(plan: Plan, *, charts: str = "svg") -> str:
    """`charts="svg"` inlines the SVG; `charts="img"` references `chart:<name>` images (the PDF
    writer supplies them as rendered resources, since Qt's rich text has no SVG element)."""
    return blocks_html(
        report_blocks(plan), f"{plan.name} - ForgePlanner build plan", all_charts(plan), charts
    )


def blocks_html(
    blocks: Iterable[Block], title: str, svgs: dict[str, str] | None = None, charts: str = "svg"
) -> str:
    """Any report's blocks (a plan's, a lab record's) as one self-contained HTML page."""
    svgs = svgs or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            parts.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append('<table border="1" cellspacing="0" cellpadding="3"><thead><tr>')
            parts.extend(f"<th>{escape(h)}</th>" for h in block.headers)
            parts.append("</tr></thead><tbody>")
            verdict_col = block.headers.index("Verdict") if "Verdict" in block.headers else -1
            for row in block.rows:
                cells = []
                for i, c in enumerate(row):
                    cls = (
                        f' class="{c}"'
                        if i == verdict_col and c in ("ALLOW", "DENY", "ESCALATE")
                        else ""
                    )
                    cells.append(f"<td{cls}>{escape(c)}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</tbody></table>")
        elif isinstance(block, Code):
            parts.append(f"<pre>{escape(block.text)}</pre>")
        elif isinstance(block, Chart) and block.name in svgs:
            caption = escape(block.caption)
            if charts == "svg":
                parts.append(
                    f"<figure>{svgs[block.name]}<figcaption>{caption}</figcaption></figure>"
                )
            else:  # Qt rich text knows no <figure>: plain paragraphs keep the order
                parts.append(f'<p><img src="chart:{block.name}"></p><p><i>{caption}</i></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
