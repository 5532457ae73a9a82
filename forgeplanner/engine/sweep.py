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
    QUANT_CLASSES,
    SpeedConstants,
    decode_seconds,
    host_speed_inputs,
    prefill_seconds_per_token,
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
    qcls = np.array([QUANT_CLASSES.index(quant_class(q)) for q in qs], dtype=np.int64)
    read = np.zeros((M, Q))
    wtot = np.zeros((M, Q))
    kv_d = np.zeros((M, 1))  # KV bytes x read multiplier at depth
    kv_d2 = np.zeros((M, 1))  # ... at depth + prompt (first token after the prompt)
    n_act = np.zeros((M, 1))
    n_lay = np.zeros((M, 1))
    fpt = np.zeros((M, 1))
    for i, row in enumerate(grid):
        first = None
        for j, p in enumerate(row):
            if p is None or not valid_mq[i, j]:
                continue
            inp = p.speed_inputs
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
    return qcls, read, wtot, kv_d, kv_d2, n_act, n_lay, fpt


def _speed_grid(hosts, grids, qs, valid_mq, opts: RunOptions, constants: SpeedConstants):
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
        qcls, read, wtot, kv_d, kv_d2, n_act, n_lay, fpt = inputs[bool(h.is_apple_silicon)]
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
        ttft = np.where(invalid, np.nan, ttft_seconds(opts.prompt_tokens, prefill_s, decode2))
    return decode_tps, prefill_tps, ttft
