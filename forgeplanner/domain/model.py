"""Model architecture value types: what sizing needs from a model's published config."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AttentionSpec:
    """How a model attends, which decides the KV cache.

    kind:
      "full"    every layer full attention (MHA/GQA)
      "sliding" some layers hold only a window (`sliding_layers` lists them)
      "mla"     DeepSeek-style latent attention: one latent of kv_lora_rank + rope dims
      "hybrid"  only `attention_layers` attend; the others hold a fixed recurrent state
    """

    kind: str
    sliding_window: int | None = None
    sliding_layers: tuple[int, ...] = ()  # layer indices that are windowed/chunked
    chunked: bool = False  # Llama 4 chunked attention (masked like SWA)
    mla_kv_lora_rank: int | None = None
    mla_qk_rope_head_dim: int | None = None
    mla_qk_nope_head_dim: int | None = None
    mla_v_head_dim: int | None = None
    mla_q_lora_rank: int | None = None
    attention_layers: tuple[int, ...] = ()  # hybrid: layers with full attention
    recurrent_state_bytes_per_seq: int | None = None  # hybrid: fixed state per sequence
    indexer_head_dim: int | None = None  # DeepSeek sparse attention indexer key


@dataclass(frozen=True, slots=True)
class MoESpec:
    n_experts: int
    experts_per_token: int
    shared_experts: int
    expert_ffn: int  # per-expert FFN width
    first_dense_layers: int = 0
    # Every `interleave_step`-th layer is MoE, the rest dense with `intermediate_size`
    # (Llama 4 Maverick: interleave_moe_layer_step 2). 1 = every layer after the dense ones.
    interleave_step: int = 1


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor of a GGUF file: exact bytes as stored."""

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    n_bytes: int


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str
    family: str
    params_total: int  # decoder params incl. embeddings (+ untied lm_head), all experts
    params_active: int | None  # MoE: params used per token, excl. input embedding; None = dense
    n_layers: int
    hidden_size: int
    intermediate_size: int | None
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    # None = not found in any source read; the reason is in extra["unknown"]["max_context"].
    max_context: int | None
    attention: AttentionSpec
    moe: MoESpec | None
    license: str
    source: str
    hf_repo: str = ""
    release_date: str = ""
    notes: str = ""
    formats: tuple[str, ...] = ("gguf", "mlx")  # which runtimes' weights exist
    native_quant: str | None = None  # e.g. "MXFP4" for gpt-oss experts
    # Filled by the GGUF importer: exact tensors of one file.
    tensors: tuple[TensorInfo, ...] = ()
    gguf_file_type: str | None = None
    # "catalog" | "user" | "import:config.json" | "import:gguf" | "import:ollama"
    origin: str = "catalog"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def active_params(self) -> int:
        """Params read per generated token. Dense: all but the input embedding table, since a
        token reads one row of it (untied models); tied models read the matrix as lm_head."""
        if self.params_active is not None:
            return self.params_active
        if self.tie_word_embeddings:
            return self.params_total
        return self.params_total - self.vocab_size * self.hidden_size
