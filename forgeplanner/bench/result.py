"""What a runtime benchmark measured: one `BenchResult` per test (prompt processing "pp",
token generation "tg"), whatever the runner (llama-bench, llama-cpp-python, Ollama, MLX).

Throughputs are tokens per second. `samples_ts` keeps every repetition so the median and
spread can be recomputed; `avg_ts`/`stddev_ts` are what the tool itself reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BenchResult:
    test: str  # "pp" (prompt processing / prefill) | "tg" (generation / decode)
    n_prompt: int
    n_gen: int
    n_depth: int
    avg_ts: float
    stddev_ts: float
    samples_ts: tuple[float, ...] = ()
    model_size: int | None = None  # bytes of weights
    model_n_params: int | None = None
    backends: str = ""
    build_commit: str = ""
    n_threads: int | None = None
    runner: str = "llama.cpp"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median_ts(self) -> float:
        return statistics.median(self.samples_ts) if self.samples_ts else self.avg_ts

    @property
    def label(self) -> str:
        if self.test == "pp":
            core = f"pp{self.n_prompt}"
        elif self.test == "tg":
            core = f"tg{self.n_gen}"
        else:
            core = f"pp{self.n_prompt}+tg{self.n_gen}"
        return core + (f" @ d{self.n_depth}" if self.n_depth else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "label": self.label,
            "n_prompt": self.n_prompt,
            "n_gen": self.n_gen,
            "n_depth": self.n_depth,
            "median_ts": self.median_ts,
            "avg_ts": self.avg_ts,
            "stddev_ts": self.stddev_ts,
            "samples_ts": list(self.samples_ts),
            "model_size": self.model_size,
            "model_n_params": self.model_n_params,
            "backends": self.backends,
            "build_commit": self.build_commit,
            "n_threads": self.n_threads,
            "runner": self.runner,
            **({"extra": self.extra} if self.extra else {}),
        }


def headline(results: Sequence[BenchResult]) -> dict[str, float | None]:
    """decode_tps / prefill_tps: the median of the generation and the prompt test at the
    smallest depth (the numbers an estimate at depth 0 is compared with)."""

    def pick(kind: str) -> BenchResult | None:
        cands = [r for r in results if r.test == kind]
        return min(cands, key=lambda r: (r.n_depth, -(r.n_gen or r.n_prompt))) if cands else None

    tg, pp = pick("tg"), pick("pp")
    return {
        "decode_tps": tg.median_ts if tg else None,
        "prefill_tps": pp.median_ts if pp else None,
        "decode_depth": tg.n_depth if tg else None,
        "prefill_tokens": pp.n_prompt if pp else None,
    }
