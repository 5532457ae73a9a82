"""Why a published run must not be fitted: the `exclude_reason` rules.

A row is kept in the dataset whatever its reason; the reason says why a fit must skip it.
Rules, each with its evidence:

- runtime other than llama.cpp, mlx (mlx-lm), ollama, lmstudio-gguf, lmstudio-mlx;
- chip unknown, or not Apple Silicon (the Intel CPU runs), or a backend other than Metal;
- batch > 1 (several sequences at once: aggregate throughput, not one user's speed);
- speculative decoding (a draft model, MTP heads or DFlash generate several tokens a step);
- end-to-end rates (output tokens over the whole request time, prompt processing included):
  llmfit's OpenAI-compatible benchmark divides by the wall time (llmfit-core/src/bench.rs
  `openai_chat`: output_tokens / total_wall), its Ollama path uses Ollama's eval timing;
- impossible values: a date before the chip was announced; a decode rate that would read the
  weights faster than the chip's peak memory bandwidth (decode reads every active weight once
  per token, so tokens/s x bytes per token cannot exceed bandwidth);
- quantizations only a fork can run (PrismML's Q1_0 / Q2_0);
- curated flags (row_flags.csv) for what only a reader of the source can judge.
"""

from __future__ import annotations

import re

from forgeplanner.calibration.runs_runtime import RUNTIMES

# Effective bits per weight of each quantization (block scales included). Sources: llama.cpp
# ggml-common.h block layouts (Q4_0 = 18 bytes per 32 weights = 4.5 bpw, Q8_0 34/32 = 8.5,
# Q4_K 144/256 = 4.5, Q6_K 210/256 = 6.5625, Q2_K 84/256 = 2.625, MXFP4 17/32 = 4.25,
# IQ2_XXS 66/256 = 2.0625); K-quant mixes use their lowest block type so the bound stays low;
# MLX affine quantization stores a 16-bit scale and bias per 64 weights (+0.5 bpw).
BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_K_M": 5.5,
    "Q5_K_S": 5.5,
    "Q5_K": 5.5,
    "Q5_0": 5.5,
    "Q5_1": 6.0,
    "Q4_K_M": 4.5,
    "Q4_K_S": 4.5,
    "Q4_K": 4.5,
    "Q4_0": 4.5,
    "Q4_1": 5.0,
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.25,
    "MXFP4": 4.25,
    "NVFP4": 4.5,
    "Q3_K_M": 3.4375,
    "Q3_K_S": 3.4375,
    "Q3_K": 3.4375,
    "IQ3_XXS": 3.0625,
    "Q2_K": 2.625,
    "IQ2_M": 2.5,
    "IQ2_XS": 2.3125,
    "IQ2_XXS": 2.0625,
    "IQ1_M": 1.75,
    "mlx-bf16": 16.0,
    "mlx-fp16": 16.0,
    "mlx-8bit": 8.5,
    "mlx-mxfp8": 8.25,
    "mlx-6bit": 6.5,
    "mlx-5bit": 5.5,
    "mlx-4bit": 4.5,
    "mlx-4bit-g32": 5.0,
    "mlx-5bit-g32": 6.0,
    "mlx-mxfp4": 4.25,
    "mlx-nvfp4": 4.5,
    "mlx-3bit": 3.5,
    "mlx-2bit": 2.5,
}

# Share of the active weights that is surely read per decoded token: the embedding table is
# looked up, not streamed, and can be a large share of a small model; 0.7 keeps the bound a
# lower bound for every model in the database.
_READ_SHARE = 0.7


def bits_per_weight(quant: str) -> float | None:
    base = quant.removeprefix("UD-")
    if base.endswith("_XL"):
        base = base[: -len("_XL")] + "_M"
    return BITS_PER_WEIGHT.get(base)


def impossible_decode(
    tps: float, active_params_b: float | None, quant: str, bandwidth_gbps: float | None
) -> str:
    """A reason when a decode rate needs more than the chip's peak bandwidth, else ''."""
    bpw = bits_per_weight(quant)
    if not (active_params_b and bpw and bandwidth_gbps):
        return ""
    bytes_per_token = active_params_b * 1e9 * bpw / 8 * _READ_SHARE
    needed_gbps = tps * bytes_per_token / 1e9
    if needed_gbps > bandwidth_gbps:
        return (
            f"impossible value for the stated chip and quantization: {tps:g} tok/s would read "
            f"{needed_gbps:.0f} GB/s of weights, above the chip's {bandwidth_gbps:g} GB/s peak"
        )
    return ""


# Speculative decoding stated as on, unless the text says it was off.
_SPEC_ON = re.compile(
    r"(?i)speculative decoding (?:on|enabled)|mtp speculative decoding on|"
    r"with (?:a )?draft model|speculative decoding with draft|\bmtp-\d\b|"
    r"dflash \(speculative decoding\) enabled|\bkv_cache mtp"
)
_SPEC_OFF = re.compile(
    r"(?i)no speculative|without (?:a )?draft|no-spec|no mtp|mtp disabled|"
    r"did not appear to activate|baseline \(no"
)
# Ollama / HF tags of checkpoints that ship MTP heads for self-speculative decoding.
_MTP_MODEL = re.compile(r"(?i)[-:_]mtp\b|-mtp-")


def speculative(notes: str, test: str) -> bool:
    text = f"{notes} | {test}"
    return bool(_SPEC_ON.search(text)) and not _SPEC_OFF.search(test + " " + notes[:120])


def mtp_checkpoint(model_name: str, runtime: str) -> bool:
    """An Ollama tag of a checkpoint with MTP heads: whether they were used is not stated."""
    return runtime == "ollama" and bool(_MTP_MODEL.search(model_name))


_END_TO_END = re.compile(
    r"(?i)end-to-end|output tokens / total wall time|completion tokens / total request time|"
    r"completion_tokens / total_time|includes prompt processing|incl\. ttft"
)
_LLMFIT = re.compile(r"(?i)llmfit bench")


def end_to_end(notes: str, test: str, runtime: str) -> bool:
    if _LLMFIT.search(test) or _LLMFIT.search(notes[:80]):
        # Only llmfit's Ollama provider times decode alone (Ollama's eval_duration).
        return runtime != "ollama"
    return bool(_END_TO_END.search(test) or _END_TO_END.search(notes))


FORK_ONLY_QUANTS = ("Q1_0", "Q2_0")


def rule_reasons(
    *,
    runtime: str,
    chip: str,
    apple: bool,
    engine: str,
    batch: int | None,
    notes: str,
    test: str,
    model_name: str,
    kind: str,
    tps: float | None,
    quant: str,
    quant_raw: str,
    active_params_b: float | None,
    bandwidth_gbps: float | None,
    date: str = "",
    chip_announced: str = "",
) -> list[str]:
    reasons: list[str] = []
    if date and chip_announced and date[:7] < chip_announced[:7]:
        reasons.append(f"impossible value: measured {date}, before the chip ({chip_announced})")
    if tps is None or tps <= 0:
        reasons.append("impossible value: no positive tokens/s")
    if runtime not in RUNTIMES:
        reasons.append(f"runtime other than the five ({runtime or 'not stated'})")
    if not chip:
        reasons.append("unknown chip")
    elif not apple:
        reasons.append("not Apple Silicon (Intel CPU run)")
    backend = engine.lower()
    if apple and (backend.startswith("cpu") or "vulkan" in backend or "cuda" in backend):
        reasons.append(f"backend other than Metal ({engine})")
    if batch is not None and batch > 1:
        reasons.append(f"batch>1 ({batch} sequences at once)")
    if speculative(notes, test):
        reasons.append("speculative decoding")
    elif mtp_checkpoint(model_name, runtime):
        reasons.append("speculative decoding likely (MTP checkpoint, use not stated)")
    if end_to_end(notes, test, runtime):
        reasons.append("end-to-end rate (prompt processing in the time)")
    if any(q in quant_raw for q in FORK_ONLY_QUANTS) and runtime == "llama.cpp":
        reasons.append("fork-only quantization (PrismML Q1_0/Q2_0)")
    # Aggregate rates of several sequences share one read of the weights: no bound there.
    if kind == "decode" and tps is not None and tps > 0 and not (batch and batch > 1):
        why = impossible_decode(tps, active_params_b, quant, bandwidth_gbps)
        if why:
            reasons.append(why)
    return reasons
