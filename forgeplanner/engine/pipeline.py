"""The estimate pipeline: options resolved once, one per-layer table, every figure derived from it.

    prepare(model, quant, options, apple_gpu)          -> Prepared (cached)
      .options / .fa                                     resolved once (flash attention as the
                                                         runtime runs it, via its profile)
      .table                                             per layer: weight bytes, routed-expert
                                                         bytes, cache rows and which cache holds
                                                         them; plus the embedding, the output
                                                         head, the fixed recurrent state
      .kv_bytes(ctx) / .compute_bytes(ctx) / .total_bytes(ctx)
                                                         context-dependent terms: a few cached
                                                         coefficients times the cache cells, for
                                                         a number or a numpy array of contexts
      .memory_estimate(ctx)                              the explained MemoryEstimate
      .max_context(limit)                                largest context under a limit: the same
                                                         total over a vector of candidates
      .speed_inputs                                      what the speed formulas read per token
      .layer_costs(ctx, depth)                           the per-layer table at a context, for
                                                         cluster layer ranges

`forgeplanner.engine.estimate` (one point), `forgeplanner.engine.sweep` (arrays) and
`forgeplanner.engine.cluster_costs` (layer ranges) all read these, so the scalar, array and
cluster figures agree by construction: a scalar is a 0-d array through the same arithmetic.

Sources of the rules live with the rules: KV cells in kv_cache.py, compute-buffer terms in
compute_buffer.py, weights in weights.py/quant.py, attention kinds in attention/, runtimes in
runtimes/.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from forgeplanner.domain.estimates import Explanation, MemoryEstimate, RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.units import fmt_gib
from forgeplanner.engine.attention import (
    CACHE_FULL,
    CACHE_WINDOW,
    COMPUTE_FIT,
    Attention,
    ComputeTermFit,
    attention_of,
)
from forgeplanner.engine.compute_buffer import COMPUTE_SOURCE, MLX_COMPUTE_SOURCE, ffn_floats
from forgeplanner.engine.kv_cache import (
    KV_SOURCE,
    MLX_KV_SOURCE,
    bytes_label,
    kv_cells,
    kv_row_bytes,
)
from forgeplanner.engine.quant import QuantScheme, check_combination, get_quant
from forgeplanner.engine.runtimes import FlashAttentionChoice, RuntimeProfile, profile
from forgeplanner.engine.weights import GROUPS, WeightsBreakdown, weights_breakdown

MIN_CONTEXT = 256  # llama.cpp pads n_ctx to 256 cells; nothing smaller is worth reporting
UNKNOWN_MAX_CONTEXT = 1 << 24  # search cap for a model whose trained context is unknown
_GRID = 4096  # candidates per vectorised step of the largest-context search


@dataclass(frozen=True, slots=True)
class LayerTable:
    """One model x quantization x runtime, per repeating layer and per fixed part."""

    weights: WeightsBreakdown  # by group and by layer (one pass, same total)
    layer_cache: tuple[str, ...]  # which cache each layer's rows live in
    layer_cell_bytes: tuple[float, ...]  # bytes per cached token per layer
    full_cell_bytes: float  # sum over full-cache layers
    window_cell_bytes: float  # sum over windowed layers
    window: int
    recurrent_bytes_per_seq: int  # fixed state of the recurrent layers, per sequence
    recurrent_layers: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.layer_cache)


@dataclass(frozen=True, slots=True)
class SpeedInputs:
    """What the speed formulas read per token for one model x quant x runtime (see speed.py)."""

    model_id: str
    quant: str
    qclass: str
    weights_total_bytes: int  # the whole file: streamed once per prompt micro-batch
    weights_read_bytes: float  # per decoded token (active experts, no input embedding)
    experts_read_bytes: float  # of which routed experts (MoE; 0 for dense models)
    active_params: int
    expert_active_params: float  # routed-expert parameters one token uses (MoE)
    n_layers: int
    attn: object  # speed.AttentionShape
    kv_full_bytes_per_token: float
    kv_window_bytes_per_token: float
    window: int
    kv_state_bytes: float  # fixed recurrent state, read and written per token
    kv_multiplier: float  # how often decode streams the cache per token
    n_recurrent_layers: int = 0  # hybrids: layers with recurrent state instead of a cache

    def kv_bytes_at(self, depth):
        """KV bytes in the cache at `depth` tokens (what one decode step attends over)."""
        d = np.asarray(depth, dtype=np.float64)
        out = self.kv_full_bytes_per_token * d + self.kv_state_bytes
        if self.window:
            out = out + self.kv_window_bytes_per_token * np.minimum(d, self.window)
        return out


def _scalar(x, like):
    return int(x) if np.ndim(like) == 0 else x


@dataclass(frozen=True, eq=False)
class Prepared:
    model: ModelSpec
    quant: QuantScheme
    profile: RuntimeProfile
    options: RunOptions  # flash_attention resolved to a bool for this host kind
    fa: FlashAttentionChoice
    attention: Attention
    table: LayerTable
    apple_gpu: bool
    fit: ComputeTermFit = COMPUTE_FIT
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    # -- memory -------------------------------------------------------------------------------

    @property
    def n_ubatch(self) -> int:
        """Micro-batch the KV window cells and the compute buffer are reserved for."""
        return min(self.options.n_ubatch, self.options.n_batch)

    def cells(self, context):
        """(full-cache cells, windowed-cache cells) over all streams at `context`."""
        return kv_cells(
            context, self.options.parallel, self.profile, self.table.window, self.n_ubatch
        )

    def kv_bytes(self, context, cells=None):
        """KV cache plus recurrent state at `context` tokens (int or int64 array)."""
        full, swa = cells if cells is not None else self.cells(context)
        t = self.table
        out = (
            np.floor(t.full_cell_bytes * np.asarray(full, dtype=np.float64))
            + np.floor(t.window_cell_bytes * np.asarray(swa, dtype=np.float64))
            + t.recurrent_bytes_per_seq * self.options.parallel
        ).astype(np.int64)
        return _scalar(out, context)

    @cached_property
    def _compute_coeffs(self) -> tuple[float, float, float]:
        """F32 values per micro-batch token alive at the (attention, FFN, output) peaks."""
        m = self.model
        attn = self.attention.compute_attention_floats(bool(self.options.flash_attention),
                                                       self.fit)  # fmt: skip
        ffn = ffn_floats(m, self.fit)
        out = m.vocab_size + self.fit.out_h * m.hidden_size
        return attn, ffn, out

    def compute_terms(self, context, cells=None) -> dict[str, np.ndarray]:
        """Bytes of the three candidate peaks of the compute buffer (compute_buffer.py)."""
        a, f, o = self._compute_coeffs
        fa = bool(self.options.flash_attention)
        ctx = np.asarray(context, dtype=np.int64)
        if self.profile.cache_rules == "mlx":
            from forgeplanner.engine.runtimes.mlx import MLX_PREFILL_STEP

            chunk = np.minimum(min(self.options.prompt_tokens, MLX_PREFILL_STEP), ctx)
            chunk = chunk.astype(np.float64)
            n_kv = ctx.astype(np.float64)
            n_kv_swa = 0.0
            logits = 4.0 * (self.model.vocab_size + self.fit.out_h * self.model.hidden_size)
            logits = logits * self.options.parallel + 0.0 * n_kv
        else:
            full, swa = cells if cells is not None else self.cells(context)
            streams = 1 if self.profile.unified_kv else self.options.parallel
            n_kv = np.asarray(full, dtype=np.float64) // streams
            n_kv_swa = np.asarray(swa, dtype=np.float64) // streams
            chunk = float(self.n_ubatch)
            logits = o * 4.0 * chunk + 0.0 * n_kv
        f32 = 4.0 * chunk
        mask = (n_kv + n_kv_swa) * chunk * (2.0 if fa else 4.0)
        kq = 0.0 if fa else n_kv * chunk * self.model.n_heads * 4.0
        return {"attention": mask + kq + a * f32, "ffn": mask + f * f32, "logits": logits}

    def compute_bytes(self, context, cells=None):
        t = self.compute_terms(context, cells)
        out = np.maximum(np.maximum(t["attention"], t["ffn"]), t["logits"]).astype(np.int64)
        return _scalar(out, context)

    @cached_property
    def runtime_bytes(self) -> int:
        """Process overhead plus llama.cpp's output buffer (logits of n_seq_max rows at
        reservation, llama-context.cpp output_reserve)."""
        out = self.profile.overhead_bytes
        if self.profile.output_buffer:
            out += 4 * self.model.vocab_size * self.options.parallel
        return out

    @property
    def weights_bytes(self) -> int:
        return self.table.weights.total_bytes

    def total_bytes(self, context):
        cells = self.cells(context)
        out = (
            self.weights_bytes
            + np.asarray(self.kv_bytes(context, cells), dtype=np.int64)
            + np.asarray(self.compute_bytes(context, cells), dtype=np.int64)
            + self.runtime_bytes
        )
        return _scalar(out, context)

    def memo(self, key: tuple, compute):
        """Memoise a context-dependent result of this pipeline (bounded)."""
        if key not in self._cache:
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[key] = compute()
        return self._cache[key]

    def resolved(self, options: RunOptions) -> RunOptions:
        """`options` with flash attention as this pipeline resolved it."""
        if options.flash_attention is self.fa.enabled:
            return options
        return dataclasses.replace(options, flash_attention=self.fa.enabled)

    def max_context(self, limit_bytes: int) -> int | None:
        """Largest context (memoised per limit); see _max_context."""
        return self.memo(("max_context", int(limit_bytes)),
                         lambda: self._max_context(int(limit_bytes)))  # fmt: skip

    def _max_context(self, limit_bytes: int) -> int | None:
        """Largest context (multiple of 256 tokens, at most the model's trained maximum) whose
        total fits `limit_bytes`; None when not even 256 tokens fit. The total is monotone in
        the context, so the last fitting candidate of a sorted vector is the answer; a coarse
        vector first when the model's maximum is unknown (2^24 tokens searched)."""
        factor = self.options.parallel if self.profile.context_shared_by_sequences else 1
        mc = self.model.max_context
        cap = mc * factor if mc else UNKNOWN_MAX_CONTEXT
        lo = MIN_CONTEXT * factor
        if lo > cap:
            return None
        lo_t, hi_t = lo // 256, cap // 256
        if self.total_bytes(cap) <= limit_bytes:
            return int(cap)
        while True:
            n = hi_t - lo_t + 1
            step = max(1, -(-n // _GRID))
            ks = np.arange(lo_t, hi_t + 1, step, dtype=np.int64)
            fits = np.asarray(self.total_bytes(ks * 256)) <= limit_bytes
            if not fits[0]:
                return None
            last = int(np.flatnonzero(fits)[-1])
            if step == 1:
                return int(ks[last] * 256)
            lo_t = int(ks[last])
            hi_t = min(hi_t, lo_t + step - 1)

    def memory_estimate(self, context: int) -> MemoryEstimate:
        """The explained memory estimate at `context` (the options' other settings)."""
        return self.memo(("memory", int(context)), lambda: self._memory_estimate(int(context)))

    def _memory_estimate(self, context: int) -> MemoryEstimate:
        m, q, opts = self.model, self.quant, self.options
        wb = self.table.weights
        full, swa = self.cells(context)
        kv = self.kv_bytes(context, (full, swa))
        terms = self.compute_terms(context, (full, swa))
        largest = max(terms, key=lambda k: float(terms[k]))
        comp = int(terms[largest])
        explain = [
            _weights_explanation(m, q, wb),
            self._kv_explanation(kv, int(full), int(swa)),
            self._compute_explanation(terms, comp, largest, context, int(full), int(swa)),
            Explanation(
                term="flash_attention",
                formula="user's choice, else the runtime's default (auto)",
                numbers=self.fa.label,
                value="on" if self.fa.enabled else "off",
                source=self.fa.basis,
            ),
            Explanation(
                term="runtime",
                formula="process + Metal context + output buffer (4 B * n_vocab * n_seq)",
                numbers=f"{opts.runtime}",
                value=fmt_gib(self.runtime_bytes, 3),
                source=self.profile.overhead_basis,
            ),
        ]
        per_seq = self.profile.context_per_sequence(context, opts.parallel)
        if m.max_context is not None and per_seq > m.max_context:
            explain.append(
                Explanation(
                    term="warning",
                    formula="context per sequence <= model max_context",
                    numbers=f"{per_seq} > {m.max_context}",
                    value="context above the model's trained maximum",
                    source=m.source[:120],
                )
            )
        return MemoryEstimate(
            weights_bytes=wb.total_bytes,
            kv_cache_bytes=kv,
            compute_bytes=comp,
            runtime_bytes=self.runtime_bytes,
            explain=tuple(explain),
            recurrent_state_bytes=self.table.recurrent_bytes_per_seq * opts.parallel,
        )

    def _kv_explanation(self, kv: int, full: int, swa: int) -> Explanation:
        label = bytes_label(self.options.kv_type, self.profile.cache_rules)
        n_full = sum(1 for c in self.table.layer_cache if c == CACHE_FULL)
        formula, numbers = self.attention.kv_formula(n_full, label, full)
        numbers = numbers.replace("{window_cells}", str(swa)).replace(
            "{n_seq}", str(self.options.parallel)
        )
        src = MLX_KV_SOURCE if self.profile.cache_rules == "mlx" else KV_SOURCE
        return Explanation(term="kv_cache", formula=formula, numbers=numbers,
                           value=fmt_gib(kv, 3), source=src)  # fmt: skip

    def _compute_explanation(self, terms, comp, largest, context, full, swa) -> Explanation:
        if self.profile.cache_rules == "mlx":
            from forgeplanner.engine.runtimes.mlx import MLX_PREFILL_STEP

            chunk = min(self.options.prompt_tokens, MLX_PREFILL_STEP, context)
            return Explanation(
                term="compute",
                formula="max(attention of one prefill chunk, FFN of the chunk, logits)",
                numbers=f"chunk = {chunk} tokens, n_kv = {context}: {largest} "
                f"{float(terms[largest]) / 2**20:.1f} MiB",
                value=fmt_gib(comp, 3),
                source=MLX_COMPUTE_SOURCE,
            )
        streams = 1 if self.profile.unified_kv else self.options.parallel
        fa = "flash attention" if self.options.flash_attention else "no flash attention"
        return Explanation(
            term="compute",
            formula=(
                "max(mask + KQ + (3 H + 2 q + 2 kv) * 4 B * n_ubatch, "
                "mask + (3 n_ff + 4 H) * 4 B * n_ubatch, (n_vocab + 2 H) * 4 B * n_ubatch)"
            ),
            numbers=f"n_ubatch {self.n_ubatch}, n_kv {full // streams}, {fa}: "
            + ", ".join(f"{k} {float(v) / 2**20:.1f} MiB" for k, v in terms.items()),
            value=fmt_gib(comp, 3),
            source=COMPUTE_SOURCE,
        )

    # -- speed --------------------------------------------------------------------------------

    @cached_property
    def speed_inputs(self) -> SpeedInputs:
        from forgeplanner.engine.speed import AttentionShape, quant_class

        m, wb, t = self.model, self.table.weights, self.table
        read = float(wb.total_bytes) - wb.bytes_by_group.get("per_layer_embd", 0)
        if not m.tie_word_embeddings:
            read -= wb.bytes_by_group.get("token_embd", 0)
        experts_read = expert_params = 0.0
        if m.moe is not None and m.moe.n_experts > 0:
            frac = m.moe.experts_per_token / m.moe.n_experts
            read -= wb.bytes_by_group.get("experts", 0) * (1.0 - frac)
            experts_read = wb.bytes_by_group.get("experts", 0) * frac
            expert_params = wb.params_by_group.get("experts", 0) * frac
        shape = self.attention.flops_shape(self.profile.weight_format)
        fused = self.profile.cache_rules == "mlx" or bool(self.options.flash_attention)
        return SpeedInputs(
            model_id=m.id,
            quant=self.quant.name,
            qclass=quant_class(self.quant),
            weights_total_bytes=int(wb.total_bytes),
            weights_read_bytes=read,
            experts_read_bytes=float(experts_read),
            active_params=m.active_params,
            expert_active_params=float(expert_params),
            n_layers=m.n_layers,
            attn=AttentionShape(shape.full_coeff, shape.windowed, shape.gqa_ratio),
            kv_full_bytes_per_token=float(t.full_cell_bytes),
            kv_window_bytes_per_token=float(t.window_cell_bytes),
            window=int(t.window),
            kv_state_bytes=float(t.recurrent_bytes_per_seq),
            kv_multiplier=self.attention.kv_read_multiplier(fused),
            n_recurrent_layers=len(t.recurrent_layers) if t.recurrent_bytes_per_seq else 0,
        )

    # -- per-layer view for clusters ---------------------------------------------------------

    def layer_kv_bytes(self, context: int) -> tuple[int, ...]:
        """KV cache bytes of each layer at `context` (recurrent state spread over the
        recurrent layers); sums to kv_bytes(context)."""
        from forgeplanner.engine.cluster_split import largest_remainder

        full, swa = self.cells(context)
        t = self.table
        per = [
            int(np.floor(b * (full if c == CACHE_FULL else swa if c == CACHE_WINDOW else 0)))
            for c, b in zip(t.layer_cache, t.layer_cell_bytes, strict=True)
        ]
        # floor per layer vs floor of the sum: put the rounding difference on the layers
        attn_total = int(self.kv_bytes(context, (full, swa))) - (
            t.recurrent_bytes_per_seq * self.options.parallel
        )
        diff = attn_total - sum(per)
        if diff and any(per):
            adj = largest_remainder(abs(diff), [max(p, 0) for p in per])
            per = [p + (1 if diff > 0 else -1) * a for p, a in zip(per, adj, strict=True)]
        rec = t.recurrent_bytes_per_seq * self.options.parallel
        if rec:
            targets = list(t.recurrent_layers) or list(range(t.n_layers))
            share = largest_remainder(rec, [1] * len(targets))
            for i, s in zip(targets, share, strict=True):
                per[i] += s
        return tuple(per)


def _weights_explanation(m: ModelSpec, q: QuantScheme, wb: WeightsBreakdown) -> Explanation:
    parts = ", ".join(
        f"{g} {fmt_gib(wb.bytes_by_group[g], 2)}" for g in GROUPS if wb.bytes_by_group[g]
    )
    types = "; ".join(
        f"{g}: " + ", ".join(f"{t} {p / 1e9:.2f}B" for t, p in sorted(wb.types_by_group[g].items()))
        for g in GROUPS
        if wb.types_by_group.get(g)
    )
    if wb.exact:
        src = "exact tensor bytes of the GGUF file"
    elif q.format == "mlx":
        src = "mlx-lm affine quantization: bits + 32 bits per group of 64 (bf16 scale+bias)"
    else:
        src = (
            "llama.cpp src/llama-quant.cpp llama_tensor_get_type (per-tensor mix), "
            "block sizes from gguf.GGML_QUANT_SIZES"
        )
    return Explanation(
        term="weights",
        formula="sum over tensors of elements / block_size * bytes_per_block",
        numbers=f"{wb.total_params / 1e9:.3f}B params, {wb.bits_per_weight:.3f} bpw: {parts}"
        + (f" [{types}]" if types else ""),
        value=fmt_gib(wb.total_bytes, 2),
        source=src,
    )


def build_table(model: ModelSpec, quant: QuantScheme, prof: RuntimeProfile,
                kv_type: str, attention: Attention) -> LayerTable:  # fmt: skip
    wb = weights_breakdown(model, quant)
    caches = attention.layer_caches()
    rules = prof.cache_rules
    row_cache: dict[int, float] = {}

    def row(n: int) -> float:
        if n not in row_cache:
            row_cache[n] = kv_row_bytes(n, kv_type, rules)
        return row_cache[n]

    cell = tuple(float(sum(row(r) for r in c.rows)) for c in caches)
    full = float(sum(b for c, b in zip(caches, cell, strict=True) if c.cache == CACHE_FULL))
    win = float(sum(b for c, b in zip(caches, cell, strict=True) if c.cache == CACHE_WINDOW))
    rec_layers = tuple(i for i, c in enumerate(caches) if c.recurrent)
    return LayerTable(
        weights=wb,
        layer_cache=tuple(c.cache for c in caches),
        layer_cell_bytes=cell,
        full_cell_bytes=full,
        window_cell_bytes=win,
        window=int(attention.window) if win else 0,
        recurrent_bytes_per_seq=int(attention.recurrent_bytes_per_seq),
        recurrent_layers=rec_layers,
    )


_PREPARED: dict[tuple, Prepared] = {}
_PREPARED_MAX = 4096


def prepare(
    model: ModelSpec,
    quant: str | QuantScheme,
    options: RunOptions,
    *,
    apple_gpu: bool = True,
) -> Prepared:
    """Resolve the options once and build the per-layer table (memoised: pure function).

    apple_gpu: the Metal backend (Apple Silicon) decides llama.cpp's flash-attention default;
    False for CPU hosts (Intel Macs, Linux nodes). Raises ValueError (one line) for impossible
    model x quant x runtime combinations and NotFoundError for an unknown quantization."""
    q = get_quant(quant)
    prof = profile(options.runtime)
    # Keyed by the model object itself (ModelSpec is frozen; the entry holds it, so its id
    # cannot be reused while cached): every field the pipeline reads is covered, including
    # max_context, family and the architecture extras.
    key = (
        id(model), q.name, prof.runtime, options.kv_type, options.flash_attention,
        options.parallel, options.n_ubatch, options.n_batch, options.prompt_tokens, apple_gpu,
    )  # fmt: skip
    hit = _PREPARED.get(key)
    if hit is not None and hit.model is model:
        return hit
    check_combination(model, q, prof.runtime)
    fa = prof.flash_attention(model, options.kv_type, options.flash_attention,
                              apple_gpu=apple_gpu)  # fmt: skip
    if options.flash_attention is not fa.enabled:
        options = dataclasses.replace(options, flash_attention=fa.enabled)
    att = attention_of(model)
    table = build_table(model, q, prof, options.kv_type, att)
    out = Prepared(model, q, prof, options, fa, att, table, apple_gpu)
    if len(_PREPARED) >= _PREPARED_MAX:
        _PREPARED.clear()
    _PREPARED[key] = out
    return out


__all__ = ["MIN_CONTEXT", "LayerTable", "Prepared", "SpeedInputs", "build_table", "prepare"]
