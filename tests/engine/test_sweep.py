"""The vectorised sweep equals the scalar estimate point by point."""

from __future__ import annotations

import random

import numpy as np
import pytest

from catalog import load_catalog
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.engine.sweep import VERDICTS, sweep
from forgeplanner.host import host_from_chip
from models_db import load_models

CAT = load_catalog()
HOSTS = [
    (cid, host_from_chip(CAT.chip(cfg.chip_id), cfg.memory_gb, config=cfg))
    for cid, cfg in CAT.configs.items()
]
MODELS = list(load_models().all())


@pytest.fixture(scope="module")
def grid():
    return sweep(HOSTS, MODELS, [2048, 32768], RunOptions(depth=1024, prompt_tokens=1000))


def test_sample_of_points_equals_scalar_estimate(grid):
    idx = np.argwhere(grid.valid)
    rng = random.Random(20261126)
    checked_speed = 0
    for k in rng.sample(range(len(idx)), 120):
        h, m, q, c = (int(x) for x in idx[k])
        opts = RunOptions(context=grid.contexts[c], depth=1024, prompt_tokens=1000)
        e = estimate(MODELS[m], grid.quants[q], HOSTS[h][1], opts)
        label = (HOSTS[h][0], MODELS[m].id, grid.quants[q], grid.contexts[c])
        assert e.fit.memory.total_bytes == grid.total_bytes[m, q, c], label
        assert e.fit.verdict == VERDICTS[grid.verdict[h, m, q, c]], label
        assert e.fit.headroom_bytes == grid.headroom_bytes[h, m, q, c], label
        if e.speed is None:
            assert np.isnan(grid.decode_tps[h, m, q]), label
            continue
        checked_speed += 1
        assert grid.decode_tps[h, m, q] == pytest.approx(e.speed.decode_tps, rel=1e-12), label
        assert grid.prefill_tps[h, m, q] == pytest.approx(e.speed.prefill_tps, rel=1e-12), label
        assert grid.ttft_s[h, m, q] == pytest.approx(e.speed.ttft_s, rel=1e-12), label
    assert checked_speed > 60


def test_grid_shape_and_invalid_combinations(grid):
    H, M, Q, C = grid.valid.shape
    assert (H, M, C) == (len(HOSTS), len(MODELS), 2)
    assert grid.evaluations == int(grid.valid.sum()) > 100_000 // 2
    q = grid.quants.index("MXFP4")
    dense = [i for i, m in enumerate(MODELS) if m.moe is None]
    assert not grid.valid[:, dense, q, :].any()  # MXFP4_MOE needs experts
    assert not any(grid.quants[j].startswith("MLX") for j in range(Q))  # GGUF runtime


def test_to_frame_long_table(grid):
    small = sweep(HOSTS[:3], MODELS[:4], [4096])
    df = small.to_frame()
    assert len(df) == small.evaluations
    assert list(df.columns) == [
        *("config_id", "model_id", "quant", "context", "total_bytes", "verdict"),
        *("headroom_bytes", "decode_tps", "prefill_tps", "ttft_s"),
    ]
    assert set(df["verdict"]) <= set(VERDICTS)


def test_bad_contexts_refused():
    with pytest.raises(ValueError, match="positive"):
        sweep(HOSTS[:1], MODELS[:1], [-5])


@pytest.mark.parametrize("runtime", ["mlx", "ollama"])
def test_other_runtimes_agree_with_scalar(runtime):
    opts = RunOptions(runtime=runtime)
    hosts = HOSTS[::7]
    res = sweep(hosts, MODELS, [4096], opts)
    idx = np.argwhere(res.valid)
    rng = random.Random(7)
    for k in rng.sample(range(len(idx)), 25):
        h, m, q, c = (int(x) for x in idx[k])
        e = estimate(
            MODELS[m], res.quants[q], hosts[h][1], RunOptions(runtime=runtime, context=4096)
        )
        assert e.fit.memory.total_bytes == res.total_bytes[m, q, c]
        assert e.fit.verdict == VERDICTS[res.verdict[h, m, q, c]]
        if e.speed is not None:
            assert res.decode_tps[h, m, q] == pytest.approx(e.speed.decode_tps, rel=1e-12)
    if runtime == "mlx":
        assert all(q.startswith("MLX") for q in res.quants)


@pytest.mark.parametrize(
    ("runtime", "kv_type", "fa"),
    [("mlx", "q8_0", None), ("mlx", "q4_0", None), ("llama.cpp", "f16", False),
     ("llama.cpp", "q8_0", None), ("ollama", "f16", True)],
)  # fmt: skip
def test_kv_type_and_flash_attention_reach_the_sweep(runtime, kv_type, fa):
    # every model at long contexts, where the score matrix (flash attention off, or MLX's
    # quantized cache / unfused head sizes) dominates the compute buffer; prompt_tokens set
    # so MLX's prefill chunk differs from the default
    opts = RunOptions(runtime=runtime, kv_type=kv_type, flash_attention=fa, prompt_tokens=1500)
    models = [
        m for m in MODELS if not (runtime == "ollama" and m.attention.kind == "mla")
    ]  # Ollama cannot run MLA models with flash attention (runtime_defaults)
    ctxs = [4096, 65536]
    res = sweep(HOSTS[:2], models, ctxs, opts)
    for m_i, m in enumerate(models):
        for q_i, q in enumerate(res.quants):
            if not res.valid[0, m_i, q_i, 0]:
                continue
            for c_i, c in enumerate(ctxs):
                o = RunOptions(
                    runtime=runtime, kv_type=kv_type, flash_attention=fa, prompt_tokens=1500,
                    context=c,
                )  # fmt: skip
                e = estimate(m, q, HOSTS[0][1], o)
                assert e.fit.memory.total_bytes == res.total_bytes[m_i, q_i, c_i], (m.id, q, c)
            break  # memory besides weights does not depend on the quantization
