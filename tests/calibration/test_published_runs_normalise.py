"""The normalisers of the published-runs dataset, on values the gathered sources print."""

from __future__ import annotations

import pytest

from forgeplanner.calibration.runs_checks import end_to_end, impossible_decode, speculative
from forgeplanner.calibration.runs_dataset import LOOKUPS_DIR
from forgeplanner.calibration.runs_hardware import chip_name, normalise_hardware
from forgeplanner.calibration.runs_lookups import Lookups, load_lookups
from forgeplanner.calibration.runs_measure import (
    normalise_date,
    normalise_quant,
    normalise_shape,
    parse_batch,
)
from forgeplanner.calibration.runs_models import ModelMatcher, name_key
from forgeplanner.calibration.runs_runtime import normalise_runtime, parse_llamacpp


@pytest.fixture(scope="module")
def lookups() -> Lookups:
    return load_lookups(LOOKUPS_DIR)


def _raw(**fields: str) -> dict[str, str]:
    base = dict.fromkeys(
        (
            "chip",
            "machine",
            "memory_gb",
            "gpu_cores",
            "runtime",
            "runtime_version",
            "engine",
            "test",
            "notes",
            "kind",
            "depth",
            "prompt_tokens",
            "gen_tokens",
            "batch",
        ),
        "",
    )
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("chip", "machine", "memory", "stated", "cores", "basis"),
    [
        ("M3 Max", "", "64", "", 40, "only bin sold as 64 GB"),
        ("M4 Max", "Mac Studio", "128", "", 40, "only bin sold as M4 Max Mac Studio, 128 GB"),
        ("M4 Max", "", "36", "", 32, "only bin sold as 36 GB"),
        ("M3 Ultra", "", "512", "", 80, "only bin sold as 512 GB"),
        ("M4", "Mac mini", "", "", 10, "only bin sold as M4 Mac mini"),
        ("M4 Pro", "Mac mini", "64", "", None, "unknown (bins 16/20)"),
        ("M2 Ultra", "Mac Studio", "192", "", None, "unknown (bins 60/76)"),
        # 48 GB may exist on the 32-core M5 Max (reported, not confirmed): no guess.
        ("M5 Max", "", "48", "", None, "unknown (bins 32/40)"),
        ("M1 Max", "", "", "24", 24, "stated"),
    ],
)
def test_gpu_cores_only_when_one_bin_fits(
    lookups: Lookups, chip, machine, memory, stated, cores, basis
) -> None:
    hw = normalise_hardware(
        _raw(chip=chip, machine=machine, memory_gb=memory, gpu_cores=stated), lookups
    )
    assert (hw.gpu_cores, hw.gpu_cores_basis) == (cores, basis)


def test_chip_names() -> None:
    assert chip_name("Apple M3 Max") == "M3 Max"
    assert chip_name("m4 pro") == "M4 Pro"
    assert chip_name("Intel Core i5-9500") == "Intel Core i5-9500"
    assert chip_name("Apple Silicon") == ""


def test_llamacpp_versions(lookups: Lookups) -> None:
    assert parse_llamacpp("b7948 (b828e18c7)") == (7948, "b828e18c7", "")
    assert parse_llamacpp("build: 3fc4e1052 (9820)") == (9820, "3fc4e1052", "")
    assert parse_llamacpp("b9591 (62061f910) PrismML fork") == (9591, "62061f910", "fork PrismML")
    assert parse_llamacpp("master-e6dd0e2+pr25442-metal-f16-fix")[2] == "+PR #25442"
    # An all-digit short commit is a commit, not a build number.
    assert parse_llamacpp("2370665") == (None, "2370665", "")
    # The commit's count in llama.cpp's history wins over a printed number that disagrees.
    rt = normalise_runtime(
        _raw(runtime="llama.cpp", runtime_version="8e672ef (b1579)", engine="MTL,BLAS"),
        "",
        "",
        False,
        lookups,
    )
    assert (rt.runtime_version, rt.llamacpp_build, rt.engine) == ("b1550", 1550, "Metal,BLAS")
    assert rt.runtime_date == "2023-11-21"
    assert "printed build 1579" in rt.note
    # A build after the history read has no build date: the measurement date stands in.
    rt = normalise_runtime(
        _raw(runtime="llama.cpp", runtime_version="b8920"), "2026-04-25", "", False, lookups
    )
    assert (rt.runtime_date, rt.runtime_date_basis) == ("2026-04-25", "measurement date")
    # A build inside the history without its own row gets its month.
    assert lookups.llamacpp_date(3000) == ("2024-05", "llama.cpp git history (month of that build)")


def test_mlx_versions_and_wrappers(lookups: Lookups) -> None:
    rt = normalise_runtime(
        _raw(runtime="mlx", runtime_version="mlx-lm 0.31.3; mlx 0.32.0"),
        "2026-05",
        "",
        False,
        lookups,
    )
    assert (rt.runtime, rt.runtime_version, rt.runtime_date) == (
        "mlx",
        "mlx-lm 0.31.3",
        "2026-04-22",
    )
    rt = normalise_runtime(
        _raw(runtime="mlx", runtime_version="mlx-lm >=0.31.1 (pyproject pin)"),
        "2026-05-02",
        "",
        False,
        lookups,
    )
    assert (rt.runtime_version, rt.runtime_date_basis) == ("mlx-lm >=0.31.1", "measurement date")
    wrapped = normalise_runtime(
        _raw(runtime="mlx", runtime_version="rapid-mlx 0.7.26; mlx 0.31.2"),
        "",
        "",
        False,
        lookups,
    )
    assert wrapped.runtime == "other:rapid-mlx"
    # The mlx-lm column of a wrapper's comparison stays mlx-lm.
    ref = normalise_runtime(
        _raw(runtime="mlx", notes="mlx-lm reference column of oMLX comparison"),
        "",
        "",
        False,
        lookups,
    )
    assert ref.runtime == "mlx"


@pytest.mark.parametrize(
    ("version", "arch", "mlx_model", "date", "engine"),
    [
        ("0.5.9", "llama", False, "", "llama.cpp-runner"),
        ("0.13.5", "gptoss", False, "", "ollama-engine"),
        ("0.12.5", "qwen3", False, "", "llama.cpp-runner"),  # dropped from the list in 0.12.5
        ("0.12.6", "qwen3", False, "", "ollama-engine"),
        ("0.32.1", "qwen3", False, "", "llama-server"),
        ("0.19.0", "qwen35moe", True, "", "mlx-runner"),
        ("", "qwen2", False, "2025-03-20", "llama.cpp-runner"),
        ("", "qwen3", False, "2025-05-02", "llama.cpp-runner"),  # before qwen3 was listed
        ("", "qwen3", False, "2025-12-01", ""),  # either engine was possible
        ("", "gptoss", False, "2025-09-02", "ollama-engine"),
        ("", "llama", False, "2026-07-01", ""),  # 0.30+ or an older version
    ],
)
def test_ollama_engine(lookups: Lookups, version, arch, mlx_model, date, engine) -> None:
    rt = normalise_runtime(
        _raw(runtime="ollama", runtime_version=version), date, arch, mlx_model, lookups
    )
    assert rt.engine == engine


@pytest.mark.parametrize(
    ("raw", "runtime", "name", "hf", "quant"),
    [
        ("Q4_K - Medium", "other:llamafile", "", "", "Q4_K_M"),
        ("MXFP4_MOE", "llama.cpp", "", "", "MXFP4"),
        ("Q4_K_XL", "llama.cpp", "", "unsloth/Qwen3.6-27B-GGUF", "UD-Q4_K_XL"),
        ("Q4_K_M-XL", "llama.cpp", "", "", "Q4_K_M-XL"),
        ("mlx-4bit (fp16 scales)", "other:omlx", "", "", "mlx-4bit"),
        ("mlx-3.6bit (mixed 3/4/6-bit)", "mlx", "", "", "mlx-mixed"),
        ("mxfp4", "mlx", "", "", "mlx-mxfp4"),
        ("mlx-4bit", "mlx", "Qwen3-4B-Instruct-2507 q4 g32", "", "mlx-4bit-g32"),
        ("NVFP4 (Ollama tag)", "ollama", "", "", "mlx-nvfp4"),
        ("Ollama default (Q4_K_M per willitrun notes)", "ollama", "", "", ""),
        ("4bit GGUF (exact type not stated)", "lmstudio-gguf", "", "", ""),
        ("", "mlx", "Qwen3-8B-4bit", "", "mlx-4bit"),
        ("", "ollama", "qwen3.6:27b-q8_0", "", "Q8_0"),
        ("", "ollama", "qwen3.6:35b-a3b-nvfp4", "", "mlx-nvfp4"),
        ("", "ollama", "llama3.1:8b", "", ""),
    ],
)
def test_quant_names(raw, runtime, name, hf, quant) -> None:
    assert normalise_quant(raw, runtime, name, hf).quant == quant


def test_batch_is_concurrency_not_llama_cpp_batch_size() -> None:
    assert parse_batch("B=4 b=2048 ub=2048", "batched-bench") == (4, "b=2048 ub=2048")
    assert parse_batch("ub 2048", "pp2048") == (None, "ub=2048")
    assert parse_batch("512", "tokSPrefill") == (None, "b=512")
    assert parse_batch("5", "continuous batching: batch of 5 requests") == (5, "")
    assert parse_batch("", "batch 8 aggregate decode") == (8, "")


def test_shape_conventions() -> None:
    shape = normalise_shape(_raw(kind="decode", test="tg128", depth="0"), "lc4167.csv")
    assert (shape.depth, shape.gen_tokens) == (0, 128)
    shape = normalise_shape(_raw(kind="prefill", test="pp512 @ d4096", depth="4096"), "x.csv")
    assert (shape.depth, shape.prompt_tokens) == (4096, 512)
    # The first held-out table stored the mean depth of generation; the dataset the start.
    held = normalise_shape(
        _raw(kind="decode", test="generation (128) after 2048", depth="2112"), "repo_heldout.csv"
    )
    assert (held.depth, held.gen_tokens) == (2048, 128)


def test_decode_after_a_prompt_starts_at_the_prompt() -> None:
    shape = normalise_shape(
        _raw(kind="decode", test="generation", depth="0", prompt_tokens="32159"), "olms.csv"
    )
    assert (shape.depth, shape.prompt_tokens) == (32159, 32159)
    # mac-llm-bench keeps the tg128 of `mlx_lm.benchmark -p 512 -g 128` (lib/run_bench_mlx.sh).
    mlb = _raw(
        kind="decode",
        test="tg128",
        depth="0",
        notes="mac-llm-bench result JSON v2.0; tool mlx_lm.benchmark; ...",
        source_url="https://github.com/enescingoz/mac-llm-bench/blob/5e91948/results/x.json",
    )
    assert normalise_shape(mlb, "peer_projects.csv").depth == 512


def test_llamacpp_pr_tables_say_which_side(lookups: Lookups) -> None:
    def version(notes: str) -> str:
        raw = _raw(
            runtime="llama.cpp",
            notes=notes,
            source_url="https://github.com/ggml-org/llama.cpp/pull/15857",
        )
        return normalise_runtime(raw, "2025-09", "", False, lookups).runtime_version

    assert version("builds not stated; PR #15857 branch gg/metal-refactor") == "(+PR #15857)"
    assert version("builds not stated; master (before PR #15857)") == ("(master before PR #15857)")


def test_dates() -> None:
    assert normalise_date("2026-04-07") == ("2026-04-07", "")
    assert normalise_date("2025-2026") == ("", "date as printed: 2025-2026")
    assert normalise_date("2025-08 (guide opened)")[0] == "2025-08"
    assert normalise_date("not stated (not before 2024-11, chip release)")[0] == ""


@pytest.mark.parametrize(
    ("name", "hf", "params", "model_id"),
    [
        (
            "Meta Llama 3.1 8B Instruct Q4_K - Medium",
            "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
            "8.03",
            "llama-3.1-8b",
        ),
        ("llama 7B Q4_0", "", "6.74", "llama-2-7b"),
        ("llama 7B Q4_0", "", "7.24", "mistral-7b"),
        ("qwen3:30b", "", "", "qwen3-30b-a3b"),
        ("Llama 3.1:70b", "", "", "llama-3.1-70b"),
        ("glm-4.7-flash:q8_0", "", "", "glm-4.7-flash"),
        ("Gemma 3 27B Q4_K_M", "bartowski/google_gemma-3-27b-it-GGUF", "", "gemma-3-27b"),
        ("DeepSeek-V4-Flash", "antirez/deepseek-v4-gguf", "", ""),
    ],
)
def test_model_ids(lookups: Lookups, name, hf, params, model_id) -> None:
    match = ModelMatcher(lookups).match(name, hf, params, "")
    assert match.model_id == model_id
    if not model_id:
        assert match.mapping.startswith("unmapped: ")


def test_name_key_removes_packaging_only() -> None:
    assert name_key("mlx-community/Qwen3.5-9B-MLX-4bit") == "qwen3.5-9b"
    assert name_key("Qwen3-30B-A3B-Instruct-2507-Q4_K_M.gguf") == "qwen3-30b-a3b-2507"
    assert name_key("bartowski/google_gemma-3-4b-it-GGUF") == "gemma3-4b"


def test_exclusion_rules() -> None:
    # 70 tok/s of a 70B 4-bit model would need more than an M2 Ultra's 800 GB/s.
    assert impossible_decode(70.0, 70.55, "Q4_K_M", 800.0)
    assert not impossible_decode(12.0, 70.55, "Q4_K_M", 800.0)
    assert speculative("MTP speculative decoding ON (drafter x)", "decode")
    assert not speculative("baseline (no speculative drafter) 250-token generation", "decode")
    assert not speculative("no speculative decoding", "prompt")
    # llmfit times its OpenAI-compatible providers over the whole request, Ollama's by eval.
    assert end_to_end("", "avgTps (llmfit bench)", "mlx")
    assert not end_to_end("", "avgTps (llmfit bench)", "ollama")
    assert end_to_end(
        "TPS = completion_tokens / total_time (end-to-end incl. TTFT)", "t2", "ollama"
    )
