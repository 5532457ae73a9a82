"""Runtime profiles: one per `Runtime`, each in its own module (see base.RuntimeProfile)."""

from __future__ import annotations

from forgeplanner.domain.runtime import Runtime
from forgeplanner.engine.runtimes import llamacpp, lmstudio, mlx, ollama
from forgeplanner.engine.runtimes.base import (
    FlashAttentionChoice,
    RuntimeEra,
    RuntimeProfile,
)

PROFILES: dict[Runtime, RuntimeProfile] = {
    Runtime.LLAMA_CPP: llamacpp.PROFILE,
    Runtime.OLLAMA: ollama.PROFILE,
    Runtime.MLX: mlx.PROFILE,
    Runtime.LMSTUDIO_GGUF: lmstudio.GGUF_PROFILE,
    Runtime.LMSTUDIO_MLX: lmstudio.MLX_PROFILE,
}


def profile(runtime: Runtime | str) -> RuntimeProfile:
    """The profile of a runtime (ValueError names the valid runtimes)."""
    return PROFILES[Runtime.parse(runtime)]


def runtimes_for_format(weight_format: str) -> tuple[Runtime, ...]:
    return tuple(r for r, p in PROFILES.items() if p.weight_format == weight_format)


__all__ = [
    "PROFILES",
    "FlashAttentionChoice",
    "Runtime",
    "RuntimeEra",
    "RuntimeProfile",
    "profile",
    "runtimes_for_format",
]
