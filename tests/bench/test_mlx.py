"""MLX parsers on recorded output; the runner itself only runs on macOS with Apple silicon.

mlx_lm.generate: the block below is real `mlx_lm generate` output as published in a public
repository (kevinlights/fine-tuning-research, get-started/4-pre-train-check.bash).
mlx_lm.benchmark: laid out exactly as mlx-lm's benchmark.py prints it ("Running warmup..",
"Timing with prompt_tokens=..., generation_tokens=..., batch_size=...", "Trial N:  k=v, ...",
"Averages: ..."), with the numbers of one run; no Mac is available here to record one.
"""

from __future__ import annotations

import sys

import pytest

from forgeplanner.bench.mlx_runner import (
    MlxError,
    MlxSpec,
    mlx_benchmark_argv,
    mlx_unavailable_reason,
    parse_mlx_benchmark,
    parse_mlx_generate,
    run_mlx,
)
from forgeplanner.bench.progress import drive
from forgeplanner.errors import DataError

GENERATE = """==========
user
I am a large language model.
==========
Prompt: 7 tokens, 16.200 tokens-per-sec
Generation: 20 tokens, 98.705 tokens-per-sec
Peak memory: 1.065 GB
"""

BENCHMARK = """Running warmup..
Timing with prompt_tokens=512, generation_tokens=128, batch_size=1.
Trial 1:  prompt_tps=1433.112, generation_tps=92.771, peak_memory=4.912
Trial 2:  prompt_tps=1441.905, generation_tps=93.004, peak_memory=4.912
Trial 3:  prompt_tps=1428.650, generation_tps=92.418, peak_memory=4.913
Averages: prompt_tps=1434.556, generation_tps=92.731, peak_memory=4.912
"""


def test_parse_generate_verbose() -> None:
    pp, tg = parse_mlx_generate(GENERATE)
    assert (pp.test, pp.n_prompt, pp.median_ts) == ("pp", 7, 16.2)
    assert (tg.test, tg.n_gen, tg.median_ts) == ("tg", 20, 98.705)
    assert tg.extra["peak_memory_bytes"] == 1_065_000_000 and tg.runner == "mlx"


def test_parse_benchmark_trials() -> None:
    pp, tg = parse_mlx_benchmark(BENCHMARK)
    assert pp.n_prompt == 512 and tg.n_gen == 128
    assert pp.samples_ts == (1433.112, 1441.905, 1428.650)
    assert tg.median_ts == 92.771
    assert tg.extra["peak_memory_bytes"] == 4_913_000_000


def test_bad_output_names_what_is_missing() -> None:
    with pytest.raises(DataError, match="Timing with"):
        parse_mlx_benchmark("Traceback (most recent call last): ...")
    with pytest.raises(DataError, match="Trial"):
        parse_mlx_benchmark("Timing with prompt_tokens=1, generation_tokens=2, batch_size=1.\n")
    with pytest.raises(DataError, match="Prompt"):
        parse_mlx_generate("no numbers")


def test_argv() -> None:
    repo = "mlx-community/Llama-3.2-3B-Instruct-4bit"
    argv = mlx_benchmark_argv(MlxSpec(repo, 256, 64, 3), "py")
    assert argv == ["py", "-m", "mlx_lm.benchmark", "--model", repo,
                    "-p", "256", "-g", "64", "-n", "3"]  # fmt: skip


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_runner_refuses_off_macos_with_the_reason() -> None:
    why = mlx_unavailable_reason()
    assert why is not None and "macOS" in why
    with pytest.raises(MlxError, match="Apple silicon"):
        drive(run_mlx(MlxSpec("m")), bar=False)
