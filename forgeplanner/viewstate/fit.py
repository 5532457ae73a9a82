"""The Fit view's state: inputs, and the numbers the page shows for them.

Numbers that mean what they say: the headline decode speed is for the chosen context *filled*
(the engine's `RunOptions.depth` = context) and the time to first token is for a prompt of that
length (`prompt_tokens` = context); the empty-context figures stand beside them. The memory
bar is used memory (weights, KV cache, compute buffer, runtime) against the GPU limit in force,
what macOS keeps and physical memory: what macOS keeps is the space between the limit and the
physical line, never a block stacked on top of the model. The largest context is given for the
limit in force and for the raised one.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from forgeplanner.domain.estimates import (
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    Estimate,
    HostSpec,
    RunOptions,
)
from forgeplanner.domain.runtime import Runtime
from forgeplanner.domain.units import GiB, MiB
from forgeplanner.errors import ForgePlannerError
from forgeplanner.viewstate.speed import PublishedRun, published_runs, speed_with_range
from forgeplanner.viewstate.vocabulary import (
    THIS_MACHINE,
    machine_name_of,
    tokens,
    verdict_word,
)

DEFAULT_MODEL = "llama-3.3-70b"
DEFAULT_MACHINE = "mac-mini-m4-pro-20c-64gb"
DEFAULT_QUANT = "Q4_K_M"
DEFAULT_CONTEXT = 8192
CONTEXT_PRESETS: tuple[int, ...] = (4096, 8192, 16384, 32768, 65536, 131072)
SHORT_PROMPT = 512  # the empty-context TTFT: a short prompt (llama-bench's -p default)
CURVE_POINTS = 48
MIN_CONTEXT = 256


class InputError(ValueError):
    """A typed value the field cannot take; the message is one line naming field and value."""


# -- typed fields ------------------------------------------------------------------------------
_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*(?:tok(?:ens)?)?\s*$")


def parse_context(text: str, max_context: int | None) -> int:
    """ "16K", "16k", "16384", "16,384", "max" -> tokens. K = 1024 tokens (as context sizes are
    quoted: 128K = 131072). Bounded by 256 and the model's maximum."""
    t = text.strip().replace(",", "").replace("_", "")
    top = int(max_context) if max_context else None
    if t.lower() in ("max", "maximum"):
        if top is None:
            raise InputError("Context 'max': this model's maximum context is unknown")
        return top
    m = _TOKENS.match(t)
    if m is None:
        raise InputError(f"Context '{text}': expected tokens such as 16384, 16K or max")
    n = float(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    value = round(n)
    if value < MIN_CONTEXT:
        raise InputError(f"Context '{text}': at least {MIN_CONTEXT} tokens")
    if top is not None and value > top:
        raise InputError(
            f"Context '{text}': this model takes at most {top:,} tokens ({tokens(top)})"
        )
    return value


def context_presets(max_context: int | None) -> list[tuple[str, int]]:
    """(label, tokens): 4K ... 128K up to the model's maximum, then "max"."""
    top = int(max_context) if max_context else None
    out = [(tokens(n), n) for n in CONTEXT_PRESETS if top is None or n <= top]
    if top is not None and all(n != top for _, n in out):
        out.append((f"max ({tokens(top)})", top))
    elif top is not None:
        out[-1] = (f"max ({tokens(top)})", top)
    return out


_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mb|mib|m|gb|gib|g)?\s*$", re.IGNORECASE)


def parse_gpu_limit(text: str) -> int | None:
    """The GPU wired limit as typed: "default" (or empty, or 0) -> None; "49152" or "49152 MB"
    -> 49152; "48 GB" -> 49152. The unit is macOS's `iogpu.wired_limit_mb` megabyte, which is
    2^20 bytes (so 48 GB of unified memory = 49152 MB)."""
    t = text.strip()
    if t.lower() in ("", "default", "macos default", "0"):
        return None
    t = t.split("(", 1)[0].strip()  # "49152 MB (leaves macOS 8 GB)" from a preset
    m = _LIMIT.match(t)
    if m is None:
        raise InputError(f"GPU limit '{text}': expected default, MB (49152) or GB (48 GB)")
    value = float(m.group(1))
    unit = (m.group(2) or "mb").lower()
    mb = round(value * 1024) if unit.startswith("g") else round(value)
    if mb <= 0:
        return None
    return mb


def gpu_limit_presets(physical_bytes: int, max_raisable_bytes: int) -> list[tuple[str, int | None]]:
    """(label, MB) for the machine: the default, then whole-GiB limits from half of RAM up to
    the most that leaves macOS its reserve."""
    out: list[tuple[str, int | None]] = [("default", None)]
    top_mb = max_raisable_bytes // MiB
    gib_steps = sorted({g for g in range(4, physical_bytes // GiB + 1, 4)})
    for g in gib_steps:
        mb = g * 1024
        if physical_bytes // 2 <= g * GiB < max_raisable_bytes:
            out.append((f"{mb} MB ({g} GB)", mb))
    left = (physical_bytes - top_mb * MiB) / GiB
    out.append((f"{top_mb} MB (most; leaves macOS {left:.0f} GB)", top_mb))
    return out


# -- inputs and outcome --------------------------------------------------------------------------
@dataclass(frozen=True)
class FitInputs:
    model_id: str = DEFAULT_MODEL
    machine: str = DEFAULT_MACHINE  # a catalog configuration id, or THIS_MACHINE
    runtime: str = Runtime.LLAMA_CPP
    quant: str | None = DEFAULT_QUANT
    kv_type: str = "f16"
    flash_attention: bool | None = None  # None: the runtime's default
    gpu_limit_mb: int | None = None  # None: macOS's default limit
    context: int = DEFAULT_CONTEXT

    def options(self, *, filled: bool = True) -> RunOptions:
        """The engine's options: decode with the context filled and a prompt of that length
        (filled), or the empty-context figures (depth 0, a short prompt)."""
        return RunOptions(
            context=self.context,
            depth=self.context if filled else 0,
            prompt_tokens=self.context if filled else SHORT_PROMPT,
            kv_type=self.kv_type,
            flash_attention=self.flash_attention,
            runtime=self.runtime,
        )


@dataclass(frozen=True)
class MemoryBar:
    """GiB figures for the memory chart: the used parts stacked from 0, three lines above."""

    parts: tuple[tuple[str, str, float], ...]  # (key, label, GiB) stacked from 0
    used_gib: float
    limit_gib: float  # the GPU limit in force
    raised_gib: float | None  # the limit the sysctl command sets (fits-with-raised-limit)
    physical_gib: float
    macos_gib: float  # what macOS keeps: physical - (raised limit, else the limit in force)
    macos_label: str


@dataclass(frozen=True)
class Headline:
    decode: str
    decode_empty: str
    prefill: str
    ttft: str
    ttft_empty: str
    band: str  # where the likely ranges come from (the engine's band basis), else ""


@dataclass(frozen=True)
class FitOutcome:
    inputs: FitInputs
    estimate: Estimate | None = None  # at the context, filled
    empty_speed: Any = None  # SpeedEstimate at depth 0 with a short prompt (None: unknown)
    max_context_raised: int | None = None
    verdict: str | None = None
    verdict_text: str = ""
    machine_name: str = ""
    headline: Headline | None = None
    memory: MemoryBar | None = None
    largest_context: str = ""
    sysctl: str | None = None
    sysctl_note: str = ""
    quality: str = ""
    quality_source: str = ""
    warnings: tuple[str, ...] = ()
    message: str = ""  # why there are no numbers (the engine's one-line refusal)
    published_runs: tuple[PublishedRun, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.estimate is not None


def _ktok(n: int) -> str:
    """ "16,384 tokens (16K)", or "57,088 tokens" when there is no shorter form."""
    short = tokens(n)
    return f"{n:,} tokens" + ("" if short == f"{n:,}" else f" ({short})")


def _tps(v: float | None, digits: int = 1) -> str:
    return "unknown" if v is None else f"{v:,.{digits}f} tok/s"


def _seconds(v: float | None) -> str:
    if v is None:
        return "unknown"
    if v >= 120:
        return f"{v / 60:,.1f} min"
    return f"{v:,.2f} s" if v < 10 else f"{v:,.0f} s"


def _band(speed: Any) -> str:
    """Where the likely ranges come from (the engine's `band_basis`), when it gives them."""
    if speed.decode_tps_low is None and speed.prefill_tps_low is None:
        return ""
    return speed.band_basis or "the likely range of similar published runs"


def memory_bar(est: Estimate) -> MemoryBar:
    fit = est.fit
    mem, budget = fit.memory, fit.budget
    parts = (
        ("weights", "Weights", mem.weights_bytes / GiB),
        ("kv_cache", "KV cache", mem.kv_cache_bytes / GiB),
        ("compute", "Compute buffer", mem.compute_bytes / GiB),
        ("runtime", "Runtime", mem.runtime_bytes / GiB),
    )
    raised = None
    keeps = budget.physical_bytes - budget.gpu_limit_bytes
    if fit.sysctl_command and fit.memory_left_for_macos_bytes is not None:
        keeps = fit.memory_left_for_macos_bytes
        raised = (budget.physical_bytes - keeps) / GiB
    host = est.host
    who = "macOS" if host.is_apple_silicon or host.macos_version else "the OS"
    return MemoryBar(
        parts=parts,
        used_gib=mem.total_bytes / GiB,
        limit_gib=budget.gpu_limit_bytes / GiB,
        raised_gib=raised,
        physical_gib=budget.physical_bytes / GiB,
        macos_gib=keeps / GiB,
        macos_label=f"{who} keeps {keeps / GiB:,.1f} GiB",
    )


class FitState:
    """Resolves models and machines from the shared data, and computes an outcome.

    `models` is anything with `.get(id)` (the model database, or the app's merged list);
    hosts are cached per machine and limit. "This machine" is probed by the caller (it reads
    the hardware) and handed in with `set_this_machine`.
    """

    def __init__(self, catalog: Any, models: Any) -> None:
        self.catalog = catalog
        self.models = models
        self._hosts: dict[tuple[str, int], HostSpec] = {}
        self._curves: dict[tuple[Any, ...], list[tuple[int, float]]] = {}

    # -- resolution ------------------------------------------------------------------------------
    def model(self, model_id: str) -> Any:
        return self.models.get(model_id)

    def set_this_machine(self, host: HostSpec, gpu_limit_mb: int | None) -> None:
        self._hosts[(THIS_MACHINE, gpu_limit_mb or 0)] = host

    def needs_probe(self, inputs: FitInputs) -> bool:
        return inputs.machine == THIS_MACHINE and (
            (THIS_MACHINE, inputs.gpu_limit_mb or 0) not in self._hosts
        )

    def physical_bytes(self, machine: str) -> int | None:
        if machine == THIS_MACHINE:
            host = next((h for (k, _), h in self._hosts.items() if k == THIS_MACHINE), None)
            return None if host is None else host.memory_bytes
        cfg = self.catalog.configs.get(machine)
        return None if cfg is None else cfg.memory_bytes

    def host(self, machine: str, gpu_limit_mb: int | None) -> HostSpec | None:
        key = (machine, gpu_limit_mb or 0)
        if key in self._hosts:
            return self._hosts[key]
        if machine == THIS_MACHINE:
            return None
        from forgeplanner.host import host_from_chip

        cfg = self.catalog.configs[machine]
        host = host_from_chip(
            self.catalog.chips[cfg.chip_id], cfg.memory_gb, config=cfg, wired_limit_mb=gpu_limit_mb
        )
        self._hosts[key] = host
        return host

    def limit_fits_machine(self, inputs: FitInputs) -> FitInputs:
        """A raised GPU limit the newly chosen machine does not have goes back to the default
        (a 96 GB limit on a 64 GB Mac is no limit at all)."""
        phys = self.physical_bytes(inputs.machine)
        if inputs.gpu_limit_mb and phys is not None and inputs.gpu_limit_mb * MiB > phys:
            return dataclasses.replace(inputs, gpu_limit_mb=None)
        return inputs

    def quant_choices(self, model_id: str, runtime: str) -> list[tuple[str, str]]:
        """(label, name) of every quantization the engine offers for this model and runtime."""
        from forgeplanner.engine.quant import quants_for

        return [
            (f"{q.name}  ({q.bits_per_weight:g} bpw)", q.name)
            for q in quants_for(self.model(model_id), runtime)
        ]

    def pick_quant(self, model_id: str, runtime: str, wanted: str | None) -> str | None:
        names = [n for _, n in self.quant_choices(model_id, runtime)]
        for q in (wanted, DEFAULT_QUANT, "MLX-4bit"):
            if q in names:
                return q
        return names[0] if names else None

    # -- the numbers -----------------------------------------------------------------------------
    def compute(self, inputs: FitInputs) -> FitOutcome:
        """Everything the page shows for `inputs`. Engine refusals (an impossible combination,
        a limit above the machine's memory) come back as `message`, never as an exception."""
        from forgeplanner.engine.estimate import estimate, speed_estimate
        from forgeplanner.engine.fit import max_context_that_fits

        machine = machine_name_of(self.catalog, inputs.machine)
        base = FitOutcome(inputs=inputs, machine_name=machine)
        model = self.model(inputs.model_id)
        if inputs.quant is None:
            return dataclasses.replace(
                base,
                message=f"{model.id} has no weights for {inputs.runtime} "
                f"(available: {', '.join(model.formats)})",
            )
        try:
            host = self.host(inputs.machine, inputs.gpu_limit_mb)
            if host is None:
                return dataclasses.replace(
                    base, message="Reading this machine's memory and chip..."
                )
            est = estimate(model, inputs.quant, host, inputs.options(filled=True))
            empty = speed_estimate(model, inputs.quant, host, inputs.options(filled=False))
            raised = (
                max_context_that_fits(
                    model, inputs.quant, host, inputs.options(filled=True), allow_raised_limit=True
                )
                if host.is_apple_silicon
                else est.max_context_that_fits
            )
        except (ValueError, ForgePlannerError) as exc:  # the engine's one-line refusals
            return dataclasses.replace(base, message=str(exc).splitlines()[0])
        return self._outcome(base, est, empty, raised)

    def _outcome(
        self, base: FitOutcome, est: Estimate, empty: Any, raised: int | None
    ) -> FitOutcome:
        from models_db.quant_quality import low_bits_warning, quality_of

        s = est.speed
        ctx = est.options.context
        if s is None:
            headline = Headline("unknown", "", "unknown", "unknown", "", "")
        else:
            headline = Headline(
                decode=(
                    f"{speed_with_range(s.decode_tps, s.decode_tps_low, s.decode_tps_high)} "
                    f"at {tokens(ctx)}"
                ),
                decode_empty=f"{_tps(None if empty is None else empty.decode_tps)} empty",
                prefill=speed_with_range(s.prefill_tps, s.prefill_tps_low, s.prefill_tps_high, 0),
                ttft=f"{_seconds(s.ttft_s)} for a prompt of {_ktok(ctx)}",
                ttft_empty=(
                    f"{_seconds(None if empty is None else empty.ttft_s)} for {SHORT_PROMPT} tokens"
                ),
                band=_band(s),
            )
        fit = est.fit
        now = est.max_context_that_fits
        if now is None:
            largest = "none at this limit"
        else:
            largest = f"{_ktok(now)} at this limit"
        if est.host.is_apple_silicon and raised != now:
            largest += (
                "; raising the limit does not help"
                if raised is None
                else f"; {_ktok(raised)} with the limit raised"
            )
        note = ""
        if fit.sysctl_command and fit.memory_left_for_macos_bytes is not None:
            note = (
                f"Raises the GPU limit until the next restart; leaves macOS "
                f"{fit.memory_left_for_macos_bytes / GiB:,.1f} GiB."
            )
        quality = quality_of(est.quant)
        qtext = quality.summary()
        qsource = (
            f"Published for {quality.measured_on}; {quality.source}, {quality.as_of}. Larger "
            "models lose less at the same type."
            if quality.known
            else "No published figures for this quantization type."
        )
        warnings = list(est.warnings)
        bpw = _bits_per_weight(est.quant)
        low = None if bpw is None else low_bits_warning(est.quant, bpw)
        if low:
            warnings.insert(0, low)
        return dataclasses.replace(
            base,
            estimate=est,
            empty_speed=empty,
            max_context_raised=raised,
            verdict=fit.verdict,
            verdict_text=verdict_word(fit.verdict),
            headline=headline,
            memory=memory_bar(est),
            largest_context=largest,
            sysctl=fit.sysctl_command,
            sysctl_note=note,
            quality=qtext,
            quality_source=qsource,
            warnings=tuple(warnings),
            published_runs=published_runs(
                self.catalog, est.host, est.options.runtime, self.model(est.model_id), est.quant
            ),
        )

    def curve(self, inputs: FitInputs) -> list[tuple[int, float]]:
        """Decode tokens/s across depth 0..the model's maximum context (cached: the context
        setting only moves the marker)."""
        from forgeplanner.engine.estimate import decode_curve

        model = self.model(inputs.model_id)
        host = self.host(inputs.machine, inputs.gpu_limit_mb)
        if host is None or inputs.quant is None:
            return []
        key = (model.id, inputs.quant, inputs.machine, inputs.gpu_limit_mb, inputs.runtime,
               inputs.kv_type, inputs.flash_attention)  # fmt: skip
        if key not in self._curves:
            top = max(int(model.max_context or 0), inputs.context, 2048)
            step = top / (CURVE_POINTS - 1)
            depths = sorted({round(i * step) for i in range(CURVE_POINTS)})
            try:
                self._curves[key] = decode_curve(
                    model, inputs.quant, host, inputs.options(filled=False), depths
                )
            except ValueError:
                self._curves[key] = []
        return self._curves[key]


def _bits_per_weight(quant: str) -> float | None:
    from forgeplanner.engine.quant import get_quant

    try:
        return float(get_quant(quant).bits_per_weight)
    except ValueError:
        return None


VERDICTS = (VERDICT_FITS, VERDICT_RAISED, VERDICT_NO)

__all__ = [
    "CONTEXT_PRESETS",
    "FitInputs",
    "FitOutcome",
    "FitState",
    "InputError",
    "MemoryBar",
    "context_presets",
    "gpu_limit_presets",
    "memory_bar",
    "parse_context",
    "parse_gpu_limit",
]
