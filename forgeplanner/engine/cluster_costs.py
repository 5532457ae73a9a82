"""Per-layer costs of a model for cluster layouts: the pipeline's per-layer table at a context.

Everything comes from `forgeplanner.engine.pipeline.prepare` (the table the single-machine
estimate sums), so a one-node cluster reports exactly what `forgeplanner estimate` reports for
that machine and a layer range is a slice of the same table:

- weights: the per-tensor typing of llama.cpp's mixes, summed per layer (Q4_K_M gives
  attn_v/ffn_down of the first and last eighth and every third layer Q6_K, so layers differ by
  a few percent), from the same pass that gives the per-group totals;
- KV cache: each layer's rows times the cells of the cache it lives in (full-context layers hold
  the context, windowed layers their window); a hybrid's recurrent state spread over its
  recurrent layers.
"""

from __future__ import annotations

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.cluster import LayerCosts
from forgeplanner.engine.pipeline import prepare
from forgeplanner.engine.quant import QuantScheme


def layer_costs(
    model: ModelSpec, quant: str | QuantScheme, options: RunOptions, *, apple_gpu: bool = True
) -> LayerCosts:
    """Everything the cluster layout needs about this model x quant x options (memoised on
    the prepared pipeline per context and depth)."""
    p = prepare(model, quant, options, apple_gpu=apple_gpu)
    return p.memo(("layer_costs", options.context, options.depth),
                  lambda: _layer_costs(p, model, options))  # fmt: skip


def _layer_costs(p, model: ModelSpec, options: RunOptions) -> LayerCosts:
    wb = p.table.weights
    per_layer = wb.layer_bytes
    experts = wb.layer_expert_bytes
    kv = p.layer_kv_bytes(options.context)

    # Bytes read per decoded token: dense layers read all their weights; MoE layers read the
    # routed experts only (experts_per_token of n_experts) plus everything shared.
    moe = model.moe
    active = (moe.experts_per_token / moe.n_experts) if moe else 1.0
    depth = min(options.depth, options.context)
    kv_frac = depth / options.context if options.context else 0.0
    read = tuple(
        float(w - e + e * active + k * kv_frac)
        for w, e, k in zip(per_layer, experts, kv, strict=True)
    )
    inp, out = wb.input_bytes, wb.output_bytes
    # The output head is read whole for every token (tied models read token_embd as lm_head).
    out_read = float(out if not model.tie_word_embeddings else out + inp)
    work = tuple(float(w - e + e * active) for w, e in zip(per_layer, experts, strict=True))
    return LayerCosts(
        model_id=model.id,
        quant=p.quant.name,
        context=options.context,
        hidden_size=model.hidden_size,
        n_heads=model.n_heads,
        n_kv_heads=model.n_kv_heads,
        layer_weights_bytes=tuple(per_layer),
        layer_kv_bytes=kv,
        input_bytes=inp,
        output_bytes=out,
        compute_bytes=int(p.compute_bytes(options.context)),
        runtime_bytes=p.runtime_bytes,
        layer_read_bytes=read,
        output_read_bytes=out_read,
        layer_prefill_work=work,
        # llama.cpp computes logits for the last prompt token only (n_outputs = 1).
        output_prefill_work=0.0,
    )
