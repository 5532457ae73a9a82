"""`forgeplanner estimate` and `forgeplanner sweep`: the JSON contract and one-line
errors for bad input."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

from forgeplanner.cli.main import main

CONTRACT_KEYS = {
    "memory",
    "budget",
    "verdict",
    "headroom_bytes",
    "sysctl_command",
    "max_context_that_fits",
    "best_quant_that_fits",
    "decode_tps",
    "prefill_tps",
    "ttft_s",
}
MEMORY_KEYS = {"weights_bytes", "kv_cache_bytes", "compute_bytes", "runtime_bytes", "total_bytes"}
BUDGET_KEYS = {"physical_bytes", "gpu_limit_bytes", "basis"}


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_with_quant(capsys):
    d = run_json(capsys, "estimate", "--model", "llama-3.1-8b", "--chip", "M3 Max",
                 "--gpu-cores", "40", "--quant", "Q4_K_M")  # fmt: skip
    assert CONTRACT_KEYS <= set(d)
    assert set(d["memory"]) == MEMORY_KEYS
    assert set(d["budget"]) == BUDGET_KEYS
    m = d["memory"]
    assert m["total_bytes"] == sum(m[k] for k in MEMORY_KEYS - {"total_bytes"})
    assert d["verdict"] == "fits"
    assert d["budget"]["physical_bytes"] == 128 * 2**30  # --memory-gb defaults to the largest
    assert d["decode_tps"] > 0 and d["prefill_tps"] > 0 and d["ttft_s"] > 0
    assert d["context"] == 8192  # the default
    assert "quants" not in d
    curve = d["decode_tps_by_depth"]
    assert [c["depth"] for c in curve] == [0, 1024, 4096, 8192]
    assert curve[0]["decode_tps"] == pytest.approx(d["decode_tps"], rel=1e-3)
    assert all(a["decode_tps"] > b["decode_tps"] for a, b in itertools.pairwise(curve))


def test_json_without_quant_lists_every_quant(capsys):
    d = run_json(capsys, "estimate", "--model", "llama-3.1-70b", "--machine",
                 "mac-studio-m4-max-40c-64gb", "--context", "4096")  # fmt: skip
    assert CONTRACT_KEYS <= set(d)
    names = [q["quant"] for q in d["quants"]]
    assert names[0] == "BF16" and "Q4_K_M" in names and "MXFP4" not in names
    for q in d["quants"]:
        assert CONTRACT_KEYS <= set(q)
    assert d["quant"] == d["best_quant_that_fits"]
    raised = [q for q in d["quants"] if q["verdict"] == "fits-with-raised-limit"]
    for q in raised:
        assert q["sysctl_command"].startswith("sudo sysctl iogpu.wired_limit_mb=")


def test_wired_limit_and_macos_change_the_budget(capsys):
    base = ["estimate", "--model", "llama-3.1-8b", "--chip", "M1", "--memory-gb", "16",
            "--quant", "Q8_0"]  # fmt: skip
    d = run_json(capsys, *base, "--wired-limit-mb", "12288")
    assert d["budget"]["gpu_limit_bytes"] == 12288 * 2**20
    d = run_json(capsys, *base, "--macos", "26")
    assert "macOS 26" in d["budget"]["basis"]


def test_human_output_explains_formulas(capsys):
    assert main(["estimate", "--model", "qwen3-30b-a3b", "--chip", "M2 Ultra", "--quant",
                 "Q8_0"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "verdict:" in out and "decode_tps =" in out and "weights read / bandwidth" in out
    assert "stream" in out and "GB/s" in out


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["--model", "llama-9-1t", "--chip", "M2 Max"], "unknown model 'llama-9-1t'; valid:"),
        (["--model", "llama-3.1-8b", "--chip", "M9"], "unknown chip name 'M9'; valid:"),
        (["--model", "llama-3.1-8b", "--chip", "M3 Max", "--gpu-cores", "33"], "valid: 30, 40"),
        (
            ["--model", "llama-3.1-8b", "--chip", "M2 Max", "--quant", "Q4_Q"],
            "unknown quantization 'Q4_Q'; valid:",
        ),
        (
            ["--model", "llama-3.1-8b", "--chip", "M2 Max", "--runtime", "mlx", "--quant", "Q4_0"],
            "runtime mlx loads MLX weights: MLX-bf16",
        ),
        (["--model", "llama-3.1-8b", "--chip", "M2 Max", "--quant", "MXFP4"], "is dense"),
        (
            ["--model", "llama-3.1-8b", "--chip", "M1", "--memory-gb", "2048"],
            "sold with 8, 16 GB, not 2048 GB",
        ),
        (
            ["--model", "llama-3.1-8b", "--chip", "M1", "--context", "-5"],
            "argument --context: -5 is out of range: expected 1..",
        ),
        (
            ["--model", "llama-3.1-8b", "--chip", "M1", "--depth", "-1"],
            "--depth: -1 is out of range",
        ),
        (
            [
                *("--model", "llama-3.1-8b", "--chip", "M1"),
                "--kv-type",
                "q8_0",
                "--no-flash-attention",
            ],
            "needs flash attention",
        ),
        (
            [
                *("--model", "deepseek-v3", "--chip", "M3 Ultra", "--runtime", "ollama"),
                "--kv-type",
                "q8_0",
            ],
            "Ollama does not run flash attention for deepseek-v3",
        ),
        (
            ["--model", "llama-3.1-8b", "--machine", "mac-mini-m4-10c-16gb", "--gpu-cores", "10"],
            "--gpu-cores and --memory-gb go with --chip",
        ),
        (["--model", "llama-3.1-8b", "--machine", "mac-mini-m9"], "unknown configuration"),
    ],
)
def test_bad_input_is_one_line_naming_what_is_valid(capsys, argv, expect):
    assert main(["estimate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(("forgeplanner: error: ", "forgeplanner estimate: error: argument "))
    assert expect in err


def test_sweep_json_and_parquet(capsys, tmp_path):
    d = run_json(capsys, "sweep", "--context", "4096", "16384")
    assert set(d) == {"evaluations", "seconds"}
    assert d["evaluations"] > 100_000
    out = tmp_path / "grid.parquet"
    d = run_json(capsys, "sweep", "--context", "2048", "--out", str(out))
    df = pd.read_parquet(out)
    assert len(df) == d["evaluations"]
    assert {"config_id", "model_id", "quant", "verdict", "decode_tps"} <= set(df.columns)


def test_sweep_bad_input(capsys, tmp_path):
    assert main(["sweep", "--context", "0"]) == 2
    assert "--context: 0 is out of range" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path / "x.xlsx")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err


def test_gguf_file_uses_its_exact_tensor_bytes(capsys, tmp_path):
    """A real GGUF written with the gguf package (random weights, small llama shape)."""
    from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf
    from models_db.importers import import_gguf

    shape = SyntheticShape(
        n_layers=2,
        hidden_size=256,
        intermediate_size=512,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=512,
        context_length=2048,
        name="tiny",
    )
    path = write_synthetic_gguf(tmp_path / "tiny.gguf", shape, "Q8_0")
    spec = import_gguf(path)
    exact = sum(t.n_bytes for t in spec.tensors)
    d = run_json(capsys, "estimate", "--gguf", str(path), "--chip", "M2", "--context", "2048")
    assert d["quant"] == "Q8_0"  # without --quant the file's own type is shown on top
    assert d["memory"]["weights_bytes"] == exact
    assert d["decode_tps"] > 0
    assert main(["estimate", "--gguf", str(tmp_path / "missing.gguf"), "--chip", "M2"]) == 2
    assert "missing.gguf" in capsys.readouterr().err


def test_flash_attention_is_tri_state(capsys):
    base = ["estimate", "--model", "llama-3.1-8b", "--chip", "M2 Pro", "--memory-gb", "32",
            "--quant", "Q4_K_M"]  # fmt: skip
    auto = run_json(capsys, *base)
    on = run_json(capsys, *base, "--flash-attention")
    off = run_json(capsys, *base, "--no-flash-attention")
    # default = llama.cpp's -fa auto, resolved and reported with its reason
    assert auto["flash_attention"] is True and auto["flash_attention_basis"].startswith("auto")
    assert on["flash_attention"] is True and on["memory"] == auto["memory"]
    assert off["flash_attention"] is False and off["flash_attention_basis"].startswith("off")
    assert off["max_context_that_fits"] == 88832 < auto["max_context_that_fits"] == 131072
    # a quantized cache under auto turns flash attention on, as llama.cpp does
    q8 = run_json(capsys, *base, "--kv-type", "q8_0")
    assert q8["flash_attention"] is True and "V cache" in q8["flash_attention_basis"]


def test_raised_limit_reports_the_exact_sysctl_and_what_macos_keeps(capsys):
    # A regression: the JSON once carried the sysctl but not the memory then left
    # for macOS, which is asked for alongside it (the table already showed it).
    d = run_json(
        capsys,
        *("estimate", "--model", "llama-3.1-70b", "--machine", "mac-studio-m2-max-30c-64gb"),
        *("--quant", "Q6_K"),
    )
    assert d["verdict"] == "fits-with-raised-limit"
    n_mib = int(d["sysctl_command"].removeprefix("sudo sysctl iogpu.wired_limit_mb="))
    ram = d["budget"]["physical_bytes"]
    assert d["memory_left_for_macos_bytes"] == ram - n_mib * 2**20
    # Raised limit holds the model, and macOS keeps at least the 4 GiB floor.
    assert n_mib * 2**20 >= d["memory"]["total_bytes"]
    assert d["memory_left_for_macos_bytes"] >= 4 * 2**30
    fits = run_json(
        capsys,
        *("estimate", "--model", "llama-3.1-8b", "--machine", "mac-studio-m2-max-30c-64gb"),
        *("--quant", "Q4_K_M"),
    )
    assert fits["verdict"] == "fits" and fits["memory_left_for_macos_bytes"] is None


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        # A regression: both were once accepted silently.
        (["--depth", "9000", "--context", "8192"], "--depth 9000 is more than --context 8192"),
        (["--macos", "banana"], "--macos 'banana' is not a macOS version; valid: e.g."),
    ],
)
def test_impossible_depth_and_unparseable_macos_are_refused(capsys, argv, expect):
    base = ["estimate", "--model", "llama-3.1-8b", "--machine", "mac-mini-m4-10c-16gb"]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expect in err


@pytest.mark.parametrize("version", ["14", "15.2", "26.1", "13.6.7"])
def test_real_macos_versions_are_accepted(capsys, version):
    d = run_json(
        capsys,
        *("estimate", "--model", "llama-3.1-8b", "--machine", "mac-mini-m4-10c-16gb"),
        *("--quant", "Q4_K_M", "--macos", version),
    )
    assert f"macOS {version}" in d["budget"]["basis"]


def test_sweep_output_is_a_normal_readable_file(capsys, tmp_path):
    # A regression: the atomic write (mkstemp) once left the table private (0600),
    # unlike every other file ForgePlanner writes (manifests, synthetic GGUFs, plans).
    out = tmp_path / "grid.csv"
    run_json(capsys, "sweep", "--context", "2048", "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".grid.csv.")]
