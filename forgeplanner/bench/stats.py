"""Median and spread of repeated measurements (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spread:
    """Summary of repetitions: the median is the reported value; min/max and the relative
    median absolute deviation show how stable the machine was during the run."""

    median: float
    minimum: float
    maximum: float
    mad_pct: float  # median absolute deviation, % of the median
    n: int
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        if not samples:
            raise ValueError("no samples to summarise")
        med = statistics.median(samples)
        mad = statistics.median(abs(s - med) for s in samples)
        return cls(
            median=med,
            minimum=min(samples),
            maximum=max(samples),
            mad_pct=(100.0 * mad / med) if med else 0.0,
            n=len(samples),
            samples=tuple(samples),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "median": self.median,
            "min": self.minimum,
            "max": self.maximum,
            "mad_pct": self.mad_pct,
            "n": self.n,
            "samples": list(self.samples),
        }


def error_pct(estimate: float | None, measured: float | None) -> float | None:
    """Signed error of an estimate against the measurement, % of the measurement:
    +10 means the estimate was 10 % too optimistic (higher than measured)."""
    if estimate is None or measured is None or measured == 0:
        return None
    return 100.0 * (estimate - measured) / measured
