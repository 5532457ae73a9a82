"""Plan -> Markdown (GitHub-flavoured tables). User text is escaped so a plan or model name
cannot break a table, start a heading or inject HTML into a Markdown viewer."""

from __future__ import annotations

import re
from collections.abc import Iterable

from forgeplanner.domain.plan import Plan
from forgeplanner.export.report import Block, Chart, Code, Heading, Para, Table, report_blocks

_SPECIAL = re.compile(r"([\\`*{}\[\]<>|#])")
# An underscore inside a word (Q4_K_M, llama_cpp) is literal in CommonMark/GFM; only one at a
# word boundary can open or close emphasis.
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def md_escape(text: str) -> str:
    """Escape Markdown and inline-HTML syntax; line breaks become spaces (one cell, one line)."""
    text = " ".join(text.splitlines())
    text = _SPECIAL.sub(r"\\\1", text)
    return _EDGE_UNDERSCORE.sub(r"\\_", text)


def render_markdown(plan: Plan) -> str:
    return blocks_markdown(report_blocks(plan))


def blocks_markdown(blocks: Iterable[Block]) -> str:
    """Any report's blocks (a plan's, a lab record's) as Markdown."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + md_escape(block.text), ""]
        elif isinstance(block, Para):
            lines += [md_escape(block.text), ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(md_escape(h) for h in block.headers) + " |")
            lines.append("|" + "|".join("---" for _ in block.headers) + "|")
            for row in block.rows:
                lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
            lines.append("")
        elif isinstance(block, Code):
            fence = "````" if "```" in block.text else "```"
            lines += [fence, block.text.replace("`" * len(fence), ""), fence, ""]
        elif isinstance(block, Chart):
            continue  # charts are in the HTML and PDF exports; the tables carry the numbers
    return "\n".join(lines).rstrip() + "\n"
