"""Fitting the speed model's constants to published benchmark runs (pure, numpy only).

Every speed formula in `forgeplanner.engine.speed` is a sum of (constant x physical quantity),
so for fixed kv_read_factor the fit is a linear least-squares problem in the constants:
`numpy.linalg.lstsq` on rows weighted by 1/measured-time, which minimises relative error (the
quantity users care about: "10 % too slow"). Constants are kept non-negative with a small
active-set loop (a negative efficiency is not physics): a column whose coefficient comes out
negative is fixed at zero and the rest refitted (Lawson & Hanson, "Solving Least Squares
Problems", 1974, ch. 23, NNLS, in its simplest form). kv_read_factor is a 1-D grid search.

The input is a list of `Observation`s built by scripts/calibrate_speed.py from the reference
CSVs, through the same `model_speed_inputs` / `host_speed_inputs` the estimator uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from forgeplanner.engine.speed import (
    HostSpeedInputs,
    ModelSpeedInputs,
    RuntimeConstants,
    SpeedConstants,
    prefill_flops_per_token,
)

DECODE_CLASSES = ("q8", "legacy4", "kquant", "mxfp4")  # float has no dequantization work
PREFILL_CLASSES = ("float", "q8", "legacy4", "kquant", "mxfp4")
KV_FACTOR_GRID = tuple(round(float(x), 2) for x in np.arange(0.5, 4.01, 0.1))
DRIFT_GRID = tuple(round(float(x), 3) for x in np.arange(0.0, 0.501, 0.025))


@dataclass(frozen=True, slots=True)
class Observation:
    """One published measurement, mapped to our specs."""

    key: str  # stable row id "file:line"
    runtime: str  # llama.cpp | ollama | mlx
    test: str  # "tg" | "pp"
    model: ModelSpeedInputs
    host: HostSpeedInputs
    chip: str  # "M2 Ultra"
    generation: str  # "M2"
    gpu_cores: int
    depth: float  # tg: mean cache depth during the run; pp: prompt start
    n_tokens: int  # pp: prompt tokens (tg: generated tokens)
    n_ubatch: int
    measured_tps: float
    source: str
    recent_build: bool = False  # llama.cpp build from 2026 (see docs/calibration.md)


# ---------------------------------------------------------------------------------------------
# design matrices
# ---------------------------------------------------------------------------------------------


def _decode_row(o: Observation, kv_factor: float) -> dict[str, float]:
    m, h = o.model, o.host
    read = m.weights_read_bytes + float(m.kv_bytes_at(o.depth)) * m.kv_multiplier * kv_factor
    row = {
        "a_bw": read / h.bandwidth,
        "a_ultra": read * h.is_ultra / h.bandwidth,
        "a_core": read / h.flops,
        "tau_token_s": 1.0,
        "tau_layer_s": float(m.n_layers),
    }
    for q in DECODE_CLASSES:
        row[f"d_{q}"] = m.active_params / h.flops if m.qclass == q else 0.0
    return row


def _prefill_row(o: Observation) -> dict[str, float]:
    m, h = o.model, o.host
    fpt = float(prefill_flops_per_token(float(m.active_params), m.attn, o.depth, o.n_tokens))
    row = {
        "c_ultra": fpt * h.is_ultra / h.flops,
        "a_reread": m.weights_total_bytes / (min(o.n_ubatch, o.n_tokens) * h.bandwidth),
    }
    for q in PREFILL_CLASSES:
        row[f"c_{q}"] = fpt / h.flops if m.qclass == q else 0.0
    return row


def nnls_relative(
    rows: Sequence[dict[str, float]], times: Sequence[float], names: Sequence[str]
) -> dict[str, float]:
    """Minimise sum(((A x - t) / t)^2) with x >= 0; columns with no data get 0."""
    a = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    w = 1.0 / t
    aw = a * w[:, None]
    tw = t * w
    # scale columns so lstsq is well conditioned (bytes/BW ~1e-2, FLOPs/F ~1e-3, 1.0 ...)
    scale = np.abs(aw).max(axis=0)
    active = scale > 0
    scale[~active] = 1.0
    x = np.zeros(len(names))
    for _ in range(len(names) + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sol, *_ = np.linalg.lstsq(aw[:, idx] / scale[idx], tw, rcond=None)
        sol = sol / scale[idx]
        if (sol >= 0).all():
            x[:] = 0.0
            x[idx] = sol
            break
        active[idx[np.argmin(sol)]] = False
    return dict(zip(names, (float(v) for v in x), strict=True))


def _apply(coefs: dict[str, float], row: dict[str, float]) -> float:
    return sum(coefs.get(k, 0.0) * v for k, v in row.items())


# ---------------------------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FitResult:
    constants: SpeedConstants
    kv_factor_basis: str


def _fit_llamacpp(
    obs: Sequence[Observation],
) -> tuple[dict[str, float], float, dict[str, float], dict[str, float]]:
    """llama.cpp (+ Ollama's extra per-token cost).

    Returns decode coefs, kv_read_factor, prefill coefs and the build drift. Rows measured on
    recent builds (`recent_build`) are faster by a factor (1 + g) that is fitted alongside
    (grid search), so that build-to-build speed-ups do not distort the physical constants.
    """
    dec = [o for o in obs if o.test == "tg" and o.runtime in ("llama.cpp", "ollama")]
    names = ["a_bw", "a_ultra", "a_core", "tau_token_s", "tau_layer_s", "tau_ollama_s"]
    names += [f"d_{q}" for q in DECODE_CLASSES]
    recent_d = np.array([o.recent_build for o in dec], dtype=bool)
    base_t = np.array([1.0 / o.measured_tps for o in dec])
    grid_g = DRIFT_GRID if recent_d.any() else (0.0,)
    best: tuple[float, dict[str, float], float, float] | None = None
    for f in KV_FACTOR_GRID:
        rows = []
        for o in dec:
            r = _decode_row(o, f)
            r["tau_ollama_s"] = 1.0 if o.runtime == "ollama" else 0.0
            rows.append(r)
        for g in grid_g:
            times = np.where(recent_d, base_t * (1.0 + g), base_t)
            coefs = nnls_relative(rows, times, names)
            pred = np.array([_apply(coefs, r) for r in rows])
            err = float(np.mean((pred / times - 1.0) ** 2))
            if best is None or err < best[0] - 1e-12:
                best = (err, coefs, f, g)
    assert best is not None
    _, dcoefs, kvf, g_dec = best
    pre = [o for o in obs if o.test == "pp" and o.runtime in ("llama.cpp", "ollama")]
    pnames = ["c_ultra", "a_reread"] + [f"c_{q}" for q in PREFILL_CLASSES]
    prow = [_prefill_row(o) for o in pre]
    recent_p = np.array([o.recent_build for o in pre], dtype=bool)
    base_p = np.array([1.0 / o.measured_tps for o in pre])
    bestp: tuple[float, dict[str, float], float] | None = None
    for g in DRIFT_GRID if recent_p.any() else (0.0,):
        times = np.where(recent_p, base_p * (1.0 + g), base_p)
        coefs = nnls_relative(prow, times, pnames)
        pred = np.array([_apply(coefs, r) for r in prow])
        err = float(np.mean((pred / times - 1.0) ** 2))
        if bestp is None or err < bestp[0] - 1e-12:
            bestp = (err, coefs, g)
    assert bestp is not None
    _, pcoefs, g_pre = bestp
    return dcoefs, kvf, pcoefs, {"decode": g_dec, "prefill": g_pre}


def _runtime_constants(d: dict[str, float], kvf: float, p: dict[str, float]) -> RuntimeConstants:
    return RuntimeConstants(
        a_bw=d["a_bw"],
        a_ultra=d["a_ultra"],
        a_core=d["a_core"],
        dequant={"float": 0.0, **{q: d[f"d_{q}"] for q in DECODE_CLASSES}},
        tau_token_s=d["tau_token_s"],
        tau_layer_s=d["tau_layer_s"],
        kv_read_factor=kvf,
        compute={q: p[f"c_{q}"] for q in PREFILL_CLASSES},
        c_ultra=p["c_ultra"],
        a_reread=p["a_reread"],
    )


def _fill_missing(c: RuntimeConstants) -> RuntimeConstants:
    """Classes that had no rows in a (cross-validation) training set borrow a neighbour, so a
    held-out row of that class is predicted rather than divided by zero."""
    comp = dict(c.compute)
    order = ("legacy4", "kquant", "q8", "mxfp4", "float")
    for q in PREFILL_CLASSES:
        if comp.get(q, 0.0) <= 0.0:
            comp[q] = next((comp[o] for o in order if comp.get(o, 0.0) > 0.0), 1.0)
    return replace(c, compute=comp)


def _scale_mlx(base: RuntimeConstants, s_bw: float, s_c: float) -> RuntimeConstants:
    """MLX: llama.cpp's physics with its own streaming and compute efficiency multipliers
    (MLX runs its own Metal kernels). Affine-quantized weights are block-scaled like
    llama.cpp's legacy 4-bit blocks, so they take that class's dequant and compute values."""
    deq = dict(base.dequant)
    deq["mlx_affine"] = base.dequant.get("legacy4", 0.0)
    comp = {k: v * s_c for k, v in base.compute.items()}
    comp["mlx_affine"] = base.compute["legacy4"] * s_c
    return RuntimeConstants(
        a_bw=base.a_bw * s_bw,
        a_ultra=base.a_ultra * s_bw,
        a_core=base.a_core * s_bw,
        dequant=deq,
        tau_token_s=base.tau_token_s,
        tau_layer_s=base.tau_layer_s,
        kv_read_factor=1.0,
        compute=comp,
        c_ultra=base.c_ultra * s_c,
        a_reread=base.a_reread,
    )


def _ratio_fit(pred: Sequence[float], meas: Sequence[float]) -> float:
    """Scale s minimising sum((s * pred / meas - 1)^2) (closed form)."""
    r = np.asarray(pred) / np.asarray(meas)
    return float(r.sum() / (r * r).sum()) if len(r) else 1.0


def fit_constants(
    obs: Sequence[Observation],
    *,
    fit_date: str,
    per_core_fp32_flops: dict[str, float] | None = None,
) -> SpeedConstants:
    dcoefs, kvf, pcoefs, drift = _fit_llamacpp(obs)
    llama = _fill_missing(_runtime_constants(dcoefs, kvf, pcoefs))
    ollama = replace(llama, tau_token_s=llama.tau_token_s + dcoefs["tau_ollama_s"])
    # MLX: one streaming multiplier from its decode rows, one compute multiplier from its
    # prefill rows (time scales linearly in both); 1.0 when there are no rows.
    mlx0 = _scale_mlx(llama, 1.0, 1.0)
    mdec = [o for o in obs if o.runtime == "mlx" and o.test == "tg"]
    mpre = [o for o in obs if o.runtime == "mlx" and o.test == "pp"]
    s_bw = 1.0
    if mdec:
        # time = stream * s + (dequant + fixed): solve for s by relative least squares
        st, rest, meas = [], [], []
        for o in mdec:
            p = _point(mlx0, o)
            st.append(p[0])
            rest.append(p[1])
            meas.append(1.0 / o.measured_tps)
        st_a, rest_a, m_a = np.array(st), np.array(rest), np.array(meas)
        x = st_a / m_a
        y = 1.0 - rest_a / m_a
        s_bw = max(0.1, float((x * y).sum() / (x * x).sum()))
    s_c = 1.0
    if mpre:
        comp, rr, meas = [], [], []
        for o in mpre:
            pc, pr = _prefill_point(mlx0, o)
            comp.append(pc)
            rr.append(pr)
            meas.append(1.0 / o.measured_tps)
        c_a, r_a, m_a = np.array(comp), np.array(rr), np.array(meas)
        x = c_a / m_a
        y = 1.0 - r_a / m_a
        s_c = max(0.1, float((x * y).sum() / (x * x).sum()))
    mlx = _scale_mlx(llama, s_bw, s_c)
    return SpeedConstants(
        runtimes={"llama.cpp": llama, "ollama": ollama, "mlx": mlx},
        fit_date=fit_date,
        basis=f"fit on {len(obs)} published runs (reference bench_*_calibration.csv)",
        per_core_fp32_flops=dict(per_core_fp32_flops or {}),
        build_drift=drift,
    )


# ---------------------------------------------------------------------------------------------
# prediction and error
# ---------------------------------------------------------------------------------------------


def _point(c: RuntimeConstants, o: Observation) -> tuple[float, float]:
    """(stream seconds, rest seconds) of a decode observation."""
    from forgeplanner.engine.speed import decode_terms

    m, h = o.model, o.host
    s, d, f = decode_terms(
        c,
        weights_read_bytes=m.weights_read_bytes,
        kv_bytes=float(m.kv_bytes_at(o.depth)),
        kv_multiplier=m.kv_multiplier,
        active_params=float(m.active_params),
        n_layers=float(m.n_layers),
        bandwidth=h.bandwidth,
        flops=h.flops,
        is_ultra=h.is_ultra,
        dequant_coeff=c.dequant_for(m.qclass),
    )
    return float(s), float(d + f)


def _prefill_point(c: RuntimeConstants, o: Observation) -> tuple[float, float]:
    from forgeplanner.engine.speed import prefill_terms

    m, h = o.model, o.host
    fpt = prefill_flops_per_token(float(m.active_params), m.attn, o.depth, o.n_tokens)
    comp, rr = prefill_terms(
        c,
        flops_per_token=float(fpt),
        weights_total_bytes=float(m.weights_total_bytes),
        n_ubatch=float(min(o.n_ubatch, o.n_tokens)),
        bandwidth=h.bandwidth,
        flops=h.flops,
        is_ultra=h.is_ultra,
        compute_coeff=c.compute_for(m.qclass),
    )
    return float(comp), float(rr)


def predict_tps(constants: SpeedConstants, o: Observation, *, with_drift: bool = True) -> float:
    """Predicted tokens/s; recent-build rows get the fitted build speed-up when with_drift."""
    c = constants.for_runtime(o.runtime)
    kind = "decode" if o.test == "tg" else "prefill"
    g = constants.build_drift.get(kind, 0.0) if (with_drift and o.recent_build) else 0.0
    if o.test == "tg":
        s, r = _point(c, o)
        return (1.0 + g) / (s + r)
    comp, rr = _prefill_point(c, o)
    return (1.0 + g) / (comp + rr)


def errors_pct(constants: SpeedConstants, obs: Sequence[Observation]) -> list[float]:
    """Signed percentage error per observation: (predicted / measured - 1) * 100."""
    return [(predict_tps(constants, o) / o.measured_tps - 1.0) * 100.0 for o in obs]


def cross_validate(
    obs: Sequence[Observation],
    group_of: Callable[[Observation], str],
    *,
    fit_date: str = "cv",
    per_core_fp32_flops: dict[str, float] | None = None,
) -> dict[str, float]:
    """Leave-one-group-out: for each group, fit on the others and predict it.
    Returns signed % error per observation key (held-out prediction)."""
    out: dict[str, float] = {}
    groups = sorted({group_of(o) for o in obs})
    for g in groups:
        train = [o for o in obs if group_of(o) != g]
        test = [o for o in obs if group_of(o) == g]
        if (
            not train
            or not any(o.test == "tg" for o in train)
            or not any(o.test == "pp" for o in train)
        ):
            continue
        c = fit_constants(train, fit_date=fit_date, per_core_fp32_flops=per_core_fp32_flops)
        for o, e in zip(test, errors_pct(c, test), strict=True):
            out[o.key] = e
    return out
