"""A lab record as a report (Markdown, HTML, PDF) and as the sealed JSON record, written
atomically. The report is made from the sealed record, so every format says the same and
names the seal that `forgeplanner evidence verify` checks in the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forgeplanner.errors import ForgePlannerError
from forgeplanner.export.report import Block, Code, Heading, Para, Table

FORMATS: tuple[str, ...] = ("md", "html", "pdf", "json")
# columns of a table-valued sheet field, in reading order (L-002's ladder: what was run, then
# decode and prefill each as measured, estimated, error)
COLUMN_ORDER: tuple[str, ...] = (
    "model", "quant", "run_id", "file_gib",
    "decode_tps", "estimate_decode_tps", "error_decode_pct",
    "prefill_tps", "estimate_prefill_tps", "error_prefill_pct",
)  # fmt: skip


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    if isinstance(v, list):
        if v and all(isinstance(x, dict) for x in v):
            return f"{len(v)} rows (table below)"
        return ", ".join(_cell(x) for x in v)
    return str(v)


def sheet_cell(v: Any) -> str:
    """One recording-sheet value as text (a table of rows is given by `sheet_tables`)."""
    return _cell(v)


def sheet_tables(sheet: dict[str, Any], labels: dict[str, str]) -> list[tuple[str, Table]]:
    """The recording-sheet fields that hold rows (L-002's ladder) as tables of their own."""
    out = []
    for key, rows in sheet.items():
        if not (isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)):
            continue
        keys = dict.fromkeys(k for r in rows for k in r)  # stored records sort their keys
        headers = tuple(
            [k for k in COLUMN_ORDER if k in keys] + [k for k in keys if k not in COLUMN_ORDER]
        )
        body = tuple(tuple(_cell(r.get(h)) for h in headers) for r in rows)
        out.append((labels.get(key, key), Table(headers, body)))
    return out


def lab_blocks(record: dict[str, Any]) -> list[Block]:
    from forgeplanner.labs.protocols import get_lab

    lab = record["lab"]
    protocol = get_lab(lab["lab"])
    units = {f.key: f.unit for f in protocol.sheet}
    labels = {f.key: f.label for f in protocol.sheet}
    out: list[Block] = [
        Heading(1, f"{lab['lab']} {lab['title']}"),
        Para(f"Module {lab['module']}. {lab['goal']}"),
        Para(f"Status: {lab['status']}"
             + (f" (missing: {', '.join(lab['missing'])})" if lab.get("missing") else "")
             + f". Lab record {record['record_id']}, sealed {record['created_at']}."),
    ]  # fmt: skip
    m = lab.get("machine") or {}
    if any(m.values()):
        out.append(Para("Machine: " + ", ".join(f"{k} {v}" for k, v in m.items() if v)))
    out.append(Heading(2, "Steps"))
    out.append(
        Table(
            ("Step", "Status", "Note"),
            tuple((st["title"], st["status"], st.get("note", "") or "") for st in lab["steps"]),
        )
    )
    cmds = [c for st in lab["steps"] for c in st.get("commands", [])]
    if cmds:
        out.append(Heading(3, "Commands"))
        out.append(Code("\n".join(f"$ {c}" for c in cmds)))
    out.append(Heading(2, "Recording sheet"))
    out.append(
        Table(
            ("Field", "Value", "Unit"),
            tuple((labels.get(k, k), _cell(v), units.get(k, "")) for k, v in lab["sheet"].items()),
        )
    )
    for label, table in sheet_tables(lab["sheet"], labels):
        out.append(Heading(3, label))
        out.append(table)
    out.append(Heading(2, "Observations"))
    for o in lab["observations"]:
        out.append(Heading(3, o["prompt"]))
        out.append(Para(o["answer"] or "(not answered yet)"))
    gates = [e for e in record["evidence"] if e["kind"] == "gate"]
    signoffs = [e for e in record["evidence"] if e["kind"] == "signoff"]
    if gates:
        out.append(Heading(2, "Gate verdicts"))
        out.append(
            Table(
                ("Evidence", "Verdict", "Plan sha256", "Latency ms", "Reasons"),
                tuple(
                    (str(e["id"]), e["body"]["outcome"], e["body"]["plan_sha256"][:12],
                     f"{e['body']['latency_ms']:.1f}",
                     "; ".join(v["reason"] for v in e["body"]["verdicts"]
                               if v["outcome"] != "ALLOW") or "all rules ALLOW")
                    for e in gates
                ),
            )
        )  # fmt: skip
    if signoffs:
        out.append(Heading(2, "Sign-offs"))
        out.append(
            Table(
                ("Who", "When (UTC)", "Why", "Plan sha256"),
                tuple((e["body"]["who"], e["body"]["when"], e["body"]["why"],
                       e["body"]["plan_sha256"][:12]) for e in signoffs),
            )
        )  # fmt: skip
    if record["runs"]:
        out.append(Heading(2, "Benchmark runs"))
        out.append(
            Table(
                ("Run", "Runner", "Model", "Decode tok/s", "Prefill tok/s", "Raw sha256"),
                tuple((r["run_id"], r["runner"], r.get("model") or "-",
                       _cell((r.get("measured") or {}).get("decode_tps")),
                       _cell((r.get("measured") or {}).get("prefill_tps")),
                       r["raw_sha256"][:12]) for r in record["runs"]),
            )
        )  # fmt: skip
    out.append(Heading(2, "Integrity"))
    out.append(Para(f"Seal (SHA-256 over the canonical JSON record): {record['digests']['seal']}. "
                    "Check the JSON export with `forgeplanner evidence verify FILE`."))  # fmt: skip
    return out


def sealed_record(record_id: int, store: Any, now: str) -> dict[str, Any]:
    from forgeplanner.evidence.lab_record import build_lab_record
    from forgeplanner.store import BenchRunRepo, EvidenceRepo

    with store.session() as s:
        view = EvidenceRepo(s).get(record_id)
        if view.kind != "lab":
            raise ForgePlannerError(
                f"evidence record {record_id} is a {view.kind} record, not a lab record"
            )
        runs = [BenchRunRepo(s).get(i, raw=True) for i in view.run_ids]
        evidence = [EvidenceRepo(s).get(i) for i in view.body.get("evidence_ids", [])]
    return build_lab_record(view, runs, evidence, now)


def export_lab(record_id: int, fmt: str, out: str | Path, store: Any, now: str) -> Path:
    from forgeplanner.evidence.record import dumps
    from forgeplanner.plan.files import atomic_write

    if fmt not in FORMATS:
        raise ForgePlannerError(f"unknown lab export format '{fmt}'; valid: {', '.join(FORMATS)}")
    out = Path(out)
    record = sealed_record(record_id, store, now)
    if fmt == "json":
        atomic_write(out, dumps(record).encode("utf-8"))
        return out
    blocks = lab_blocks(record)
    title = f"{record['lab']['lab']} lab record {record_id}"
    if fmt == "md":
        from forgeplanner.export.markdown import blocks_markdown

        atomic_write(out, blocks_markdown(blocks).encode("utf-8"))
    elif fmt == "html":
        from forgeplanner.export.html import blocks_html

        atomic_write(out, blocks_html(blocks, title).encode("utf-8"))
    else:
        from forgeplanner.export.pdf import write_blocks_pdf

        write_blocks_pdf(blocks, out, title=title, subject="Lab record")
    return out


def record_json(record_id: int, store: Any, now: str) -> str:
    return json.dumps(sealed_record(record_id, store, now), indent=2, ensure_ascii=False)
