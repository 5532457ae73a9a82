"""Which stored runs become this machine's bandwidth and compute, and which runs a host
calibration may fit on (pure: takes run records, returns figures and the words for them).

One noisy run must not decide every later estimate (forgeplanner.measurement.load says how a run
is judged). The rule, per figure (bandwidth, compute):

1. Runs are put in tiers by their load verdict: quiet runs; else noisy runs the user kept
   with `--accept-load`; else runs stored before load sampling existed (load not recorded),
   and of those only the ones whose repetitions agree (the spread part of the noise rule is
   the only part that can still be checked). Noisy runs that were not accepted are never
   used; neither are runs whose load was not judged.
2. Within the best tier that has runs, the recent ones: the newest `MAX_RUNS`, taken within
   `WINDOW_DAYS` of the newest (a machine's bandwidth does not age, so an old quiet run still
   counts when it is the only one; but an OS update or a memory change does move it, and the
   fingerprint does not see the OS patch level, so old runs do not outvote new ones).
3. The figure is their median, or the run's own figure when there is one.
   Why the median and not an upper quantile: load only ever lowers a bandwidth measurement,
   which argues for the maximum, but the runs used here were already judged quiet, so what is
   left is ordinary run-to-run spread in both directions (a cool machine's first run, page
   placement of the buffer), and the maximum of N runs is biased upwards by that spread
   (by ~1 MAD for 5 runs). The median of the quiet runs is unbiased for them and one odd run
   cannot move it; the load rule, not the statistic, keeps loaded runs out.
4. The basis names the runs, their tier, their date and the runs left out:
   "median of 3 quiet builtin runs (12, 14, 15; newest 2026-12-07); 1 noisy run left out (16)".
When no usable run exists, the figure is unknown and the basis says why and what to do; the
caller (forgeplanner.host) then falls back to the catalog figure where there is one.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from forgeplanner.domain.units import GB
from forgeplanner.measurement.load import (
    ACCEPTED,
    DEFAULT_RULE,
    NOISY,
    NOT_JUDGED,
    NOT_RECORDED,
    QUIET,
    judge_spreads,
    reasons_of,
    spreads_of,
    verdict_of,
)
from forgeplanner.store.repos import RunRecord

WINDOW_DAYS = 30
MAX_RUNS = 5
TIERS = (QUIET, ACCEPTED, NOT_RECORDED)
TIER_WORDS = {
    QUIET: "quiet",
    ACCEPTED: "taken under load, kept with --accept-load",
    NOT_RECORDED: "load not recorded",
}
IDLE_HINT = (
    "run `forgeplanner bench run builtin` while the machine is idle (or keep a loaded run "
    "with --accept-load)"
)


@dataclass(frozen=True, slots=True)
class Selection:
    """Runs chosen for one purpose, newest first."""

    used: tuple[RunRecord, ...]
    tier: str | None  # QUIET | ACCEPTED | NOT_RECORDED; None when nothing is usable
    left_out: tuple[tuple[int, str], ...]  # (run id, why) of noisy / unjudged runs, newest first
    stale: tuple[int, ...] = ()  # runs of the chosen tier beyond the window or the count


@dataclass(frozen=True, slots=True)
class HostFigure:
    value: float | None
    basis: str
    run_ids: tuple[int, ...]
    tier: str | None = None
    left_out: tuple[int, ...] = ()


def _num(value: object, scale: float = 1.0) -> float | None:
    return float(value) * scale if isinstance(value, (int, float)) and value > 0 else None


def bandwidth_of(run: RunRecord) -> float | None:
    """Bytes/s a run measured for decode: the built-in runner stores bandwidth_bytes_per_s
    (decode simulation); older runs only memory_bandwidth_gbps (copy)."""
    m = run.measured or {}
    return _num(m.get("bandwidth_bytes_per_s")) or _num(m.get("memory_bandwidth_gbps"), GB)


def compute_of(run: RunRecord) -> float | None:
    """FLOP/s of the float32 matmul."""
    m = run.measured or {}
    return _num(m.get("compute_flops")) or _num(m.get("matmul_gflops"), 1e9)


def _why(run: RunRecord) -> str:
    v = verdict_of(run.measured)
    if v == NOT_JUDGED:
        block = (run.measured or {}).get("load") or {}
        return f"load not judged ({block.get('not_judged_reason') or 'no reason given'})"
    return "; ".join(reasons_of(run.measured)) or "noisy"


def _tier_of(run: RunRecord) -> tuple[str, str]:
    """(tier or NOISY / NOT_JUDGED, why it is left out). A run stored before load sampling
    is still judged by the spread of its repetitions, the one part of the rule it allows."""
    v = verdict_of(run.measured)
    if v == NOT_RECORDED:
        rule = DEFAULT_RULE
        load = (run.measured or {}).get("load")
        if isinstance(load, dict) and isinstance(load.get("rule"), dict):
            rule = type(rule)(**load["rule"])
        spread = judge_spreads(spreads_of(run.measured or {}), rule)
        if spread:
            return NOISY, "load not recorded; " + "; ".join(spread)
        return NOT_RECORDED, ""
    if v in (NOISY, NOT_JUDGED):
        return v, _why(run)
    return v, ""


def select_runs(
    runs: Sequence[RunRecord],
    *,
    window_days: int | None = WINDOW_DAYS,
    max_runs: int | None = MAX_RUNS,
) -> Selection:
    """The usable runs among `runs` (ok runs of one machine, any order) by the rule above.
    window_days / max_runs None keep every run of the tier (a calibration fits on all)."""
    ordered = sorted(runs, key=lambda r: (r.started_at, r.id), reverse=True)
    by_tier: dict[str, list[RunRecord]] = {t: [] for t in TIERS}
    left_out = []
    for r in ordered:
        tier, why = _tier_of(r)
        if tier in by_tier:
            by_tier[tier].append(r)
        else:
            left_out.append((r.id, why))
    for tier in TIERS:
        chosen = by_tier[tier]
        if not chosen:
            continue
        newest = chosen[0].started_at
        recent = [
            r
            for r in chosen
            if window_days is None or newest - r.started_at <= timedelta(days=window_days)
        ]
        if max_runs is not None:
            recent = recent[:max_runs]
        kept = {r.id for r in recent}
        stale = tuple(r.id for r in chosen if r.id not in kept)
        return Selection(tuple(recent), tier, tuple(left_out), stale)
    return Selection((), None, tuple(left_out))


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:5])
    return shown + (", ..." if len(ids) > 5 else "")


def describe_selection(sel: Selection, what: str = "") -> str:
    """'median of 3 quiet builtin runs (12, 14, 15; newest 2026-12-07); 1 noisy run left out
    (16)'."""
    runner = {r.runner for r in sel.used}
    kind = f"{runner.pop()} " if len(runner) == 1 else ""
    ids = [r.id for r in sel.used]
    words = {QUIET: "quiet ", NOT_RECORDED: ""}.get(sel.tier or "", "")
    newest = sel.used[0].started_at.strftime("%Y-%m-%d")
    if len(ids) == 1:
        head = f"{words}{kind}run {ids[0]} ({newest}"
    else:
        head = f"median of {len(ids)} {words}{kind}runs ({_ids(ids)}; newest {newest}"
    if sel.tier == ACCEPTED:
        head += f"; {TIER_WORDS[ACCEPTED]}, no quiet run stored"
    elif sel.tier == NOT_RECORDED:
        head += f"; {TIER_WORDS[NOT_RECORDED]}: stored before load sampling"
    head += ")"
    if sel.stale:
        n = len(sel.stale)
        head += (
            f"; {n} older run{'s' if n > 1 else ''} not used (beyond the newest {MAX_RUNS} or "
            f"{WINDOW_DAYS} days before the newest)"
        )
    if sel.left_out:
        n = len(sel.left_out)
        head += (
            f"; {n} noisy run{'s' if n > 1 else ''} left out ({_ids([i for i, _ in sel.left_out])})"
        )
    return f"{what}{head}"


def host_figure(
    runs: Sequence[RunRecord],
    metric: Callable[[RunRecord], float | None],
    *,
    what: str = "",
    unknown: str,
) -> HostFigure:
    """One figure of this machine (bandwidth or compute) from its stored runs.
    `what` prefixes the run list in the basis ("float32 matmul, "); `unknown` is the basis
    when no run measured the figure at all."""
    having = [r for r in runs if r.status == "ok" and metric(r) is not None]
    if not having:
        return HostFigure(None, unknown, ())
    sel = select_runs(having)
    excluded = tuple(i for i, _ in sel.left_out)
    if not sel.used:
        newest_id, why = sel.left_out[0]
        n = len(sel.left_out)
        which = f"all {n} stored measurements" if n > 1 else "the one stored measurement"
        return HostFigure(
            None,
            f"unknown: {which} of this machine {'were' if n > 1 else 'was'} noisy "
            f"(run {newest_id}: {why}); {IDLE_HINT}",
            (),
            None,
            excluded,
        )
    values = [v for v in (metric(r) for r in sel.used) if v is not None]
    value = statistics.median(values)
    return HostFigure(
        value,
        "measured: " + describe_selection(sel, what),
        tuple(r.id for r in sel.used),
        sel.tier,
        excluded,
    )


def host_measurements(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """Bandwidth and compute of this machine from its stored runs (built-in runs in practice:
    only they store the two figures). Keys as forgeplanner.host.stored_measurements, plus
    the runs used, their tier and the noisy runs left out."""
    bw = host_figure(
        runs,
        bandwidth_of,
        unknown="unknown: no stored bandwidth benchmark for this machine "
        "(run `forgeplanner bench run builtin`)",
    )
    fl = host_figure(
        runs,
        compute_of,
        what="float32 matmul, ",
        unknown="unknown: no stored compute benchmark for this machine",
    )
    return {
        "bandwidth": bw.value,
        "bandwidth_basis": bw.basis,
        "bandwidth_runs": bw.run_ids,
        "bandwidth_tier": bw.tier,
        "bandwidth_left_out": bw.left_out,
        "flops": fl.value,
        "flops_basis": fl.basis,
        "flops_runs": fl.run_ids,
        "flops_tier": fl.tier,
        "flops_left_out": fl.left_out,
    }
