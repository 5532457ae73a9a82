"""The estimate a run is checked against, made *before* the run, and the error per metric.

Estimates come from the speed developer's engine (`forgeplanner.engine.estimate.estimate`)
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


def latest_builtin(fingerprint_key: str, store) -> tuple[int, dict[str, Any]] | None:
    from forgeplanner.store import BenchRunRepo

    with store.session() as s:
        for run in BenchRunRepo(s).list(runner="builtin", fingerprint_key=fingerprint_key):
            if run.status == "ok" and run.measured:
                return run.id, run.measured
    return None


def host_for_this_machine(fingerprint: dict[str, Any], store) -> HostSpec:
    """host_this_machine(), with compute from our matmul run where the catalog has none."""
    from forgeplanner.host import host_this_machine

    host = host_this_machine()
    if host.fp32_flops is None:
        found = latest_builtin(fingerprint["key"], store)
        if found is not None and found[1].get("compute_flops"):
            run_id, measured = found
            host = replace(
                host,
                fp32_flops=float(measured["compute_flops"]),
                fp32_flops_basis=f"measured: float32 matmul, run {run_id}",
            )
    return host


def estimate_for_run(
    model: ModelSpec,
    quant: str,
    host: HostSpec,
    *,
    prompt_tokens: int,
    depth: int = 0,
    runtime: str = "llama.cpp",
    flash_attention: bool = False,
    constants=None,
) -> dict[str, Any]:
    """The engine's estimate as a JSON-able dict: decode/prefill tokens/s (None when the host's
    bandwidth or compute is unknown, with the reason), plus its basis and the host used."""
    from forgeplanner.engine.estimate import speed_estimate

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
