"""Cross-validation that cannot fool itself: every reported error is on rows the fit never saw.

- leave one source out: all rows of one page or repository are held out together (a source is
  one person's machines, settings and builds; holding out single rows would let the fit learn
  the source);
- leave one chip generation out: all M1 (M2 ... M5) rows are held out together.

Errors are signed relative errors of tokens/s (estimate / measured - 1); a group's summary is
its mean absolute error (MAPE), median absolute error and mean signed error (bias). The likely
ranges shown beside every estimate are quantiles of the leave-one-source-out errors of similar
runs (`bands`).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from forgeplanner.calibration.fit import fit_all, predict_tps
from forgeplanner.calibration.observations import Observation
from forgeplanner.engine.speed import band_keys

BAND_LOW_Q = 0.10
BAND_HIGH_Q = 0.90
BAND_MIN_ROWS = 25


@dataclass(frozen=True, slots=True)
class Held:
    """One held-out prediction."""

    obs: Observation
    predicted_tps: float

    @property
    def error(self) -> float:
        return self.predicted_tps / self.obs.measured_tps - 1.0


def cross_validate(
    obs: Sequence[Observation], group: Callable[[Observation], str], **fit_kw
) -> list[Held]:
    """Hold out each group in turn, fit on the rest, predict the held-out rows."""
    out: list[Held] = []
    groups = sorted({group(o) for o in obs})
    for g in groups:
        train = [o for o in obs if group(o) != g]
        test = [o for o in obs if group(o) == g]
        runtimes = fit_all(train, **fit_kw)
        for o in test:
            try:
                p = predict_tps(runtimes, o)
            except KeyError:
                continue  # no rows of that runtime left to fit
            if math.isfinite(p) and p > 0:
                out.append(Held(o, p))
    return out


def in_sample(obs: Sequence[Observation], **fit_kw) -> list[Held]:
    runtimes = fit_all(obs, **fit_kw)
    return [Held(o, predict_tps(runtimes, o)) for o in obs]


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    mape: float  # %
    median: float  # %
    bias: float  # mean signed error %

    def row(self) -> str:
        return f"{self.n} | {self.mape:.1f} | {self.median:.1f} | {self.bias:+.1f}"


def summarise(held: Iterable[Held]) -> Summary | None:
    e = [h.error for h in held]
    if not e:
        return None
    a = [abs(x) for x in e]
    return Summary(len(e), 100 * statistics.fmean(a), 100 * statistics.median(a),
                   100 * statistics.fmean(e))  # fmt: skip


def by(held: Sequence[Held], key: Callable[[Observation], str]) -> dict[str, Summary]:
    groups: dict[str, list[Held]] = defaultdict(list)
    for h in held:
        groups[key(h.obs)].append(h)
    out = {}
    for k in sorted(groups):
        s = summarise(groups[k])
        if s is not None:
            out[k] = s
    return out


def bands(held: Sequence[Held]) -> dict[str, tuple[float, float, int]]:
    """(low, high, n): tokens/s multipliers taking an estimate to the 10th and 90th
    percentile of what the held-out runs of that group measured, for every group key with
    at least BAND_MIN_ROWS held-out rows."""
    groups: dict[str, list[float]] = defaultdict(list)
    for h in held:
        o = h.obs
        ratio = o.measured_tps / h.predicted_tps  # what was measured per unit estimated
        for k in band_keys(o.runtime, o.kind, o.moe, o.depth_band):
            groups[k].append(ratio)
    out: dict[str, tuple[float, float, int]] = {}
    for k, v in groups.items():
        if len(v) < BAND_MIN_ROWS:
            continue
        v = sorted(v)
        lo = _quantile(v, BAND_LOW_Q)
        hi = _quantile(v, BAND_HIGH_Q)
        out[k] = (round(min(lo, 1.0), 4), round(max(hi, 1.0), 4), len(v))
    return out


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default method), without numpy."""
    n = len(sorted_values)
    pos = (n - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
