"""The human-readable report as a list of blocks, rendered by Markdown, HTML and PDF.

One description of what the report says (sections, tables, charts) and one formatting of every
number; the renderers only decide how a heading, paragraph, table, chart or code block looks.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.domain.plan import Build, Plan
from forgeplanner.export import tables as t


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Para:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # key of charts.all_charts
    caption: str


@dataclass(frozen=True, slots=True)
class Code:
    text: str


Block = Heading | Para | Table | Chart | Code


def _s(v: object) -> str:
    return "" if v is None else str(v)


def _build_blocks(build: Build, level: int) -> list[Block]:
    out: list[Block] = []
    bom = t.bom_rows(build)
    out.append(Heading(level, "Bill of materials"))
    if bom:
        out.append(
            Table(
                (
                    "Machine",
                    "Configuration",
                    "Count",
                    "Unit price",
                    "Line total",
                    "Basis",
                    "Price date",
                    "Idle W",
                    "Max W",
                ),
                tuple(
                    (
                        r["machine"],
                        r["config_id"],
                        str(r["count"]),
                        t.usd(r["unit_price_usd"]),
                        t.usd(r["line_total_usd"]),
                        f"{r['price_basis']} ({r['condition']})",
                        _s(r["price_as_of"]) or "unknown",
                        t.num(r["idle_w"], 0),
                        t.num(r["max_w"], 0),
                    )
                    for r in bom
                ),
            )
        )
        sources = sorted({r["price_source"] for r in bom if r["price_source"]})
        if sources:
            out.append(Para("Price sources: " + "; ".join(sources)))
    else:
        out.append(Para("No machines yet."))
    tot = t.totals(build)
    price = (
        t.usd(tot["total_price_usd"])
        if tot["total_price_usd"] is not None
        else f"unknown (priced part {t.usd(tot['priced_part_usd'])}; no price for "
        f"{', '.join(tot['unpriced'])})"
    )
    out.append(Heading(level, "Totals, power and running cost"))
    cost = (
        f"{tot['annual_cost']:,.0f} {tot['currency']}"
        if tot["annual_cost"] is not None
        else "unknown"
    )
    out.append(
        Table(
            (
                "Machines",
                "Total price",
                "Idle power",
                "Max power",
                "Max heat",
                "Energy per year",
                "Cost per year",
            ),
            (
                (
                    str(tot["machines"]),
                    price,
                    t.num(tot["idle_w"], 0, " W"),
                    t.num(tot["max_w"], 0, " W"),
                    t.num(tot["max_btu_h"], 0, " BTU/h"),
                    t.num(tot["annual_kwh"], 0, " kWh"),
                    cost,
                ),
            ),
        )
    )
    out.append(Para(f"Running cost basis: {tot['power_basis']}"))
    models = t.model_rows(build)
    out.append(Heading(level, "Models"))
    if models:
        out.append(
            Table(
                ("Model", "Quantization", "Runtime", "Context", "Licence"),
                tuple(
                    (
                        r["model_id"],
                        r["quant"],
                        r["runtime"],
                        str(r["context"]),
                        r["license"] or "unknown",
                    )
                    for r in models
                ),
            )
        )
    else:
        out.append(Para("No models yet."))
    est = t.estimate_rows(build)
    if est:
        out.append(Heading(level, "Estimates"))
        out.append(
            Table(
                (
                    "Model",
                    "Quant",
                    "Machine",
                    "Verdict",
                    "Weights",
                    "KV cache",
                    "Total",
                    "GPU limit",
                    "Headroom",
                    "Decode tok/s (likely)",
                    "Prefill tok/s (likely)",
                    "Max context",
                ),
                tuple(
                    (
                        r["model_id"],
                        r["quant"],
                        r["target_name"],
                        r["verdict"],
                        t.gib(r["weights_bytes"]),
                        t.gib(r["kv_cache_bytes"]),
                        t.gib(r["total_bytes"]),
                        t.gib(r["gpu_limit_bytes"]),
                        t.gib(r["headroom_bytes"]),
                        t.likely(r["decode_tps"], r["decode_tps_low"], r["decode_tps_high"]),
                        t.likely(r["prefill_tps"], r["prefill_tps_low"], r["prefill_tps_high"], 0),
                        _s(r["max_context_that_fits"]) or "unknown",
                    )
                    for r in est
                ),
            )
        )
        commands = sorted({r["sysctl_command"] for r in est if r["sysctl_command"]})
        if commands:
            out.append(Para("Fits only after raising the GPU wired limit:"))
            out.append(Code("\n".join(commands)))
        bases = sorted({r["speed_basis"] for r in est if r["speed_basis"]})
        if bases:
            out.append(Para("Speed basis: " + "; ".join(bases)))
        ranges = sorted({r["speed_range_basis"] for r in est if r["speed_range_basis"]})
        if ranges:
            out.append(Para("Likely range (in brackets): " + "; ".join(ranges)))
        published = t.published_run_rows(build)
        if published:
            out.append(Heading(level + 1, "Published runs nearest the estimates"))
            out.append(
                Table(
                    ("Estimate", "Kind", "Tok/s", "Chip", "Runtime", "Model", "Date", "Source"),
                    tuple(
                        (
                            p["estimate"],
                            p["kind"],
                            t.num(p["tokens_per_s"]),
                            p["chip"],
                            p["runtime"],
                            p["model"],
                            p["date"],
                            p["source"],
                        )
                        for p in published
                    ),
                )
            )
    nodes = t.cluster_node_rows(build)
    if build.cluster is not None:
        res = build.cluster.result
        out.append(Heading(level, "Inference cluster"))
        inputs = build.cluster.inputs
        out.append(
            Para(
                f"{inputs.get('model_id', '')} {inputs.get('quant', '')} over "
                f"{len(nodes)} nodes, link {inputs.get('link', 'default')}, mode "
                f"{inputs.get('mode', 'pipeline')}: decode {t.num(res.get('decode_tps'))} tok/s, "
                f"prefill {t.num(res.get('prefill_tps'), 0)} tok/s."
            )
        )
        if nodes:
            out.append(
                Table(
                    (
                        "Node",
                        "Configuration",
                        "Layers",
                        "Weights",
                        "KV cache",
                        "Total",
                        "GPU limit",
                        "Verdict",
                    ),
                    tuple(
                        (
                            _s(n["name"]),
                            _s(n["config_id"]),
                            n["layers"],
                            t.gib(n["weights_bytes"]),
                            t.gib(n["kv_cache_bytes"]),
                            t.gib(n["total_bytes"]),
                            t.gib(n["gpu_limit_bytes"]),
                            _s(n["verdict"]),
                        )
                        for n in nodes
                    ),
                )
            )
        commands = res.get("commands")
        if isinstance(commands, list) and commands:
            out.append(Code("\n".join(_command_text(c) for c in commands)))
        elif isinstance(commands, dict) and commands:
            out.append(Code("\n".join(_command_text(c) for c in commands.values())))
    if build.platform is not None:
        out.append(Heading(level, "K3s platform"))
        prow = t.platform_node_rows(build)
        if prow:
            out.append(
                Table(
                    ("Node", "Configuration", "Roles", "Max power"),
                    tuple(
                        (
                            _s(n["name"]),
                            _s(n["config_id"]),
                            n["roles"],
                            t.num(n["power_w"], 0, " W"),
                        )
                        for n in prow
                    ),
                )
            )
        assignments = build.platform.result.get("assignments") or {}
        if isinstance(assignments, dict) and assignments:
            out.append(
                Table(
                    ("Service", "Node"),
                    tuple((_s(k), _s(v)) for k, v in sorted(assignments.items())),
                )
            )
        unplaced = build.platform.result.get("unplaced") or []
        if unplaced:
            out.append(Para("Unplaced: " + "; ".join(_command_text(u) for u in unplaced)))
    return out


def _command_text(c: object) -> str:
    if isinstance(c, dict):
        for key in ("command", "argv", "text"):
            if key in c:
                v = c[key]
                shown = " ".join(map(str, v)) if isinstance(v, list) else str(v)
                host = c.get("node") or c.get("host")
                return f"# {host}\n{shown}" if host else shown
        return ", ".join(f"{k}: {v}" for k, v in c.items())
    if isinstance(c, list):
        return " ".join(map(str, c))
    return str(c)


def report_blocks(plan: Plan) -> list[Block]:
    out: list[Block] = [Heading(1, f"Build plan: {plan.name}")]
    meta = f"Created {plan.created_at}, updated {plan.updated_at}."
    if plan.engine_version:
        meta += f" Estimates by ForgePlanner {plan.engine_version}."
    out.append(Para(meta))
    if plan.notes:
        out.append(Para(plan.notes))
    p = plan.power
    out.append(
        Para(
            f"Use: {p.duty_hours_per_day:g} h/day at load, idle otherwise; electricity "
            f"{p.tariff_per_kwh:g} {p.currency}/kWh."
        )
    )
    out.extend(_build_blocks(plan.build, 2))
    out.append(Chart("memory", "Memory breakdown per model and machine against the GPU limit"))
    out.append(Chart("speed", "Estimated decode speed as the context fills"))
    runs = t.run_rows(plan)
    metrics = t.run_metric_rows(plan)
    out.append(Heading(2, "Measured runs: estimate vs measured"))
    if runs:
        rows = []
        for r in metrics:
            err = r["error_pct"]
            digits = 1 if r["unit"] in ("GB/s", "GFLOP/s") else 2
            rows.append(
                (
                    r["run_id"],
                    r["runner"],
                    _s(r["model"]),
                    r["measured_on"],
                    f"{r['label']} ({r['unit']})" if r["unit"] else r["label"],
                    "no estimate" if r["estimated"] is None else t.num(r["estimated"], digits),
                    t.num(r["measured"], digits),
                    "" if err is None else f"{err:+.1f} %",
                    r["started_at"],
                )
            )
        out.append(
            Table(
                (
                    "Run",
                    "Runner",
                    "Model",
                    "Measured on",
                    "Metric",
                    "Estimated",
                    "Measured",
                    "Error",
                    "Started",
                ),
                tuple(rows),
            )
        )
        for r in runs:
            if r["warning"]:
                out.append(Para(f"Warning: {r['warning']}."))
        out.append(
            Para(
                "Error = (measured - estimated) / estimated. Tool versions: "
                + "; ".join(f"run {r['run_id']}: {r['tool_versions'] or 'unknown'}" for r in runs)
            )
        )
    else:
        out.append(Para("No benchmark runs attached yet."))
    verdicts = t.verdict_rows(plan)
    if verdicts:
        out.append(Heading(2, "Gate verdicts"))
        out.append(
            Table(
                ("Rule", "Subject", "Verdict", "Observed", "Limit", "Reason"),
                tuple(
                    (v["rule"], v["subject"], v["outcome"], v["observed"], v["limit"], v["reason"])
                    for v in verdicts
                ),
            )
        )
    if plan.alternatives:
        out.append(Heading(2, "Alternatives"))
        out.append(Chart("price_speed", "Price against best decode speed, plan and alternatives"))
        for alt in plan.alternatives:
            out.append(Heading(3, alt.name))
            if alt.rationale:
                out.append(Para(alt.rationale))
            out.extend(_build_blocks(alt.build, 4))
    return out
