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
    band_keys,
    cpu_constants,
    depth_band,
    host_speed_inputs,
    speed_point,
    ttft_seconds,
)


def default_constants() -> SpeedConstants:
    from forgeplanner.engine.speed_constants import CONSTANTS

    return CONSTANTS


def runtime_era(runtime: str, version: str | None) -> tuple[str | None, str]:
    """(era key, one-line description) of a runtime version (None: the newest era)."""
    prof = profile(runtime)
    era = prof.era_for(version)
    if era is None:
        return None, f"{prof.label}" + (f" {version}" if version else "")
    shown = version or f"newest ({era.first} and later)"
    return era.key, f"{prof.label} {shown}: era {era.key} ({era.what_changed})"


def runtime_constants(
    constants: SpeedConstants, runtime: str, host: HostSpec, version: str | None = None
) -> tuple[RuntimeConstants, str]:
    """Constants for this runtime (and version) on this host, and a one-line basis."""
    era, era_text = runtime_era(runtime, version)
    c, key = constants.resolve(runtime, era)
    basis = f"calibrated constants {key} (fit {constants.fit_date}, {constants.basis}); {era_text}"
    if not host.is_apple_silicon and constants.host_calibration is None:
        # CPU host (Intel Mac mini, any non-Apple machine): llama.cpp's CPU-backend decode
        # constants of the host's CPU kind (speed_constants_cpu.py, one measured x86-64 host
        # per kind) with llama.cpp's default thread count, the physical cores.
        from forgeplanner.engine.speed import cpu_backend_for
        from forgeplanner.engine.speed_constants_cpu import CPU_BACKENDS

        backend, chosen = cpu_backend_for(CPU_BACKENDS, host.cpu_isa)
        threads = host.cpu_cores or 1
        c = cpu_constants(c, backend, threads)
        basis = (
            f"CPU inference, uncalibrated for this machine: {backend.basis()} ({chosen}) "
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
    key = ("speed", host, id(constants), options.depth, options.prompt_tokens,
           options.runtime_version)  # fmt: skip
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
    c, basis = runtime_constants(k, options.runtime, host, options.runtime_version)
    options = p.resolved(options)
    m = inputs or p.speed_inputs
    ub = n_ubatch_for(options)
    fa = bool(options.flash_attention)
    pt = speed_point(
        c, m, h, depth=options.depth, prompt_tokens=options.prompt_tokens,
        prompt_start=options.depth, n_ubatch=ub, flash_attention=fa,
    )  # fmt: skip
    after = speed_point(
        c, m, h, depth=options.depth + options.prompt_tokens, prompt_tokens=options.prompt_tokens,
        prompt_start=options.depth, n_ubatch=ub, flash_attention=fa,
    )  # fmt: skip
    decode_s, prefill_s, first_s = pt.decode_s, pt.prefill_s_per_token, after.decode_s
    if getattr(host, "passive_cooling", False) and c.passive_cooling:
        # a fanless Mac throttles under sustained load (fitted on published runs of such Macs)
        decode_s *= c.passive_cooling.get("decode", 1.0)
        first_s *= c.passive_cooling.get("decode", 1.0)
        prefill_s *= c.passive_cooling.get("prefill", 1.0)
        basis += "; passively cooled (fanless) Mac"
    decode_tps = 1.0 / decode_s
    prefill_tps = 1.0 / prefill_s
    ttft = ttft_seconds(options.prompt_tokens, prefill_s, first_s)
    explain = _explain(c, m, h, options, pt, ub, decode_tps, prefill_tps, ttft, first_s)
    bands = {} if k.host_calibration else _bands(k, options, m, decode_tps, prefill_tps)
    return SpeedEstimate(
        decode_tps=decode_tps,
        prefill_tps=prefill_tps,
        ttft_s=ttft,
        explain=tuple(explain),
        basis=f"{basis}; bandwidth {h.bandwidth_basis}; compute {h.flops_basis}",
        **bands,
    )


def _bands(
    k: SpeedConstants, options: RunOptions, m: ModelSpeedInputs, decode: float, prefill: float
) -> dict[str, object]:
    """Likely ranges from the cross-validated errors of similar published runs."""
    moe = m.expert_active_params > 0
    dec = k.band_for(band_keys(options.runtime, "decode", moe, depth_band(options.depth)))
    pre = k.band_for(band_keys(options.runtime, "prefill", moe, depth_band(options.prompt_tokens)))
    out: dict[str, object] = {}
    notes = []
    if dec is not None:
        out["decode_tps_low"], out["decode_tps_high"] = decode * dec[0], decode * dec[1]
        notes.append(f"decode: {dec[2]} held-out published runs of similar setups")
    if pre is not None:
        out["prefill_tps_low"], out["prefill_tps_high"] = prefill * pre[0], prefill * pre[1]
        notes.append(f"prefill: {pre[2]}")
    if notes:
        out["band_basis"] = "10th-90th percentile of measured / estimated over " + "; ".join(notes)
    return out


_TERM_WHAT = {
    "rec_layer": "recurrent layers (hybrid models)",
    "rec_flops": "recurrent state update / GPU FLOP/s",
    "stream": "weights read / bandwidth",
    "stream_ultra": "weights read / bandwidth on a two-die Ultra",
    "stream_experts": "routed-expert bytes / bandwidth",
    "kv": "KV cache at depth x reads / bandwidth",
    "core": "bytes / GPU FLOP/s (core-limited streaming)",
    "dequant": "active params / GPU FLOP/s (dequantization)",
    "attn": "attention FLOPs at depth / GPU FLOP/s",
    "layer": "layers (launch and sync per layer)",
    "token": "per token",
    "mm": "2 x active params / GPU FLOP/s",
    "mm_na": "2 x active params / GPU FLOP/s: the neural accelerators' gain",
    "mm_gen": "2 x active params / GPU FLOP/s: this generation's adjustment",
    "mm_ultra": "2 x active params / GPU FLOP/s on a two-die Ultra",
    "mm_batch": "2 x active params / (GPU FLOP/s x n_ubatch): small matmul batches",
    "mm_na_batch": "2 x active params / (GPU FLOP/s x n_ubatch): small batches, accelerators",
    "mm_experts": "2 x routed-expert params / GPU FLOP/s",
    "attn_fa": "mean attention FLOPs / GPU FLOP/s (flash attention)",
    "attn_nofa": "mean attention FLOPs / GPU FLOP/s (no flash attention)",
    "reread": "all weights / (n_ubatch x bandwidth)",
    "ubatch_layer": "layers / n_ubatch",
    "call": "1 / prompt tokens (fixed cost per prompt)",
    "call_layer": "layers / prompt tokens (fixed cost per prompt and layer)",
}


def _term_lines(table, terms: dict[str, float]) -> str:
    parts = []
    for name, sec in terms.items():
        if sec == 0:
            continue
        head = name.split(":")[0]
        parts.append(f"{name} {_ms(sec)} [{_TERM_WHAT.get(head, head)}]")
    return " + ".join(parts)


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
    kv_eff = p.kv_bytes * m.kv_multiplier
    na = bool(c.uses_neural_accelerators and h.has_neural_accelerators)
    return [
        Explanation(
            term="decode_bytes_per_token",
            formula="R = weights read (active experts, no input embedding) + KV(depth) x reads",
            numbers=(
                f"{m.weights_read_bytes / GB:.3f} GB + {p.kv_bytes / GB:.4f} GB x "
                f"{m.kv_multiplier:g} (depth {options.depth})"
            ),
            value=f"{(m.weights_read_bytes + kv_eff) / GB:.3f} GB",
            source="roofline: decode streams every used weight once per token (Williams 2009)",
        ),
        Explanation(
            term="decode_tps",
            formula="1 / sum of (fitted coefficient x quantity) over the decode terms",
            numbers=(
                f"BW {h.bandwidth / GB:.0f} GB/s, F {h.flops / 1e12:.2f} TFLOPS, "
                f"{h.generation or 'CPU'}: " + _term_lines(c.decode, p.decode_terms)
            ),
            value=f"{decode_tps:.1f} tokens/s",
            source="forgeplanner/engine/speed.py (coefficients: speed_constants.py)",
        ),
        Explanation(
            term="prefill_tps",
            formula="1 / sum of (fitted coefficient x quantity) over the prefill terms",
            numbers=(
                f"FLOPs/token {p.prefill_flops_per_token / 1e9:.2f} G, n_ubatch {ub}"
                f"{', GPU neural accelerators' if na else ''}: "
                + _term_lines(c.prefill, p.prefill_terms)
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
    c, _ = runtime_constants(k, options.runtime, host, options.runtime_version)
    p = prepare(model, quant, options, apple_gpu=apple_gpu(host))
    m = p.speed_inputs
    ub = n_ubatch_for(options)
    fa = bool(p.fa.enabled)
    out = []
    for d in depths:
        if d < 0:
            raise ValueError(f"depth must be >= 0 tokens, got {d}")
        pt = speed_point(
            c, m, h, depth=int(d), prompt_tokens=options.prompt_tokens,
            prompt_start=int(d), n_ubatch=ub, flash_attention=fa,
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


def _r(s: SpeedEstimate | None, name: str) -> float | None:
    v = None if s is None else getattr(s, name)
    return None if v is None else round(float(v), 3)


def estimate_to_dict(e: Estimate, best_quant: str | None = None) -> dict[str, object]:
    """The stable JSON shape (the CLI contract, docs/estimate.md) for one estimate."""
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
        "decode_tps_low": _r(s, "decode_tps_low"),
        "decode_tps_high": _r(s, "decode_tps_high"),
        "prefill_tps": None if s is None else round(s.prefill_tps, 3),
        "prefill_tps_low": _r(s, "prefill_tps_low"),
        "prefill_tps_high": _r(s, "prefill_tps_high"),
        "speed_range_basis": None if s is None else (s.band_basis or None),
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
