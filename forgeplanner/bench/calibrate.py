"""Calibration from the user's own llama.cpp runs: this machine's effective bandwidth, compute
and per-token cost, used in later estimates for the same machine (same fingerprint key).

The speed model (forgeplanner/engine/speed.py) on one host reduces to

    decode:  t_token  = R / BW_eff + tau            R = bytes read per token (weights + KV)
    prefill: t_token  = FLOPs_per_token / F_eff

so the fit is linear least squares on relative error (rows scaled by 1/t_measured, as in
forgeplanner.engine.speed_fit). With runs of one model only, R does not vary and BW_eff and tau
cannot be separated: tau is then kept at the engine's fixed cost for that model (tau_token +
tau_layer x L of the published-runs fit) and only BW_eff is fitted. Constants must stay
physical (BW_eff > 0, tau >= 0): a negative tau is clamped to 0 and BW_eff refitted.

The fitted values become `SpeedConstants` for this host (`calibrated_constants`), relative to
the host the estimate is made for: streaming at BW_host / BW_eff, matmuls at F_host / F_eff,
tau_token = tau, no per-layer, core-limit or dequantization terms (they are inside the fit).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from forgeplanner.bench.stats import error_pct
from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.measurement.host_runs import TIER_WORDS, select_runs
from forgeplanner.store import CalibrationRecord, CalibrationRepo, RunRecord, Store

RUNTIME = "llama.cpp"


@dataclass(frozen=True, slots=True)
class Sample:
    run_id: int
    test: str  # "tg" | "pp"
    label: str
    model_id: str
    quant: str
    seconds_per_token: float
    bytes_per_token: float  # tg: R
    flops_per_token: float  # pp
    fixed_s: float  # the engine's fixed per-token cost for this model (tg)


@dataclass(frozen=True, slots=True)
class HostFit:
    bandwidth_bytes_per_s: float | None
    compute_flops: float | None
    per_token_s: float | None
    run_ids: tuple[int, ...]
    details: dict[str, Any]


def run_flash_attention(run: RunRecord) -> bool | None:
    """The flash-attention setting a stored llama.cpp run was made with: the value a test row
    reports as run (0/1; llama-bench reports -1 for its default auto), else the spec's choice
    (None = llama-bench's default -fa auto, resolved by the engine like any estimate). Runs of
    the llama-cpp-python fallback made before it resolved auto itself ran with Llama()'s
    default, flash attention off."""
    measured = run.measured or {}
    for t in measured.get("tests", []):
        fa = (t.get("extra") or {}).get("flash_attn")
        if fa in (0, 1) and not isinstance(fa, bool):
            return bool(fa)
    requested = (run.params or {}).get("flash_attn")
    if requested is None and measured.get("tool") == "llama-cpp-python":
        return False
    return None if requested is None else bool(requested)


def samples_from_runs(runs: Sequence[RunRecord], base_constants, host: HostSpec) -> list[Sample]:
    """Turn stored llama.cpp runs into fit rows (pure given the records)."""
    from forgeplanner.engine.estimate import runtime_constants
    from forgeplanner.engine.runtime_defaults import resolve_flash_attention
    from forgeplanner.engine.speed import model_speed_inputs, prefill_flops_per_token
    from forgeplanner.store.codec import model_from_json

    c, _ = runtime_constants(base_constants, RUNTIME, host)
    out = []
    for run in runs:
        if run.runner != RUNTIME or run.status != "ok" or not run.measured:
            continue
        params = run.params or {}
        if params.get("rpc") or "model_spec" not in params:
            continue  # cluster runs measure the network too; runs without a spec cannot refit
        model = model_from_json(params["model_spec"])
        quant = params.get("quant") or model.gguf_file_type or ""
        try:
            fa = RunOptions(flash_attention=run_flash_attention(run))
            fa_on = resolve_flash_attention(model, fa, host)
            m = model_speed_inputs(model, quant, RUNTIME, "f16", fa_on)
        except (ValueError, KeyError):
            continue
        fixed = c.coeff("decode", "token") + c.coeff("decode", "layer") * m.n_layers
        for t in run.measured.get("tests", []):
            tps = t.get("median_ts") or t.get("avg_ts")
            if not tps or tps <= 0:
                continue
            if t["test"] == "tg":
                depth = t.get("n_depth", 0) + t.get("n_gen", 0) / 2.0  # mean depth while generating
                read = m.weights_read_bytes + float(m.kv_bytes_at(depth)) * m.kv_multiplier
                out.append(
                    Sample(run.id, "tg", t.get("label", "tg"), model.id, quant, 1.0 / tps,
                           float(read), 0.0, fixed)
                )  # fmt: skip
            elif t["test"] == "pp":
                fpt = float(
                    prefill_flops_per_token(
                        float(m.active_params), m.attn, t.get("n_depth", 0), t.get("n_prompt", 1)
                    )
                )
                out.append(
                    Sample(run.id, "pp", t.get("label", "pp"), model.id, quant, 1.0 / tps,
                           0.0, fpt, 0.0)
                )  # fmt: skip
    return out


def fit(samples: Sequence[Sample]) -> HostFit:
    """Least squares on relative error (pure)."""
    tg = [s for s in samples if s.test == "tg"]
    pp = [s for s in samples if s.test == "pp"]
    details: dict[str, Any] = {"n_decode": len(tg), "n_prefill": len(pp)}
    bw = tau = None
    if tg:
        r = np.array([s.bytes_per_token for s in tg])
        t = np.array([s.seconds_per_token for s in tg])
        spread = float(r.max() / r.min()) if r.min() > 0 else 1.0
        x1 = x0 = None
        if spread > 1.3:
            a = np.column_stack([r / t, 1.0 / t])
            sol, *_ = np.linalg.lstsq(a, np.ones_like(t), rcond=None)
            x1, x0 = float(sol[0]), float(sol[1])
            details["decode_fit"] = "bandwidth and per-token cost (models of different size)"
            if x0 < 0 or x1 <= 0:
                x1, x0 = None, None
        if x1 is None:
            # One model size: keep the engine's fixed cost, fit the bandwidth only.
            x0 = statistics.median(s.fixed_s for s in tg)
            resid = (t - x0) / r
            if np.any(resid <= 0):
                x0 = 0.0
                resid = t / r
            # minimise sum(((r*x1 + x0) - t)/t)^2 -> x1 = sum(r/t*(1 - x0/t)) / sum((r/t)^2)
            x1 = float(np.sum((r / t) * (1.0 - x0 / t)) / np.sum((r / t) ** 2))
            details["decode_fit"] = (
                "bandwidth only (one model size; per-token cost kept at the engine's "
                f"{x0 * 1e3:.2f} ms)"
            )
        bw = 1.0 / x1
        tau = x0
    flops = None
    if pp:
        f = np.array([s.flops_per_token for s in pp])
        t = np.array([s.seconds_per_token for s in pp])
        y = float(np.sum(f / t) / np.sum((f / t) ** 2))  # seconds per FLOP
        flops = 1.0 / y
    run_ids = tuple(sorted({s.run_id for s in samples}))
    return HostFit(bw, flops, tau, run_ids, details)


def calibrated_constants(base, fitted: HostFit, host: HostSpec, label: str):
    """SpeedConstants reproducing the fit for estimates made with `host`: llama.cpp's
    coefficients (every era) become the host's own (streaming and KV at BW_host / BW_eff,
    matmuls and attention at F_host / F_eff, the fitted per-token cost); terms the runs cannot
    separate are left out (they are inside the fit)."""
    from forgeplanner.engine.speed import RuntimeConstants

    rc = base.for_runtime(RUNTIME)
    bw_host = host.bandwidth_bytes_per_s
    f_host = host.fp32_flops
    if fitted.bandwidth_bytes_per_s and bw_host:
        a = bw_host / fitted.bandwidth_bytes_per_s
        decode = {"stream": a, "kv": a}
        decode["token"] = fitted.per_token_s or 0.0
    else:
        decode = dict(rc.decode)
    if fitted.compute_flops and f_host:
        c = f_host / fitted.compute_flops
        prefill = {"mm": c, "attn_fa": c, "attn_nofa": c}
    else:
        prefill = dict(rc.prefill)
    new = RuntimeConstants(decode=decode, prefill=prefill, uses_neural_accelerators=False,
                           note=label)  # fmt: skip
    runtimes = {k: v for k, v in base.runtimes.items() if k.split("@")[0] != RUNTIME}
    runtimes[RUNTIME] = new
    return type(base)(
        runtimes=runtimes,
        fit_date=base.fit_date,
        basis=label,
        errors={},
        bands={},
        host_calibration=label,
    )


def _predict(sample: Sample, fitted: HostFit) -> float | None:
    if sample.test == "tg" and fitted.bandwidth_bytes_per_s:
        return 1.0 / (
            sample.bytes_per_token / fitted.bandwidth_bytes_per_s + (fitted.per_token_s or 0)
        )
    if sample.test == "pp" and fitted.compute_flops:
        return fitted.compute_flops / sample.flops_per_token
    return None


def _mape(values: list[float]) -> float | None:
    return statistics.mean(abs(v) for v in values) if values else None


def errors_before_after(
    runs: Sequence[RunRecord], samples: Sequence[Sample], fitted: HostFit, base, host: HostSpec
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per metric MAPE and per run error, before (the engine's constants on this host, as the
    runs' own stored estimates were made) and after (the calibration)."""
    from forgeplanner.bench.estimate_link import estimate_for_run
    from forgeplanner.store.codec import model_from_json

    before: dict[str, Any] = {"runs": {}}
    after: dict[str, Any] = {"runs": {}}
    metric = {"tg": "decode_tps", "pp": "prefill_tps"}
    b_err: dict[str, list[float]] = {"decode_tps": [], "prefill_tps": []}
    a_err: dict[str, list[float]] = {"decode_tps": [], "prefill_tps": []}
    by_run = {r.id: r for r in runs}
    for s in samples:
        run = by_run[s.run_id]
        meas = 1.0 / s.seconds_per_token
        model = model_from_json(run.params["model_spec"])
        tests = {t.get("label"): t for t in run.measured.get("tests", [])}  # type: ignore[union-attr]
        t = tests.get(s.label, {})
        est = estimate_for_run(
            model, s.quant, host,
            prompt_tokens=t.get("n_prompt") or 512, depth=t.get("n_depth", 0),
            flash_attention=run_flash_attention(run), constants=base,
        )  # fmt: skip
        e_before = error_pct(est.get(metric[s.test]), meas)
        e_after = error_pct(_predict(s, fitted), meas)
        key = f"{s.run_id}:{s.label}"
        before["runs"][key] = e_before
        after["runs"][key] = e_after
        if e_before is not None:
            b_err[metric[s.test]].append(e_before)
        if e_after is not None:
            a_err[metric[s.test]].append(e_after)
    for k in b_err:
        before[f"{k}_mape"] = _mape(b_err[k])
        after[f"{k}_mape"] = _mape(a_err[k])
    return before, after


def calibrate(store: Store, fingerprint: dict[str, Any], host: HostSpec | None = None):
    """Fit from every ok llama.cpp run on this machine and store the calibration.
    Returns the CalibrationRecord; ForgePlannerError when there is nothing to fit."""
    from forgeplanner.engine.estimate import default_constants
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.store import BenchRunRepo

    host = host or _uncalibrated_host(fingerprint, store)
    base = default_constants()
    with store.session() as s:
        stored = BenchRunRepo(s).list(
            runner=RUNTIME, fingerprint_key=fingerprint["key"], status="ok"
        )
    # the same load hygiene as the host's bandwidth (forgeplanner.measurement.host_runs): quiet runs
    # (else runs kept with --accept-load, else runs stored before load sampling); never noisy
    sel = select_runs(stored, window_days=None, max_runs=None)
    runs = list(sel.used)
    samples = samples_from_runs(runs, base, host)
    if not any(x.test == "tg" for x in samples):
        if sel.left_out and not sel.used:
            run_id, why = sel.left_out[0]
            raise ForgePlannerError(
                f"nothing to calibrate: every llama.cpp run on this machine was noisy (run "
                f"{run_id}: {why}); rerun it while the machine is idle, or keep a loaded run "
                "with `forgeplanner bench run llama.cpp ... --accept-load`"
            )
        raise ForgePlannerError(
            "nothing to calibrate: no successful llama.cpp runs on this machine yet; run "
            "`forgeplanner bench run llama.cpp --model qwen2.5-0.5b` (or --gguf PATH) first"
        )
    fitted = fit(samples)
    before, after = errors_before_after(runs, samples, fitted, base, host)
    details = {
        **fitted.details,
        "runs_load": TIER_WORDS.get(sel.tier or "", ""),
        "runs_left_out": {str(i): why for i, why in sel.left_out},
        "host_bandwidth_gbps": None
        if host.bandwidth_bytes_per_s is None
        else host.bandwidth_bytes_per_s / 1e9,
        "host_bandwidth_basis": host.bandwidth_basis,
        "host_compute_basis": host.fp32_flops_basis,
    }
    with store.session() as s:
        return CalibrationRepo(s).add(
            fingerprint=fingerprint,
            runtime=RUNTIME,
            bandwidth_bytes_per_s=fitted.bandwidth_bytes_per_s,
            compute_flops=fitted.compute_flops,
            per_token_s=fitted.per_token_s,
            run_ids=fitted.run_ids,
            error_before=before,
            error_after=after,
            details=details,
        )


def _uncalibrated_host(fingerprint: dict[str, Any], store: Store) -> HostSpec:
    """This machine as the engine sees it without a calibration: bandwidth and compute from
    its built-in runs (median of the recent quiet ones, forgeplanner.measurement.host_runs)."""
    from forgeplanner.bench.estimate_link import builtin_measurements, host_for_this_machine

    host = host_for_this_machine(fingerprint, store)
    found = builtin_measurements(fingerprint["key"], store)
    if found["bandwidth"] is not None:
        host = replace(
            host, bandwidth_bytes_per_s=found["bandwidth"], bandwidth_basis=found["bandwidth_basis"]
        )
    return host


def constants_for(store: Store, fingerprint: dict[str, Any], runtime: str, host: HostSpec):
    """(constants, note) for estimates on this machine: the latest calibration's, else
    (None, "") meaning the engine's defaults."""
    if runtime != RUNTIME:
        return None, ""
    from forgeplanner.engine.estimate import default_constants

    with store.session() as s:
        rec = CalibrationRepo(s).latest(fingerprint["key"], runtime)
    if rec is None:
        return None, ""
    return calibrated_constants(default_constants(), to_fit(rec), host, label_of(rec)), label_of(
        rec
    )


def to_fit(rec: CalibrationRecord) -> HostFit:
    return HostFit(
        rec.bandwidth_bytes_per_s, rec.compute_flops, rec.per_token_s, rec.run_ids, rec.details
    )


def label_of(rec: CalibrationRecord) -> str:
    return (
        f"host calibration {rec.id} of {rec.fingerprint.get('hostname', '?')} "
        f"({rec.created_at.date().isoformat()}, llama.cpp runs "
        f"{', '.join(str(i) for i in rec.run_ids)})"
    )


def calibrated_constants_for_this_machine(runtime: str = RUNTIME, host: HostSpec | None = None):
    """For other estimate paths (e.g. `forgeplanner estimate --host this`): the calibrated
    SpeedConstants of the machine we run on, or None."""
    from forgeplanner.bench.fingerprint import machine_fingerprint
    from forgeplanner.host import host_this_machine

    fp = machine_fingerprint()
    store = Store()
    try:
        return constants_for(store, fp, runtime, host or host_this_machine())[0]
    finally:
        store.close()
