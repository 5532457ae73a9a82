"""What a runtime profile is: everything that differs between inference runtimes, in one place.

Each runtime module (llamacpp.py, ollama.py, mlx.py, lmstudio.py) builds one `RuntimeProfile`;
`forgeplanner.engine.runtimes.profile(runtime)` returns it. The memory, fit, speed and sweep code
asks the profile instead of comparing runtime names, so adding a runtime is one module plus its
fitted constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.runtime import Runtime


@dataclass(frozen=True, slots=True)
class FlashAttentionChoice:
    """The flash-attention setting a run gets: `enabled` is what every formula uses."""

    enabled: bool
    requested: bool | None  # the user's choice; None = the runtime's default ("auto")
    basis: str  # one line: why, with the source

    @property
    def label(self) -> str:
        mode = "auto" if self.requested is None else ("on" if self.requested else "off")
        return f"{mode} -> {'on' if self.enabled else 'off'}"


# (model, kv_type, requested, apple_gpu) -> (enabled, basis); raises ValueError for a
# combination the runtime refuses or silently overrides.
FlashAttentionRule = Callable[[ModelSpec, str, "bool | None", bool], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class RuntimeEra:
    """A span of a runtime's versions that runs at one speed level (kernels changed between
    eras). `first` is the first version of the era as the runtime numbers them (llama.cpp
    build "b4000", mlx-lm "0.26.0", Ollama "0.12.0"); `since` its release date."""

    key: str
    first: str
    since: str  # YYYY-MM-DD
    what_changed: str
    source: str
    # The era's kernels use the GPU neural accelerators (Apple M5 matrix units) for matmuls.
    neural_accelerators: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeProfile:
    runtime: Runtime
    label: str  # "llama.cpp", "LM Studio (llama.cpp engine)"
    weight_format: str  # "gguf" | "mlx": the quantizations it loads
    # KV cache and compute buffer rules: "llama.cpp" (cells padded to 256, graph_reserve
    # compute buffer) or "mlx" (cache grows in steps of 256, lazy per-chunk working set)
    cache_rules: str
    overhead_bytes: int  # process + Metal context, outside weights/KV/compute
    overhead_basis: str
    # Prompt tokens per forward pass: None = options.n_ubatch (llama.cpp -ub), else fixed
    # (mlx-lm generate_step prefill_step_size).
    prefill_chunk: int | None
    # llama.cpp's -c is shared by the parallel sequences; Ollama multiplies num_ctx by
    # OLLAMA_NUM_PARALLEL; MLX keeps one cache per sequence.
    context_shared_by_sequences: bool
    context_times_parallel: bool
    unified_kv: bool  # one KV stream for all sequences (Ollama) vs one per sequence
    output_buffer: bool  # llama.cpp-family logits buffer of n_vocab x n_seq floats
    apple_silicon_only: bool
    constants_key: str  # which fitted speed constants describe it
    flash_attention_rule: FlashAttentionRule
    constants_fallback: str | None = None  # until its own are fitted: the engine it runs
    eras: tuple[RuntimeEra, ...] = field(default_factory=tuple)
    notes: str = ""

    @property
    def name(self) -> str:
        return self.runtime.value

    def flash_attention(
        self,
        model: ModelSpec,
        kv_type: str = "f16",
        requested: bool | None = None,
        *,
        apple_gpu: bool = True,
    ) -> FlashAttentionChoice:
        on, basis = self.flash_attention_rule(model, kv_type, requested, apple_gpu)
        return FlashAttentionChoice(bool(on), requested, basis)

    def n_ubatch(self, n_ubatch: int, n_batch: int) -> int:
        """Prompt tokens per forward pass for these options."""
        if self.prefill_chunk is not None:
            return self.prefill_chunk
        return min(n_ubatch, n_batch)

    def context_per_sequence(self, context: int, parallel: int) -> int:
        return context // parallel if self.context_shared_by_sequences else context

    def era_for_date(self, date: str | None) -> RuntimeEra | None:
        """The era a build or release of that date belongs to (None: no eras, no date)."""
        if not self.eras or not date:
            return None
        chosen = self.eras[0]
        for era in self.eras:
            if era.since <= str(date)[:10]:
                chosen = era
        return chosen

    def era_for(self, version: str | None) -> RuntimeEra | None:
        """The era a version belongs to (None: no eras known, or no version given)."""
        if not self.eras:
            return None
        if not version:
            return self.eras[-1]
        from forgeplanner.engine.runtimes.versions import version_key

        v = version_key(self.runtime, version)
        chosen = self.eras[0]
        for era in self.eras:
            if version_key(self.runtime, era.first) <= v:
                chosen = era
        return chosen
