"""Models for one machine (the reverse of Fit): every model ranked for a Mac.

For each model: the best quantization that fits (highest quality first, as the engine lists
them; under the GPU limit in force, or with the limit raised where that makes it fit, and fast
enough when a decode target is given), the largest context at that quantization under the
current and the raised limit, decode with the stated context filled and with it empty, prefill,
time to first token, the published quality cost of the quantization, the licence and what the
model is for (chat, code, reasoning). The CLI (`forgeplanner models fit`) and the app's
"Models for my Mac" view both call `fit_models`.

Ranking: models that fit under the limit in force, then those that need the raised limit, then
the rest; within each, models whose best quantization keeps 4 or more bits per weight before
those at 3-4 bits before those below 3 (where quality falls off steeply: the published cost of
Q2_K on an 8B model is +56 % perplexity), then larger models first (more parameters is the
usual proxy for capability at a given family and age), then faster decode. The rule is a
choice, stated in the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from forgeplanner.domain.estimates import (
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    HostSpec,
    RunOptions,
)
from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import ForgePlannerError

RANKING = (
    "fits under the limit in force, then with the limit raised, then not at all; within each, "
    "at 4 or more bits per weight before 3-4 bits before fewer; then larger models first; then "
    "faster decode"
)
USES = ("chat", "code", "reasoning")
SHORT_PROMPT = 512

# What a model is for, from its publisher's name and model card. Code: the name says so
# (Coder, Codestral, Devstral). Reasoning: models published as reasoning ("thinking") models:
# DeepSeek-R1 and its distills, QwQ, the gpt-oss models (OpenAI: "reasoning models"), Qwen3 and
# Qwen3.5 (hybrid thinking mode, Qwen3 model card), GLM-4.5/GLM-5 (hybrid reasoning, Z.ai model
# cards), DeepSeek-V3.1/V3.2 (thinking mode), Magistral and Phi-4-reasoning. Chat: instruction-
# or chat-tuned releases (Instruct, -it, Chat in the name, the chat models listed below, or
# one of the reasoning models above, which chat too). A base model (no such tuning) has none of
# these uses: shown as "base model".
_CODE_WORDS = ("coder", "codestral", "devstral", "code-")
_REASONING_IDS = (
    "deepseek-r1", "qwq", "gpt-oss", "qwen3", "glm-4.5", "glm-5", "magistral", "phi-4-reasoning",
    "deepseek-v3.1", "deepseek-v3.2", "kimi-k2-thinking",
)  # fmt: skip
_CHAT_WORDS = ("instruct", "-it", "chat", "-r1", "thinking")
# Chat models whose published name does not say so (their model cards do): phi-4, Command R,
# DeepSeek-V3.
_CHAT_IDS = ("phi-4", "command-r", "deepseek-v3")


def model_uses(spec: Any) -> tuple[str, ...]:
    """("chat", "code", "reasoning") subset for a model: the database's own `uses` when it
    has them, else the rule above applied to its id and published name."""
    given = getattr(spec, "uses", None)
    if given:
        return tuple(u for u in USES if u in given)
    text = f"{spec.id} {getattr(spec, 'name', '')} {getattr(spec, 'hf_repo', '')}".lower()
    uses: list[str] = []
    reasoning = any(text.startswith(r) or f" {r}" in text or f"/{r}" in text
                    for r in _REASONING_IDS)  # fmt: skip
    chat_id = any(spec.id.startswith(c) for c in _CHAT_IDS)
    if any(w in text for w in _CHAT_WORDS) or reasoning or chat_id:
        uses.append("chat")
    if any(w in text for w in _CODE_WORDS):
        uses.append("code")
    if reasoning:
        uses.append("reasoning")
    return tuple(uses)


def short_licence(text: str | None) -> str | None:
    """'Apache-2.0 (QwenLM README: ...)' -> 'Apache-2.0': the name without the citation."""
    if not text:
        return None
    return text.split(" (", 1)[0].strip() or None


@dataclass(frozen=True)
class ModelFit:
    model_id: str
    name: str
    family: str
    params_b: float | None
    active_b: float | None
    moe: bool
    licence: str | None
    uses: tuple[str, ...]
    max_model_context: int | None
    context: int  # the context asked for (the model's maximum when that is smaller)
    best_quant: str | None
    bits_per_weight: float | None
    verdict: str
    total_bytes: int | None
    gpu_limit_bytes: int | None
    max_context: int | None  # at the best quant, under the limit in force
    max_context_raised: int | None  # the same with the limit raised (Apple Silicon)
    decode_tps: float | None  # with the context filled
    decode_tps_empty: float | None
    prefill_tps: float | None
    ttft_s: float | None  # for a prompt of `context` tokens
    quality: str  # "+2.8 % perplexity, KLD 0.031" / "unknown (...)"
    ppl_delta_pct: float | None
    kld: float | None
    sysctl_command: str | None
    reason: str = ""  # why nothing fits / what limited the choice
    # the likely ranges of decode (context filled) and prefill (engine.estimate's bands)
    decode_tps_low: float | None = None
    decode_tps_high: float | None = None
    prefill_tps_low: float | None = None
    prefill_tps_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["uses"] = list(self.uses)
        for k in ("decode_tps", "decode_tps_empty", "prefill_tps", "ttft_s", "decode_tps_low",
                  "decode_tps_high", "prefill_tps_low", "prefill_tps_high"):  # fmt: skip
            if d[k] is not None:
                d[k] = round(d[k], 3)
        return d


@dataclass(frozen=True)
class ModelsFit:
    host: str
    context: int
    runtime: str
    min_decode_tps: float | None
    models: tuple[ModelFit, ...]
    ranking: str = RANKING

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.host,
            "context": self.context,
            "runtime": self.runtime,
            "min_decode_tps": self.min_decode_tps,
            "ranking": self.ranking,
            "models": [m.to_dict() for m in self.models],
        }


def _rank_key(m: ModelFit) -> tuple[int, int, float, float]:
    order = {VERDICT_FITS: 0, VERDICT_RAISED: 1}.get(m.verdict, 2)
    bits = m.bits_per_weight or 0.0
    bucket = 0 if bits >= 4 else 1 if bits >= 3 else 2
    return (order, bucket, -(m.params_b or 0.0), -(m.decode_tps or 0.0))


def fit_one(
    spec: Any,
    host: HostSpec,
    context: int,
    *,
    runtime: str | Runtime = Runtime.LLAMA_CPP,
    min_decode_tps: float | None = None,
) -> ModelFit:
    """The best quantization of one model on one machine, with its numbers."""
    runtime = Runtime.parse(runtime)
    from forgeplanner.engine.budget import gpu_budget
    from forgeplanner.engine.estimate import speed_estimate
    from forgeplanner.engine.fit import verdict_for
    from forgeplanner.engine.memory import estimate_memory
    from forgeplanner.engine.quant import quants_for
    from forgeplanner.engine.runtime_defaults import resolved_options

    ctx = min(context, spec.max_context) if spec.max_context else context
    base = dict(
        model_id=spec.id, name=spec.name, family=spec.family,
        params_b=spec.params_total / 1e9 if spec.params_total else None,
        active_b=spec.active_params / 1e9 if spec.params_total else None,
        moe=spec.moe is not None, licence=short_licence(spec.license), uses=model_uses(spec),
        max_model_context=spec.max_context, context=ctx,
    )  # fmt: skip
    empty: dict[str, Any] = dict(
        best_quant=None, bits_per_weight=None, verdict=VERDICT_NO, total_bytes=None,
        gpu_limit_bytes=None, max_context=None, max_context_raised=None, decode_tps=None,
        decode_tps_empty=None, prefill_tps=None, ttft_s=None, quality="", ppl_delta_pct=None,
        kld=None, sysctl_command=None,
    )  # fmt: skip
    quants = quants_for(spec, runtime)
    if not quants:
        return ModelFit(**base, **empty, reason=f"no weights for {runtime}")
    filled = RunOptions(context=ctx, depth=ctx, prompt_tokens=ctx, runtime=runtime)
    budget = gpu_budget(host)
    opts = resolved_options(spec, filled, host)
    slow: list[str] = []
    totals = {q.name: estimate_memory(spec, q, opts).total_bytes for q in quants}
    smallest = min(totals.values())
    # The best quantization under the limit in force; only when none fits there, the best
    # with the limit raised (a raised limit is a choice the user makes, not a default).
    for wanted in (VERDICT_FITS, VERDICT_RAISED):
        for q in quants:
            if verdict_for(totals[q.name], budget, host.is_apple_silicon) != wanted:
                continue
            speed = speed_estimate(spec, q, host, filled)
            if (
                min_decode_tps is not None
                and speed is not None
                and speed.decode_tps < min_decode_tps
            ):
                slow.append(f"{q.name} {speed.decode_tps:.1f} tok/s")
                continue
            return _chosen(base, spec, q, host, filled, speed, slow)
    if slow:
        reason = f"fits, but below {min_decode_tps:g} tok/s: " + ", ".join(slow[:3])
    else:
        reason = (
            f"needs at least {(smallest or 0) / 2**30:.1f} GiB at {ctx:,} tokens; GPU limit "
            f"{budget.gpu_limit_bytes / 2**30:.1f} GiB"
        )
    return ModelFit(**base, **empty, reason=reason)


def _chosen(
    base: dict[str, Any],
    spec: Any,
    q: Any,
    host: HostSpec,
    filled: RunOptions,
    speed: Any,
    slow: list[str],
) -> ModelFit:
    from forgeplanner.engine.estimate import speed_estimate
    from forgeplanner.engine.fit import fit, max_context_that_fits
    from models_db.quant_quality import quality_of

    fr = fit(spec, q, host, filled)
    empty_speed = speed_estimate(
        spec, q, host, dataclasses.replace(filled, depth=0, prompt_tokens=SHORT_PROMPT)
    )
    qq = quality_of(q.name)
    now = max_context_that_fits(spec, q, host, filled)
    raised = (
        max_context_that_fits(spec, q, host, filled, allow_raised_limit=True)
        if host.is_apple_silicon
        else now
    )
    return ModelFit(
        **base,
        best_quant=q.name,
        bits_per_weight=float(q.bits_per_weight),
        verdict=fr.verdict,
        total_bytes=fr.memory.total_bytes,
        gpu_limit_bytes=fr.budget.gpu_limit_bytes,
        max_context=now,
        max_context_raised=raised,
        decode_tps=None if speed is None else speed.decode_tps,
        decode_tps_empty=None if empty_speed is None else empty_speed.decode_tps,
        prefill_tps=None if speed is None else speed.prefill_tps,
        ttft_s=None if speed is None else speed.ttft_s,
        quality=qq.summary(),
        ppl_delta_pct=qq.ppl_delta_pct,
        kld=qq.kld,
        sysctl_command=fr.sysctl_command,
        reason="" if not slow else "faster quantizations only: " + ", ".join(slow[:3]),
        decode_tps_low=None if speed is None else speed.decode_tps_low,
        decode_tps_high=None if speed is None else speed.decode_tps_high,
        prefill_tps_low=None if speed is None else speed.prefill_tps_low,
        prefill_tps_high=None if speed is None else speed.prefill_tps_high,
    )


def fit_models(
    models: Iterable[Any],
    host: HostSpec,
    *,
    context: int = 8192,
    runtime: str | Runtime = Runtime.LLAMA_CPP,
    min_decode_tps: float | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ModelsFit:
    """Every model ranked for one machine (see the module docstring for the rule)."""
    runtime = Runtime.parse(runtime)
    if context <= 0:
        raise ForgePlannerError(f"context must be a positive number of tokens, got {context}")
    if min_decode_tps is not None and not min_decode_tps >= 0:
        raise ForgePlannerError(f"minimum decode speed must be >= 0 tokens/s, got {min_decode_tps}")
    out = []
    for spec in models:
        if cancelled is not None and cancelled():
            break
        try:
            out.append(fit_one(spec, host, context, runtime=runtime, min_decode_tps=min_decode_tps))
        except ValueError as exc:  # an impossible combination for this model: say why
            out.append(_refused(spec, context, str(exc).splitlines()[0]))
    return ModelsFit(
        host=host.name,
        context=context,
        runtime=runtime,
        min_decode_tps=min_decode_tps,
        models=tuple(sorted(out, key=_rank_key)),
    )


def _refused(spec: Any, context: int, reason: str) -> ModelFit:
    return ModelFit(
        model_id=spec.id, name=spec.name, family=spec.family,
        params_b=spec.params_total / 1e9 if spec.params_total else None,
        active_b=spec.active_params / 1e9 if spec.params_total else None,
        moe=spec.moe is not None, licence=short_licence(spec.license), uses=model_uses(spec),
        max_model_context=spec.max_context, context=context, best_quant=None,
        bits_per_weight=None, verdict=VERDICT_NO, total_bytes=None, gpu_limit_bytes=None,
        max_context=None, max_context_raised=None, decode_tps=None, decode_tps_empty=None,
        prefill_tps=None, ttft_s=None, quality="", ppl_delta_pct=None, kld=None,
        sysctl_command=None, reason=reason,
    )  # fmt: skip


__all__ = ["RANKING", "USES", "ModelFit", "ModelsFit", "fit_models", "fit_one", "model_uses"]
