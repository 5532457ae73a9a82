"""Pure argv builders and parsers, on output recorded from the real tools on this machine
(tests/bench/data: llama-bench 0.3.36-vendored build, likwid-bench 5.2.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.bench.likwid import likwid_bench_argv, parse_likwid_bench
from forgeplanner.bench.llamacpp import (
    LlamaBenchSpec,
    RpcEndpoint,
    llama_bench_argv,
    parse_llama_bench_json,
    parse_progress_line,
    parse_rpc_list,
    parse_version,
    rpc_server_command,
)
from forgeplanner.bench.result import headline
from forgeplanner.bench.stats import Spread, error_pct
from forgeplanner.errors import DataError, ForgePlannerError

DATA = Path(__file__).with_name("data")


def test_argv_carries_every_protocol_parameter() -> None:
    spec = LlamaBenchSpec(
        "/m/model.gguf",
        n_prompt=(512,),
        n_gen=(128,),
        depth=(0, 4096),
        repetitions=5,
        threads=8,
        rpc=parse_rpc_list("10.0.0.2:50052,10.0.0.3:50053"),
        tensor_split=(3.0, 1.0),
        flash_attn=True,
        repack=False,
    )
    argv = llama_bench_argv("/bin/llama-bench", spec)
    assert argv[:5] == ["/bin/llama-bench", "-m", "/m/model.gguf", "-o", "json"]
    joined = " ".join(argv)
    for part in ("-p 512", "-n 128", "-d 0,4096", "-r 5", "-t 8", "-fa on", "--repack 0",
                 "--rpc 10.0.0.2:50052,10.0.0.3:50053", "-ts 3/1", "--progress"):  # fmt: skip
        assert part in joined
    assert "--no-warmup" not in argv
    assert "--no-warmup" in llama_bench_argv("x", LlamaBenchSpec("m", warmup=False))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="repetitions"):
        LlamaBenchSpec("m", repetitions=0)
    with pytest.raises(ValueError, match="n_prompt"):
        LlamaBenchSpec("m", n_prompt=(-1,))
    with pytest.raises(ValueError, match="fewer parts"):
        LlamaBenchSpec("m", rpc=parse_rpc_list("a:1,b:2"), tensor_split=(1.0,))


def test_rpc_endpoints_and_node_commands() -> None:
    eps = parse_rpc_list(" 192.168.1.20:50052 , [::1]:50053")
    assert eps == (RpcEndpoint("192.168.1.20", 50052), RpcEndpoint("::1", 50053))
    assert rpc_server_command(eps[0]) == ["ggml-rpc-server", "-H", "192.168.1.20", "-p", "50052"]
    for bad in ("nohost", "host:", "host:99999", ":50052", "h:port"):
        with pytest.raises(ForgePlannerError, match="host:port"):
            parse_rpc_list(bad)


def test_parse_recorded_cpu_run() -> None:
    results = parse_llama_bench_json((DATA / "llama_bench_cpu_f16.json").read_text())
    assert [r.test for r in results] == ["pp", "tg"]
    pp, tg = results
    assert (pp.n_prompt, pp.n_gen, pp.n_depth) == (32, 0, 0)
    assert (tg.n_prompt, tg.n_gen) == (0, 8)
    assert pp.samples_ts == (37149.9, 40739.2)
    assert pp.median_ts == pytest.approx((37149.9 + 40739.2) / 2)
    assert pp.avg_ts == pytest.approx(38944.511850)
    assert pp.model_size == 2888704 and pp.model_n_params == 1443072
    assert pp.backends == "CPU" and pp.build_commit == "unknown" and pp.n_threads == 2
    assert tg.label == "tg8"
    h = headline(results)
    assert h["decode_tps"] == tg.median_ts and h["prefill_tps"] == pp.median_ts


def test_parse_recorded_rpc_and_quantized_runs() -> None:
    rpc = parse_llama_bench_json((DATA / "llama_bench_rpc.json").read_text())
    assert {r.backends for r in rpc} == {"RPC"}
    assert rpc[0].extra["tensor_split"] == "1.00/1.00"
    q8 = parse_llama_bench_json((DATA / "llama_bench_qwen05_q8_0.json").read_text())
    assert q8[0].model_n_params == 494005120 and q8[0].model_size == 525009408
    assert q8[0].extra["repack"] is False


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not json", "(document)"),
        ('{"a": 1}', "(document)"),
        ("[1]", "[0]"),
        ('[{"n_prompt": -1, "n_gen": 0, "avg_ts": 1}]', "[0].n_prompt"),
        ('[{"n_prompt": 0, "n_gen": 0, "avg_ts": 1}]', "[0].n_prompt"),
        ('[{"n_prompt": 8, "n_gen": 0, "avg_ts": "fast"}]', "[0].avg_ts"),
        ('[{"n_prompt": 8, "n_gen": 0, "avg_ts": 1, "samples_ts": ["x"]}]', "[0].samples_ts"),
    ],
)
def test_bad_json_names_the_field(text: str, field: str) -> None:
    with pytest.raises(DataError) as exc:
        parse_llama_bench_json(text, "out.json")
    assert exc.value.file == "out.json" and exc.value.field == field


def test_progress_and_version_lines() -> None:
    lines = (DATA / "llama_bench_progress_stderr.txt").read_text().splitlines()
    parsed = [parse_progress_line(line) for line in lines]
    assert parsed[0] == (1, 2, "starting")
    assert parsed[-1] == (2, 2, "generation run 2/2")
    assert parse_progress_line("load_tensors: CPU model buffer") is None
    assert parse_version("version: 0.5.0-dev (build 0, commit unknown)\nbuilt with GNU") == {
        "version": "0.5.0-dev",
        "build": "0",
        "commit": "unknown",
    }
    assert parse_version("version: 7001 (abc123)")["version"] == "7001"


def test_likwid_report_parser_and_argv() -> None:
    out = parse_likwid_bench((DATA / "likwid_bench_copy.txt").read_text())
    assert out["gbps"] > 0 and out["size_bytes"] == 100_000_000 and out["threads"] == 2
    assert likwid_bench_argv("likwid-bench", "copy", 1_000_000_000, 2) == [
        "likwid-bench", "-t", "copy", "-w", "N:1000000kB:2",
    ]  # fmt: skip
    with pytest.raises(ForgePlannerError, match="MByte/s"):
        parse_likwid_bench("ERROR: cannot pin threads")


def test_spread_and_error_sign() -> None:
    s = Spread.of([10.0, 12.0, 11.0, 30.0])
    assert s.median == 11.5 and s.minimum == 10.0 and s.maximum == 30.0 and s.n == 4
    assert s.mad_pct == pytest.approx(100 * 1.0 / 11.5)
    assert error_pct(12.0, 10.0) == pytest.approx(20.0)  # estimate too optimistic
    assert error_pct(8.0, 10.0) == pytest.approx(-20.0)
    assert error_pct(None, 10.0) is None and error_pct(1.0, 0.0) is None
    with pytest.raises(ValueError):
        Spread.of([])
    assert json.loads(json.dumps(s.to_dict()))["median"] == 11.5
