"""Ollama (a Go server running llama.cpp's runner, or for newer architectures its own engine).

Context: num_ctx per sequence times OLLAMA_NUM_PARALLEL, one unified KV cache; prompt chunks of
512 tokens (llama.cpp runner n_ubatch).
Flash attention (fs/ggml/ggml.go FlashAttention/SupportsFlashAttention, llm/server.go, the
newest sources read, with gemma4/qwen3.5): with OLLAMA_FLASH_ATTENTION unset it is on only for
the architectures Ollama lists (gpt-oss since PR #11996, qwen3/qwen3moe since #12482, gemma3
since #12639, qwen3.5/qwen3-next later) and only if supported (not gemma2/grok; K head width ==
V head width). Other architectures ran with it off in older releases, and which runner a model
uses depends on the version, so they are taken as off (conservative: the larger compute
buffer). A quantized OLLAMA_KV_CACHE_TYPE is only used with flash attention on (otherwise Ollama
silently keeps f16); asking for one is taken to mean OLLAMA_FLASH_ATTENTION=1.
Overhead: the Go server plus a runner process, ~0.5 GiB resident (heuristic).
"""

from __future__ import annotations

from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.runtime import Runtime
from forgeplanner.domain.units import MiB
from forgeplanner.engine.runtimes.base import RuntimeEra, RuntimeProfile
from forgeplanner.engine.runtimes.llamacpp import head_dims

OLLAMA_SRC = "Ollama fs/ggml/ggml.go FlashAttention/SupportsFlashAttention, llm/server.go"
# GGML.FlashAttention(): architectures with flash attention on by default, keyed by the model
# database's family.
OLLAMA_FA_DEFAULT_FAMILIES: dict[str, str] = {
    "gpt-oss": "gptoss",
    "gemma-3": "gemma3",
    "qwen3": "qwen3",
    "qwen3-moe": "qwen3moe",
    "qwen3-next": "qwen3next",
    "qwen3.5": "qwen35/qwen35moe",
}
# GGML.SupportsFlashAttention(): never for these
OLLAMA_FA_UNSUPPORTED_FAMILIES: frozenset[str] = frozenset({"gemma-2", "grok"})


def _rule(model: ModelSpec, kv_type: str, req: bool | None, apple_gpu: bool) -> tuple[bool, str]:
    k, v = head_dims(model, "gguf")
    fam = model.family.lower()
    supported = fam not in OLLAMA_FA_UNSUPPORTED_FAMILIES and k == v
    quant = kv_type != "f16"
    if quant and not supported:
        raise ValueError(
            f"Ollama does not run flash attention for {model.id} "
            "(SupportsFlashAttention), so it ignores a quantized OLLAMA_KV_CACHE_TYPE and "
            "keeps an f16 cache: use --kv-type f16"
        )
    if req is False:
        return False, "off: OLLAMA_FLASH_ATTENTION=0"
    if not supported:
        return False, (
            f"off: Ollama does not support flash attention for {model.id} "
            f"(K/V head widths {k}/{v} or family {model.family}; {OLLAMA_SRC})"
        )
    if req is True:
        return True, "on: OLLAMA_FLASH_ATTENTION=1"
    if quant:
        return True, (
            f"on: a {kv_type} OLLAMA_KV_CACHE_TYPE is only used with OLLAMA_FLASH_ATTENTION=1, "
            f"assumed set ({OLLAMA_SRC})"
        )
    if fam in OLLAMA_FA_DEFAULT_FAMILIES:
        return True, (
            f"auto -> on: Ollama enables flash attention by default for "
            f"{OLLAMA_FA_DEFAULT_FAMILIES[fam]} ({OLLAMA_SRC})"
        )
    return False, (
        f"auto -> off: Ollama does not list {model.family} for default flash attention "
        f"(conservative: versions differ; set OLLAMA_FLASH_ATTENTION=1 and pass "
        f"--flash-attention if you enable it; {OLLAMA_SRC})"
    )


ERAS: tuple[RuntimeEra, ...] = (
    RuntimeEra("2024", "0.0.1", "2023-07-08", "llama.cpp runner", "ollama/ollama tag v0.0.1"),
    RuntimeEra("2025", "0.7.0", "2025-05-14", "Ollama's own Go engine for the architectures "
               "it supports, the llama.cpp runner for the rest", "ollama/ollama tag v0.7.0"),
    RuntimeEra("2026", "0.30.0", "2026-06-01", "upstream llama-server at a pinned build "
               "(PR #16031 removed the Go engine)", "ollama/ollama tag v0.30.0, PR #16031",
               neural_accelerators=True),
)  # fmt: skip

PROFILE = RuntimeProfile(
    runtime=Runtime.OLLAMA,
    label="Ollama",
    weight_format="gguf",
    cache_rules="llama.cpp",
    overhead_bytes=512 * MiB,
    overhead_basis="heuristic: ollama server + runner resident size (~0.5 GiB)",
    prefill_chunk=None,
    context_shared_by_sequences=False,
    context_times_parallel=True,
    unified_kv=True,
    output_buffer=True,
    apple_silicon_only=False,
    constants_key="ollama",
    flash_attention_rule=_rule,
    eras=ERAS,
)
