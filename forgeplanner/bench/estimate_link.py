"""The estimate a run is checked against, made *before* the run, and the error per metric.

Estimates come from the speed engine (`forgeplanner.engine.estimate.estimate`)
for the host built by `forgeplanner.host.host_this_machine` (which reads this machine's stored
bandwidth). Two things the host builder cannot know on a non-Apple machine are filled from
this machine's own measurements, and the basis says so:
- peak compute: the built-in float32 matrix-multiply throughput (BLAS, all cores);
- the host calibration (forgeplanner.bench.calibrate), when one exists for this fingerprint.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from forgeplanner.bench.stats import error_pct
from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.domain.model import ModelSpec

METRICS = ("decode_tps", "prefill_tps")


def builtin_measurements(fingerprint_key: str, store) -> dict[str, Any]:
    """This machine's bandwidth and compute from its built-in runs, by the load-hygiene rule
    of forgeplanner.measurement.host_runs (median of the recent quiet runs, noisy runs left out)."""
    from forgeplanner.measurement.host_runs import host_measurements
    from forgeplanner.store import BenchRunRepo

    with store.session() as s:
        runs = BenchRunRepo(s).list(runner="builtin", fingerprint_key=fingerprint_key, status="ok")
    return host_measurements(runs)


def host_for_this_machine(fingerprint: dict[str, Any], store) -> HostSpec:
    """host_this_machine(), with this machine's measurements from `store` (matched by
    fingerprint key, more precise than the host builder's hostname match): bandwidth from the
    latest calibration, else the built-in runs (median of the recent quiet ones); compute
    from the built-in matmul where the catalog has no figure. The bases name the runs."""
    from forgeplanner.host import host_this_machine
    from forgeplanner.measurement.load import NOT_RECORDED
    from forgeplanner.store import CalibrationRepo

    host = host_this_machine()
    with store.session() as s:
        cal = CalibrationRepo(s).latest(fingerprint["key"])
    found = builtin_measurements(fingerprint["key"], store)
    if cal is not None and cal.bandwidth_bytes_per_s:
        host = replace(
            host,
            bandwidth_bytes_per_s=cal.bandwidth_bytes_per_s,
            bandwidth_basis=f"measured: calibration {cal.id}",
        )
    elif found["bandwidth"] is not None and not (
        found["bandwidth_tier"] == NOT_RECORDED and host.bandwidth_basis.startswith("catalog")
    ):
        host = replace(
            host, bandwidth_bytes_per_s=found["bandwidth"], bandwidth_basis=found["bandwidth_basis"]
        )
    elif not host.bandwidth_basis.startswith("catalog"):
        # no usable run in this store (none, or every one noisy): unknown, and the basis
        # says why, never a figure from another store's runs
        host = replace(host, bandwidth_bytes_per_s=None, bandwidth_basis=found["bandwidth_basis"])
    if found["flops"] is not None and (
        host.fp32_flops is None or host.fp32_flops_basis.startswith("measured")
    ):
        host = replace(host, fp32_flops=found["flops"], fp32_flops_basis=found["flops_basis"])
    return host


def estimate_for_run(
    model: ModelSpec,
    quant: str,
    host: HostSpec,
    *,
    prompt_tokens: int,
    depth: int = 0,
    runtime: str = "llama.cpp",
    flash_attention: bool | None = None,
    constants=None,
) -> dict[str, Any]:
    """The engine's estimate as a JSON-able dict: decode/prefill tokens/s (None when the host's
    bandwidth or compute is unknown, with the reason), plus its basis and the host used.

    flash_attention is what the benchmark is run with: None = the tool's default (llama-bench
    `-fa auto`; the llama-cpp-python fallback resolves auto with the same rule), resolved
    here for this host and reported as `flash_attention` / `flash_attention_basis`."""
    from forgeplanner.engine.estimate import speed_estimate
    from forgeplanner.engine.runtime_defaults import choice_for

    options = RunOptions(
        context=max(512, depth + prompt_tokens + 256),
        depth=depth,
        prompt_tokens=max(1, prompt_tokens),
        runtime=runtime,
        flash_attention=flash_attention,
    )
    out: dict[str, Any] = {
        "model": model.id,
        "quant": quant,
        "runtime": runtime,
        "host": host.name,
        "bandwidth_gbps": None
        if host.bandwidth_bytes_per_s is None
        else host.bandwidth_bytes_per_s / 1e9,
        "bandwidth_basis": host.bandwidth_basis,
        "compute_gflops": None if host.fp32_flops is None else host.fp32_flops / 1e9,
        "compute_basis": host.fp32_flops_basis,
        "prompt_tokens": options.prompt_tokens,
        "depth": depth,
    }
    try:
        fa = choice_for(model, options, host)
        out["flash_attention"] = fa.enabled
        out["flash_attention_basis"] = fa.basis
        sp = speed_estimate(model, quant, host, options, constants)
    except ValueError as exc:  # impossible model x quant x runtime: no estimate, say why
        return {**out, "decode_tps": None, "prefill_tps": None, "basis": f"no estimate: {exc}"}
    if sp is None:
        why = host.bandwidth_basis if not host.bandwidth_bytes_per_s else host.fp32_flops_basis
        return {
            **out,
            "decode_tps": None,
            "prefill_tps": None,
            "basis": f"speed unknown: {why} (run `forgeplanner bench run builtin` first)",
        }
    return {
        **out,
        "decode_tps": sp.decode_tps,
        "prefill_tps": sp.prefill_tps,
        "ttft_s": sp.ttft_s,
        "basis": sp.basis,
        "explain": [
            {"term": e.term, "formula": e.formula, "numbers": e.numbers, "value": e.value}
            for e in sp.explain
        ],
    }


def errors(estimate: dict[str, Any] | None, measured: dict[str, Any] | None) -> dict[str, Any]:
    """Signed % error of each metric (+ = the estimate was too optimistic)."""
    estimate = estimate or {}
    measured = measured or {}
    return {m: error_pct(estimate.get(m), measured.get(m)) for m in METRICS}
