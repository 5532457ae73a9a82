"""Speed model: decode and prefill tokens/s, time to first token, tokens/s across context depth.

Pure functions. Each term is one fitted coefficient times one physical quantity, so the model
is a dot product: `decode_design(...)` / `prefill_design(...)` give the quantities (seconds per
unit of coefficient) by name, `RuntimeConstants` holds the coefficients by the same names, and
the time is the sum of their products. The fit (forgeplanner.calibration) builds its design
matrix with the very same functions, and the sweep evaluates them on numpy arrays, so the
fitted model, the scalar estimate and the grid are one formula.

Decode (one token, batch 1) is memory-bound: every weight that takes part in the token is read
once from unified memory, plus the KV cache up to the current depth (roofline: S. Williams,
A. Waterman, D. Patterson, "Roofline: an insightful visual performance model", CACM 52(4),
2009; for LLM decode: llama.cpp discussion #4167, whose tg128 column scales with each chip's
memory bandwidth, and Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023):

    t_decode = R_w / BW x a_stream[generation]       weights read per token (active experts;
                                                      one row of an untied input embedding)
             + R_w x U / BW x a_ultra                 two-die Ultra chips (UltraFusion)
             + R_e / BW x a_experts                   routed-expert bytes (MoE mul_mat_id
                                                      kernels stream less efficiently)
             + KV(d) x m / BW x a_kv                  the cache at depth d, streamed m times
                                                      (m = n_heads / n_kv_heads without flash
                                                      attention: ggml broadcasts K/V over the
                                                      query heads of a group)
             + (R_w + KV) / F x a_core                too few GPU cores to keep the memory busy
             + N / F x d[quant class]                 dequantizing each weight (ALU work)
             + A(d) / F x b_attn                      attention arithmetic at depth d
             + L x tau_layer + tau_token              kernel launches / synchronisation

Prefill is compute-bound (Roofline again; 2 FLOPs per weight: Kaplan et al. 2020, "Scaling
Laws for Neural Language Models", table 1; attention 4 x heads x head_dim per position:
Hoffmann et al. 2022, appendix F):

    t_prefill/token = 2N / F x (c[quant class] + c_gen[generation] + c_na)
                                                      matmuls; c_na on GPUs with neural
                                                      accelerators when the runtime uses them
                                                      (M5 with Metal 4 tensor ops, MLX >= 0.30)
                    + 2N / (F x n_ubatch) x c_batch   small batches run matmuls below peak
                    + 2N x U / F x c_ultra
                    + 2N_e / F x c_experts            routed-expert matmuls (mul_mat_id)
                    + A_mean / F x c_attn[fa]         attention over the prompt positions, with
                                                      or without flash attention
                    + W_all / (n_ubatch x BW) x a_reread   each micro-batch streams the model
                    + L / n_ubatch x tau_ubatch        per-layer launches per micro-batch
                    + (tau_call + L x tau_call_layer) / prompt_tokens   fixed cost per prompt

BW is the chip's memory bandwidth, F its peak FP32 FLOP/s, U = 1 on Ultra chips. Coefficients
are fitted per runtime and runtime era (a llama.cpp build range, an mlx-lm version range) on
published runs; an unknown generation or quant class falls back to the pooled coefficient.
Time to first token = prompt_tokens x prefill time per token + one decode step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.pipeline import SpeedInputs as ModelSpeedInputs
from forgeplanner.engine.quant import QuantScheme

# Quant classes share kernels and so share fitted coefficients.
QUANT_CLASSES: tuple[str, ...] = (
    "float",  # F32/F16/BF16, MLX bf16: no dequantization
    "q8",  # Q8_0 (int8 blocks with one scale)
    "legacy4",  # Q4_0/Q5_0/IQ4_NL/Q4_1: simple 32-element blocks
    "kquant",  # Q2_K..Q6_K mixes (and Unsloth's dynamic UD- mixes of them)
    "iquant",  # IQ1..IQ4_XS: codebook look-ups
    "mxfp4",  # MXFP4 (gpt-oss experts)
    "nvfp4",  # NVFP4 (FP4 E2M1 with FP8 scales per 16 values)
    "mlx_affine",  # MLX affine 2..8-bit with group scales and biases
    "mlx_fp4",  # MLX mxfp4 / nvfp4 modes
)
# Classes without their own fitted coefficient borrow the closest kernel family's.
CLASS_FALLBACK: dict[str, str] = {
    "iquant": "kquant",
    "nvfp4": "mxfp4",
    "mlx_fp4": "mlx_affine",
    "mlx_affine": "legacy4",
    "mxfp4": "legacy4",
}
GENERATIONS: tuple[str, ...] = ("M1", "M2", "M3", "M4", "M5")
# Generations whose GPU cores carry neural accelerators (matrix units) for matmuls: Apple M5
# ("GPU Neural Accelerators", Apple newsroom 2025-10-15).
NEURAL_ACCELERATOR_GENERATIONS: frozenset[str] = frozenset({"M5"})

# Default prompt chunk of llama.cpp (n_ubatch 512) and mlx-lm (prefill_step_size 2048).
UBATCH_DEFAULT = {"llama.cpp": 512, "ollama": 512, "mlx": 2048, "lmstudio-gguf": 512,
                  "lmstudio-mlx": 2048}  # fmt: skip


def quant_class(quant: QuantScheme) -> str:
    """Kernel family of a quantization (decides dequantization and matmul coefficients)."""
    if quant.format == "mlx":
        if quant.base_type == "bf16":
            return "float"
        return "mlx_fp4" if quant.base_type in ("mxfp4", "nvfp4") else "mlx_affine"
    base = quant.base_type
    if base in ("F32", "F16", "BF16"):
        return "float"
    if base == "Q8_0":
        return "q8"
    if base in ("Q4_0", "Q5_0", "IQ4_NL", "Q4_1", "Q5_1"):
        return "legacy4"
    if base == "MXFP4":
        return "mxfp4"
    if base == "NVFP4":
        return "nvfp4"
    if base.startswith("IQ"):
        return "iquant"
    return "kquant"


# A term with no coefficient of its own falls back to its counterpart: matmuls on the neural
# accelerators to the plain matmul coefficients (never to nothing).
TERM_FALLBACK: dict[str, str] = {}
# Adjustment terms (per generation, neural accelerators) may be negative: a faster chip.
SIGNED_TERMS: frozenset[str] = frozenset({"mm_gen", "mm_na", "mm_na_batch"})


def _lookup(table: Mapping[str, float], name: str) -> float:
    """A coefficient by name, falling back along the quant-class chain, then to the pooled
    coefficient of the term, then to the term's counterpart ("stream:M6" -> "stream",
    "mm:iquant" -> "mm:kquant" -> ... -> "mm", "mm_na:q8" -> "mm_na" -> "mm:q8")."""
    term, _, sub = name.partition(":")
    while True:
        chain = []
        s_ = sub
        while s_:
            chain.append(f"{term}:{s_}")
            s_ = CLASS_FALLBACK.get(s_, "")
        chain.append(term)
        for k in chain:
            if k in table:
                return float(table[k])
        if term in TERM_FALLBACK:
            term = TERM_FALLBACK[term]
            continue
        return 0.0


@dataclass(frozen=True, slots=True)
class RuntimeConstants:
    """Fitted coefficients of one runtime (and era), by term name (see the module docstring)."""

    decode: Mapping[str, float]
    prefill: Mapping[str, float]
    # The runtime uses the GPU neural accelerators of the generations that have them.
    uses_neural_accelerators: bool = False
    note: str = ""  # which versions these describe
    # Time multipliers for passively cooled Macs (MacBook Air: no fan, sustained GPU work
    # throttles), fitted on published runs of such machines: {"decode": x, "prefill": y}.
    passive_cooling: Mapping[str, float] = field(default_factory=dict)

    def coeff(self, phase: str, name: str) -> float:
        return _lookup(self.decode if phase == "decode" else self.prefill, name)


@dataclass(frozen=True, slots=True)
class SpeedConstants:
    """Fitted constants of every runtime and era, with how well they fit.

    `runtimes` keys are a runtime profile's constants_key ("llama.cpp", "mlx" ...) for its
    newest era and "KEY@ERA" ("llama.cpp@2024") for older ones. `bands` are the likely
    ranges (multiplicative factors on tokens/s, 10th and 90th percentile of cross-validated
    errors of similar runs) by group key, most specific first (see `band_for`)."""

    runtimes: Mapping[str, RuntimeConstants]
    fit_date: str
    basis: str  # one line: what was fitted on what
    errors: Mapping[str, float] = field(default_factory=dict)  # reported fit errors (%)
    bands: Mapping[str, tuple[float, float, int]] = field(default_factory=dict)
    # Set when these constants were fitted to one machine's own runs (forgeplanner.bench
    # .calibrate): they already describe that machine, CPU or GPU, as measured.
    host_calibration: str | None = None

    def for_runtime(self, runtime: str, era: str | None = None) -> RuntimeConstants:
        """The constants of a runtime (era: a key of its profile's eras; None = newest):
        its own fitted ones, else those of the runtime whose engine it runs (its profile's
        constants_fallback: LM Studio's engines)."""
        return self.resolve(runtime, era)[0]

    def resolve(self, runtime: str, era: str | None = None) -> tuple[RuntimeConstants, str]:
        """(constants, the key they were found under)."""
        from forgeplanner.engine.runtimes import profile

        prof = profile(runtime)
        keys = []
        for base in (prof.constants_key, prof.constants_fallback, str(runtime)):
            if not base:
                continue
            if era:
                keys.append(f"{base}@{era}")
            keys.append(base)
        for key in keys:
            if key in self.runtimes:
                return self.runtimes[key], key
        raise ValueError(
            f"no speed constants for runtime '{runtime}'; valid: {', '.join(self.runtimes)}"
        )

    def band_for(self, keys: tuple[str, ...]) -> tuple[float, float, int] | None:
        """The first band found for the group keys (most specific first)."""
        for k in keys:
            if k in self.bands:
                return self.bands[k]
        return None


def depth_band(tokens: int) -> str:
    """Context bands of the likely ranges: short < 2K <= mid < 16K <= long."""
    if tokens < 2048:
        return "short"
    if tokens < 16384:
        return "mid"
    return "long"


def band_keys(runtime: str, kind: str, moe: bool, band: str) -> tuple[str, ...]:
    """Group keys of a run for its likely range, most specific first (the fit writes bands
    under these keys; an estimate looks them up in this order)."""
    family = "mlx" if str(runtime) in ("mlx", "lmstudio-mlx") else "gguf"
    arch = "moe" if moe else "dense"
    return (
        f"{runtime}|{kind}|{arch}|{band}",
        f"{runtime}|{kind}|{band}",
        f"{runtime}|{kind}",
        f"{family}|{kind}|{band}",
        f"{family}|{kind}",
        kind,
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

    sh = attention_of(model).flops_shape("gguf")
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
# The formulas (scalar or numpy arrays): designs and their dot product with the coefficients
# ---------------------------------------------------------------------------------------------


def decode_design(
    *,
    weights_read_bytes,
    experts_read_bytes,
    kv_bytes,
    active_params,
    n_layers,
    attn_flops,
    bandwidth,
    flops,
    is_ultra,
    generation: str,
    qclass: str,
    recurrent_layers=0.0,
    recurrent_state_bytes=0.0,
) -> dict[str, object]:
    """Quantities of each decode term, seconds per unit of its coefficient. `kv_bytes` is the
    cache at the current depth times how often decode streams it; `attn_flops` the attention
    FLOPs of one token at that depth. Hybrids add their recurrent layers: a per-layer cost (the
    linear-attention / SSM block is many small kernels) and the state update arithmetic
    (about 4 FLOPs per F32 state value per token: the outer-product update and the read-out,
    Yang et al. 2024, "Gated Delta Networks", eq. 3), i.e. the state's bytes as FLOPs."""
    return {
        "rec_layer": recurrent_layers * 1.0,
        "rec_flops": recurrent_state_bytes / flops,
        f"stream:{generation}": weights_read_bytes / bandwidth,
        "stream_ultra": weights_read_bytes * is_ultra / bandwidth,
        "stream_experts": experts_read_bytes / bandwidth,
        "kv": kv_bytes / bandwidth,
        "core": (weights_read_bytes + kv_bytes) / flops,
        f"dequant:{qclass}": active_params / flops,
        "attn": attn_flops / flops,
        "layer": n_layers * 1.0,
        "token": 1.0,
    }


def prefill_design(
    *,
    weight_flops,
    expert_flops,
    attn_flops,
    weights_total_bytes,
    n_ubatch,
    n_layers,
    bandwidth,
    flops,
    is_ultra,
    prompt_tokens,
    qclass: str,
    generation: str,
    neural_accelerators: bool,
    flash_attention: bool,
    recurrent_state_bytes=0.0,
) -> dict[str, object]:
    """Quantities of each prefill term per prompt token (seconds per unit of coefficient).
    `weight_flops` = 2 x active params, `expert_flops` = 2 x routed-expert params a token
    uses, `attn_flops` = mean attention FLOPs over the prompt positions. The matmul
    coefficient is the quant class's, adjusted per chip generation and, on GPUs whose neural
    accelerators the runtime uses, by their gain (adjustments may be negative: faster). The
    last two terms are a fixed cost per prompt (graph set-up, synchronisation, the first
    logits), per call and per layer, spread over the prompt's tokens."""
    mm = weight_flops / flops
    out = {
        "rec_flops": recurrent_state_bytes / flops,
        f"mm:{qclass}": mm,
        f"mm_gen:{generation}": mm,
        # a matmul over few rows runs below peak (tiles half empty, weights streamed for few
        # tokens): efficiency b / (b + b0) for a batch of b tokens adds 2N / F x b0 / b
        "mm_batch": weight_flops / (flops * n_ubatch),
        "mm_ultra": weight_flops * is_ultra / flops,
        "mm_experts": expert_flops / flops,
        ("attn_fa" if flash_attention else "attn_nofa"): attn_flops / flops,
        "reread": weights_total_bytes / (n_ubatch * bandwidth),
        "ubatch_layer": n_layers / n_ubatch,
        "call": 1.0 / prompt_tokens,
        "call_layer": n_layers / prompt_tokens,
    }
    if neural_accelerators:
        out["mm_na"] = mm
        out["mm_na_batch"] = weight_flops / (flops * n_ubatch)
    return out


def dot(table: Mapping[str, float], design: Mapping[str, object]):
    """Sum of coefficient x quantity over the design's terms (scalars or arrays)."""
    total = 0.0
    for name, q in design.items():
        c = _lookup(table, name)
        if c:
            total = total + c * q
    return total


def terms(table: Mapping[str, float], design: Mapping[str, object]) -> dict[str, float]:
    """Seconds contributed by each term (scalars), for explanations."""
    return {name: _lookup(table, name) * float(q) for name, q in design.items()}


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
    generation: str = ""  # "M1".."M5" ("" for CPU hosts and unknown chips)

    @property
    def has_neural_accelerators(self) -> bool:
        return self.is_gpu and self.generation in NEURAL_ACCELERATOR_GENERATIONS


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
        generation=(getattr(host, "chip_generation", None) or "") if host.is_apple_silicon else "",
    )


# ---------------------------------------------------------------------------------------------
# CPU backend (llama.cpp on a CPU host: Intel Mac minis, any non-Apple machine)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuBackendConstants:
    """llama.cpp's CPU-backend decode constants of one CPU kind (vector extensions: "avx512",
    "avx2"), fitted by forgeplanner.calibration.cpu_backend on real llama-bench runs of one
    x86-64 host of that kind (generated into speed_constants_cpu.py):

        t_decode = R x a_bw / BW + N x d_q / F + L x (tau_layer + tau_sync x (threads - 1))

    BW is the host's bandwidth as ForgePlanner measures it (built-in decode simulation: numpy
    float32 sgemv streaming model-sized weights), F its float32 matmul FLOP/s (built-in runner),
    both at the thread count llama.cpp runs with. Why each term: llama.cpp's CPU mat-vec
    kernels (ggml_vec_dot_f16; q8_0 x q8_0 and q4_0 x q8_0 with the activations quantized per
    token) do not stream at BLAS bandwidth (a_bw); each weight costs conversion/dequantization
    plus the multiply-add on the CPU's vector units (d_q FLOP-equivalents of the measured
    matmul throughput); every op ends at a thread barrier (ggml_graph_compute's
    ggml_barrier), a fixed cost per layer that grows with the number of threads (tau_*)."""

    kind: str  # CPU kind the runs came from: "avx512" | "avx2"
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


def cpu_backend_for(
    backends: Mapping[str, CpuBackendConstants], isa: str | None
) -> tuple[CpuBackendConstants, str]:
    """The constants for a CPU whose vector extensions are `isa` ("avx512", "avx2", "avx" or
    None when not known), and why. Its own kind when measured; otherwise the AVX2 constants:
    every CPU without AVX-512 (the Intel Mac minis: AVX2 from 2014, AVX in 2012) runs ggml's
    AVX2/AVX kernels, nearer the AVX2 host than the AVX-512 one."""
    if isa in backends:
        return backends[isa], f"this CPU's kind ({isa})"
    fallback = backends.get("avx2") or next(iter(backends.values()))
    why = (
        f"no runs of this CPU's kind ({isa}); the {fallback.kind} constants"
        if isa
        else f"this CPU's vector extensions are not known here; the {fallback.kind} constants"
    )
    return fallback, why


def cpu_constants(
    gpu: RuntimeConstants, cpu: CpuBackendConstants | None = None, threads: int | None = None
) -> RuntimeConstants:
    """Constants for CPU inference (Intel Macs, non-Apple hosts), `threads` as llama.cpp runs
    (its default: the physical cores).

    With `cpu` (the measured CPU-backend constants, see CpuBackendConstants): decode from
    those; the GPU's generation, core-limit, Ultra, attention and launch terms do not apply.
    Without it decode falls back to physics: streaming at most at the given bandwidth
    (coefficient >= 1) and 2 FLOPs per weight at the prefill-fitted matmul coefficient of the
    quant class. Prefill keeps the GPU fit's matmul coefficients (no CPU prefill fit), without
    neural accelerators or Ultra terms."""
    if cpu is None:
        stream = max(1.0, gpu.coeff("decode", "stream"))
        dequant = {f"dequant:{k}": 2.0 * gpu.coeff("prefill", f"mm:{k}") for k in QUANT_CLASSES}
        layer = gpu.coeff("decode", "layer")
    else:
        stream = cpu.a_bw
        dequant = {f"dequant:{k}": cpu.dequant_for(k) for k in QUANT_CLASSES}
        layer = cpu.tau_layer_for(threads)
    decode = {"stream": stream, "kv": stream, **dequant, "layer": layer}
    prefill = {k: v for k, v in gpu.prefill.items() if not k.startswith(("mm_na", "mm_ultra"))}
    return RuntimeConstants(decode=decode, prefill=prefill, uses_neural_accelerators=False,
                            note="CPU backend")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# One point: decode at a depth, prefill of a prompt
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeedPoint:
    decode_s: float
    decode_terms: dict[str, float]  # seconds per token by term
    prefill_s_per_token: float
    prefill_terms: dict[str, float]  # seconds per prompt token by term
    kv_bytes: float
    prefill_flops_per_token: float


def decode_design_for(
    m: ModelSpeedInputs, h: HostSpeedInputs, depth, *, qclass: str | None = None
) -> dict[str, object]:
    """decode_design for a prepared model on a host at `depth` tokens of cache."""
    kv = m.kv_bytes_at(depth) * m.kv_multiplier
    return decode_design(
        weights_read_bytes=m.weights_read_bytes,
        experts_read_bytes=m.experts_read_bytes,
        kv_bytes=kv,
        active_params=float(m.active_params),
        n_layers=float(m.n_layers),
        attn_flops=m.attn.flops_at(depth),
        bandwidth=h.bandwidth,
        flops=h.flops,
        is_ultra=h.is_ultra,
        generation=h.generation,
        qclass=qclass or m.qclass,
        recurrent_layers=float(m.n_recurrent_layers),
        recurrent_state_bytes=float(m.kv_state_bytes),
    )


def prefill_design_for(
    m: ModelSpeedInputs,
    h: HostSpeedInputs,
    c: RuntimeConstants,
    *,
    prompt_tokens,
    prompt_start,
    n_ubatch,
    flash_attention: bool,
    qclass: str | None = None,
) -> dict[str, object]:
    """prefill_design for a prepared model on a host for a prompt starting at `prompt_start`."""
    return prefill_design(
        weight_flops=2.0 * float(m.active_params),
        expert_flops=2.0 * float(m.expert_active_params),
        attn_flops=m.attn.mean_flops(prompt_start, prompt_tokens),
        weights_total_bytes=float(m.weights_total_bytes),
        n_ubatch=np.minimum(n_ubatch, prompt_tokens) * 1.0,
        n_layers=float(m.n_layers),
        bandwidth=h.bandwidth,
        flops=h.flops,
        is_ultra=h.is_ultra,
        prompt_tokens=prompt_tokens * 1.0,
        qclass=qclass or m.qclass,
        generation=h.generation,
        neural_accelerators=bool(c.uses_neural_accelerators and h.has_neural_accelerators),
        flash_attention=flash_attention,
        recurrent_state_bytes=float(m.kv_state_bytes),
    )


def speed_point(
    c: RuntimeConstants,
    m: ModelSpeedInputs,
    h: HostSpeedInputs,
    *,
    depth: int,
    prompt_tokens: int,
    prompt_start: int,
    n_ubatch: int,
    flash_attention: bool = True,
) -> SpeedPoint:
    """Decode at `depth` tokens of cache; prefill of `prompt_tokens` starting at `prompt_start`."""
    dd = decode_design_for(m, h, depth)
    pd = prefill_design_for(m, h, c, prompt_tokens=prompt_tokens, prompt_start=prompt_start,
                            n_ubatch=n_ubatch, flash_attention=flash_attention)  # fmt: skip
    dterms = terms(c.decode, dd)
    pterms = terms(c.prefill, pd)
    return SpeedPoint(
        decode_s=float(dot(c.decode, dd)),
        decode_terms=dterms,
        prefill_s_per_token=float(dot(c.prefill, pd)),
        prefill_terms=pterms,
        kv_bytes=float(m.kv_bytes_at(depth)),
        prefill_flops_per_token=float(
            prefill_flops_per_token(float(m.active_params), m.attn, prompt_start, prompt_tokens)
        ),
    )
