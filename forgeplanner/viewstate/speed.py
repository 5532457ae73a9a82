"""Speeds as every view shows them: the estimate, its likely range, and the published runs
nearest to it.

The engine's estimates carry a likely range (`decode_tps_low/high`, `prefill_tps_low/high`:
the 10th-90th percentile of measured / estimated over held-out published runs of similar
setups, `forgeplanner.engine.estimate._bands`). Results that carry only a point speed (a
recommendation option, a cluster split) get the same range from the same fitted bands
(`likely_factors`): the band depends on the runtime, decode or prefill, dense or MoE and the
context band, not on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def likely_factors(runtime: str, kind: str, moe: bool, tokens: int) -> tuple[float, float] | None:
    """(low, high) multipliers of an estimate for its likely range, from the engine's fitted
    bands (same lookup as the engine's own estimates); None when no band was fitted."""
    from forgeplanner.engine.estimate import default_constants
    from forgeplanner.engine.speed import band_keys, depth_band

    band = default_constants().band_for(band_keys(str(runtime), kind, moe, depth_band(tokens)))
    return None if band is None else (band[0], band[1])


def likely_range(
    value: float | None, runtime: str, kind: str, moe: bool, tokens: int
) -> tuple[float, float] | None:
    """The likely range around a point speed (see `likely_factors`)."""
    if value is None:
        return None
    f = likely_factors(runtime, kind, moe, tokens)
    return None if f is None else (value * f[0], value * f[1])


def range_text(lo: float | None, hi: float | None, digits: int = 1) -> str:
    """'likely 2.4-4.2' (empty when there is no range)."""
    if lo is None or hi is None:
        return ""
    return f"likely {lo:,.{digits}f}-{hi:,.{digits}f}"


def speed_with_range(
    value: float | None, lo: float | None, hi: float | None, digits: int = 1, unit: str = "tok/s"
) -> str:
    """'3.6 tok/s (likely 2.4-4.2)', 'unknown' for no value."""
    if value is None:
        return "unknown"
    text = f"{value:,.{digits}f} {unit}".rstrip()
    r = range_text(lo, hi, digits)
    return f"{text} ({r})" if r else text


def runtime_with_version(runtime: str, version: str | None) -> str:
    """'llama.cpp b7315', 'LM Studio 0.3.10 (llama.cpp engine)', 'MLX' (no version known)."""
    from forgeplanner.viewstate.vocabulary import runtime_label

    label = runtime_label(runtime)
    if not version:
        return label
    name, _, engine = label.partition(" (")
    if str(version).lower().startswith(name.split()[0].lower()):
        return f"{version} ({engine}" if engine else str(version)
    return f"{label} {version}"


@dataclass(frozen=True)
class PublishedRun:
    """One published measurement near an estimate: what it measured, on what, when, where."""

    kind: str  # "decode" | "prefill"
    tokens_per_s: float
    chip: str
    runtime: str  # "llama.cpp b8920", "mlx"
    model: str  # "llama-3.3-70b Q4_K_M"
    test: str  # "tg128 @ d16384"
    date: str  # "2025-11-02" or "undated"
    source: str  # URL
    source_title: str

    def as_row(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "tokens_per_s": self.tokens_per_s, "chip": self.chip,
            "runtime": self.runtime, "model": self.model, "test": self.test, "date": self.date,
            "source": self.source, "source_title": self.source_title,
        }  # fmt: skip


def published_runs(
    catalog: Any, host: Any, runtime: str, model: Any, quant: str, n: int = 3
) -> tuple[PublishedRun, ...]:
    """The `n` nearest published decode and prefill runs to this estimate
    (`forgeplanner.calibration.published.for_estimate`, the same lookup `estimate` prints);
    nothing for a host without an Apple chip (only Apple Silicon runs are kept)."""
    from forgeplanner.calibration.published import for_estimate

    chip = None
    if getattr(host, "chip_id", None) and getattr(host, "is_apple_silicon", False):
        spec = catalog.chips.get(host.chip_id)
        chip = spec.name if spec is not None else None
    found = for_estimate(chip, host.gpu_cores or None, str(runtime), model.id,
                         model.active_params / 1e9, model.moe is not None, n=n,
                         quant=quant)  # fmt: skip
    out = []
    for kind in ("decode", "prefill"):
        for r in found.get(kind, []):
            test = str(r.get("test") or "")
            if r.get("depth"):
                test += f" at depth {int(r['depth']):,}"
            out.append(
                PublishedRun(
                    kind=kind,
                    tokens_per_s=float(r["tokens_per_s"]),
                    chip=str(r["chip"]),
                    runtime=runtime_with_version(str(r["runtime"]), r.get("version")),
                    model=f"{r['model']} {r.get('quant') or ''}".strip(),
                    test=test.strip(),
                    date=str(r.get("date") or "undated"),
                    source=str(r.get("source") or ""),
                    source_title=str(r.get("source_title") or ""),
                )
            )
    return tuple(out)


__all__ = [
    "PublishedRun",
    "likely_factors",
    "likely_range",
    "published_runs",
    "range_text",
    "runtime_with_version",
    "speed_with_range",
]
