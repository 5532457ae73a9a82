"""The inference runtimes ForgePlanner models: a closed set.

A `Runtime` is a `StrEnum`, so it compares equal to its name ("llama.cpp" == Runtime.LLAMA_CPP),
serialises as that name in JSON and plan files, and a typo fails in one place (`Runtime.parse`)
instead of being compared as a string in many. What each runtime does (weight format, KV cache
rules, overheads, flash attention, fitted constants, version eras) lives in its profile:
`forgeplanner.engine.runtimes`.
"""

from __future__ import annotations

from enum import StrEnum


class Runtime(StrEnum):
    LLAMA_CPP = "llama.cpp"
    OLLAMA = "ollama"
    MLX = "mlx"
    LMSTUDIO_GGUF = "lmstudio-gguf"  # LM Studio with its llama.cpp engine
    LMSTUDIO_MLX = "lmstudio-mlx"  # LM Studio with its MLX engine

    @classmethod
    def parse(cls, value: object) -> Runtime:
        """A Runtime from its name (case-insensitive); ValueError lists the valid names."""
        if isinstance(value, Runtime):
            return value
        text = str(value).strip().lower()
        for r in cls:
            if r.value == text:
                return r
        raise ValueError(f"runtime '{value}' unknown; valid: {', '.join(r.value for r in cls)}")


RUNTIME_NAMES: tuple[str, ...] = tuple(r.value for r in Runtime)

__all__ = ["RUNTIME_NAMES", "Runtime"]
