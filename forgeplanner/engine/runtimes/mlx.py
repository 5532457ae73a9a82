"""MLX (mlx-lm: mlx_lm.generate / mlx_lm.server / mlx_lm.benchmark), Apple Silicon only.

KV cache (ml-explore/mlx-lm mlx_lm/models/cache.py): KVCache grows in steps of 256 tokens, one
cache per sequence; RotatingKVCache(max_size=window) for windowed layers; QuantizedKVCache with
kv_bits 8/4 and group 64. Prompts are processed in steps of 2048 tokens (generate_step
prefill_step_size). Weights: mlx affine quantization (b bits + a bf16 scale and bias per group
of 64).
Attention has no switch: `mx.fast.scaled_dot_product_attention`'s fused prefill kernel (no score
matrix) exists for head sizes 64, 80 and 128 with equal K and V widths (mlx
backend/metal/scaled_dot_product_attention.cpp use_fallback: sdpa_full_supported_head_dim);
other head sizes, and mlx-lm's quantized KV cache (models/base.py
quantized_scaled_dot_product_attention: quantized matmuls), materialise the scores of each
prefill chunk. The "flash attention" flag of an MLX estimate means that fused kernel.
Overhead: Python + mlx + Metal library, ~300 MiB resident for mlx_lm.generate (heuristic).
"""

from __future__ import annotations

from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.runtime import Runtime
from forgeplanner.domain.units import MiB
from forgeplanner.engine.runtimes.base import RuntimeEra, RuntimeProfile
from forgeplanner.engine.runtimes.llamacpp import head_dims

MLX_FUSED_PREFILL_HEAD_DIMS: frozenset[int] = frozenset({64, 80, 128})
MLX_PREFILL_STEP = 2048
MLX_SRC = "mlx scaled_dot_product_attention.cpp use_fallback; mlx-lm models/base.py"


def _rule(model: ModelSpec, kv_type: str, req: bool | None, apple_gpu: bool) -> tuple[bool, str]:
    k, v = head_dims(model, "mlx")
    if kv_type != "f16":
        return False, (
            f"mlx (no switch): a {kv_type} cache uses quantized matmuls, scores are "
            f"materialised ({MLX_SRC})"
        )
    if k == v and k in MLX_FUSED_PREFILL_HEAD_DIMS:
        return True, (
            f"mlx (no switch): fused scaled_dot_product_attention for head size {k} ({MLX_SRC})"
        )
    return False, (
        f"mlx (no switch): no fused prefill kernel for head size {k}/{v}, scores are "
        f"materialised ({MLX_SRC})"
    )


ERAS: tuple[RuntimeEra, ...] = (
    RuntimeEra("2025", "0.0.1", "2023-12-01", "mlx before M5 neural-accelerator support",
               "ml-explore/mlx-lm tags"),
    RuntimeEra("2026", "0.29.0", "2025-12-16", "mlx >= 0.30 uses the M5 GPU neural "
               "accelerators (mlx PR #2772, macOS 26.2)", "ml-explore/mlx tag v0.30.0, "
               "ml-explore/mlx-lm tag v0.29.0", neural_accelerators=True),
)  # fmt: skip

PROFILE = RuntimeProfile(
    runtime=Runtime.MLX,
    label="MLX (mlx-lm)",
    weight_format="mlx",
    cache_rules="mlx",
    overhead_bytes=320 * MiB,
    overhead_basis="heuristic: mlx_lm.generate resident size (~0.3 GiB)",
    prefill_chunk=MLX_PREFILL_STEP,
    context_shared_by_sequences=False,
    context_times_parallel=False,
    unified_kv=False,
    output_buffer=False,
    apple_silicon_only=True,
    constants_key="mlx",
    flash_attention_rule=_rule,
    eras=ERAS,
)
