"""Fitting the speed model's coefficients to published runs.

The model is a dot product (forgeplanner/engine/speed.py): seconds = sum of coefficient x
quantity over named terms. For a set of observations the fit is therefore a linear least-squares
problem in the coefficients:

- rows are scaled by weight / measured seconds, so the residual is the relative error
  (pred / measured - 1): "10 % too slow" counts the same on a 3B and on a 405B;
- coefficients are bounded below by 0 (a negative efficiency is not physics), solved with
  scipy.optimize.lsq_linear (bounded-variable least squares, Stark & Parker 1995);
- ridge rows pull each coefficient towards a prior, relative to the prior's size:
  sqrt(lam) x (theta / prior - 1). The prior is the parent fit (an era towards the runtime's
  pooled fit, Ollama and LM Studio towards the engine they run), so thin groups borrow strength
  from the rest and a held-out group falls back to it. Per-generation streaming coefficients
  ("stream:M1".."stream:M5") are tied to the pooled "stream" the same way.
- sources are balanced: a source with n rows weighs 1/sqrt(n / median n) per row, so one big
  table (a sweep of 200 settings on one machine) cannot dominate the fit.

Hierarchy (each level's prior is the level above):
    llama.cpp (all eras) -> llama.cpp@era; ollama, lmstudio-gguf -> llama.cpp (newest era)
    mlx (all eras) -> mlx@era; lmstudio-mlx -> mlx (newest era)
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from forgeplanner.calibration.observations import Observation
from forgeplanner.engine.runtimes import profile
from forgeplanner.engine.speed import SIGNED_TERMS, RuntimeConstants, dot

# Physics priors for the pooled fits (weak): streaming at ~80 % of peak bandwidth, matmuls at
# ~65 % of peak FP32, a few microseconds per layer. Only used where a parent fit is missing.
PHYSICS_PRIOR: dict[str, dict[str, float]] = {
    "decode": {"stream": 1.25, "kv": 1.25, "layer": 1.0e-4, "token": 2.0e-3},
    "prefill": {"mm": 1.5, "attn_fa": 1.5, "attn_nofa": 2.5, "reread": 1.0,
                "ubatch_layer": 1.0e-4, "call": 1.0e-2, "call_layer": 1.0e-4},
}  # fmt: skip

# Ridge strengths (in units of one fully weighted row's squared relative error).
LAMBDA_PHYSICS = 0.05  # pooled fit towards physics: a nudge only
LAMBDA_GENERATION = 3.0  # per-generation streaming towards the pooled streaming coefficient
LAMBDA_CHILD = 2.0  # era / other-runtime fit towards its parent
LAMBDA_ADJUST = 1.0  # signed adjustments (generation, neural accelerators) towards 0
ADJUST_FLOOR = 1.0  # an adjustment never takes more than this off a matmul coefficient
# Robust loss: iteratively reweighted least squares with soft-L1 weights on the relative
# residual r, w = 1 / sqrt(1 + (r / ROBUST_SCALE)^2) (the IRLS form of scipy's "soft_l1"
# loss), so a mis-transcribed or mislabelled published row cannot drag the fit.
ROBUST_SCALE = 0.15
ROBUST_ITERATIONS = 8
# Source effects: each published source (one person's machine, settings and build) may run a
# little faster or slower than the physics says for everyone. Its factor (1 + u_source)
# multiplies the measured time it is fitted against; u is the source's mean log residual shrunk
# towards 0 by SOURCE_SHRINK pseudo-rows (a random effect, as in a mixed model), clipped to
# +-SOURCE_CAP, so the coefficients describe a typical setup and one odd table of a hundred
# rows cannot pull them. An estimate for a new machine uses u = 0.
SOURCE_SHRINK = 8.0
SOURCE_CAP = 0.4


@dataclass(frozen=True, slots=True)
class Level:
    """One fitted set: which runtime (constants key) and era it describes, its rows."""

    key: str  # "llama.cpp", "llama.cpp@2024", "ollama", ...
    runtime: str
    era: str | None
    parent: str | None  # key of the prior


def _balance(obs: Sequence[Observation]) -> np.ndarray:
    counts = Counter(o.source for o in obs)
    med = statistics.median(counts.values()) if counts else 1.0
    return np.array(
        [o.weight / np.sqrt(max(1.0, counts[o.source] / med)) for o in obs], dtype=np.float64
    )


def _prior_value(name: str, prior: Mapping[str, float] | None, phase: str) -> float | None:
    if prior is not None:
        from forgeplanner.engine.speed import _lookup

        v = _lookup(prior, name)
        return v if v > 0 else None
    base = name.split(":")[0]
    return PHYSICS_PRIOR[phase].get(name, PHYSICS_PRIOR[phase].get(base))


def fit_phase(
    obs: Sequence[Observation],
    phase: str,
    prior: Mapping[str, float] | None,
    lam: float,
) -> dict[str, float]:
    """Coefficients for one phase ("decode" | "prefill") of one level."""
    # Passively cooled Macs throttle under sustained load: the coefficients describe machines
    # with fans; fanless rows get their own factor afterwards (passive_factor).
    rows = [o for o in obs if o.kind == phase and not o.fanless]
    cols = sorted({k for o in rows for k in o.design})
    # pooled coefficients that the specific ones are tied to (and that unknown generations or
    # quant classes use): streaming per generation, matmuls per quant class
    pooled = {"decode": ("stream",), "prefill": ("mm",)}[phase]
    present = {c.split(":")[0] for c in cols if ":" in c}
    cols = sorted(set(cols) | {p for p in pooled if p in present})
    if not cols:
        return dict(prior or {})
    idx = {c: i for i, c in enumerate(cols)}
    n = len(cols)
    a_rows: list[np.ndarray] = []
    b_rows: list[float] = []
    if rows:
        w = _balance(rows)
        t = np.array([o.seconds for o in rows])
        a = np.zeros((len(rows), n))
        for i, o in enumerate(rows):
            for k, v in o.design.items():
                a[i, idx[k]] = v
        scale = (w / t)[:, None]
        a_rows.append(a * scale)
        b_rows.extend((w / t * t).tolist())
    # ridge towards the prior (or weak physics), relative to its size
    reg_lam = lam if prior is not None else LAMBDA_PHYSICS
    for c in cols:
        base = c.split(":")[0]
        if base in SIGNED_TERMS and prior is None:
            continue
        p = _prior_value(c, prior, phase)
        if p is None:
            continue
        row = np.zeros(n)
        row[idx[c]] = np.sqrt(reg_lam) / p
        a_rows.append(row[None, :])
        b_rows.append(float(np.sqrt(reg_lam)))
    for c in cols:
        base = c.split(":")[0]
        if ":" in c and base in pooled and base in idx:
            row = np.zeros(n)
            row[idx[c]] = np.sqrt(LAMBDA_GENERATION)
            row[idx[base]] = -np.sqrt(LAMBDA_GENERATION)
            a_rows.append(row[None, :])
            b_rows.append(0.0)
    # signed adjustment terms: ridge towards 0 (their prior is "no adjustment"), bounded so
    # the matmul coefficient stays positive
    for c in cols:
        if c.split(":")[0] in SIGNED_TERMS:
            row = np.zeros(n)
            row[idx[c]] = np.sqrt(LAMBDA_ADJUST)
            a_rows.append(row[None, :])
            b_rows.append(0.0)
    lower = np.array([-ADJUST_FLOOR if c.split(":")[0] in SIGNED_TERMS else 0.0 for c in cols])
    a_all = np.vstack(a_rows)
    b_all = np.asarray(b_rows)
    n_data = len(rows)
    robust = np.ones(len(b_all))
    target = b_all.copy()
    src = np.array([o.source for o in rows])
    x = None
    for _ in range(ROBUST_ITERATIONS if n_data else 1):
        sol = lsq_linear(a_all * robust[:, None], target * robust, bounds=(lower, np.inf),
                         method="bvls", tol=1e-12)  # fmt: skip
        x = sol.x
        if not n_data:
            break
        pred = a_all[:n_data] @ x
        # source effects on the log ratio measured / predicted (data rows are scaled so the
        # measured time is b_all = weight)
        logr = np.log(np.maximum(b_all[:n_data], 1e-30) / np.maximum(pred, 1e-30))
        u = np.zeros(n_data)
        for s_ in set(src.tolist()):
            m = src == s_
            mean = float(np.clip(logr[m], -1.0, 1.0).sum()) / (m.sum() + SOURCE_SHRINK)
            u[m] = np.clip(mean, -SOURCE_CAP, SOURCE_CAP)
        # random effects centred on the typical source (median, so one odd big table does not
        # shift every other source)
        u -= float(np.median(np.array([u[src == s_][0] for s_ in set(src.tolist())])))
        target[:n_data] = b_all[:n_data] * np.exp(-u)
        rel = pred / np.where(target[:n_data] > 0, target[:n_data], 1.0) - 1.0
        robust[:n_data] = 1.0 / np.sqrt(np.sqrt(1.0 + (rel / ROBUST_SCALE) ** 2))
    assert x is not None
    out = {c: float(x[idx[c]]) for c in cols}
    # keep the prior's terms the data did not see (e.g. a quant class absent from this level)
    for k, v in (prior or {}).items():
        out.setdefault(k, float(v))
    return out


def passive_factor(
    obs: Sequence[Observation], phase: str, table: Mapping[str, float], prior: float | None
) -> float:
    """Time multiplier of passively cooled Macs: the median ratio measured / predicted time
    of their rows (at least 1: a fan never slows a Mac down), shrunk towards the prior (or 1)
    by SOURCE_SHRINK pseudo-rows."""
    logs = []
    for o in obs:
        if o.kind == phase and o.fanless:
            s = float(dot(table, o.design))
            if s > 0:
                logs.append(float(np.log(o.seconds / s)))
    base = float(np.log(prior)) if prior else 0.0
    if not logs:
        return float(np.exp(base))
    med = statistics.median(logs)
    n = len(logs)
    v = (med * n + base * SOURCE_SHRINK) / (n + SOURCE_SHRINK)
    return float(np.exp(min(max(v, 0.0), 1.0)))


ERA_LEVELS = True  # fit each runtime era towards the runtime's pooled fit


def levels_for(obs: Sequence[Observation]) -> list[Level]:
    """The levels the observations support, parents first."""
    out: list[Level] = []
    runtimes = {o.runtime for o in obs}
    for base in ("llama.cpp", "mlx"):
        if base not in runtimes and not any(
            profile(r).constants_fallback == base or r == base for r in runtimes
        ):
            continue
        out.append(Level(base, base, None, None))
        for era in profile(base).eras if ERA_LEVELS else ():
            out.append(Level(f"{base}@{era.key}", base, era.key, base))
    children = {"ollama": "llama.cpp", "lmstudio-gguf": "llama.cpp", "lmstudio-mlx": "mlx"}
    for child, parent in children.items():
        newest = profile(parent).eras[-1].key if profile(parent).eras and ERA_LEVELS else None
        pkey = f"{parent}@{newest}" if newest else parent
        out.append(Level(child, child, None, pkey))
        for era in profile(child).eras[:-1] if ERA_LEVELS else ():
            out.append(Level(f"{child}@{era.key}", child, era.key, child))
    return out


def fit_all(obs: Sequence[Observation], lam: float = LAMBDA_CHILD) -> dict[str, RuntimeConstants]:
    """Every level's constants. The newest era of a runtime is also stored under the bare key
    (what an estimate without --runtime-version uses)."""
    fitted: dict[str, RuntimeConstants] = {}
    for lv in levels_for(obs):
        rows = [o for o in obs if o.runtime == lv.runtime and (lv.era is None or o.era == lv.era)]
        parent = fitted.get(lv.parent) if lv.parent else None
        dec = fit_phase(rows, "decode", parent.decode if parent else None, lam)
        pre = fit_phase(rows, "prefill", parent.prefill if parent else None, lam)
        pp = dict(parent.passive_cooling) if parent else {}
        passive = {
            "decode": passive_factor(rows, "decode", dec, pp.get("decode")),
            "prefill": passive_factor(rows, "prefill", pre, pp.get("prefill")),
        }
        prof = profile(lv.runtime)
        era = next((e for e in prof.eras if e.key == lv.era), None)
        if era is None and prof.eras:
            era = prof.eras[-1]
        fitted[lv.key] = RuntimeConstants(
            decode=dec,
            prefill=pre,
            uses_neural_accelerators=bool(era.neural_accelerators) if era else False,
            note=f"{prof.label}" + (f", era {era.key}: {era.what_changed}" if era else ""),
            passive_cooling=passive,
        )
    # the bare key answers for the newest era
    out: dict[str, RuntimeConstants] = {}
    for key, c in fitted.items():
        out[key] = c
    for base in {k.split("@")[0] for k in fitted}:
        prof = profile(base)
        if ERA_LEVELS and prof.eras and f"{base}@{prof.eras[-1].key}" in fitted:
            newest = fitted[f"{base}@{prof.eras[-1].key}"]
            out[base] = newest
            del out[f"{base}@{prof.eras[-1].key}"]
    return out


def constants_for(runtimes: Mapping[str, RuntimeConstants], o: Observation) -> RuntimeConstants:
    """The constants an estimate for this observation's runtime and era would use."""
    prof = profile(o.runtime)
    keys = []
    for base in (prof.constants_key, prof.constants_fallback):
        if base:
            if o.era:
                keys.append(f"{base}@{o.era}")
            keys.append(base)
    for k in keys:
        if k in runtimes:
            return runtimes[k]
    raise KeyError(f"no constants for {o.runtime}")


def predict_tps(runtimes: Mapping[str, RuntimeConstants], o: Observation) -> float:
    c = constants_for(runtimes, o)
    table = c.decode if o.kind == "decode" else c.prefill
    s = float(dot(table, o.design))
    if o.fanless:
        s *= c.passive_cooling.get(o.kind, 1.0)
    return 1.0 / s if s > 0 else float("nan")
