"""llama.cpp (llama-server, llama-cli, llama-bench; Homebrew on macOS).

Read at the llama.cpp tree vendored in llama-cpp-python 0.3.36 (commit 0c1e570):
- context: `-c` is shared by the parallel sequences; n_ctx is padded to 256 cells and, with the
  default per-sequence streams, each of n_seq_max streams holds GGML_PAD(n_ctx / n_seq, 256)
  cells (src/llama-context.cpp);
- prompt processing in micro-batches of n_ubatch (default 512) tokens;
- flash attention defaults to `-fa auto` (common/common.h; llama-bench's default too):
  llama_init_from_model (src/llama-context.cpp) forces it off for Grok, turns it on for a
  quantized V cache (and refuses `-fa off` with one), and otherwise keeps it only if the
  FLASH_ATTN_EXT node lands on the layer's own device (resolve_fused_ops). The CPU backend runs
  it for every head size; Metal (ggml-metal-device.m supports_op) for K head sizes 32, 40, 48,
  64, 72, 80, 96, 112, 128, 192, 256, 320, 512, 576 with K width >= V width, on GPUs with
  simdgroup matrices (every M-series chip). The RPC backend reports every op as supported, so
  cluster layers follow the same rule.
Overhead outside weights/KV/compute: Metal device, command queues, library and the process
itself, ~150-250 MiB resident in llama-server on Apple Silicon; we take 256 MiB (heuristic).
"""

from __future__ import annotations

from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.runtime import Runtime
from forgeplanner.domain.units import MiB
from forgeplanner.engine.runtimes.base import RuntimeEra, RuntimeProfile

METAL_FA_HEAD_DIMS: frozenset[int] = frozenset(
    {32, 40, 48, 64, 72, 80, 96, 112, 128, 192, 256, 320, 512, 576}
)
LLAMACPP_SRC = "llama.cpp src/llama-context.cpp llama_init_from_model / resolve_fused_ops"


def head_dims(model: ModelSpec, weight_format: str = "gguf") -> tuple[int, int]:
    from forgeplanner.engine.attention import attention_of

    return attention_of(model).head_dims(weight_format)


def llamacpp_rule(
    grok: bool, k: int, v: int, kv_type: str, req: bool | None, apple_gpu: bool
) -> tuple[bool, str]:
    """llama.cpp's flash-attention decision from the architecture and the K/V head widths."""
    quant_v = kv_type != "f16"
    if grok:
        if quant_v:
            raise ValueError(
                f"llama.cpp forces flash attention off for Grok, and a {kv_type} V cache "
                "needs it: use --kv-type f16"
            )
        return False, f"off: llama.cpp forces flash attention off for Grok ({LLAMACPP_SRC})"
    if req is False:
        if quant_v:  # RunOptions refuses this already; kept for direct callers
            raise ValueError(f"kv_type {kv_type} needs flash attention (llama.cpp refuses -fa off)")
        return False, "off: -fa off (--no-flash-attention)"
    if req is True:
        return True, "on: -fa on (--flash-attention)"
    if quant_v:
        return True, f"auto -> on: a {kv_type} V cache turns flash attention on ({LLAMACPP_SRC})"
    if not apple_gpu:
        return True, (
            f"auto -> on: the CPU backend runs FLASH_ATTN_EXT for any head size ({LLAMACPP_SRC})"
        )
    if k in METAL_FA_HEAD_DIMS and k >= v:
        return True, (
            f"auto -> on: Metal supports FLASH_ATTN_EXT for head size {k} "
            f"(ggml-metal-device.m supports_op; {LLAMACPP_SRC})"
        )
    return False, (
        f"auto -> off: Metal has no FLASH_ATTN_EXT kernel for head size {k}/{v}, so llama.cpp "
        f"disables it (ggml-metal-device.m supports_op; {LLAMACPP_SRC})"
    )


def _rule(model: ModelSpec, kv_type: str, req: bool | None, apple_gpu: bool) -> tuple[bool, str]:
    k, v = head_dims(model, "gguf")
    return llamacpp_rule("grok" in model.family.lower(), k, v, kv_type, req, apple_gpu)


ERAS: tuple[RuntimeEra, ...] = (
    RuntimeEra("2023", "b612", "2023-06-04", "Metal backend and its 2023 mat-vec / mat-mat "
               "kernels (PRs #1642, #2188, #2615)", "ggml-org/llama.cpp PR #1642 (b612)"),
    RuntimeEra("2024", "b2771", "2024-04-30", "flash attention for Metal (PR #5021) and the "
               "2024 kernels", "ggml-org/llama.cpp PR #5021 (b2771)"),
    RuntimeEra("2025", "b4987", "2025-03-28", "2025 flash-attention and MoE (mul_mat_id) "
               "kernels (PRs #12612, #13388, #15541), MXFP4, flash attention on by default",
               "ggml-org/llama.cpp PR #12612 (b4987)"),
    RuntimeEra("2026", "b6968", "2025-11-06", "Metal 4 tensor API matmuls (GPU neural "
               "accelerators on M5, PR #16634)", "ggml-org/llama.cpp PR #16634 (b6968)",
               neural_accelerators=True),
)  # fmt: skip

PROFILE = RuntimeProfile(
    runtime=Runtime.LLAMA_CPP,
    label="llama.cpp",
    weight_format="gguf",
    cache_rules="llama.cpp",
    overhead_bytes=256 * MiB,
    overhead_basis="heuristic: llama-server resident size with its Metal context (~0.25 GiB)",
    prefill_chunk=None,
    context_shared_by_sequences=True,
    context_times_parallel=False,
    unified_kv=False,
    output_buffer=True,
    apple_silicon_only=False,
    constants_key="llama.cpp",
    flash_attention_rule=_rule,
    eras=ERAS,
)
