"""MLX runner (macOS on Apple Silicon only): `mlx_lm.benchmark` and `mlx_lm.generate --verbose`.

`python -m mlx_lm.benchmark --model M -p P -g G -n N` does a warm-up, then N trials of a random
P-token prompt and G generated tokens, printing (mlx-lm `benchmark.py`):

    Timing with prompt_tokens=512, generation_tokens=128, batch_size=1.
    Trial 1:  prompt_tps=1234.567, generation_tps=89.012, peak_memory=4.567
    Averages: prompt_tps=..., generation_tps=..., peak_memory=...

`python -m mlx_lm.generate --verbose True` prints after the text:

    Prompt: 7 tokens, 16.200 tokens-per-sec
    Generation: 20 tokens, 98.705 tokens-per-sec
    Peak memory: 1.065 GB

Pure parsers here turn both into BenchResults; the runner uses the one process wrapper and is
refused off macOS/arm64 with the reason (MLX needs Apple silicon's Metal GPU).
"""

from __future__ import annotations

import platform
import re
import statistics
import sys
from dataclasses import dataclass

from forgeplanner.bench.process import run_process
from forgeplanner.bench.progress import BenchGen, CancelLike, Progress
from forgeplanner.bench.result import BenchResult
from forgeplanner.errors import DataError, ForgePlannerError

INSTALL_HINT = "install it with `pip install mlx-lm` on a Mac with Apple silicon"

_TIMING = re.compile(r"Timing with prompt_tokens=(\d+),? (?:and )?generation_tokens=(\d+)")
_TRIAL = re.compile(
    r"^Trial (\d+):\s+prompt_tps=([0-9.]+), generation_tps=([0-9.]+), peak_memory=([0-9.]+)",
    re.MULTILINE,
)
_PROMPT = re.compile(r"^Prompt: (\d+) tokens, ([0-9.]+) tokens-per-sec", re.MULTILINE)
_GEN = re.compile(r"^Generation: (\d+) tokens, ([0-9.]+) tokens-per-sec", re.MULTILINE)
_PEAK = re.compile(r"^Peak memory: ([0-9.]+) GB", re.MULTILINE)


class MlxError(ForgePlannerError):
    pass


def mlx_unavailable_reason() -> str | None:
    """None when MLX can run here, else why not."""
    if sys.platform != "darwin":
        return f"MLX runs only on macOS with Apple silicon (this is {platform.system()})"
    if platform.machine() != "arm64":
        return f"MLX needs Apple silicon (this Mac is {platform.machine()})"
    try:
        import mlx_lm  # noqa: F401
    except ImportError:
        return f"mlx-lm is not installed; {INSTALL_HINT}"
    return None


def _result(test: str, p: int, g: int, samples: list[float], peak_gb: float | None) -> BenchResult:
    return BenchResult(
        test=test,
        n_prompt=p if test == "pp" else 0,
        n_gen=g if test == "tg" else 0,
        n_depth=0,
        avg_ts=statistics.mean(samples),
        stddev_ts=statistics.stdev(samples) if len(samples) > 1 else 0.0,
        samples_ts=tuple(samples),
        backends="MLX",
        runner="mlx",
        # mlx-lm reports peak memory in GB of 10^9 bytes (mx.get_peak_memory() / 1e9)
        extra={"peak_memory_bytes": int(peak_gb * 1e9)} if peak_gb is not None else {},
    )


def parse_mlx_benchmark(text: str, source: str = "mlx_lm.benchmark output") -> list[BenchResult]:
    m = _TIMING.search(text)
    if m is None:
        raise DataError(source, "Timing with", text[:60], "no 'Timing with prompt_tokens=' line")
    p, g = int(m.group(1)), int(m.group(2))
    trials = _TRIAL.findall(text)
    if not trials:
        raise DataError(source, "Trial", text[-60:], "no 'Trial N: prompt_tps=...' lines")
    pp = [float(t[1]) for t in trials]
    tg = [float(t[2]) for t in trials]
    peak = max(float(t[3]) for t in trials)
    return [_result("pp", p, g, pp, peak), _result("tg", p, g, tg, peak)]


def parse_mlx_generate(text: str, source: str = "mlx_lm.generate output") -> list[BenchResult]:
    prompts = _PROMPT.findall(text)
    gens = _GEN.findall(text)
    if not prompts or not gens:
        raise DataError(
            source, "Prompt/Generation", text[-60:], "no 'Prompt: N tokens, X tokens-per-sec' lines"
        )
    peaks = [float(x) for x in _PEAK.findall(text)]
    peak = max(peaks) if peaks else None
    p = int(statistics.median(int(x[0]) for x in prompts))
    g = int(statistics.median(int(x[0]) for x in gens))
    return [
        _result("pp", p, g, [float(x[1]) for x in prompts], peak),
        _result("tg", p, g, [float(x[1]) for x in gens], peak),
    ]


@dataclass(frozen=True, slots=True)
class MlxSpec:
    model: str  # Hugging Face repo or local MLX model directory
    n_prompt: int = 512
    n_gen: int = 128
    trials: int = 5


def mlx_benchmark_argv(spec: MlxSpec, python: str = sys.executable) -> list[str]:
    return [
        python, "-m", "mlx_lm.benchmark", "--model", spec.model,
        "-p", str(spec.n_prompt), "-g", str(spec.n_gen), "-n", str(spec.trials),
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class MlxRun:
    results: tuple[BenchResult, ...]
    raw_output: str
    argv: tuple[str, ...]
    version: str | None


def run_mlx(
    spec: MlxSpec, cancel: CancelLike | None = None, *, timeout: float = 3600.0
) -> BenchGen[MlxRun]:
    why = mlx_unavailable_reason()
    if why is not None:
        raise MlxError(why)
    from importlib.metadata import version

    argv = mlx_benchmark_argv(spec)
    gen = run_process(argv, timeout=timeout, cancel=cancel)
    yield Progress("mlx", 0.0, f"loading {spec.model}")
    try:
        while True:
            try:
                line = next(gen)
            except StopIteration as stop:
                res = stop.value
                break
            yield Progress("mlx", None, line[:80])
    finally:
        gen.close()
    text = res.stdout + res.stderr  # mlx-lm prints its report on stdout
    if res.returncode != 0:
        raise MlxError(f"mlx_lm.benchmark failed ({res.returncode}): {text.strip()[-200:]}")
    results = parse_mlx_benchmark(text)
    return MlxRun(tuple(results), text, res.argv, version("mlx-lm"))
