"""The tables every export shows, computed once from a plan (rows of plain values).

Markdown, HTML, PDF, CSV and XLSX all render these rows, so a number reads the same in every
format. Values stay raw (bytes, USD, tokens/s); each renderer formats them.
"""

from __future__ import annotations

from typing import Any

from forgeplanner.domain.plan import AttachedRun, Build, Plan
from forgeplanner.domain.units import GiB

METRICS: tuple[str, ...] = ("decode_tps", "prefill_tps", "ttft_s")

# What each kind of run measures, with its label and unit. The built-in run measures the
# machine (memory bandwidth, compute), the model runners measure a model (decode, prefill).
RUN_METRICS: dict[str, tuple[str, str]] = {
    "decode_tps": ("Decode", "tokens/s"),
    "prefill_tps": ("Prefill", "tokens/s"),
    "ttft_s": ("Time to first token", "s"),
    "memory_bandwidth_gbps": ("Memory bandwidth", "GB/s"),
    "copy_gbps": ("Memory copy bandwidth", "GB/s"),
    "triad_gbps": ("STREAM triad bandwidth", "GB/s"),
    "matmul_gflops": ("Matrix-multiply compute", "GFLOP/s"),
    "decode_sim_tps": ("Simulated decode", "tokens/s"),
    "decode_sim_gbps": ("Simulated decode bandwidth", "GB/s"),
}
BUILTIN_METRICS: tuple[str, ...] = ("memory_bandwidth_gbps", "triad_gbps", "matmul_gflops",
                                    "decode_sim_gbps")  # fmt: skip
MODEL_METRICS: tuple[str, ...] = METRICS


def machine_name(m: Any) -> str:
    """A plan machine as people call it: "Mac Studio (2023) - M2 Ultra, 192 GB"."""
    return f"{m.label}, {m.memory_gb} GB" if m.memory_gb else str(m.label)


def target_name(build: Build, target: str) -> str:
    """An estimate's target (a configuration id or "cluster") by name."""
    if target == "cluster":
        return "the inference cluster"
    for m in build.machines:
        if m.config_id == target:
            return machine_name(m)
    return target


def bom_rows(build: Build) -> list[dict[str, Any]]:
    return [
        {
            "config_id": m.config_id,
            "machine": m.label,
            "machine_name": machine_name(m),
            "chip": m.chip_id,
            "memory_gb": m.memory_gb,
            "count": m.count,
            "unit_price_usd": m.price.usd,
            "line_total_usd": m.line_total_usd,
            "price_basis": m.price.basis,
            "condition": m.price.condition,
            "price_as_of": m.price.as_of,
            "price_source": m.price.source or (m.price.reason or ""),
            "idle_w": m.idle_w,
            "max_w": m.max_w,
            "role": m.role,
        }
        for m in build.machines
    ]


def totals(build: Build) -> dict[str, Any]:
    rc = build.running_cost
    return {
        "machines": build.machine_count,
        "total_price_usd": build.total_price_usd,
        "priced_part_usd": build.known_price_usd,
        "unpriced": list(build.unpriced),
        "idle_w": rc.idle_w if rc else None,
        "max_w": rc.max_w if rc else None,
        "max_btu_h": rc.max_btu_h if rc else None,
        "annual_kwh": rc.annual_kwh if rc else None,
        "annual_cost": rc.annual_cost if rc else None,
        "currency": rc.currency if rc else "",
        "power_basis": rc.basis
        if rc
        else "not computed (no machines, or the power engine was not available)",
    }


def model_rows(build: Build) -> list[dict[str, Any]]:
    return [
        {
            "model_id": m.model_id,
            "name": m.name,
            "quant": m.quant,
            "runtime": m.runtime,
            "context": m.context,
            "license": m.license,
            "params_total": m.params_total,
        }
        for m in build.models
    ]


def estimate_rows(build: Build) -> list[dict[str, Any]]:
    rows = []
    for e in build.estimates:
        rows.append(
            {
                "model_id": e.model_id,
                "quant": e.quant,
                "runtime": e.runtime,
                "context": e.context,
                "target": e.target,
                "target_name": target_name(build, e.target),
                "verdict": e.verdict,
                "weights_bytes": e.memory.weights_bytes,
                "kv_cache_bytes": e.memory.kv_cache_bytes,
                "compute_bytes": e.memory.compute_bytes,
                "runtime_bytes": e.memory.runtime_bytes,
                "total_bytes": e.memory.total_bytes,
                "gpu_limit_bytes": e.gpu_limit_bytes,
                "physical_bytes": e.physical_bytes,
                "headroom_bytes": e.headroom_bytes,
                "decode_tps": e.decode_tps,
                "decode_tps_low": e.decode_tps_low,
                "decode_tps_high": e.decode_tps_high,
                "prefill_tps": e.prefill_tps,
                "prefill_tps_low": e.prefill_tps_low,
                "prefill_tps_high": e.prefill_tps_high,
                "ttft_s": e.ttft_s,
                "max_context_that_fits": e.max_context_that_fits,
                "sysctl_command": e.sysctl_command,
                "speed_basis": e.speed_basis,
                "speed_range_basis": e.speed_range_basis,
            }
        )
    return rows


def published_run_rows(build: Build) -> list[dict[str, Any]]:
    """The published measurements nearest each estimate (one row per run, deduplicated over
    the estimates that share them)."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for e in build.estimates:
        for r in e.published_runs:
            key = (e.model_id, e.target, r.kind + r.source + r.model + r.quant + r.chip)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "estimate": f"{e.model_id} {e.quant} on {e.target}",
                    "kind": r.kind,
                    "tokens_per_s": r.tokens_per_s,
                    "chip": r.chip,
                    "runtime": r.runtime + (f" {r.version}" if r.version else ""),
                    "model": f"{r.model} {r.quant}",
                    "test": r.test or "",
                    "date": r.date or "",
                    "source": r.source,
                }
            )
    return rows


def likely(value: float | None, low: float | None, high: float | None, digits: int = 1) -> str:
    """'8.6 (7.9-9.3)': the estimate with its likely range, or the estimate alone."""
    if value is None:
        return "unknown"
    if low is None or high is None:
        return num(value, digits)
    return f"{num(value, digits)} ({num(low, digits)}-{num(high, digits)})"


def error_pct(measured: float | None, estimated: float | None) -> float | None:
    """(measured - estimated) / estimated, in percent: positive = faster than estimated."""
    if measured is None or estimated is None or estimated == 0:
        return None
    return round(100.0 * (float(measured) - float(estimated)) / float(estimated), 3)


def _host(run: AttachedRun) -> str:
    fp = run.fingerprint
    for key in ("chip", "cpu_model", "machine_model", "hostname"):
        if fp.get(key):
            return str(fp[key])
    return str(fp.get("key", ""))


def _apple_chip(fp: dict[str, Any]) -> str | None:
    """ "Apple M4 Max" -> "m4-max" (the catalog's chip id prefix), else None."""
    brand = str(fp.get("cpu_brand") or fp.get("chip") or "").strip()
    if not brand.lower().startswith("apple m"):
        return None
    return brand[len("apple ") :].strip().lower().replace(" ", "-")


def run_machine(run: AttachedRun, build: Build) -> str | None:
    """The plan machine (configuration id) a run measured: the one the run names, or the one
    whose Apple chip, GPU cores and memory match the run's machine fingerprint; None when the
    run came from a machine that is not in the plan (or cannot be told apart from one)."""
    ids = {m.config_id for m in build.machines}
    if run.config_id:
        return run.config_id if run.config_id in ids else None
    fp = run.fingerprint or {}
    chip = _apple_chip(fp)
    if chip is None:
        return None
    gpu = fp.get("gpu_cores")
    mem = fp.get("memory_bytes")
    for m in build.machines:
        if not m.chip_id.startswith(chip + "-"):
            continue
        if gpu and not m.chip_id.endswith(f"-{gpu}c"):
            continue
        if isinstance(mem, int) and round(mem / GiB) != m.memory_gb:
            continue
        return m.config_id
    return None


def _measured_on(run: AttachedRun) -> str:
    fp = run.fingerprint or {}
    parts = [str(fp.get("cpu_brand") or fp.get("chip") or _host(run) or "unknown machine")]
    if fp.get("gpu_cores"):
        parts.append(f"{fp['gpu_cores']}-core GPU")
    if isinstance(fp.get("memory_bytes"), int):
        parts.append(f"{fp['memory_bytes'] / GiB:.0f} GiB")
    host = fp.get("hostname")
    return (f"{host}: " if host else "") + ", ".join(parts)


def run_warning(run: AttachedRun, build: Build) -> str:
    """ "" when the run measured a machine of the plan, else why its numbers do not speak for
    the plan's machines."""
    if run_machine(run, build) is not None:
        return ""
    return (
        f"run {run.run_id} was measured on {_measured_on(run)}, which is not a machine in this "
        "plan: its numbers do not speak for the plan's machines"
    )


def _metrics_of(run: AttachedRun) -> tuple[str, ...]:
    if run.runner == "builtin":
        return tuple(k for k in BUILTIN_METRICS if k in run.measured or k in run.estimate)
    return tuple(k for k in MODEL_METRICS if k in run.measured or k in run.estimate)


def run_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per attached run (wide: measured / estimated / error per metric)."""
    rows = []
    for r in plan.runs:
        row: dict[str, Any] = {
            "run_id": r.run_id,
            "runner": r.runner,
            "status": r.status,
            "model": r.model_id or r.model_ref,
            "quant": r.quant,
            "config_id": r.config_id,
            "host": _host(r),
            "measured_on": _measured_on(r),
            "plan_machine": run_machine(r, plan.build),
            "warning": run_warning(r, plan.build),
            "started_at": r.started_at,
        }
        for metric in (*METRICS, *BUILTIN_METRICS):
            m, e = r.measured.get(metric), r.estimate.get(metric)
            row[f"measured_{metric}"] = m
            row[f"estimated_{metric}"] = e
            row[f"error_pct_{metric}"] = error_pct(m, e)
        row["tool_versions"] = ", ".join(f"{k} {v}" for k, v in sorted(r.tool_versions.items()))
        row["raw_sha256"] = r.raw_sha256
        rows.append(row)
    return rows


def run_metric_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per run and metric it measured (long: what every export's table of measured
    results shows): the estimate made before the run, the measurement, the error, the machine
    it ran on and a warning when that machine is not in the plan."""
    out = []
    for r in plan.runs:
        warning = run_warning(r, plan.build)
        for metric in _metrics_of(r):
            label, unit = RUN_METRICS.get(metric, (metric, ""))
            m, e = r.measured.get(metric), r.estimate.get(metric)
            out.append(
                {
                    "run_id": r.run_id,
                    "runner": r.runner,
                    "model": r.model_id
                    or r.model_ref
                    or ("this machine" if r.runner == "builtin" else ""),
                    "quant": r.quant,
                    "metric": metric,
                    "label": label,
                    "unit": unit,
                    "estimated": e,
                    "measured": m,
                    "error_pct": error_pct(m, e),
                    "measured_on": _measured_on(r),
                    "in_plan": run_machine(r, plan.build) is not None,
                    "warning": warning,
                    "started_at": r.started_at,
                }
            )
    return out


def verdict_rows(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "rule": v.rule,
            "subject": v.subject,
            "outcome": v.outcome,
            "observed": v.observed,
            "limit": v.limit,
            "reason": v.reason,
        }
        for v in plan.verdicts
    ]


def cluster_node_rows(build: Build) -> list[dict[str, Any]]:
    if build.cluster is None:
        return []
    rows = []
    for n in build.cluster.result.get("nodes") or []:
        layers = n.get("layers")
        rows.append(
            {
                "name": n.get("name"),
                "config_id": n.get("config_id"),
                "layers": f"{layers[0]}-{layers[1]}" if isinstance(layers, list) and layers else "",
                "weights_bytes": n.get("weights_bytes"),
                "kv_cache_bytes": n.get("kv_cache_bytes"),
                "total_bytes": n.get("total_bytes"),
                "gpu_limit_bytes": n.get("gpu_limit_bytes"),
                "verdict": n.get("verdict"),
            }
        )
    return rows


def platform_node_rows(build: Build) -> list[dict[str, Any]]:
    if build.platform is None:
        return []
    rows = []
    for n in build.platform.result.get("nodes") or []:
        power = n.get("power_w")
        if isinstance(power, dict):  # {"idle": W, "max": W}
            power = power.get("max")
        rows.append(
            {
                "name": n.get("name"),
                "config_id": n.get("config_id"),
                "roles": ", ".join(str(r) for r in n.get("roles") or []),
                "power_w": power if isinstance(power, (int, float)) else None,
            }
        )
    return rows


def best_decode(build: Build) -> float | None:
    """The build's best decode speed for its first model (for price-vs-speed comparisons):
    the cluster's speed when a cluster layout exists for that model, else the fastest machine
    that holds it."""
    if not build.models:
        return None
    model = build.models[0]
    if build.cluster is not None and build.cluster.inputs.get("model_id") == model.model_id:
        v = build.cluster.result.get("decode_tps")
        if isinstance(v, (int, float)):
            return float(v)
    speeds = [
        e.decode_tps
        for e in build.estimates
        if e.model_id == model.model_id and e.verdict != "does-not-fit" and e.decode_tps
    ]
    return max(speeds) if speeds else None


def gib(n: int | float | None, digits: int = 1) -> str:
    return "unknown" if n is None else f"{n / GiB:.{digits}f} GiB"


def usd(n: float | None) -> str:
    return "unknown" if n is None else f"${n:,.0f}"


def num(n: float | None, digits: int = 1, unit: str = "") -> str:
    if n is None:
        return "unknown"
    return f"{n:,.{digits}f}{unit}"
