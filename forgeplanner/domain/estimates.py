"""Inputs and outputs of the sizing engine. Frozen values; the engine fills them.

Every estimate carries `explain`: the formula behind each term with the numbers filled in and
its source, so the GUI's "explain" panel and `--json` show the same reasoning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from forgeplanner.domain.runtime import RUNTIME_NAMES, Runtime

RUNTIMES: tuple[str, ...] = RUNTIME_NAMES
KV_TYPES: tuple[str, ...] = ("f16", "q8_0", "q4_0")

VERDICT_FITS = "fits"
VERDICT_RAISED = "fits-with-raised-limit"
VERDICT_NO = "does-not-fit"


@dataclass(frozen=True, slots=True)
class Explanation:
    term: str  # "weights", "kv_cache", "decode_tps", ...
    formula: str  # symbolic: "2 * L * n_kv * head_dim * b * ctx"
    numbers: str  # same with the numbers: "2 * 32 * 8 * 128 * 2 B * 8192"
    value: str  # the result, formatted with its unit
    source: str = ""  # where the formula comes from (paper, upstream file @commit)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the model is run. Defaults follow llama.cpp's defaults where it has one."""

    context: int = 8192
    depth: int = 0  # tokens already in the KV cache when measuring decode speed
    prompt_tokens: int = 512
    kv_type: str = "f16"
    # True = on (-fa on), False = off (-fa off), None = the runtime's default ("auto": what it
    # resolves to is decided by forgeplanner.engine.runtime_defaults; use the resolved value)
    flash_attention: bool | None = None
    parallel: int = 1  # parallel sequences (llama.cpp -np / n_seq_max)
    runtime: Runtime = Runtime.LLAMA_CPP  # a runtime name is accepted and parsed
    n_batch: int = 2048
    n_ubatch: int = 512
    # The runtime's version: a llama.cpp build ("b8920"), an mlx-lm / Ollama / LM Studio
    # version ("0.26.3"); None = the newest the speed constants cover.
    runtime_version: str | None = None

    def __post_init__(self) -> None:
        if self.context <= 0:
            raise ValueError(f"context must be a positive number of tokens, got {self.context}")
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0 tokens, got {self.depth}")
        if self.prompt_tokens <= 0:
            raise ValueError(f"prompt_tokens must be positive, got {self.prompt_tokens}")
        if self.parallel <= 0:
            raise ValueError(f"parallel must be >= 1, got {self.parallel}")
        if self.kv_type not in KV_TYPES:
            raise ValueError(f"kv_type '{self.kv_type}' unknown; valid: {', '.join(KV_TYPES)}")
        if not isinstance(self.runtime, Runtime):
            object.__setattr__(self, "runtime", Runtime.parse(self.runtime))
        if (
            self.kv_type != "f16"
            and self.flash_attention is False
            and self.runtime not in (Runtime.MLX, Runtime.LMSTUDIO_MLX)
        ):
            # llama.cpp: a quantized V cache requires flash attention (llama-context.cpp
            # refuses "quantized V cache requires flash_attn to be enabled" with -fa off;
            # under the default -fa auto it turns flash attention on).
            raise ValueError(
                f"kv_type {self.kv_type} quantizes the V cache, which needs flash attention "
                "(drop --no-flash-attention)"
            )


@dataclass(frozen=True, slots=True)
class HostSpec:
    """The machine an estimate is for: a catalog configuration, a chip + memory, or the
    machine ForgePlanner runs on. Unknown figures are None, never guessed."""

    name: str
    is_apple_silicon: bool
    memory_bytes: int
    bandwidth_bytes_per_s: float | None
    bandwidth_basis: str  # "catalog: <source>" | "measured: run <id>" | "unknown"
    fp32_flops: float | None = None  # peak FP32 FLOP/s of the GPU (Apple) or CPU (other)
    gpu_cores: int = 0
    cpu_cores: int | None = None
    chip_id: str | None = None
    config_id: str | None = None
    macos_version: str | None = None
    wired_limit_mb: int | None = None  # user-given iogpu.wired_limit_mb (0 = default)
    measured_gpu_limit_bytes: int | None = None  # e.g. Metal recommendedMaxWorkingSetSize
    chip_tier: str | None = None  # "base" | "pro" | "max" | "ultra" | "intel" (Ultra = two dies)
    fp32_flops_basis: str = ""  # "catalog: <source>" | "derived: cores x per-core ..." | "unknown"
    chip_generation: str | None = None  # "M1".."M5" | "intel"
    passive_cooling: bool = False  # fanless (MacBook Air): sustained GPU work throttles
    cpu_isa: str | None = None  # x86 vector extensions: "avx512" | "avx2" | "avx" | None unknown


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    runtime_bytes: int
    explain: tuple[Explanation, ...] = ()
    recurrent_state_bytes: int = 0  # included in kv_cache_bytes; shown apart for hybrids

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.runtime_bytes

    def to_dict(self) -> dict[str, int]:
        return {
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "compute_bytes": self.compute_bytes,
            "runtime_bytes": self.runtime_bytes,
            "total_bytes": self.total_bytes,
        }


@dataclass(frozen=True, slots=True)
class GpuBudget:
    physical_bytes: int
    gpu_limit_bytes: int  # what the GPU may wire now (or all RAM minus OS for CPU hosts)
    basis: str  # "default wired limit heuristic (macOS 15, ...)", "iogpu.wired_limit_mb=N", ...
    os_reserve_bytes: int  # what macOS (or the OS) keeps for itself at this limit
    max_raisable_limit_bytes: int  # the highest limit worth setting while leaving macOS enough

    def to_dict(self) -> dict[str, object]:
        return {
            "physical_bytes": self.physical_bytes,
            "gpu_limit_bytes": self.gpu_limit_bytes,
            "basis": self.basis,
        }


@dataclass(frozen=True, slots=True)
class FitResult:
    verdict: str  # VERDICT_FITS | VERDICT_RAISED | VERDICT_NO
    headroom_bytes: int  # gpu_limit - total (negative when it does not fit at the limit)
    memory: MemoryEstimate
    budget: GpuBudget
    sysctl_command: str | None = None  # for fits-with-raised-limit
    memory_left_for_macos_bytes: int | None = None  # after raising the limit
    explain: tuple[Explanation, ...] = ()


@dataclass(frozen=True, slots=True)
class SpeedEstimate:
    decode_tps: float
    prefill_tps: float
    ttft_s: float
    explain: tuple[Explanation, ...] = ()
    basis: str = ""  # "calibrated constants (fit 2026-11-26)", "host calibration run 12", ...
    # Likely ranges (10th-90th percentile of what held-out published runs of similar setups
    # measured for this estimate); None when no band applies (e.g. a host calibration).
    decode_tps_low: float | None = None
    decode_tps_high: float | None = None
    prefill_tps_low: float | None = None
    prefill_tps_high: float | None = None
    band_basis: str = ""  # which group of published runs the range comes from

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("explain")
        return d


@dataclass(frozen=True, slots=True)
class Estimate:
    """Everything `forgeplanner estimate` reports for one model x quant x host x options."""

    model_id: str
    quant: str
    host: HostSpec
    options: RunOptions
    fit: FitResult
    speed: SpeedEstimate | None
    max_context_that_fits: int | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # options.flash_attention is the resolved value; this says why (runtime default, ...)
    flash_attention_basis: str = ""
