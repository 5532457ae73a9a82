"""Real llama.cpp on this machine: llama-bench and ggml-rpc-server built from the
llama-cpp-python sdist (fixture `llamacpp_bin`), llama-cpp-python in a child process, and
random-weight GGUF files written with the `gguf` package. Nothing here is mocked."""

from __future__ import annotations

import statistics
import subprocess
import threading
from pathlib import Path

import pytest

from forgeplanner.bench.builtin import BuiltinConfig
from forgeplanner.bench.calibrate import calibrate
from forgeplanner.bench.fingerprint import machine_fingerprint
from forgeplanner.bench.llamacpp import (
    LlamaBenchError,
    LlamaBenchSpec,
    parse_rpc_list,
    run_llama_bench,
    run_llama_cpp_python,
)
from forgeplanner.bench.process import free_port, stop_process, tcp_reachable
from forgeplanner.bench.progress import Cancelled, drive
from forgeplanner.bench.session import (
    LoadPolicy,
    record_builtin,
    record_llamacpp,
    target_from_gguf,
)
from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf
from forgeplanner.errors import ForgePlannerError
from forgeplanner.measurement.load import QUIET
from forgeplanner.store import BenchRunRepo, Store

pytestmark = pytest.mark.slow

TINY = SyntheticShape(
    n_layers=2, hidden_size=256, intermediate_size=512, n_heads=4, n_kv_heads=2,
    vocab_size=512, name="tiny",
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    # F16: ggml's AMX repack path crashes on Q8_0 for tiny shapes on this CPU (see llamacpp.py)
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "tiny-f16.gguf", TINY, "F16")


@pytest.fixture
def store(tmp_path: Path):
    st = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    yield st
    st.close()


def test_real_llama_bench_run_is_recorded_with_estimate_and_error(
    llamacpp_bin: Path, tiny_gguf: Path, store: Store
) -> None:
    target = target_from_gguf(tiny_gguf)
    spec = LlamaBenchSpec(str(tiny_gguf), n_prompt=(32,), n_gen=(8,), depth=(0, 16), repetitions=2)
    rec = drive(
        record_llamacpp(store, target, spec, binary=llamacpp_bin / "llama-bench"), bar=False
    )
    assert rec.status == "ok"
    tests = rec.measured["tests"]
    assert {(t["test"], t["n_depth"]) for t in tests} == {("pp", 0), ("pp", 16), ("tg", 0),
                                                           ("tg", 16)}  # fmt: skip
    assert all(len(t["samples_ts"]) == 2 for t in tests)
    assert rec.measured["decode_tps"] > 0 and rec.measured["prefill_tps"] > 0
    assert rec.params["model_id"] == target.spec.id and rec.params["quant"] == "F16"
    assert rec.tool_versions["llama-bench"]["version"]
    assert rec.estimate is not None and "basis" in rec.estimate
    assert set(rec.error_pct) == {"decode_tps", "prefill_tps"}
    with store.session() as s:
        full = BenchRunRepo(s).get(rec.id)
    assert '"n_prompt": 32' in full.raw_output
    assert len(full.raw_sha256) == 64


def test_cancel_stops_llama_bench(llamacpp_bin: Path, tiny_gguf: Path, store: Store) -> None:
    token = threading.Event()
    spec = LlamaBenchSpec(str(tiny_gguf), n_prompt=(64,), n_gen=(512,), repetitions=50)
    gen = record_llamacpp(
        store, target_from_gguf(tiny_gguf), spec, token, binary=llamacpp_bin / "llama-bench"
    )
    seen = 0
    with pytest.raises(Cancelled):
        for ev in gen:
            seen += 1
            if ev.message.startswith("test"):
                token.set()
    assert seen > 0
    with store.session() as s:
        (run,) = BenchRunRepo(s).list()
    assert run.status == "cancelled"


def test_missing_model_and_unreachable_rpc_are_clear(llamacpp_bin: Path, tiny_gguf: Path) -> None:
    bench = llamacpp_bin / "llama-bench"
    with pytest.raises(LlamaBenchError, match="model file not found"):
        drive(run_llama_bench(bench, LlamaBenchSpec("/nope.gguf")), bar=False)
    port = free_port()
    spec = LlamaBenchSpec(str(tiny_gguf), rpc=parse_rpc_list(f"127.0.0.1:{port}"))
    with pytest.raises(LlamaBenchError, match=rf"127\.0\.0\.1:{port}.*ggml-rpc-server -H"):
        drive(run_llama_bench(bench, spec), bar=False)


def _start_rpc_server(binary: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if tcp_reachable("127.0.0.1", port, timeout=0.2) is None:
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"ggml-rpc-server exited with {proc.returncode}")
        threading.Event().wait(0.1)
    stop_process(proc)
    raise RuntimeError("ggml-rpc-server did not start listening")


def test_two_node_rpc_cluster_on_loopback(
    llamacpp_bin: Path, tiny_gguf: Path, store: Store
) -> None:
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    servers = [_start_rpc_server(llamacpp_bin / "ggml-rpc-server", p) for p in ports]
    try:
        rpc = parse_rpc_list(",".join(f"127.0.0.1:{p}" for p in ports))
        spec = LlamaBenchSpec(
            str(tiny_gguf), n_prompt=(16,), n_gen=(4,), repetitions=2, rpc=rpc,
            tensor_split=(1.0, 1.0),
        )  # fmt: skip
        rec = drive(
            record_llamacpp(store, target_from_gguf(tiny_gguf), spec,
                            binary=llamacpp_bin / "llama-bench"),
            bar=False,
        )  # fmt: skip
    finally:
        for s in servers:
            stop_process(s)
    assert rec.status == "ok"
    assert {t["backends"] for t in rec.measured["tests"]} == {"RPC"}
    assert rec.params["rpc"] == [f"127.0.0.1:{p}" for p in ports]
    assert rec.error_pct is None  # a cluster run is not compared with a one-machine estimate


def test_llama_cpp_python_fallback_follows_the_same_protocol(tiny_gguf: Path) -> None:
    spec = LlamaBenchSpec(str(tiny_gguf), n_prompt=(32,), n_gen=(8,), depth=(0, 8), repetitions=2)
    run = drive(run_llama_cpp_python(spec), bar=False)
    assert run.tool == "llama-cpp-python"
    by = {(r.test, r.n_depth): r for r in run.results}
    assert set(by) == {("pp", 0), ("pp", 8), ("tg", 0), ("tg", 8)}
    assert by[("tg", 0)].n_gen == 8 and len(by[("tg", 0)].samples_ts) == 2
    assert by[("pp", 0)].model_n_params == 1443072


@pytest.fixture(scope="module")
def qwen05_f16(tmp_path_factory) -> Path:
    """A ~0.5B-parameter GGUF: qwen2.5-0.5b's shape, F16, random weights (988 MB)."""
    from models_db import load_models

    spec = load_models().get("qwen2.5-0.5b")
    folder = tmp_path_factory.mktemp("qwen05")
    return write_synthetic_gguf(folder / "qwen2.5-0.5b-F16.gguf", spec, "F16")


@pytest.fixture(scope="module")
def qwen05_q8(tmp_path_factory) -> Path:
    """A ~0.5B-parameter GGUF: qwen2.5-0.5b's shape, Q8_0, random weights (~530 MB)."""
    from models_db import load_models

    spec = load_models().get("qwen2.5-0.5b")
    folder = tmp_path_factory.mktemp("qwen05q8")
    return write_synthetic_gguf(folder / "qwen2.5-0.5b-Q8_0.gguf", spec, "Q8_0")


def test_calibration_from_runs_is_used_by_later_estimates(
    llamacpp_bin: Path, qwen05_f16: Path, store: Store
) -> None:
    """One model bigger than the caches: the fit keeps the engine's per-token cost and fits
    the effective bandwidth and compute; its in-sample error is below the default's, and the
    next run on this machine is estimated with it. (The two-size fit is checked exactly on
    known numbers in test_calibrate.py: here tiny models would sit in the 480 MiB L3.)"""
    bench = llamacpp_bin / "llama-bench"
    cfg = BuiltinConfig(kernels=("matmul", "decode"), threads=1, matmul_n=512,
                        decode_weight_bytes=qwen05_f16.stat().st_size, decode_tokens=3)  # fmt: skip
    # this test checks the calibration, not the load rule (test_load_hygiene.py): the runs are
    # kept whatever the shared machine's load, as a user of a never-idle machine would
    keep = LoadPolicy(accept_load=True)
    drive(record_builtin(store, cfg, load=keep), bar=False)
    target = target_from_gguf(qwen05_f16)
    spec = LlamaBenchSpec(str(qwen05_f16), n_prompt=(32,), n_gen=(16,), repetitions=2, threads=1,
                          repack=False)  # fmt: skip
    drive(record_llamacpp(store, target, spec, binary=bench, load=keep), bar=False)
    cal = calibrate(store, machine_fingerprint())
    assert cal.bandwidth_bytes_per_s and cal.bandwidth_bytes_per_s > 0
    assert cal.compute_flops and cal.compute_flops > 0
    assert cal.per_token_s is not None and cal.per_token_s >= 0
    assert "bandwidth only" in cal.details["decode_fit"]
    before, after = cal.error_before["decode_tps_mape"], cal.error_after["decode_tps_mape"]
    assert after is not None and after < 5.0, cal.to_dict()
    assert before is None or after <= before + 1e-9
    rec = drive(record_llamacpp(store, target, spec, binary=bench), bar=False)
    assert "host calibration" in rec.estimate["calibration"]
    assert "host calibration" in rec.estimate["basis"]
    assert rec.estimate["bandwidth_basis"] == f"measured: calibration {cal.id}"


def test_estimate_with_measured_bandwidth_is_within_20pct_of_real_decode_on_a_0_5b_model(
    llamacpp_bin: Path, qwen05_q8: Path, store: Store, tmp_path: Path
) -> None:
    """The issue's check on a ~0.5B-parameter GGUF (qwen2.5-0.5b shape, Q8_0, random weights)
    against real llama-bench decode, two estimates, both asserted within 20 % and printed:

    1. uncalibrated: the engine's estimate with this machine's bandwidth and compute measured
       by the built-in runner (decode simulation sized like the model, float32 matmul) and the
       llama.cpp CPU-backend constants of this CPU's kind (speed_constants_cpu.py, fitted by
       forgeplanner.calibration.cpu_backend per kind, AVX-512 and AVX2, on other shapes: this
       shape was not in the fit). It is the estimate `bench run llama.cpp` stores before the
       run. A CPU kind never measured is off by far more (docs/cpu-backend.md gives the
       cross-kind errors): that host's estimate is labelled so and its calibration is item 2;
    2. calibrated: with this machine's effective bandwidth measured from its own llama.cpp
       runs of a *different* model (held out: half the layers), i.e. the host calibration.

    One thread everywhere: this 2-core machine is shared by several developers, and with two
    threads llama.cpp's spinning barriers collapse whenever another process takes a core
    (2-thread decode swung from 24 to 1.3 tok/s here; the 2-thread check is in
    docs/cpu-backend.md, measured with load recorded). Runs alternate three times and
    medians are compared. Q8_0, the usual 8-bit quantization: with F16 the uncalibrated margin
    was thin (+17..+21.5 % in four runs on 2026-11-26: the F16 CPU constants over-estimate this
    shape by ~11 % in the calibration data, and the shared machine's decode speed drifts ~5 %);
    Q8_0 measured -7.6 % (1 thread) and +6.9 % (2 threads) on the AVX-512 host, +4.7 % and
    +8.5 % on the AVX2 host, in docs/cpu-backend.md.

    The load of every run is recorded (forgeplanner.measurement.load): only quiet built-in runs may
    become the host bandwidth and only quiet llama.cpp runs are compared with their estimate
    (under load this check failed: a loaded built-in run became the host bandwidth). When the
    shared machine is never quiet, the test checks instead that the estimate reports no host
    bandwidth and says why."""
    from forgeplanner.bench.calibrate import calibrated_constants, label_of, to_fit
    from forgeplanner.bench.estimate_link import estimate_for_run, host_for_this_machine
    from forgeplanner.engine.estimate import default_constants

    target = target_from_gguf(qwen05_q8)
    spec = target.spec
    held_shape = SyntheticShape(
        n_layers=spec.n_layers // 2, hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size or 4864, n_heads=spec.n_heads,
        n_kv_heads=spec.n_kv_heads, vocab_size=spec.vocab_size, head_dim=spec.head_dim,
        tie_word_embeddings=True, name="held-out-half-qwen",
    )  # fmt: skip
    held = target_from_gguf(
        write_synthetic_gguf(tmp_path / "held-out-q8_0.gguf", held_shape, "Q8_0")
    )
    cfg = BuiltinConfig(kernels=("matmul", "decode"), threads=1, matmul_repetitions=3,
                        decode_weight_bytes=qwen05_q8.stat().st_size,
                        decode_hidden=spec.hidden_size, decode_layers=spec.n_layers,
                        decode_tokens=6)  # fmt: skip
    bench = llamacpp_bin / "llama-bench"

    def ls(path: Path) -> LlamaBenchSpec:
        return LlamaBenchSpec(str(path), n_prompt=(16,), n_gen=(64,), repetitions=3, threads=1)

    cal_store = Store(f"sqlite:///{tmp_path / 'calibration.db'}")
    builtin_runs, pairs, loaded = [], [], []
    cal = est = None
    try:
        for _ in range(3):
            b = drive(record_builtin(store, cfg), bar=False)
            builtin_runs.append(b)
            r = drive(record_llamacpp(store, target, ls(qwen05_q8), binary=bench), bar=False)
            quiet_ids = [x.id for x in builtin_runs if x.load_verdict == QUIET]
            basis = r.estimate["bandwidth_basis"]
            if quiet_ids:
                # the estimate uses this machine's quiet built-in runs and names them
                assert "quiet builtin run" in basis, basis
                assert str(quiet_ids[-1]) in basis
            else:
                # every built-in run was noisy: no host bandwidth, and the estimate says why
                # instead of taking a loaded figure (the 54 % error)
                assert r.estimate.get("decode_tps") is None, r.estimate
                assert basis.startswith("unknown:") and "noisy" in basis, basis
            if r.load_verdict == QUIET and r.estimate.get("decode_tps"):
                pairs.append((r.measured["decode_tps"], r.estimate["decode_tps"]))
            else:
                loaded.append((r.id, r.load_verdict, basis))
            drive(record_builtin(cal_store, cfg), bar=False)
            drive(record_llamacpp(cal_store, held, ls(held.gguf_path), binary=bench), bar=False)
        fp = machine_fingerprint()
        try:
            cal = calibrate(cal_store, fp)
        except ForgePlannerError as exc:  # only when no held-out run was quiet
            assert "noisy" in str(exc), exc
        if cal is not None:
            host = host_for_this_machine(fp, cal_store)
            consts = calibrated_constants(default_constants(), to_fit(cal), host, label_of(cal))
            est = estimate_for_run(spec, "Q8_0", host, prompt_tokens=16, constants=consts)
    finally:
        cal_store.close()
    # Estimates are compared only with real runs taken while the machine was quiet, from
    # quiet bandwidth runs: a loaded llama-bench run measures the neighbours as much as the
    # model. On a busy shared machine there may be none; the assertions above then checked
    # that nothing loaded became the host's bandwidth.
    gbps = [(x.id, x.load_verdict, round(x.measured["bandwidth_bytes_per_s"] / 1e9, 2))
            for x in builtin_runs]  # fmt: skip
    print(
        f"\n0.5B check (Q8_0, 1 thread): built-in runs {gbps}"
        f"; quiet (real, estimate) pairs {[(round(a, 2), round(e, 2)) for a, e in pairs]}; "
        f"left out {loaded}"
    )
    if pairs:
        real_med = statistics.median(a for a, _ in pairs)
        uncal_med = statistics.median(e for _, e in pairs)
        err_uncal = 100 * (uncal_med - real_med) / real_med
        print(f"uncalibrated: median estimate {uncal_med:.2f} vs real {real_med:.2f} tok/s "
              f"({err_uncal:+.1f} %)")  # fmt: skip
        assert "llama.cpp CPU-backend constants measured on" in r.estimate["basis"]
        assert abs(err_uncal) <= 20.0
        if cal is not None and est is not None:
            err = 100 * (est["decode_tps"] - real_med) / real_med
            print(f"calibrated on the held-out model: {est['decode_tps']:.2f} tok/s ({err:+.1f} %)")
            assert "host calibration" in est["basis"]
            assert abs(err) <= 20.0


def test_lab_l002_runs_its_ladder_and_stores_the_record(llamacpp_bin: Path, store: Store) -> None:
    """L-002 end to end with a one-rung ladder (the random-weight qwen2.5-0.5b shape at Q4_0,
    written through `--model`'s path into the cache), real llama-bench."""
    from forgeplanner.labs.runner import run_lab
    from forgeplanner.store import EvidenceRepo

    options = {"ladder": (("qwen2.5-0.5b", "Q4_0"),), "ladder_pnr": (16, 8, 2)}
    rec = drive(run_lab("L-002", store, options=options), bar=False)
    with store.session() as s:
        stored = EvidenceRepo(s).get(rec.id)
    steps = {s["id"]: s for s in stored.body["steps"]}
    assert [steps[k]["status"] for k in ("sizes", "70b", "ladder")] == ["done"] * 3
    assert steps["ollama-mlx"]["status"] == "pending"  # a manual step waits for its answer
    (row,) = steps["ladder"]["result"]["rows"]
    assert row["decode_tps"] > 0 and row["quant"] == "Q4_0" and row["run_id"] in stored.run_ids
    assert steps["ladder"]["result"]["synthetic"] is True
