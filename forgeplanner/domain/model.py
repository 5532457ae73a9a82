"""Model architecture value types: what sizing needs from a model's published config."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RecurrentSpec:
    """Fixed-size per-sequence state of a hybrid's recurrent layers (Gated DeltaNet, Mamba-2, Kimi
    Delta Attention), in llama.cpp's terms: each recurrent layer holds `conv_elements` (r) plus
    `state_elements` (s) values per sequence, whatever the context (llama-hparams.cpp
    n_embd_r / n_embd_s; llama.cpp stores both in F32, one cell per parallel sequence).

    kind: "gated_deltanet" (Qwen3-Next, Qwen3.5/3.6), "mamba2" (Nemotron-H), "kda" (Kimi Linear).
    """

    kind: str
    layers: tuple[int, ...]  # 0-based indices of the layers that hold this state
    conv_kernel: int  # d_conv
    conv_elements: int  # n_embd_r per layer
    state_elements: int  # n_embd_s per layer
    n_heads: int = 0  # value heads (GDN), SSM heads (Mamba-2), KDA heads
    head_dim: int = 0
    n_groups: int = 0  # key heads (GDN) / n_groups (Mamba-2)
    d_state: int = 0  # key head dim (GDN) / ssm_state_size (Mamba-2) / KDA head dim

    def bytes_per_seq(self, bytes_per_element: int = 4) -> int:
        return (self.conv_elements + self.state_elements) * bytes_per_element * len(self.layers)


@dataclass(frozen=True, slots=True)
class PerLayerEmbeddingSpec:
    """Gemma 3n / Gemma 4 E-models: a second embedding table of `dim` values per layer per token
    (vocab x n_layers x dim). It is counted in params_total, but a token reads one row per layer,
    so runtimes may keep it out of fast memory (llama.cpp loads per_layer_token_embd with
    TENSOR_READ_LAZY, src/models/gemma4.cpp)."""

    dim: int  # hidden_size_per_layer_input
    vocab: int  # vocab_size_per_layer_input
    n_layers: int

    @property
    def params(self) -> int:
        return self.vocab * self.n_layers * self.dim


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
    # --- newer layouts (all optional; the defaults describe the layouts above) ---
    # hybrid: which layers hold recurrent state and how much. Empty layers tuple in older data
    # means "every layer that does not attend".
    recurrent: RecurrentSpec | None = None
    # hybrid: "full" (GQA attention layers) or "mla" (Kimi Linear: the attention layers are MLA,
    # sized by the mla_* fields).
    hybrid_attention: str = "full"
    # sliding: the non-windowed (global) layers may use another K/V width than the windowed
    # ones (Gemma 4: 512-wide heads and fewer KV heads on global layers). None = same as the
    # model's head_dim / n_kv_heads.
    global_head_dim: int | None = None
    global_n_kv_heads: int | None = None
    # Gemma 4 31B/26B global layers have no v_proj (attention_k_eq_v: V = K); llama.cpp still
    # allocates a V cache for them, a runtime that exploits it could halve that part.
    global_v_is_k: bool = False
    # The last `kv_shared_layers` layers own no KV and reuse an earlier layer's (Gemma 3n and
    # Gemma 4 E-models; llama.cpp hparams.n_layer_kv_from_start = n_layer - kv_shared_layers).
    kv_shared_layers: int = 0


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
    # Width of each shared expert when it differs from expert_ffn (Nemotron 3 Nano: 3712 vs
    # 1856; Gemma 4 26B-A4B: a dense 2112-wide MLP beside the experts in every layer). None =
    # expert_ffn (DeepSeek, Qwen3-Next, GLM: llama.cpp n_ff_shexp = n_ff_exp * n_expert_shared).
    shared_expert_ffn: int | None = None


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
    # Names people type for this model: HF repo ids, Ollama tags, display names. Resolved
    # case-insensitively wherever a model id is accepted (models_db.loader.ModelDB.resolve).
    aliases: tuple[str, ...] = ()
    # Gemma 3n / Gemma 4 E-models (MatFormer family): per-layer embedding table.
    per_layer_embedding: PerLayerEmbeddingSpec | None = None
    # Layers that are not all "attention + FFN": one character per layer, as Nemotron-H's
    # hybrid_override_pattern ("M" Mamba-2, "*" attention, "-" dense MLP, "E" MoE). "" = uniform.
    layer_blocks: str = ""

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def active_params(self) -> int:
        """Params read per generated token. Dense: all but the input embedding table, since a
        token reads one row of it (untied models); tied models read the matrix as lm_head."""
        if self.params_active is not None:
            return self.params_active
        # Gemma 3n / 4 E-models: the per-layer embedding table is a look-up (one row per layer
        # per token), not a matmul: it is in params_total but not read per token.
        ple = self.per_layer_embedding.params if self.per_layer_embedding else 0
        if self.tie_word_embeddings:
            return self.params_total - ple
        return self.params_total - self.vocab_size * self.hidden_size - ple
