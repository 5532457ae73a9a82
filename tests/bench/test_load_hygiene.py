"""Host measurements that a busy machine cannot poison: the load sampled during every run
(real psutil), the noise rule, which stored runs become this machine's bandwidth and
compute, the schema upgrade that adds the load columns, and the llama.cpp tool check that
runs before a synthetic model is written.

Nothing here needs a quiet machine: a run's own verdict is read, not assumed, and the rule
is checked on runs whose verdicts are known (a busy neighbour started by the test, stored
runs with given load blocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from forgeplanner.bench.builtin import BuiltinConfig
from forgeplanner.bench.llamacpp import (
    LlamaBenchError,
    RpcEndpoint,
    check_llamacpp_tools,
    probe_llama_bench,
)
from forgeplanner.bench.llamacpp_tools import INSTALL_HINT
from forgeplanner.bench.progress import drive
from forgeplanner.bench.session import LoadPolicy, record_builtin, target_from_model
from forgeplanner.cli.main import main
from forgeplanner.domain.units import GB, MiB
from forgeplanner.measurement.host_runs import MAX_RUNS, WINDOW_DAYS, host_measurements, select_runs
from forgeplanner.measurement.load import (
    ACCEPTED,
    NOISY,
    NOT_RECORDED,
    QUIET,
    LoadFigures,
    LoadSampler,
    judge,
    load_block,
    verdict_of,
)
from forgeplanner.store import BenchRunRepo, Store
from forgeplanner.store import models as m
from forgeplanner.store.db import _alembic_config, head_revision

TINY = BuiltinConfig(
    array_bytes=8 * MiB, repetitions=2, warmup=1, matmul_n=128, decode_weight_bytes=8 * MiB
)

# A CPU-bound loop in a process outside this test's process tree: it double-forks, so its
# parent is not us and the sampler must count it as another program's load.
_NEIGHBOUR = """
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
os.write(1, f"{os.getpid()}\\n".encode()); os.close(1)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
"""


def _start_neighbours(n: int, seconds: float) -> list[int]:
    """n busy loops that are not our descendants; their pids."""
    pids = []
    for _ in range(n):
        out = subprocess.run(
            [sys.executable, "-c", _NEIGHBOUR, str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True, check=True, timeout=30,
        )  # fmt: skip
        pids.append(int(out.stdout.strip()))
    return pids


def _stop(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------- the sampler


def test_a_busy_program_outside_our_tree_counts_as_other_load_and_makes_the_run_noisy():
    pids = _start_neighbours(2, 60)
    try:
        sampler = LoadSampler(interval_s=0.2).start()
        time.sleep(2.0)  # we sleep: any busy CPU now is someone else's
        figures = sampler.stop()
    finally:
        _stop(pids)
    # two busy loops on this machine take at least part of a CPU whatever else runs
    assert figures.other_cpu_share > 0.10, figures
    assert figures.own_cpu_share < figures.other_cpu_share
    assert figures.samples >= 2 and figures.cpu_count == os.cpu_count()
    assert figures.memory_total_bytes > figures.memory_available_min_bytes > 0
    reasons = judge(figures)
    assert reasons and reasons[0].startswith("other processes used")
    block = load_block(figures)
    assert block["noisy"] and verdict_of({"load": block}) == NOISY
    assert block["rule"]["max_other_cpu_share"] == 0.10


def test_our_own_children_count_as_ours_not_as_other_load():
    sampler = LoadSampler(interval_s=0.2).start()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.monotonic()\n"
                              "while time.monotonic() - t < 2.0: pass"])  # fmt: skip
    try:
        child.wait(timeout=60)
    finally:
        figures = sampler.stop()
    assert figures.own_cpu_share > 0.02, figures
    assert child.pid not in {p.pid for p in figures.busiest_others}


# ---------------------------------------------------------------------------- real runs


def test_a_builtin_run_stores_its_load_and_verdict_and_lists_it(capsys):
    with Store() as st:
        rec = drive(record_builtin(st, TINY), bar=False)
        load = rec.measured["load"]
        assert load["judged"] and load["samples"] >= 2 and 0.0 <= load["other_cpu_share"] <= 1.0
        assert rec.load_verdict in (QUIET, NOISY)  # whichever this machine's load made it
        assert rec.load_verdict == verdict_of(rec.measured)
        assert rec.other_cpu_share == pytest.approx(load["other_cpu_share"])
        if rec.load_verdict == NOISY:
            assert load["reasons"] and "noisy run" in rec.message
    assert main(["bench", "list"]) == 0
    table = capsys.readouterr().out
    assert "load" in table and ("quiet" in table or "NOISY" in table)
    assert main(["bench", "show", str(rec.id)]) == 0
    shown = capsys.readouterr().out
    assert "load during the run:" in shown and "other processes' CPU share" in shown
    assert main(["bench", "show", str(rec.id), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["load_verdict"] == rec.load_verdict and out["noisy"] == (rec.load_verdict == NOISY)


def test_a_run_under_a_busy_neighbour_is_noisy_and_never_becomes_the_host_bandwidth():
    """The issue's case: a bandwidth run taken while the machine is busy. Two busy loops
    outside our tree make it noisy on any machine; it is stored, flagged, and left out."""
    pids = _start_neighbours(2, 120)
    try:
        with Store() as st:
            rec = drive(record_builtin(st, TINY), bar=False)
            with st.session() as s:
                runs = BenchRunRepo(s).list(status="ok")
    finally:
        _stop(pids)
    assert rec.load_verdict == NOISY, rec.measured["load"]
    assert any(r.startswith("other processes used") for r in rec.measured["load"]["reasons"])
    hm = host_measurements(runs)
    assert hm["bandwidth"] is None and hm["flops"] is None
    assert hm["bandwidth_left_out"] == (rec.id,)
    assert "noisy" in hm["bandwidth_basis"] and f"run {rec.id}" in hm["bandwidth_basis"]
    assert "bench run builtin" in hm["bandwidth_basis"]


def test_accept_load_keeps_a_noisy_run_marked_as_such():
    pids = _start_neighbours(2, 120)
    try:
        with Store() as st:
            rec = drive(record_builtin(st, TINY, load=LoadPolicy(accept_load=True)), bar=False)
            with st.session() as s:
                runs = BenchRunRepo(s).list(status="ok")
    finally:
        _stop(pids)
    assert rec.load_verdict == ACCEPTED and rec.measured["load"]["noisy"]
    assert "--accept-load" in rec.message
    hm = host_measurements(runs)
    assert hm["bandwidth_runs"] == (rec.id,) and hm["bandwidth_tier"] == ACCEPTED
    assert "kept with --accept-load" in hm["bandwidth_basis"]


# ---------------------------------------------------------------------------- the selection


def _figures(other: float) -> LoadFigures:
    return LoadFigures(
        duration_s=10.0, samples=11, cpu_count=2, own_cpu_share=0.5, other_cpu_share=other,
        other_cpu_share_peak=other, steal_share=0.0, idle_share=0.5 - other,
        loadavg_1m_start=1.0, loadavg_1m_end=1.0, memory_total_bytes=8 * 2**30,
        memory_available_min_bytes=4 * 2**30, swap_in_bytes=0, swap_out_bytes=0,
        swap_used_bytes=0,
    )  # fmt: skip


def _store_run(st: Store, gbps: float, *, other: float | None, days_ago: float,
               accepted: bool = False, spread_pct: float = 1.0) -> int:  # fmt: skip
    """A built-in run as record_builtin stores it, with the given load and age."""
    measured = {
        "bandwidth_bytes_per_s": gbps * GB, "memory_bandwidth_gbps": gbps,
        "compute_flops": 10e9, "matmul_gflops": 10.0,
        "spread": {"decode_sim_tps": {"median": 1.0, "mad_pct": spread_pct}},
    }  # fmt: skip
    verdict, share = None, None
    if other is not None:
        measured["load"] = load_block(_figures(other), accepted=accepted)
        verdict, share = verdict_of(measured), other
    fp = {"hostname": "bench-host", "key": "k" * 32}
    with st.session() as s:
        repo = BenchRunRepo(s)
        run_id = repo.start(runner="builtin", fingerprint=fp, tool_versions={}, params={})
        repo.finish(run_id, status="ok", measured=measured, load_verdict=verdict,
                    other_cpu_share=share)  # fmt: skip
        row = s.get(m.BenchRun, run_id)
        row.started_at = row.started_at - timedelta(days=days_ago)
    return run_id


def _runs(st: Store):
    with st.session() as s:
        return BenchRunRepo(s).list(status="ok")


def test_median_of_recent_quiet_runs_noisy_and_stale_runs_left_out(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'sel.db'}") as st:
        old = _store_run(st, 30.0, other=0.01, days_ago=WINDOW_DAYS + 10)  # stale, quiet
        q1 = _store_run(st, 21.0, other=0.02, days_ago=3)
        q2 = _store_run(st, 22.0, other=0.03, days_ago=2)
        noisy = _store_run(st, 5.9, other=0.55, days_ago=1)  # the poisoning run
        q3 = _store_run(st, 21.8, other=0.05, days_ago=0.5)
        runs = _runs(st)
    hm = host_measurements(runs)
    assert hm["bandwidth"] == pytest.approx(21.8 * GB)  # median of 21.0, 22.0, 21.8
    assert hm["bandwidth_runs"] == (q3, q2, q1) and hm["bandwidth_tier"] == QUIET
    assert hm["bandwidth_left_out"] == (noisy,)
    basis = hm["bandwidth_basis"]
    assert basis.startswith(f"measured: median of 3 quiet builtin runs ({q3}, {q2}, {q1}; newest")
    assert f"1 noisy run left out ({noisy})" in basis and "1 older run not used" in basis
    assert old not in hm["bandwidth_runs"]


def test_at_most_the_newest_runs_count(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'sel.db'}") as st:
        ids = [_store_run(st, 20.0 + i, other=0.0, days_ago=10 - i) for i in range(MAX_RUNS + 2)]
        sel = select_runs(_runs(st))
    assert [r.id for r in sel.used] == ids[::-1][:MAX_RUNS]
    assert set(sel.stale) == set(ids[:2])


def test_accepted_runs_only_without_quiet_ones_and_old_unjudged_runs_last(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'sel.db'}") as st:
        legacy = _store_run(st, 19.0, other=None, days_ago=5)
        legacy_spread = _store_run(st, 6.0, other=None, days_ago=4, spread_pct=40.0)
        assert select_runs(_runs(st)).tier == NOT_RECORDED
        hm = host_measurements(_runs(st))
        # a run stored before load sampling is still judged by its repetitions' spread
        assert hm["bandwidth_runs"] == (legacy,) and hm["bandwidth_left_out"] == (legacy_spread,)
        assert "load not recorded" in hm["bandwidth_basis"]
        acc = _store_run(st, 12.0, other=0.6, days_ago=3, accepted=True)
        hm = host_measurements(_runs(st))
        assert hm["bandwidth_runs"] == (acc,) and hm["bandwidth_tier"] == ACCEPTED
        quiet = _store_run(st, 21.0, other=0.0, days_ago=2)
        hm = host_measurements(_runs(st))
        assert hm["bandwidth_runs"] == (quiet,) and hm["bandwidth_tier"] == QUIET
        assert hm["bandwidth"] == pytest.approx(21.0 * GB)


def test_only_noisy_runs_leave_the_bandwidth_unknown_and_say_why(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'sel.db'}") as st:
        a = _store_run(st, 5.9, other=0.55, days_ago=1)
        b = _store_run(st, 7.0, other=0.40, days_ago=0)
        hm = host_measurements(_runs(st))
    assert hm["bandwidth"] is None and hm["bandwidth_left_out"] == (b, a)
    assert hm["bandwidth_basis"].startswith("unknown: all 2 stored measurements of this machine")
    assert "other processes used 40 %" in hm["bandwidth_basis"]


# ---------------------------------------------------------------------------- the schema


def test_an_older_database_upgrades_and_its_runs_read_as_load_not_recorded(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    cfg = _alembic_config()
    with engine.begin() as conn:  # the schema as the previous release left it
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_first_schema")
    with engine.begin() as conn:
        cols = {c["name"] for c in sa.inspect(conn).get_columns("bench_runs")}
        assert "load_verdict" not in cols
        conn.execute(
            sa.text(
                "INSERT INTO bench_runs (runner, status, fingerprint_key, fingerprint, "
                "tool_versions, params, started_at, measured, message) VALUES ('builtin', "
                "'ok', :k, :fp, '{}', '{}', '2026-11-30 10:00:00', :meas, '')"
            ),
            {"k": "k" * 32, "fp": '{"hostname": "old-host"}',
             "meas": '{"bandwidth_bytes_per_s": 5.9e9, "memory_bandwidth_gbps": 5.9}'},
        )  # fmt: skip
    engine.dispose()
    with Store(url) as st:
        assert st.current_revision() == head_revision()
        with st.engine.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("bench_runs")}
        assert {"load_verdict", "other_cpu_share"} <= cols
        (old,) = _runs(st)
        assert old.load_verdict is None and verdict_of(old.measured) == NOT_RECORDED
        hm = host_measurements([old])
        assert hm["bandwidth_tier"] == NOT_RECORDED and "load not recorded" in hm["bandwidth_basis"]
        # new runs in the upgraded database carry their load
        rec = drive(record_builtin(st, TINY), bar=False)
        assert rec.load_verdict in (QUIET, NOISY) and rec.other_cpu_share is not None


# ---------------------------------------------------------------------------- llama.cpp tools


def test_a_missing_llama_bench_is_one_line_naming_it_and_how_to_build_it(tmp_path: Path):
    missing = tmp_path / "no-such-dir" / "llama-bench"
    with pytest.raises(LlamaBenchError) as exc:
        check_llamacpp_tools(binary=missing)
    msg = str(exc.value)
    assert msg.startswith(f"llama-bench not found at {missing}") and INSTALL_HINT in msg
    assert "\n" not in msg


def test_a_llama_bench_that_does_not_run_is_refused_before_anything_slow(tmp_path: Path):
    not_exec = tmp_path / "llama-bench"
    not_exec.write_text("not a program")
    with pytest.raises(LlamaBenchError, match="is not executable"):
        probe_llama_bench(not_exec)
    wrong = tmp_path / "bin" / "llama-bench"  # a real program that is not llama-bench
    wrong.parent.mkdir()
    wrong.symlink_to(Path(sys.executable))
    with pytest.raises(LlamaBenchError) as exc:
        probe_llama_bench(wrong)
    assert "does not run (`--version` exited" in str(exc.value) or "does not run" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_real_llama_bench_answers_the_check(llamacpp_bin: Path):
    choice = check_llamacpp_tools(binary=llamacpp_bin / "llama-bench")
    assert choice.tool == "llama-bench" and choice.version


def test_no_synthetic_model_is_written_when_the_tool_is_missing(tmp_path: Path, monkeypatch):
    from forgeplanner.bench.session import synthetic_gguf_path

    target = synthetic_gguf_path("qwen2.5-0.5b", "Q8_0")
    with pytest.raises(LlamaBenchError, match="llama-bench not found at"):
        next(target_from_model("qwen2.5-0.5b", "Q8_0", binary=tmp_path / "llama-bench"))
    assert not target.exists()
    # a cluster run: nothing on PATH, an empty tools cache, no override
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("FORGEPLANNER_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.delenv("FORGEPLANNER_LLAMACPP_BIN", raising=False)
    with pytest.raises(LlamaBenchError, match="RPC clusters need llama-bench"):
        next(target_from_model("qwen2.5-0.5b", "Q8_0", rpc=(RpcEndpoint("127.0.0.1", 9),)))
    assert not target.exists()


def test_the_cli_says_so_in_one_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("FORGEPLANNER_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.delenv("FORGEPLANNER_LLAMACPP_BIN", raising=False)
    code = main(["bench", "run", "llama.cpp", "--model", "qwen2.5-0.5b", "--rpc", "127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "llama-bench" in err and "build_llamacpp_tools.py" in err
    assert len(err.splitlines()) == 1
