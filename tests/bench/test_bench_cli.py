"""The benchmark CLI contract (fast parts; the llama.cpp runs are in test_llamacpp_real.py)."""

from __future__ import annotations

import json

import pytest

from forgeplanner.cli.main import main
from forgeplanner.labs import LABS, get_lab
from forgeplanner.store import BenchRunRepo, Store

SMALL_BUILTIN = ["--array-mb", "16", "-r", "2", "--decode-mb", "8", "--threads", "2"]


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_run_builtin_json_list_show(capsys) -> None:
    out = _json(capsys, ["bench", "run", "builtin", "--json", *SMALL_BUILTIN])
    for key in ("id", "fingerprint", "memory_bandwidth_gbps", "matmul_gflops", "triad_gbps",
                "decode_sim_tps", "estimate", "error_pct"):  # fmt: skip
        assert key in out
    assert out["status"] == "ok" and out["memory_bandwidth_gbps"] > 0 and out["matmul_gflops"] > 0
    fp = out["fingerprint"]
    assert fp["cpu_logical"] >= 1 and fp["memory_bytes"] > 0 and len(fp["key"]) == 32
    assert out["tool_versions"]["numpy"]

    listed = _json(capsys, ["bench", "list", "--json"])
    assert [r["id"] for r in listed["runs"]] == [out["id"]]
    shown = _json(capsys, ["bench", "show", str(out["id"]), "--json"])
    assert shown["memory_bandwidth_gbps"] == out["memory_bandwidth_gbps"]
    assert shown["raw_sha256"] and len(shown["raw_sha256"]) == 64

    # stored with the measured bandwidth the engine's host builder reads
    with Store() as st, st.session() as s:
        run = BenchRunRepo(s).get(out["id"])
        assert run.measured["bandwidth_bytes_per_s"] > 0 and run.measured["compute_flops"] > 0

    assert main(["bench", "list"]) == 0
    table = capsys.readouterr().out
    assert "builtin" in table and "copy" in table
    assert main(["bench", "show", str(out["id"])]) == 0
    assert "copy bandwidth (STREAM)" in capsys.readouterr().out


def test_errors_are_one_line(capsys) -> None:
    assert main(["bench", "show", "999"]) == 2
    assert "unknown benchmark run '999'" in capsys.readouterr().err
    assert main(["bench", "run", "llama.cpp", "--gguf", "/nonexistent/model.gguf"]) == 2
    assert "GGUF file not found" in capsys.readouterr().err
    assert main(["bench", "run", "llama.cpp", "--model", "qwen2.5-0.5b", "--quant", "Q5_K"]) == 2
    assert "synthetic GGUF files can be" in capsys.readouterr().err
    assert main(["calibrate"]) == 2
    assert "nothing to calibrate" in capsys.readouterr().err
    assert main(["lab", "run", "L-999"]) == 2
    assert "unknown lab 'L-999'" in capsys.readouterr().err


def test_rpc_commands(capsys) -> None:
    out = _json(
        capsys, ["bench", "rpc-commands", "--rpc", "10.0.0.2:50052,10.0.0.3:50052", "--json"]
    )
    assert out["nodes"][1]["command"] == "ggml-rpc-server -H 10.0.0.3 -p 50052"


def test_lab_protocols_are_complete(capsys) -> None:
    assert set(LABS) == {"L-001", "L-002", "L-003"}
    for lab in LABS.values():
        assert lab.steps and lab.sheet and lab.observations
        step_ids = {s.id for s in lab.steps}
        assert all(f.step in step_ids for f in lab.sheet)
    assert get_lab("l-002").id == "L-002"
    out = _json(capsys, ["lab", "show", "L-001", "--json"])
    assert out["lab"]["steps"][0]["id"] == "machine"
    assert main(["lab", "show", "L-002"]) == 0
    text = capsys.readouterr().out
    assert "70B" in text and "observation prompts" in text


def test_lab_l001_runs_here_and_stores_its_record() -> None:
    from forgeplanner.bench.builtin import BuiltinConfig
    from forgeplanner.bench.progress import drive
    from forgeplanner.domain.units import MiB
    from forgeplanner.labs.runner import run_lab
    from forgeplanner.store import EvidenceRepo

    small = BuiltinConfig(array_bytes=16 * MiB, repetitions=2, matmul_n=256,
                          decode_weight_bytes=8 * MiB)  # fmt: skip
    with Store() as st:
        rec = drive(run_lab("L-001", st, options={"builtin_config": small}), bar=False)
        with st.session() as s:
            stored = EvidenceRepo(s).get(rec.id)
    assert stored.kind == "lab" and stored.ref == "L-001" and len(stored.run_ids) == 1
    steps = {s["id"]: s for s in stored.body["steps"]}
    assert steps["machine"]["status"] == "done"
    assert steps["bandwidth"]["status"] == "done"
    assert steps["what-fits"]["status"] == "done"
    assert steps["raise-limit"]["status"] == "pending"  # a manual step waits for its answer
    sheet = stored.body["sheet"]
    assert sheet["copy_gbps"] > 0 and sheet["memory_gib"] > 0 and sheet["gpu_budget_gib"] > 0
    fits = steps["what-fits"]["result"]["rows"]
    assert {r["model"] for r in fits} >= {"llama-3.1-8b", "llama-3.1-70b"}
    assert all(o["answer"] == "" for o in stored.body["observations"])


@pytest.mark.parametrize("lab_id", ["L-002"])
def test_lab_l002_computes_sizes_and_the_70b_case(lab_id: str) -> None:
    from forgeplanner.bench.progress import drive
    from forgeplanner.labs.runner import AUTOMATED, _Session

    with Store() as st:
        sess = _Session(get_lab(lab_id), st, {})
        sizes = drive(AUTOMATED[(lab_id, "sizes")](sess, None), bar=False)
        seventy = drive(AUTOMATED[(lab_id, "70b")](sess, None), bar=False)
    q4 = sizes["llama-3.1-70b"]["Q4_K_M"]["gib"]
    q8 = sizes["llama-3.1-70b"]["Q8_0"]["gib"]
    assert 35 < q4 < 45 and 65 < q8 < 75  # ~40 GiB and ~70 GiB: the 70B test case
    assert {r["quant"] for r in seventy["rows"]} >= {"Q4_K_M", "Q2_K"}
    row = next(r for r in seventy["rows"] if r["quant"] == "Q4_K_M")
    if row["budget_gib"] < row["total_gib"]:  # e.g. 24 GiB of RAM here
        assert row["verdict"] in ("does-not-fit", "fits-with-raised-limit")
    else:
        assert row["verdict"] == "fits"


def test_a_killed_benchmark_leaves_earlier_runs_intact_and_is_marked_interrupted(
    capsys, _isolated_home
) -> None:
    """A real `forgeplanner bench run builtin` process killed with SIGKILL mid-run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    first = _json(capsys, ["bench", "run", "builtin", "--json", *SMALL_BUILTIN])
    env = {**os.environ, "FORGEPLANNER_HOME": str(_isolated_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "forgeplanner", "bench", "run", "builtin", "--array-mb", "64",
         "-r", "500", "--decode-mb", "8"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Store() as st, st.session() as s:
                if any(r.status == "running" for r in BenchRunRepo(s).list()):
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the benchmark never started")
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    listed = _json(capsys, ["bench", "list", "--json"])
    by_id = {r["id"]: r for r in listed["runs"]}
    assert by_id[first["id"]]["status"] == "ok"
    assert by_id[first["id"]]["memory_bandwidth_gbps"] == first["memory_bandwidth_gbps"]
    (killed,) = [r for r in listed["runs"] if r["id"] != first["id"]]
    assert killed["status"] == "interrupted"
