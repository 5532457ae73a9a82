"""Evaluate every host x model x quantization x context at once (numpy broadcasting).

The scalar path (`forgeplanner.engine.estimate.estimate`) and this grid use the same functions:
the memory engine's tables (`weights_bytes_table`, `kv_bytes_array`, `compute_bytes_array`,
`runtime_overhead_bytes`, `gpu_budget`, `verdict_for` rule) and the speed formulas of
`forgeplanner.engine.speed` (written for arrays). Tables are built once per axis:

    weights  [M, Q]   bytes of model m stored as quant q (-1: impossible combination)
    kv, cb   [M, C]   KV cache and compute buffer at context c
    budgets  [H]      GPU limit and highest raisable limit per host
    speed    [H, M, Q] decode/prefill at the options' depth (context does not change them)

then broadcast to [H, M, Q, C]. tests/engine/test_sweep.py checks a sample of points against
the scalar estimate.

Flash attention left at the runtime's default (options.flash_attention None) is resolved per
model by forgeplanner.engine.runtime_defaults for the Apple GPU (Metal) backend; CPU hosts
resolve the same for every head size Metal supports (all models in the database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.budget import gpu_budget
from forgeplanner.engine.compute_buffer import compute_bytes_array, runtime_overhead_bytes
from forgeplanner.engine.kv_cache import kv_bytes_array
from forgeplanner.engine.quant import QUANT_NAMES, QUANTS, RUNTIME_FORMAT, get_quant
from forgeplanner.engine.speed import (
    QUANT_CLASSES,
    SpeedConstants,
    decode_seconds,
    host_speed_inputs,
    model_speed_inputs,
    prefill_seconds_per_token,
    quant_class,
)
from forgeplanner.engine.weights import weights_bytes_table

VERDICTS = ("fits", "fits-with-raised-limit", "does-not-fit")  # codes 0, 1, 2


@dataclass(frozen=True, slots=True)
class SweepResult:
    host_ids: tuple[str, ...]
    model_ids: tuple[str, ...]
    quants: tuple[str, ...]
    contexts: tuple[int, ...]
    valid: np.ndarray  # bool [H, M, Q, C]: the combination exists
    total_bytes: np.ndarray  # int64 [M, Q, C] (the same on every host)
    verdict: np.ndarray  # int8 [H, M, Q, C], index into VERDICTS
    headroom_bytes: np.ndarray  # int64 [H, M, Q, C]
    decode_tps: np.ndarray  # float64 [H, M, Q] (nan: speed unknown on that host)
    prefill_tps: np.ndarray  # float64 [H, M, Q]
    ttft_s: np.ndarray  # float64 [H, M, Q]

    @property
    def evaluations(self) -> int:
        return int(self.valid.sum())

    def to_frame(self):
        """Long table of the valid points (pandas imported here only)."""
        import pandas as pd

        h, m, q, c = np.nonzero(self.valid)
        return pd.DataFrame(
            {
                "config_id": np.asarray(self.host_ids, dtype=object)[h],
                "model_id": np.asarray(self.model_ids, dtype=object)[m],
                "quant": np.asarray(self.quants, dtype=object)[q],
                "context": np.asarray(self.contexts, dtype=np.int64)[c],
                "total_bytes": self.total_bytes[m, q, c],
                "verdict": np.asarray(VERDICTS, dtype=object)[self.verdict[h, m, q, c]],
                "headroom_bytes": self.headroom_bytes[h, m, q, c],
                "decode_tps": self.decode_tps[h, m, q],
                "prefill_tps": self.prefill_tps[h, m, q],
                "ttft_s": self.ttft_s[h, m, q],
            }
        )


def sweep(
    hosts: Sequence[tuple[str, HostSpec]],
    models: Sequence[ModelSpec],
    contexts: Sequence[int],
    options: RunOptions | None = None,
    constants: SpeedConstants | None = None,
    quants: Sequence[str] | None = None,
) -> SweepResult:
    opts = options or RunOptions()
    if not contexts or any(int(c) <= 0 for c in contexts):
        raise ValueError(f"contexts must be positive numbers of tokens, got {list(contexts)}")
    if constants is None:
        from forgeplanner.engine.speed_constants import CONSTANTS

        constants = CONSTANTS
    fmt = RUNTIME_FORMAT[opts.runtime]
    qnames = tuple(quants) if quants else tuple(n for n in QUANT_NAMES if QUANTS[n].format == fmt)
    qs = [get_quant(n) for n in qnames]
    ctx = np.asarray(sorted({int(c) for c in contexts}), dtype=np.int64)
    H, M, Q, C = len(hosts), len(models), len(qs), len(ctx)

    # --- memory tables (memory engine functions) -------------------------------------------
    w = weights_bytes_table(models, qs)  # [M, Q], -1 invalid
    valid_mq = w >= 0
    kv = np.empty((M, C), dtype=np.int64)
    cb = np.empty((M, C), dtype=np.int64)
    rt = np.empty((M, 1), dtype=np.int64)
    n_ub = min(opts.n_ubatch, opts.n_batch)
    for i, m in enumerate(models):
        if not valid_mq[i].any():
            kv[i] = 0
            cb[i] = 0
            rt[i] = 0
            continue
        kv[i] = kv_bytes_array(m, ctx, opts.kv_type, opts.parallel, opts.runtime, n_ub)
        # keywords: the MLX branch depends on kv_type and prompt_tokens too (scalar path
        # compute_breakdown reads them from the options)
        cb[i] = compute_bytes_array(
            m, ctx, flash_attention=opts.flash_attention, parallel=opts.parallel,
            runtime=opts.runtime, n_ubatch=n_ub, kv_type=opts.kv_type,
            prompt_tokens=opts.prompt_tokens,
        )  # fmt: skip
        rt[i] = runtime_overhead_bytes(m, opts)
    total = np.where(valid_mq[:, :, None], w[:, :, None] + (kv + cb + rt)[:, None, :], -1)

    limit = np.empty(H, dtype=np.int64)
    raisable = np.empty(H, dtype=np.int64)
    apple = np.empty(H, dtype=bool)
    for j, (_, h) in enumerate(hosts):
        b = gpu_budget(h)
        limit[j] = b.gpu_limit_bytes
        raisable[j] = b.max_raisable_limit_bytes
        apple[j] = h.is_apple_silicon
    t4 = total[None, :, :, :]
    lim4 = limit[:, None, None, None]
    fits = t4 <= lim4
    raised = apple[:, None, None, None] & (t4 <= raisable[:, None, None, None])
    verdict = np.where(fits, 0, np.where(raised, 1, 2)).astype(np.int8)
    headroom = lim4 - t4
    valid = np.broadcast_to(valid_mq[None, :, :, None], (H, M, Q, C))

    # --- speed tables [M, Q] and [H] -> [H, M, Q] ------------------------------------------
    decode, prefill, ttft = _speed_grid(hosts, models, qs, valid_mq, opts, constants)
    return SweepResult(
        host_ids=tuple(i for i, _ in hosts),
        model_ids=tuple(m.id for m in models),
        quants=qnames,
        contexts=tuple(int(c) for c in ctx),
        valid=valid,
        total_bytes=total,
        verdict=verdict,
        headroom_bytes=headroom,
        decode_tps=decode,
        prefill_tps=prefill,
        ttft_s=ttft,
    )


def _speed_grid(hosts, models, qs, valid_mq, opts: RunOptions, constants: SpeedConstants):
    from forgeplanner.engine.estimate import n_ubatch_for

    H, M, Q = len(hosts), len(models), len(qs)
    qcls = np.array([QUANT_CLASSES.index(quant_class(q)) for q in qs])
    read = np.zeros((M, Q))
    wtot = np.zeros((M, Q))
    kv_d = np.zeros((M, 1))  # KV bytes x read multiplier at depth
    kv_d2 = np.zeros((M, 1))  # ... at depth + prompt (first token after the prompt)
    n_act = np.zeros((M, 1))
    n_lay = np.zeros((M, 1))
    fpt = np.zeros((M, 1))
    for i, m in enumerate(models):
        first = None
        for j, q in enumerate(qs):
            if not valid_mq[i, j]:
                continue
            inp = model_speed_inputs(m, q, opts.runtime, opts.kv_type, opts.flash_attention)
            read[i, j] = inp.weights_read_bytes
            wtot[i, j] = inp.weights_total_bytes
            first = first or inp
        if first is None:
            continue
        kv_d[i] = float(first.kv_bytes_at(opts.depth)) * first.kv_multiplier
        kv_d2[i] = float(first.kv_bytes_at(opts.depth + opts.prompt_tokens)) * first.kv_multiplier
        n_act[i] = first.active_params
        n_lay[i] = first.n_layers
        fpt[i] = 2.0 * float(first.active_params) + float(
            first.attn.mean_flops(opts.depth, opts.prompt_tokens)
        )
    decode = np.full((H, M, Q), np.nan)
    decode2 = np.full((H, M, Q), np.nan)
    prefill_s = np.full((H, M, Q), np.nan)
    ub = float(min(n_ubatch_for(opts), opts.prompt_tokens))
    from forgeplanner.engine.estimate import runtime_constants

    for j, (_, h) in enumerate(hosts):
        hs = host_speed_inputs(h)
        if hs is None:
            continue
        c, _ = runtime_constants(constants, opts.runtime, h)
        deq = np.array([c.dequant_for(k) for k in QUANT_CLASSES])[qcls][None, :]
        comp = np.array([c.compute_for(k) for k in QUANT_CLASSES])[qcls][None, :]
        common = dict(
            active_params=n_act,
            n_layers=n_lay,
            bandwidth=hs.bandwidth,
            flops=hs.flops,
            is_ultra=hs.is_ultra,
            dequant_coeff=deq,
        )
        decode[j] = decode_seconds(
            c, weights_read_bytes=read, kv_bytes=kv_d, kv_multiplier=1.0, **common
        )
        decode2[j] = decode_seconds(
            c, weights_read_bytes=read, kv_bytes=kv_d2, kv_multiplier=1.0, **common
        )
        prefill_s[j] = prefill_seconds_per_token(
            c,
            flops_per_token=fpt,
            weights_total_bytes=wtot,
            n_ubatch=ub,
            bandwidth=hs.bandwidth,
            flops=hs.flops,
            is_ultra=hs.is_ultra,
            compute_coeff=comp,
        )
    invalid = ~valid_mq[None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        decode_tps = np.where(invalid, np.nan, 1.0 / decode)
        prefill_tps = np.where(invalid, np.nan, 1.0 / prefill_s)
        ttft = np.where(invalid, np.nan, opts.prompt_tokens * prefill_s + decode2)
    return decode_tps, prefill_tps, ttft
