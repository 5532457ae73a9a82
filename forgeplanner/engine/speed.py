"""Speed model: decode and prefill tokens/s, time to first token, tokens/s across context depth.

Pure functions. Every formula works on Python floats and on numpy arrays alike (only `+ - * /`,
`np.minimum`, table look-ups), so `forgeplanner.engine.sweep` evaluates exactly the same
arithmetic over a whole grid that `forgeplanner.engine.estimate` does for one point.

The physics (each term is one fitted constant times a physical quantity, so the fit is a linear
least-squares problem and the explanation is "term = constant x quantity"):

Decode (one token, batch 1) is memory-bound: every weight that takes part in the token is read
once from unified memory, plus the KV cache up to the current depth. Roofline argument:
S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model",
CACM 52(4), 2009; for LLM decode: llama.cpp discussion #4167 (its tg128 column scales with
each chip's memory bandwidth, not its GPU cores) and Pope et al., "Efficiently Scaling
Transformer Inference", MLSys 2023 (sec. 2: decode reads all weights per step).

    t_decode = R * (a_bw / BW + a_ultra * U / BW + a_core / F)     streaming the bytes
             + N * d_q / F                                          dequantizing the weights
             + tau_token + tau_layer * L                            kernel launch / sync

    R   bytes read per token = weights read (MoE: shared parts + the experts actually routed;
        the input-embedding table is one row, so untied models skip it) + KV read at depth
        (llama.cpp without flash attention multiplies K/V reads by the GQA ratio: ggml's
        mul_mat broadcasts K and V over the query heads of a group, ggml-metal kernel_mul_mv
        `r2 = ne12/ne02`; flash attention and MLX's fused SDPA read each KV head once),
        times kv_read_factor.
    BW  memory bandwidth (B/s); U = 1 on two-die Ultra chips (UltraFusion crossing);
    F   peak FP32 FLOP/s of the GPU (the cores that issue the loads and dequantize);
        a_core / F models that too few cores cannot keep all memory channels busy
        (M1 Ultra 48-core decodes slower than the 64-core at the same 800 GB/s, #4167).
    N   parameters that take part per token; d_q FLOP-equivalents of dequantization work per
        weight for the quant class (0 for floats; unpacking 4-bit blocks costs ALU time).
    L   layers; tau_* fixed per-token costs (command-buffer encode/commit, per-layer kernels).

Prefill is compute-bound (large matmuls, Roofline again):

    t_prefill/token = FLOPs * (c_q + c_ultra * U) / F + W_all * a_reread / (n_ubatch * BW)

    FLOPs = 2 * N (one multiply-add per weight; Kaplan et al. 2020, "Scaling Laws for Neural
            Language Models", table 1: C_forward ~ 2N + attention)
          + attention: per attention layer 4 * n_heads * head_dim * p for a token at
            position p (QK^T and AV, 2 FLOPs per MAC each; windowed layers use min(p, W);
            MLA: 2 * n_heads * (qk_head_dim + v_head_dim) * p),
    c_q   inverse compute efficiency per quant class (quantized matmul kernels dequantize),
    W_all all weight bytes: a ubatch of 512 tokens routes to nearly every expert, and each
          ubatch streams the whole model once (llama.cpp processes the prompt in n_ubatch
          chunks, `llama_context::decode`).

Time to first token = prompt_tokens / prefill_tps + one decode step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.pipeline import SpeedInputs as ModelSpeedInputs
from forgeplanner.engine.quant import QuantScheme

# Quant classes share kernels and so share fitted efficiencies.
QUANT_CLASSES: tuple[str, ...] = (
    "float",  # F32/F16/BF16, MLX bf16: no dequantization
    "q8",  # Q8_0 (int8 blocks with one scale)
    "legacy4",  # Q4_0/Q5_0/IQ4_NL: simple 32-element blocks
    "kquant",  # Q2_K..Q6_K mixes: 256-element super-blocks with sub-block scales
    "iquant",  # IQ1..IQ4_XS: codebook look-ups (no calibration rows: uses the k-quant value)
    "mxfp4",  # MXFP4 experts (gpt-oss)
    "mlx_affine",  # MLX affine 3/4/6/8-bit with group scales and biases
)
# Quant classes without their own calibration rows borrow the closest measured class.
CLASS_FALLBACK: dict[str, str] = {"iquant": "kquant"}

# Default prompt chunk of llama.cpp (llama-bench/llama-cli n_ubatch 512) and mlx-lm
# (`generate_step` prefill_step_size 2048).
UBATCH_DEFAULT = {"llama.cpp": 512, "ollama": 512, "mlx": 2048, "lmstudio-gguf": 512,
                  "lmstudio-mlx": 2048}  # fmt: skip


def quant_class(quant: QuantScheme) -> str:
    """Kernel family of a quantization (decides dequantization cost)."""
    if quant.format == "mlx":
        return "float" if quant.base_type == "bf16" else "mlx_affine"
    base = quant.base_type
    if base in ("F32", "F16", "BF16"):
        return "float"
    if base == "Q8_0":
        return "q8"
    if base in ("Q4_0", "Q5_0", "IQ4_NL"):
        return "legacy4"
    if base == "MXFP4":
        return "mxfp4"
    if base.startswith("IQ"):
        return "iquant"
    return "kquant"


@dataclass(frozen=True, slots=True)
class RuntimeConstants:
    """Fitted constants of one runtime. See the module docstring for the formulas."""

    a_bw: float  # inverse bandwidth efficiency (1 = reads at the peak bandwidth)
    a_ultra: float  # extra inverse efficiency on two-die Ultra chips
    a_core: float  # FLOP-equivalents per byte streamed (core-limited streaming)
    dequant: Mapping[str, float]  # FLOP-equivalents per weight per token, per quant class
    tau_token_s: float
    tau_layer_s: float
    kv_read_factor: float
    compute: Mapping[str, float]  # inverse compute efficiency (1/eta) per quant class
    c_ultra: float
    a_reread: float

    def dequant_for(self, qclass: str) -> float:
        return float(self.dequant.get(qclass, self.dequant.get(CLASS_FALLBACK.get(qclass, ""), 0)))

    def compute_for(self, qclass: str) -> float:
        if qclass in self.compute:
            return float(self.compute[qclass])
        return float(self.compute[CLASS_FALLBACK.get(qclass, "float")])


@dataclass(frozen=True, slots=True)
class SpeedConstants:
    runtimes: Mapping[str, RuntimeConstants]
    fit_date: str
    basis: str  # one line: what was fitted on what
    errors: Mapping[str, float] = field(default_factory=dict)  # reported fit errors (MAPE %)
    per_core_fp32_flops: Mapping[str, float] = field(default_factory=dict)  # by generation
    # Speed-up of recent llama.cpp builds over the reference-era builds the constants describe,
    # fitted as a nuisance factor ({"decode": 0.15, "prefill": 0.2} = 15 % / 20 % faster).
    build_drift: Mapping[str, float] = field(default_factory=dict)
    # Set when these constants were fitted to one machine's own runs (forgeplanner.bench
    # .calibrate): they already describe that machine, CPU or GPU, as measured.
    host_calibration: str | None = None

    def for_runtime(self, runtime: str) -> RuntimeConstants:
        """The constants of a runtime: its own fitted ones, else those of the runtime whose
        engine it runs (its profile's constants_fallback: LM Studio's engines)."""
        from forgeplanner.engine.runtimes import profile

        prof = profile(runtime)
        for key in (prof.constants_key, prof.constants_fallback, str(runtime)):
            if key and key in self.runtimes:
                return self.runtimes[key]
        raise ValueError(
            f"no speed constants for runtime '{runtime}'; valid: {', '.join(self.runtimes)}"
        )


# ---------------------------------------------------------------------------------------------
# Model-side quantities
# ---------------------------------------------------------------------------------------------


def _mean_min(start, n, window):
    """Mean of min(p, window) for p = start .. start+n-1 (exact, vectorisable).

    Positions below the window contribute p, the rest contribute the window.
    """
    start = np.asarray(start, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    window = np.asarray(window, dtype=np.float64)
    end = start + n  # exclusive
    below_end = np.minimum(end, np.maximum(window, start))  # positions [start, below_end) < W
    k = below_end - start
    sum_below = k * (start + below_end - 1.0) / 2.0
    sum_above = (n - k) * window
    return (sum_below + sum_above) / n


@dataclass(frozen=True, slots=True)
class AttentionShape:
    """Per-token attention FLOPs coefficients of a model.

    flops(p) = full_coeff * p + sum_w window_coeff[w] * min(p, w)
    """

    full_coeff: float
    windowed: tuple[tuple[int, float], ...]  # (window, coeff)
    gqa_ratio: float

    def flops_at(self, position):
        out = self.full_coeff * np.asarray(position, dtype=np.float64)
        for w, c in self.windowed:
            out = out + c * np.minimum(position, w)
        return out

    def mean_flops(self, start, n):
        """Mean attention FLOPs per token over positions start .. start+n-1."""
        start = np.asarray(start, dtype=np.float64)
        n = np.asarray(n, dtype=np.float64)
        out = self.full_coeff * (start + (n - 1.0) / 2.0)
        for w, c in self.windowed:
            out = out + c * _mean_min(start, n, w)
        return out


def attention_shape(model: ModelSpec) -> AttentionShape:
    """Attention FLOPs per token per cached position, from the model's attention kind
    (forgeplanner/engine/attention: 4 * n_heads * head_dim per attention layer, Hoffmann et al.
    2022 appendix F; MLA 2 * n_heads * (qk_head_dim + v_head_dim); windowed layers capped)."""
    from forgeplanner.engine.attention import attention_of

    sh = attention_of(model).flops_shape()
    return AttentionShape(full_coeff=sh.full_coeff, windowed=sh.windowed, gqa_ratio=sh.gqa_ratio)


def kv_read_multiplier(model: ModelSpec, runtime: str, flash_attention: bool) -> float:
    """How many times the KV cache is streamed per decode token (before kv_read_factor):
    the attention kind decides (see attention/full.py); MLX's fused SDPA reads each KV head
    once, like flash attention."""
    from forgeplanner.engine.attention import attention_of
    from forgeplanner.engine.runtimes import profile

    fused = profile(runtime).cache_rules == "mlx" or bool(flash_attention)
    return attention_of(model).kv_read_multiplier(fused)


# ---------------------------------------------------------------------------------------------
# The formulas (scalar or numpy arrays)
# ---------------------------------------------------------------------------------------------


def decode_terms(
    c: RuntimeConstants,
    *,
    weights_read_bytes,
    kv_bytes,
    kv_multiplier,
    active_params,
    n_layers,
    bandwidth,
    flops,
    is_ultra,
    dequant_coeff,
):
    """The decode time terms in seconds per token: (stream, dequant, fixed).

    `dequant_coeff` is `c.dequant_for(quant_class)` (an array of them in a sweep);
    `kv_bytes` is the KV cache held at the current depth, `kv_multiplier` the result of
    `kv_read_multiplier` (how often it is streamed per token).
    """
    read = weights_read_bytes + kv_bytes * kv_multiplier * c.kv_read_factor
    stream = read * ((c.a_bw + c.a_ultra * is_ultra) / bandwidth + c.a_core / flops)
    dequant = active_params * dequant_coeff / flops
    fixed = c.tau_token_s + c.tau_layer_s * n_layers
    return stream, dequant, fixed


def decode_seconds(c: RuntimeConstants, **kw):
    stream, dequant, fixed = decode_terms(c, **kw)
    return stream + dequant + fixed


def prefill_terms(
    c: RuntimeConstants,
    *,
    flops_per_token,
    weights_total_bytes,
    n_ubatch,
    bandwidth,
    flops,
    is_ultra,
    compute_coeff,
):
    """Prefill time terms in seconds per prompt token: (compute, weight re-read)."""
    compute = flops_per_token * (compute_coeff + c.c_ultra * is_ultra) / flops
    reread = weights_total_bytes * c.a_reread / (n_ubatch * bandwidth)
    return compute, reread


def prefill_seconds_per_token(c: RuntimeConstants, **kw):
    compute, reread = prefill_terms(c, **kw)
    return compute + reread


def prefill_flops_per_token(active_params, attn: AttentionShape, start, n):
    """2 FLOPs per weight plus mean attention FLOPs over the prompt positions."""
    return 2.0 * active_params + attn.mean_flops(start, n)


def ttft_seconds(prompt_tokens, prefill_s_per_token, first_decode_s):
    """Time to first token: read the prompt, then produce one token (with the prompt in the
    cache). Scalars or numpy arrays."""
    return prompt_tokens * prefill_s_per_token + first_decode_s


# ---------------------------------------------------------------------------------------------
# From specs to the physical quantities (model x quant x runtime; host)
# ---------------------------------------------------------------------------------------------


def weights_read_per_token(model: ModelSpec, quant: QuantScheme | str) -> tuple[float, int]:
    """(bytes read per decoded token, total weight bytes), from the pipeline's table.

    Read per token: everything except (a) the input-embedding table of untied models, of
    which a token reads one row, and (b) the routed experts that are not selected: MoE layers
    read experts_per_token of n_experts (Fedus et al., "Switch Transformers", JMLR 2022,
    sec. 2: each token is processed by its top-k experts only). Shared experts, attention,
    dense layers and the output head are always read. The router matrix sits in the experts
    group and is scaled with it (it is < 0.1 % of those bytes).
    """
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.pipeline import prepare
    from forgeplanner.engine.quant import get_quant

    q = get_quant(quant)
    runtime = "mlx" if q.format == "mlx" else "llama.cpp"
    m = prepare(model, q, RunOptions(runtime=runtime)).speed_inputs
    return m.weights_read_bytes, m.weights_total_bytes


def model_speed_inputs(
    model: ModelSpec,
    quant: QuantScheme | str,
    runtime: str = "llama.cpp",
    kv_type: str = "f16",
    flash_attention: bool | None = None,
    *,
    apple_gpu: bool = True,
) -> ModelSpeedInputs:
    """What the speed formulas read for this model x quant x runtime (the pipeline's table).
    flash_attention None = the runtime's default, resolved by its profile (for the Metal
    backend unless apple_gpu is False)."""
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.pipeline import prepare

    opts = RunOptions(runtime=runtime, kv_type=kv_type, flash_attention=flash_attention)
    return prepare(model, quant, opts, apple_gpu=apple_gpu).speed_inputs


@dataclass(frozen=True, slots=True)
class HostSpeedInputs:
    bandwidth: float  # B/s
    flops: float  # peak FP32 FLOP/s of the device that runs the model
    is_ultra: float  # 1.0 on two-die chips
    is_gpu: bool
    bandwidth_basis: str
    flops_basis: str


def host_speed_inputs(host) -> HostSpeedInputs | None:
    """None when bandwidth or compute of the host is unknown (then speed is unknown)."""
    if not host.bandwidth_bytes_per_s or not host.fp32_flops:
        return None
    return HostSpeedInputs(
        bandwidth=float(host.bandwidth_bytes_per_s),
        flops=float(host.fp32_flops),
        is_ultra=1.0 if (host.chip_tier or "").lower() == "ultra" else 0.0,
        is_gpu=bool(host.is_apple_silicon),
        bandwidth_basis=host.bandwidth_basis,
        flops_basis=host.fp32_flops_basis or "catalog",
    )


# ---------------------------------------------------------------------------------------------
# CPU backend (llama.cpp on a CPU host: Intel Mac minis, any non-Apple machine)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuBackendConstants:
    """llama.cpp's CPU-backend decode constants, fitted by scripts/calibrate_cpu_backend.py on
    real llama-bench runs of one x86-64 host (generated into speed_constants_cpu.py):

        t_decode = R x a_bw / BW + N x d_q / F + L x (tau_layer + tau_sync x (threads - 1))

    BW is the host's bandwidth as ForgePlanner measures it (built-in decode simulation: numpy
    float32 sgemv streaming model-sized weights), F its float32 matmul FLOP/s (built-in runner),
    both at the thread count llama.cpp runs with. Why each term: llama.cpp's CPU mat-vec
    kernels (ggml_vec_dot_f16; q8_0 x q8_0 and q4_0 x q8_0 with the activations quantized per
    token) do not stream at BLAS bandwidth (a_bw); each weight costs conversion/dequantization
    plus the multiply-add on the CPU's vector units (d_q FLOP-equivalents of the measured
    matmul throughput); every op ends at a thread barrier (ggml_graph_compute's
    ggml_barrier), a fixed cost per layer that grows with the number of threads (tau_*)."""

    a_bw: float
    dequant: Mapping[str, float]  # per measured quant class
    tau_layer_s: float  # per layer per token, one thread
    tau_sync_s: float  # per layer per token per additional thread
    measured_on: str  # CPU model / host the runs came from
    fit_date: str
    tool: str  # llama.cpp build the runs used
    errors: Mapping[str, float] = field(default_factory=dict)

    def dequant_for(self, qclass: str) -> float:
        """Measured classes use their own value; K-/I-quants, MXFP4 and MLX-affine have no
        CPU runs and take the block-4-bit (legacy4) value, the closest measured kernel."""
        if qclass in self.dequant:
            return float(self.dequant[qclass])
        return float(self.dequant.get("legacy4", max(self.dequant.values(), default=0.0)))

    def tau_layer_for(self, threads: int | None) -> float:
        return self.tau_layer_s + self.tau_sync_s * max(0, (threads or 1) - 1)

    def basis(self) -> str:
        return (
            f"llama.cpp CPU-backend constants measured on {self.measured_on}, {self.fit_date}; "
            "your own `forgeplanner calibrate` replaces them"
        )


def cpu_constants(
    gpu: RuntimeConstants, cpu: CpuBackendConstants | None = None, threads: int | None = None
) -> RuntimeConstants:
    """Constants for CPU inference (Intel Macs, non-Apple hosts), `threads` as llama.cpp runs
    (its default: the physical cores).

    With `cpu` (the measured CPU-backend constants, see CpuBackendConstants): decode from
    those; the GPU's core-limited streaming and Ultra terms do not apply. Without it (no CPU
    fit available) decode falls back to physics with the GPU fit's efficiencies: streaming at
    most at the given bandwidth (a_bw >= 1), 2 FLOPs per weight at the prefill-fitted
    efficiency of the quant class (d = 2 x c_q), the GPU's per-layer cost.
    Prefill keeps the GPU fit's compute efficiencies either way (no CPU prefill fit)."""
    classes = set(gpu.compute) | set(gpu.dequant) | set(QUANT_CLASSES)
    if cpu is None:
        a_bw = max(1.0, gpu.a_bw)
        dequant = {k: 2.0 * gpu.compute_for(k) for k in classes}
        tau_token, tau_layer = gpu.tau_token_s, gpu.tau_layer_s
    else:
        a_bw = cpu.a_bw
        dequant = {k: cpu.dequant_for(k) for k in classes}
        tau_token, tau_layer = 0.0, cpu.tau_layer_for(threads)
    return RuntimeConstants(
        a_bw=a_bw,
        a_ultra=0.0,
        a_core=0.0,
        dequant=dequant,
        tau_token_s=tau_token,
        tau_layer_s=tau_layer,
        kv_read_factor=gpu.kv_read_factor,
        compute={k: gpu.compute_for(k) for k in classes},
        c_ultra=0.0,
        a_reread=gpu.a_reread,
    )


@dataclass(frozen=True, slots=True)
class SpeedPoint:
    decode_s: float
    decode_terms: tuple[float, float, float]  # stream, dequant, fixed (s/token)
    prefill_s_per_token: float
    prefill_terms: tuple[float, float]  # compute, re-read (s/token)
    kv_bytes: float
    prefill_flops_per_token: float


def speed_point(
    c: RuntimeConstants,
    m: ModelSpeedInputs,
    h: HostSpeedInputs,
    *,
    depth: int,
    prompt_tokens: int,
    prompt_start: int,
    n_ubatch: int,
) -> SpeedPoint:
    """Decode at `depth` tokens of cache; prefill of `prompt_tokens` starting at `prompt_start`."""
    kv = float(m.kv_bytes_at(depth))
    dterms = decode_terms(
        c,
        weights_read_bytes=m.weights_read_bytes,
        kv_bytes=kv,
        kv_multiplier=m.kv_multiplier,
        active_params=float(m.active_params),
        n_layers=float(m.n_layers),
        bandwidth=h.bandwidth,
        flops=h.flops,
        is_ultra=h.is_ultra,
        dequant_coeff=c.dequant_for(m.qclass),
    )
    fpt = float(
        prefill_flops_per_token(float(m.active_params), m.attn, prompt_start, prompt_tokens)
    )
    pterms = prefill_terms(
        c,
        flops_per_token=fpt,
        weights_total_bytes=float(m.weights_total_bytes),
        n_ubatch=float(min(n_ubatch, prompt_tokens)),
        bandwidth=h.bandwidth,
        flops=h.flops,
        is_ultra=h.is_ultra,
        compute_coeff=c.compute_for(m.qclass),
    )
    return SpeedPoint(
        decode_s=float(sum(dterms)),
        decode_terms=tuple(float(x) for x in dterms),  # type: ignore[arg-type]
        prefill_s_per_token=float(sum(pterms)),
        prefill_terms=tuple(float(x) for x in pterms),  # type: ignore[arg-type]
        kv_bytes=kv,
        prefill_flops_per_token=fpt,
    )
