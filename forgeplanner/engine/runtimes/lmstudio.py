"""LM Studio's two engines, each its own profile.

LM Studio loads GGUF models with its llama.cpp engine ("llama.cpp-mac-arm64-metal" runtime) and
MLX models with its MLX engine (built on mlx-lm / mlx-engine); the memory rules are those
engines' rules. What differs is the host process (the LM Studio app and its node-based server
next to the engine: taken as 0.5 GiB, a heuristic like the other runtimes' overheads) and the
speed, which the fitted constants for each engine describe (`constants_key`).
Flash attention: LM Studio exposes llama.cpp's switch in the model's load settings; left at its
default the engine's own rule applies.
"""

from __future__ import annotations

import dataclasses

from forgeplanner.domain.runtime import Runtime
from forgeplanner.domain.units import MiB
from forgeplanner.engine.runtimes import llamacpp, mlx
from forgeplanner.engine.runtimes.base import RuntimeEra

GGUF_PROFILE = dataclasses.replace(
    llamacpp.PROFILE,
    runtime=Runtime.LMSTUDIO_GGUF,
    label="LM Studio (llama.cpp engine)",
    overhead_bytes=512 * MiB,
    overhead_basis="heuristic: LM Studio server + llama.cpp engine resident size (~0.5 GiB)",
    constants_key="lmstudio-gguf",
    constants_fallback="llama.cpp",
    # LM Studio's llama.cpp runtimes 2.21-2.28 build without the Metal tensor API (GPU neural
    # accelerators off; lmstudio-ai/lmstudio-bug-tracker issue #2040).
    eras=(
        RuntimeEra(
            "2025",
            "0.3.0",
            "2024-08-22",
            "LM Studio llama.cpp runtime (Metal tensor API off)",
            "lmstudio-ai/lmstudio-bug-tracker #2040",
        ),
    ),
)

MLX_PROFILE = dataclasses.replace(
    mlx.PROFILE,
    runtime=Runtime.LMSTUDIO_MLX,
    label="LM Studio (MLX engine)",
    overhead_bytes=512 * MiB,
    overhead_basis="heuristic: LM Studio server + MLX engine resident size (~0.5 GiB)",
    constants_key="lmstudio-mlx",
    constants_fallback="mlx",
    eras=(
        RuntimeEra(
            "2026",
            "0.3.0",
            "2024-08-22",
            "LM Studio MLX engine (mlx-engine on a recent mlx)",
            "lmstudio-ai/mlx-engine",
            neural_accelerators=True,
        ),
    ),
)
