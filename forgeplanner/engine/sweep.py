"""Evaluate every host x model x quantization x context at once (numpy broadcasting).

The same pipeline as the scalar estimate (forgeplanner.engine.pipeline.prepare), read as arrays:

    weights  [M, Q]   Prepared.weights_bytes per model x quant (-1: impossible combination)
    kv, cb   [M, C]   Prepared.kv_bytes / compute_bytes over the context vector (they do not
                      depend on the quantization), plus Prepared.runtime_bytes
    budgets  [H]      GPU limit and highest raisable limit per host (engine.budget)
    speed    [H, M, Q] the speed formulas of engine.speed over Prepared.speed_inputs

then broadcast to [H, M, Q, C]. A scalar estimate is the same arithmetic on 0-d arrays, so a
grid point equals `forgeplanner estimate` by construction (tests/engine/test_sweep.py checks a
sample anyway). Flash attention left at the runtime's default is resolved per host kind: the
Metal backend for Apple Silicon hosts, the CPU backend otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forgeplanner.domain.estimates import HostSpec, RunOptions
from forgeplanner.domain.model import ModelSpec
from forgeplanner.engine.budget import gpu_budget
from forgeplanner.engine.fit import VERDICTS, verdict_code_arrays
from forgeplanner.engine.pipeline import Prepared, prepare
from forgeplanner.engine.quant import QUANT_NAMES, QUANTS, get_quant
from forgeplanner.engine.runtimes import profile
from forgeplanner.engine.speed import (
    SpeedConstants,
    decode_design,
    dot,
    host_speed_inputs,
    prefill_design,
    quant_class,
    ttft_seconds,
)


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


def _prepared_grid(
    models: Sequence[ModelSpec], qs: list, opts: RunOptions, apple_gpu: bool
) -> list[list[Prepared | None]]:
    """Prepared pipeline per model x quant (None: the combination does not exist)."""
    fmt = profile(opts.runtime).weight_format
    grid: list[list[Prepared | None]] = []
    for m in models:
        row: list[Prepared | None] = []
        for q in qs:
            ok = q.format == fmt and fmt in m.formats and not (q.moe_only and m.moe is None)
            row.append(prepare(m, q, opts, apple_gpu=apple_gpu) if ok else None)
        grid.append(row)
    return grid


def _memory_tables(grid, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights [M, Q] with -1 where invalid, kv + compute + runtime [M, C])."""
    M, Q, C = len(grid), len(grid[0]) if grid else 0, len(ctx)
    w = np.full((M, Q), -1, dtype=np.int64)
    rest = np.zeros((M, C), dtype=np.int64)
    for i, row in enumerate(grid):
        first = next((p for p in row if p is not None), None)
        if first is None:
            continue
        for j, p in enumerate(row):
            if p is not None:
                w[i, j] = p.weights_bytes
        cells = first.cells(ctx)
        rest[i] = (
            np.asarray(first.kv_bytes(ctx, cells), dtype=np.int64)
            + np.asarray(first.compute_bytes(ctx, cells), dtype=np.int64)
            + first.runtime_bytes
        )
    return w, rest


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
    fmt = profile(opts.runtime).weight_format
    qnames = tuple(quants) if quants else tuple(n for n in QUANT_NAMES if QUANTS[n].format == fmt)
    qs = [get_quant(n) for n in qnames]
    ctx = np.asarray(sorted({int(c) for c in contexts}), dtype=np.int64)
    H, M, Q, C = len(hosts), len(models), len(qs), len(ctx)
    apple = np.array([bool(h.is_apple_silicon) for _, h in hosts], dtype=bool)

    # --- one pipeline per model x quant and host kind ----------------------------------------
    grids = {kind: _prepared_grid(models, qs, opts, kind) for kind in sorted(set(apple.tolist()))}
    tables = {kind: _memory_tables(g, ctx) for kind, g in grids.items()}
    w_any = next(iter(tables.values()))[0] if tables else np.full((M, Q), -1, dtype=np.int64)
    valid_mq = w_any >= 0
    # totals per host kind [M, Q, C] (the same on every host of a kind)
    totals = {
        kind: np.where(valid_mq[:, :, None], w[:, :, None] + rest[:, None, :], -1)
        for kind, (w, rest) in tables.items()
    }
    total = (
        totals[True]
        if True in totals
        else (totals[False] if False in totals else np.full((M, Q, C), -1, dtype=np.int64))
    )

    limit = np.empty(H, dtype=np.int64)
    raisable = np.empty(H, dtype=np.int64)
    for j, (_, h) in enumerate(hosts):
        b = gpu_budget(h)
        limit[j] = b.gpu_limit_bytes
        raisable[j] = b.max_raisable_limit_bytes
    t4 = np.empty((H, M, Q, C), dtype=np.int64)
    for kind, tot in totals.items():
        t4[apple == kind] = tot[None]
    lim4 = limit[:, None, None, None]
    verdict = verdict_code_arrays(t4, lim4, raisable[:, None, None, None],
                                  apple[:, None, None, None])  # fmt: skip
    headroom = lim4 - t4
    valid = np.broadcast_to(valid_mq[None, :, :, None], (H, M, Q, C))

    # --- speed [H, M, Q] --------------------------------------------------------------------
    decode, prefill, ttft = _speed_grid(hosts, grids, qs, valid_mq, opts, constants)
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


def _speed_inputs_grid(grid, qs, valid_mq, opts: RunOptions):
    """Per-token quantities [M, Q] / [M, 1] from each Prepared.speed_inputs."""
    M, Q = len(grid), len(qs)
    z = lambda shape: np.zeros(shape)  # noqa: E731
    g = {
        "read": z((M, Q)), "experts_read": z((M, Q)), "wtot": z((M, Q)),
        "kv_d": z((M, 1)), "kv_d2": z((M, 1)), "attn_d": z((M, 1)), "attn_d2": z((M, 1)),
        "n_act": z((M, 1)), "n_exp": z((M, 1)), "n_lay": z((M, 1)), "attn_mean": z((M, 1)),
        "n_rec": z((M, 1)), "state": z((M, 1)),
    }  # fmt: skip
    fa = np.zeros((M, 1), dtype=bool)
    d, d2 = opts.depth, opts.depth + opts.prompt_tokens
    for i, row in enumerate(grid):
        first = None
        for j, p in enumerate(row):
            if p is None or not valid_mq[i, j]:
                continue
            inp = p.speed_inputs
            g["read"][i, j] = inp.weights_read_bytes
            g["experts_read"][i, j] = inp.experts_read_bytes
            g["wtot"][i, j] = inp.weights_total_bytes
            if first is None:
                first, fa[i] = inp, bool(p.fa.enabled)
        if first is None:
            continue
        g["kv_d"][i] = float(first.kv_bytes_at(d)) * first.kv_multiplier
        g["kv_d2"][i] = float(first.kv_bytes_at(d2)) * first.kv_multiplier
        g["attn_d"][i] = float(first.attn.flops_at(d))
        g["attn_d2"][i] = float(first.attn.flops_at(d2))
        g["n_act"][i] = first.active_params
        g["n_exp"][i] = first.expert_active_params
        g["n_lay"][i] = first.n_layers
        g["n_rec"][i] = first.n_recurrent_layers
        g["state"][i] = first.kv_state_bytes
        g["attn_mean"][i] = float(first.attn.mean_flops(opts.depth, opts.prompt_tokens))
    classes = [quant_class(q) for q in qs]
    return g, fa, classes


def _decode_s(c, g, sl, hs, qclass, kv, attn):
    """Decode seconds per token for the quant columns `sl` of one class on one host."""
    design = decode_design(
        weights_read_bytes=g["read"][:, sl], experts_read_bytes=g["experts_read"][:, sl],
        kv_bytes=kv, active_params=g["n_act"], n_layers=g["n_lay"], attn_flops=attn,
        bandwidth=hs.bandwidth, flops=hs.flops, is_ultra=hs.is_ultra,
        generation=hs.generation, qclass=qclass, recurrent_layers=g["n_rec"],
        recurrent_state_bytes=g["state"],
    )  # fmt: skip
    return dot(c.decode, design)


def _speed_grid(hosts, grids, qs, valid_mq, opts: RunOptions, constants: SpeedConstants):
    """decode/prefill tokens/s and TTFT [H, M, Q]: the engine's designs on arrays, one quant
    class at a time (its coefficients are scalars), one host at a time."""
    from forgeplanner.engine.estimate import n_ubatch_for, runtime_constants

    H, M, Q = len(hosts), valid_mq.shape[0], len(qs)
    inputs = {kind: _speed_inputs_grid(g, qs, valid_mq, opts) for kind, g in grids.items()}
    decode = np.full((H, M, Q), np.nan)
    decode2 = np.full((H, M, Q), np.nan)
    prefill_s = np.full((H, M, Q), np.nan)
    ub = float(min(n_ubatch_for(opts), opts.prompt_tokens))
    for j, (_, h) in enumerate(hosts):
        hs = host_speed_inputs(h)
        if hs is None:
            continue
        g, fa, classes = inputs[bool(h.is_apple_silicon)]
        c, _ = runtime_constants(constants, opts.runtime, h, opts.runtime_version)
        na = bool(c.uses_neural_accelerators and hs.has_neural_accelerators)
        for k in sorted(set(classes)):
            cols = [i for i, x in enumerate(classes) if x == k]
            sl = np.asarray(cols)

            decode[j][:, sl] = _decode_s(c, g, sl, hs, k, g["kv_d"], g["attn_d"])
            decode2[j][:, sl] = _decode_s(c, g, sl, hs, k, g["kv_d2"], g["attn_d2"])
            pre = np.zeros((M, len(cols)))
            for on in (True, False):  # flash attention differs per model
                part = dot(c.prefill, prefill_design(
                    weight_flops=2.0 * g["n_act"], expert_flops=2.0 * g["n_exp"],
                    attn_flops=g["attn_mean"], weights_total_bytes=g["wtot"][:, sl],
                    n_ubatch=ub, n_layers=g["n_lay"], bandwidth=hs.bandwidth, flops=hs.flops,
                    is_ultra=hs.is_ultra, prompt_tokens=float(opts.prompt_tokens), qclass=k,
                    generation=hs.generation, neural_accelerators=na, flash_attention=on,
                    recurrent_state_bytes=g["state"]))  # fmt: skip
                pre = np.where(fa == on, part, pre)
            prefill_s[j][:, sl] = pre
    invalid = ~valid_mq[None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        decode_tps = np.where(invalid, np.nan, 1.0 / decode)
        prefill_tps = np.where(invalid, np.nan, 1.0 / prefill_s)
        ttft = np.where(invalid, np.nan, ttft_seconds(opts.prompt_tokens, prefill_s, decode2))
    return decode_tps, prefill_tps, ttft
