"""One entry point for everything `forgeplanner estimate` reports. The CLI, the GUI and the
recommender all call `estimate` (one quantization) or `estimate_quants` (every quantization of
the model for the runtime), so the numbers agree everywhere.

Each estimate runs the pipeline once (forgeplanner.engine.pipeline.prepare: options resolved,
per-layer table built, both cached): memory and the fit verdict at the context, the largest
context under the GPU limit from the same totals, and speed from the table's per-token
quantities with the calibrated constants (speed_constants.CONSTANTS unless the caller passes
others, e.g. a host calibration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forgeplanner.domain.estimates import (
    Estimate,
    Explanation,
    HostSpec,
    RunOptions,
    SpeedEstimate,
)
from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.units import GB
from forgeplanner.engine.budget import gpu_budget
from forgeplanner.engine.fit import fit_result
from forgeplanner.engine.memory import apple_gpu
from forgeplanner.engine.pipeline import Prepared, prepare
from forgeplanner.engine.quant import QuantScheme, get_quant, quants_for
from forgeplanner.engine.runtimes import profile
from forgeplanner.engine.speed import (
    HostSpeedInputs,
    ModelSpeedInputs,
    RuntimeConstants,
    SpeedConstants,
    cpu_constants,
    host_speed_inputs,
    speed_point,
    ttft_seconds,
)


def default_constants() -> SpeedConstants:
    from forgeplanner.engine.speed_constants import CONSTANTS

    return CONSTANTS


def runtime_constants(
    constants: SpeedConstants, runtime: str, host: HostSpec
) -> tuple[RuntimeConstants, str]:
    """Constants for this runtime on this host, and a one-line basis."""
    c = constants.for_runtime(runtime)
    basis = f"calibrated constants (fit {constants.fit_date}, {constants.basis})"
    if not host.is_apple_silicon and constants.host_calibration is None:
        # CPU host (Intel Mac mini, any non-Apple machine): llama.cpp's CPU-backend decode
        # constants (speed_constants_cpu.py, measured on one x86-64 host) with llama.cpp's
        # default thread count, the physical cores.
        from forgeplanner.engine.speed_constants_cpu import CPU_BACKEND

        threads = host.cpu_cores or 1
        c = cpu_constants(c, CPU_BACKEND, threads)
        basis = (
            f"CPU inference, uncalibrated for this machine: {CPU_BACKEND.basis()} "
            f"({threads} thread{'s' if threads != 1 else ''}; prefill: the Apple GPU fit's "
            f"compute efficiencies, fit {constants.fit_date})"
        )
    return c, basis


def n_ubatch_for(options: RunOptions) -> int:
    """Prompt chunk size: llama.cpp/Ollama use options.n_ubatch; mlx-lm prefills in steps of
    2048 tokens (generate_step prefill_step_size). The runtime's profile says which."""
    return profile(options.runtime).n_ubatch(options.n_ubatch, options.n_batch)


def _ms(x: float) -> str:
    return f"{x * 1e3:.3f} ms"


def speed_estimate(
    model: ModelSpec,
    quant: str | QuantScheme,
    host: HostSpec,
    options: RunOptions,
    constants: SpeedConstants | None = None,
    *,
    inputs: ModelSpeedInputs | None = None,
) -> SpeedEstimate | None:
    """Decode/prefill tokens/s and time to first token; None when the host's bandwidth or
    compute is unknown (the estimate then says why)."""
    p = prepare(model, quant, options, apple_gpu=apple_gpu(host))
    return prepared_speed(p, host, options, constants, inputs=inputs)


def prepared_speed(
    p: Prepared,
    host: HostSpec,
    options: RunOptions,
    constants: SpeedConstants | None = None,
    *,
    inputs: ModelSpeedInputs | None = None,
) -> SpeedEstimate | None:
    """speed_estimate for an already prepared model x quant x options (depth and prompt
    length from `options`); memoised per host, constants, depth and prompt length."""
    if inputs is not None:
        return _prepared_speed(p, host, options, constants, inputs)
    # The entry keeps the constants object, so its id cannot be reused by another while cached.
    key = ("speed", host, id(constants), options.depth, options.prompt_tokens)
    held, out = p.memo(key, lambda: (constants, _prepared_speed(p, host, options, constants, None)))
    if held is not constants:  # pragma: no cover - defensive: ids are unique while held
        return _prepared_speed(p, host, options, constants, None)
    return out


def _prepared_speed(
    p: Prepared,
    host: HostSpec,
    options: RunOptions,
    constants: SpeedConstants | None,
    inputs: ModelSpeedInputs | None,
) -> SpeedEstimate | None:
    h = host_speed_inputs(host)
    if h is None:
        return None
    k = constants or default_constants()
    c, basis = runtime_constants(k, options.runtime, host)
    options = p.resolved(options)
    m = inputs or p.speed_inputs
    ub = n_ubatch_for(options)
    pt = speed_point(
        c, m, h, depth=options.depth, prompt_tokens=options.prompt_tokens,
        prompt_start=options.depth, n_ubatch=ub,
    )  # fmt: skip
    after = speed_point(
        c, m, h, depth=options.depth + options.prompt_tokens, prompt_tokens=options.prompt_tokens,
        prompt_start=options.depth, n_ubatch=ub,
    )  # fmt: skip
    decode_tps = 1.0 / pt.decode_s
    prefill_tps = 1.0 / pt.prefill_s_per_token
    ttft = ttft_seconds(options.prompt_tokens, pt.prefill_s_per_token, after.decode_s)
    explain = _explain(c, m, h, options, pt, ub, decode_tps, prefill_tps, ttft, after.decode_s)
    return SpeedEstimate(
        decode_tps=decode_tps,
        prefill_tps=prefill_tps,
        ttft_s=ttft,
        explain=tuple(explain),
        basis=f"{basis}; bandwidth {h.bandwidth_basis}; compute {h.flops_basis}",
    )


def _explain(
    c: RuntimeConstants,
    m: ModelSpeedInputs,
    h: HostSpeedInputs,
    options: RunOptions,
    p,
    ub: int,
    decode_tps: float,
    prefill_tps: float,
    ttft: float,
    first_decode_s: float,
) -> list[Explanation]:
    stream, dequant, fixed = p.decode_terms
    ultra = " + a_ultra" if h.is_ultra else ""
    kv_eff = p.kv_bytes * m.kv_multiplier * c.kv_read_factor
    out = [
        Explanation(
            term="decode_bytes_per_token",
            formula="R = weights read (active experts, no input embedding) + KV(depth) x reads",
            numbers=(
                f"{m.weights_read_bytes / GB:.3f} GB + {p.kv_bytes / GB:.4f} GB x "
                f"{m.kv_multiplier:g} x {c.kv_read_factor:g} (depth {options.depth})"
            ),
            value=f"{(m.weights_read_bytes + kv_eff) / GB:.3f} GB",
            source="roofline: decode streams every used weight once per token (Williams 2009)",
        ),
        Explanation(
            term="decode_tps",
            formula=(
                f"1 / (R x (a_bw{ultra}) / BW + R x a_core / F + N x d_q / F + tau_layer x L)"
            ),
            numbers=(
                f"stream {_ms(stream)} [BW {h.bandwidth / GB:.0f} GB/s, a_bw {c.a_bw:.3f}"
                f"{f', a_ultra {c.a_ultra:.3f}' if h.is_ultra else ''}, a_core {c.a_core:.2f}, "
                f"F {h.flops / 1e12:.2f} TFLOPS] + dequant {_ms(dequant)} "
                f"[N {m.active_params / 1e9:.2f}B, d_{m.qclass} {c.dequant_for(m.qclass):.2f}] "
                f"+ fixed {_ms(fixed)} [L {m.n_layers}, tau_layer {c.tau_layer_s * 1e6:.0f} us"
                f"{f', tau_token {c.tau_token_s * 1e3:.2f} ms' if c.tau_token_s else ''}]"
            ),
            value=f"{decode_tps:.1f} tokens/s",
            source="forgeplanner/engine/speed.py (constants: speed_constants.py)",
        ),
        Explanation(
            term="prefill_tps",
            formula=(
                "1 / (FLOPs x (c_q" + (" + c_ultra" if h.is_ultra else "") + ") / F"
                " + W_all x a_reread / (n_ubatch x BW)), FLOPs = 2N + attention(position)"
            ),
            numbers=(
                f"FLOPs/token {p.prefill_flops_per_token / 1e9:.2f} G, c_{m.qclass} "
                f"{c.compute_for(m.qclass):.3f} (efficiency {1 / c.compute_for(m.qclass):.0%}), "
                f"F {h.flops / 1e12:.2f} TFLOPS -> {_ms(p.prefill_terms[0])}; re-read "
                f"{m.weights_total_bytes / GB:.2f} GB / {ub} tokens -> {_ms(p.prefill_terms[1])}"
            ),
            value=f"{prefill_tps:.1f} tokens/s",
            source="roofline (compute-bound matmuls); 2 FLOPs per weight (Kaplan et al. 2020), "
            "attention 4 x heads x head_dim per position (Hoffmann et al. 2022, app. F)",
        ),
        Explanation(
            term="ttft_s",
            formula="prompt_tokens / prefill_tps + one decode step",
            numbers=f"{options.prompt_tokens} / {prefill_tps:.1f} + {_ms(first_decode_s)}",
            value=f"{ttft:.3f} s",
        ),
    ]
    return out


def decode_curve(
    model: ModelSpec,
    quant: str | QuantScheme,
    host: HostSpec,
    options: RunOptions,
    depths: Sequence[int],
    constants: SpeedConstants | None = None,
) -> list[tuple[int, float]]:
    """Decode tokens/s across context depth: [(depth, tokens/s)]. Empty if speed unknown."""
    h = host_speed_inputs(host)
    if h is None:
        return []
    k = constants or default_constants()
    c, _ = runtime_constants(k, options.runtime, host)
    p = prepare(model, quant, options, apple_gpu=apple_gpu(host))
    m = p.speed_inputs
    ub = n_ubatch_for(options)
    out = []
    for d in depths:
        if d < 0:
            raise ValueError(f"depth must be >= 0 tokens, got {d}")
        pt = speed_point(
            c, m, h, depth=int(d), prompt_tokens=options.prompt_tokens,
            prompt_start=int(d), n_ubatch=ub,
        )  # fmt: skip
        out.append((int(d), 1.0 / pt.decode_s))
    return out


def estimate(
    model: ModelSpec,
    quant: str | QuantScheme,
    host: HostSpec,
    options: RunOptions,
    constants: SpeedConstants | None = None,
) -> Estimate:
    """Memory, fit verdict, largest context that fits and speed for one quantization.

    Raises ValueError (one line, says what is valid) for impossible combinations and
    NotFoundError for an unknown quantization."""
    q = get_quant(quant)
    p = prepare(model, q, options, apple_gpu=apple_gpu(host))
    budget = gpu_budget(host)
    fr = fit_result(p.memory_estimate(options.context), budget, host.is_apple_silicon)
    mctx = p.max_context(budget.gpu_limit_bytes)
    options = p.resolved(options)
    speed = prepared_speed(p, host, options, constants)
    warnings: list[str] = [e.value for e in fr.memory.explain if e.term == "warning"]
    if speed is None:
        warnings.append(
            "speed unknown: "
            + (host.bandwidth_basis if not host.bandwidth_bytes_per_s else host.fp32_flops_basis)
        )
    return Estimate(
        model_id=model.id,
        quant=q.name,
        host=host,
        options=options,
        fit=fr,
        speed=speed,
        max_context_that_fits=mctx,
        warnings=tuple(warnings),
        flash_attention_basis=p.fa.basis,
    )


@dataclass(frozen=True, slots=True)
class QuantsEstimate:
    """`estimate` for every quantization of a model (best quality first)."""

    estimates: tuple[Estimate, ...]
    best_quant_that_fits: str | None


def estimate_quants(
    model: ModelSpec,
    host: HostSpec,
    options: RunOptions,
    constants: SpeedConstants | None = None,
) -> QuantsEstimate:
    qs = quants_for(model, options.runtime)
    if not qs:
        raise ValueError(
            f"{model.id} has no weights for runtime {options.runtime} "
            f"(formats: {', '.join(model.formats)})"
        )
    ests = tuple(estimate(model, q, host, options, constants) for q in qs)
    # quants_for is best quality first: the first that fits at the context under the limit
    best = next((e.quant for e in ests if e.fit.headroom_bytes >= 0), None)
    return QuantsEstimate(ests, best)


def estimate_to_dict(e: Estimate, best_quant: str | None = None) -> dict[str, object]:
    """The stable JSON shape of issue 3 (CLI contract) for one estimate."""
    s = e.speed
    return {
        "model": e.model_id,
        "quant": e.quant,
        "host": e.host.name,
        "runtime": e.options.runtime,
        "context": e.options.context,
        "flash_attention": bool(e.options.flash_attention),
        "flash_attention_basis": e.flash_attention_basis,
        "memory": e.fit.memory.to_dict(),
        "budget": e.fit.budget.to_dict(),
        "verdict": e.fit.verdict,
        "headroom_bytes": e.fit.headroom_bytes,
        "sysctl_command": e.fit.sysctl_command,
        # With fits-with-raised-limit: RAM left to macOS once the sysctl above is applied.
        "memory_left_for_macos_bytes": e.fit.memory_left_for_macos_bytes,
        "max_context_that_fits": e.max_context_that_fits,
        "best_quant_that_fits": best_quant,
        "decode_tps": None if s is None else round(s.decode_tps, 3),
        "prefill_tps": None if s is None else round(s.prefill_tps, 3),
        "ttft_s": None if s is None else round(s.ttft_s, 4),
        "speed_basis": None if s is None else s.basis,
        "warnings": list(e.warnings),
    }


__all__ = [
    "QuantsEstimate",
    "decode_curve",
    "estimate",
    "estimate_quants",
    "estimate_to_dict",
    "speed_estimate",
]
