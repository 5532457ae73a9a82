"""Per-layer costs of a model for cluster layouts, from the memory engine.

Totals always come from the engine's own functions (`weights_breakdown`, `kv_cache_breakdown`,
`compute_breakdown`), so a one-node cluster reports exactly what `forgeplanner estimate` reports
for that machine. What this module adds is the split of those totals over the layers:

- weights: the same per-tensor typing the engine uses (`weights._inventory` + `quant.tensor_types`
  or the GGUF file's exact tensor bytes), summed per layer instead of per group. llama.cpp's
  mixes give some layers bigger types (Q4_K_M: attn_v/ffn_down of the first and last eighth and
  every third layer in Q6_K), so layers differ by a few percent. If the per-layer sum ever
  differs from the engine total, the difference is spread over the layers so the total wins.
- KV cache: the engine's total split by each layer's cell count (full-context layers hold the
  context, windowed layers their window, a hybrid's recurrent layers its recurrent state).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.cluster import LayerCosts
from forgeplanner.engine.cluster_split import largest_remainder
from forgeplanner.engine.compute_buffer import compute_breakdown
from forgeplanner.engine.kv_cache import kv_cache_breakdown
from forgeplanner.engine.quant import QuantScheme, check_combination, get_quant, mix_context
from forgeplanner.engine.quant import tensor_types as _tensor_types
from forgeplanner.engine.weights import (
    _inventory,
    _mlx_bytes,
    _type_bytes,
    weights_breakdown,
)


def _per_layer_weights(model: ModelSpec, q: QuantScheme) -> tuple[list[int], list[int], int, int]:
    """(bytes per layer, expert bytes per layer, input bytes, output bytes)."""
    L = model.n_layers
    per_layer = [0] * L
    experts = [0] * L
    inp = out = 0

    def add(layer: int, group: str, name: str, n_bytes: int) -> None:
        nonlocal inp, out
        if layer >= 0:
            per_layer[layer] += n_bytes
            if group == "experts":
                experts[layer] += n_bytes
        elif group == "token_embd":
            inp += n_bytes
        else:  # output head, output norm, untied leftovers
            out += n_bytes

    exact = bool(
        model.tensors and model.gguf_file_type and q.name.upper() == model.gguf_file_type.upper()
    )
    inv = _inventory(model)
    if exact:
        for t, g in zip(model.tensors, inv, strict=True):
            add(g.layers[0], g.group, g.name, t.n_bytes)
        return per_layer, experts, inp, out
    ctx = mix_context(model)
    v_layers = sorted(
        {i for g in inv if g.category in ("attn_v", "attn_qkv", "attn_kv_b") for i in g.layers}
    )
    v_pos = {layer: k for k, layer in enumerate(v_layers)}
    if v_layers:
        ctx = replace(ctx, n_attention_v=len(v_layers))
    for g in inv:
        if q.format == "mlx":
            _, b = _mlx_bytes(q, g)
            for layer in g.layers:
                add(layer, g.group, g.name, b)
            continue
        if g.fixed_type is not None or g.category in ("norm", "router"):
            t = g.fixed_type or "F32"
            if t not in ("F32", "F16", "BF16", "MXFP4") and g.category in ("norm", "router"):
                t = "F32"
            b = _type_bytes(t, g.n_elements)
            for layer in g.layers:
                add(layer, g.group, g.name, b)
            continue
        layers = np.asarray(g.layers, dtype=np.int64)
        vidx = np.asarray([v_pos.get(i, 0) for i in g.layers], dtype=np.int64)
        tt = _tensor_types(q, g.category, layers, vidx, g.ne0, g.is_3d, ctx)
        for layer, t in zip(g.layers, tt.tolist(), strict=True):
            add(layer, g.group, g.name, _type_bytes(t, g.n_elements))
    return per_layer, experts, inp, out


def _reconcile(parts: list[int], total: int) -> list[int]:
    """Make parts sum to total, spreading any difference in proportion to the parts."""
    diff = total - sum(parts)
    if diff == 0:
        return parts
    weights = [max(p, 0) for p in parts] if any(parts) else [1] * len(parts)
    sign = 1 if diff > 0 else -1
    adj = largest_remainder(abs(diff), weights)
    return [p + sign * a for p, a in zip(parts, adj, strict=True)]


def _kv_per_layer(model: ModelSpec, options: RunOptions) -> list[int]:
    kb = kv_cache_breakdown(model, options)
    att = model.attention
    L = model.n_layers
    weights = [0] * L
    rec_layers: list[int] = []
    if att.kind == "hybrid" and att.attention_layers:
        att_set = set(att.attention_layers)
        for i in range(L):
            if i in att_set:
                weights[i] = kb.cells_full
            else:
                rec_layers.append(i)
    elif att.kind == "sliding" and att.sliding_layers and att.sliding_window:
        swa = set(att.sliding_layers)
        for i in range(L):
            weights[i] = kb.cells_swa if i in swa else kb.cells_full
    else:
        weights = [kb.cells_full] * L
    attn = kb.attention_bytes
    per = list(largest_remainder(attn, weights)) if attn and sum(weights) else [0] * L
    if kb.recurrent_bytes:
        targets = rec_layers or list(range(L))
        share = largest_remainder(kb.recurrent_bytes, [1] * len(targets))
        for i, s in zip(targets, share, strict=True):
            per[i] += s
    return per


def layer_costs(model: ModelSpec, quant: str | QuantScheme, options: RunOptions) -> LayerCosts:
    """Everything the cluster layout needs about this model x quant x options."""
    q = get_quant(quant)
    check_combination(model, q, options.runtime)
    wb = weights_breakdown(model, q)
    per_layer, experts, inp, out = _per_layer_weights(model, q)
    # Engine total wins: layers carry everything that is not the embedding or output head.
    per_layer = _reconcile(per_layer, wb.total_bytes - inp - out)
    kv = _kv_per_layer(model, options)
    cb = compute_breakdown(model, options)

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
    # The output head is read whole for every token (tied models read token_embd as lm_head).
    out_read = float(out if not model.tie_word_embeddings else out + inp)
    work = tuple(float(w - e + e * active) for w, e in zip(per_layer, experts, strict=True))
    return LayerCosts(
        model_id=model.id,
        quant=q.name,
        context=options.context,
        hidden_size=model.hidden_size,
        n_heads=model.n_heads,
        n_kv_heads=model.n_kv_heads,
        layer_weights_bytes=tuple(per_layer),
        layer_kv_bytes=tuple(kv),
        input_bytes=inp,
        output_bytes=out,
        compute_bytes=cb.compute_bytes,
        runtime_bytes=cb.runtime_bytes,
        layer_read_bytes=read,
        output_read_bytes=out_read,
        layer_prefill_work=work,
        # llama.cpp computes logits for the last prompt token only (n_outputs = 1).
        output_prefill_work=0.0,
    )
