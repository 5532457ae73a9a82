"""The user database: migrations, refusal of newer schemas, transactions, repositories."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from forgeplanner.domain.model import AttentionSpec, ModelSpec, MoESpec, TensorInfo
from forgeplanner.errors import ForgePlannerError, NotFoundError
from forgeplanner.store import (
    BenchRunRepo,
    CalibrationRepo,
    DatabaseError,
    EvidenceRepo,
    MachineRepo,
    PlanRepo,
    PriceRepo,
    Store,
    UserModelRepo,
    head_revision,
)
from forgeplanner.store.models import Base

TABLES = {
    "user_machines",
    "user_models",
    "price_observations",
    "plans",
    "bench_runs",
    "calibrations",
    "evidence_records",
    "alembic_version",
}


@pytest.fixture
def store(tmp_path: Path):
    st = Store(f"sqlite:///{tmp_path / 'user.db'}")
    yield st
    st.close()


def test_default_location_is_the_user_data_dir(_isolated_home: Path) -> None:
    with Store() as st:
        assert st.url == f"sqlite:///{_isolated_home / 'data' / 'forgeplanner.db'}"
        assert (_isolated_home / "data" / "forgeplanner.db").is_file()


def test_forgeplanner_db_env_takes_any_url(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'x.db'}"
    monkeypatch.setenv("FORGEPLANNER_DB", url)
    with Store() as st:
        assert st.url == url
    assert (tmp_path / "elsewhere" / "x.db").is_file()


def test_fresh_database_migrates_to_head_and_matches_the_models(store: Store) -> None:
    assert store.current_revision() == head_revision()
    assert set(inspect(store.engine).get_table_names()) == TABLES
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diffs == [], f"models and migrations disagree: {diffs}"
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_reopening_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'user.db'}"
    with Store(url) as st, st.session() as s:
        PlanRepo(s).save("lab", {"nodes": 3})
    with Store(url) as st, st.session() as s:
        assert PlanRepo(s).get("lab").document == {"nodes": 3}


def test_database_from_a_newer_app_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'user.db'}"
    Store(url).close()
    con = sqlite3.connect(tmp_path / "user.db")
    con.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError) as exc:
        Store(url)
    assert isinstance(exc.value, ForgePlannerError)
    msg = str(exc.value)
    assert "9999_from_the_future" in msg and "newer ForgePlanner" in msg
    assert head_revision() in msg
    # Refusing must not touch the data either.
    con = sqlite3.connect(tmp_path / "user.db")
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [
        ("9999_from_the_future",)
    ]
    con.close()


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(DatabaseError, match="not a SQLAlchemy database URL"):
        Store("definitely not a url")


def test_session_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as s:
        PriceRepo(s).add(
            config_id="mac-mini-m4-pro-20c-64gb",
            price=1999,
            currency="USD",
            observed_on=date(2026, 11, 1),
            condition="new",
            source="apple.com",
        )
        PlanRepo(s).save("half", {"a": 1})
        raise RuntimeError("user action failed half way")
    with store.session() as s:
        assert PriceRepo(s).list() == []
        assert PlanRepo(s).names() == []


def test_prices_are_deduplicated_and_validated(store: Store) -> None:
    obs = dict(
        title="Mac mini 2018  i7 32GB",
        price=420.0,
        currency="eur",
        observed_on=date(2026, 10, 3),
        condition="used",
        source="kleinanzeigen.de/123",
    )
    with store.session() as s:
        first, created = PriceRepo(s).add(**obs)
        assert created and first.currency == "EUR"
        again, created2 = PriceRepo(s).add(**{**obs, "title": "mac mini 2018 i7 32gb"})
        assert not created2 and again.id == first.id
        with pytest.raises(ValueError, match="config_id or a title"):
            PriceRepo(s).add(**{**obs, "title": None})
        with pytest.raises(ValueError, match="price must be"):
            PriceRepo(s).add(**{**obs, "price": -1})
    with store.session() as s:
        rows = PriceRepo(s).list()
        assert [r.to_dict()["price"] for r in rows] == [420.0]


def test_plans_are_versioned(store: Store) -> None:
    with store.session() as s:
        assert PlanRepo(s).save("lab", {"v": 1}).version == 1
        assert PlanRepo(s).save("lab", {"v": 2}).version == 2
    with store.session() as s:
        repo = PlanRepo(s)
        assert repo.get("lab").document == {"v": 2}
        assert repo.get("lab", 1).document == {"v": 1}
        with pytest.raises(NotFoundError, match="lab v7"):
            repo.get("lab", 7)


def _moe_spec() -> ModelSpec:
    return ModelSpec(
        id="my-moe",
        name="My MoE",
        family="qwen3",
        params_total=30_500_000_000,
        params_active=3_300_000_000,
        n_layers=48,
        hidden_size=2048,
        intermediate_size=6144,
        n_heads=32,
        n_kv_heads=4,
        head_dim=128,
        vocab_size=151936,
        tie_word_embeddings=False,
        max_context=40960,
        attention=AttentionSpec(kind="sliding", sliding_window=4096, sliding_layers=(0, 2, 4)),
        moe=MoESpec(n_experts=128, experts_per_token=8, shared_experts=0, expert_ffn=768),
        license="apache-2.0",
        source="user",
        tensors=(TensorInfo("blk.0.attn_q.weight", (2048, 4096), "Q8_0", 8912896),),
        origin="import:gguf",
        extra={"note": "x"},
    )


def test_user_models_round_trip_as_domain_objects(store: Store) -> None:
    spec = _moe_spec()
    with store.session() as s:
        UserModelRepo(s).save(spec)
    with store.session() as s:
        back = UserModelRepo(s).get("my-moe")
        assert back == spec
        assert UserModelRepo(s).origins() == {"my-moe": "import:gguf"}
        assert UserModelRepo(s).delete("my-moe")
        assert UserModelRepo(s).get("my-moe") is None


def test_runs_calibrations_evidence_and_machines(store: Store) -> None:
    fp = {"key": "abc123", "cpu": "x86_64", "cores": 2}
    with store.session() as s:
        run_id = BenchRunRepo(s).start(
            runner="llama.cpp",
            fingerprint=fp,
            tool_versions={"llama-bench": "b1"},
            params={"p": 64, "n": 16},
            model_ref="tiny.gguf",
            estimate={"decode_tps": 10.0},
            pid=os.getpid(),
            hostname="h",
        )
    with store.session() as s:
        rec = BenchRunRepo(s).finish(
            run_id,
            status="ok",
            measured={"decode_tps": 11.0},
            error_pct={"decode_tps": -9.09},
            raw_output='[{"avg_ts": 11.0}]',
        )
        assert rec.raw_sha256 == (__import__("hashlib").sha256(b'[{"avg_ts": 11.0}]').hexdigest())
        with pytest.raises(ValueError):
            BenchRunRepo(s).finish(run_id, status="bogus")
    with store.session() as s:
        got = BenchRunRepo(s).get(run_id)
        assert got.raw_output == '[{"avg_ts": 11.0}]' and got.fingerprint_key == "abc123"
        assert [r.id for r in BenchRunRepo(s).list(fingerprint_key="abc123")] == [run_id]
        cal = CalibrationRepo(s).add(
            fingerprint=fp,
            runtime="llama.cpp",
            bandwidth_bytes_per_s=9e9,
            compute_flops=None,
            per_token_s=1e-3,
            run_ids=[run_id],
            error_before={"decode_tps": -9.09},
            error_after={"decode_tps": 0.5},
        )
        assert CalibrationRepo(s).latest("abc123", "llama.cpp") == cal
        assert CalibrationRepo(s).latest("other") is None
        ev = EvidenceRepo(s).add(kind="lab", ref="L-001", title="t", body={"a": [1]})
        assert EvidenceRepo(s).list(ref="L-001")[0].id == ev.id
        MachineRepo(s).add("studio", config_id="mac-studio-m2-ultra-76c-192gb", fingerprint=fp)
        assert MachineRepo(s).get("studio").fingerprint_key == "abc123"
        with pytest.raises(NotFoundError):
            BenchRunRepo(s).get(999)


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(store: Store) -> None:
    with store.session() as s:
        dead = BenchRunRepo(s).start(
            runner="builtin", fingerprint={"k": 1}, tool_versions={}, params={}, pid=1, hostname="h"
        )
        alive = BenchRunRepo(s).start(
            runner="builtin", fingerprint={"k": 1}, tool_versions={}, params={}, pid=2, hostname="h"
        )
    with store.session() as s:
        assert BenchRunRepo(s).mark_interrupted("h", lambda pid: pid == 2) == [dead]
    with store.session() as s:
        assert BenchRunRepo(s).get(dead).status == "interrupted"
        assert BenchRunRepo(s).get(alive).status == "running"


WRITER = textwrap.dedent(
    """
    import sys
    from forgeplanner.store import Store, BenchRunRepo
    st = Store(sys.argv[1])
    blob = "x" * 2_000_000
    # Keep committing runs, and keep one big transaction open at the end, until killed.
    i = 0
    while True:
        with st.session() as s:
            repo = BenchRunRepo(s)
            rid = repo.start(runner="builtin", fingerprint={"key": "k"}, tool_versions={},
                             params={"i": i})
            repo.finish(rid, status="ok", measured={"i": i}, raw_output=blob)
            if i == 3:
                print("WRITING", flush=True)
        i += 1
    """
)


def test_a_killed_writer_never_corrupts_earlier_runs(tmp_path: Path) -> None:
    """A real process killed with SIGKILL in the middle of writing (not a simulation)."""
    url = f"sqlite:///{tmp_path / 'user.db'}"
    with Store(url) as st, st.session() as s:
        repo = BenchRunRepo(s)
        earlier = repo.start(
            runner="llama.cpp", fingerprint={"key": "k"}, tool_versions={}, params={"p": 1}
        )
        repo.finish(earlier, status="ok", measured={"decode_tps": 42.0}, raw_output="raw")

    proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WRITING"
        time.sleep(0.5)  # well inside the loop of 2 MB commits
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    con = sqlite3.connect(tmp_path / "user.db")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    with Store(url) as st, st.session() as s:
        repo = BenchRunRepo(s)
        first = repo.get(earlier)
        assert first.status == "ok" and first.measured == {"decode_tps": 42.0}
        assert first.raw_output == "raw"
        runs = repo.list(runner="builtin")
        assert len(runs) >= 4
        # Every committed run is whole: finished with its full raw output, none half-written.
        for run in runs:
            full = repo.get(run.id)
            assert full.status == "ok" and len(full.raw_output or "") == 2_000_000


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    # A regression: this used to end in a sqlite3 traceback.
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are my notes, not a database\n" * 20)
    with pytest.raises(DatabaseError, match="file is not a database") as exc:
        Store(f"sqlite:///{bogus}")
    assert str(bogus) in str(exc.value)
    assert bogus.read_bytes().startswith(b"these are my notes")


def test_an_uncreatable_database_folder_is_a_clear_error(tmp_path: Path) -> None:
    # A regression: FORGEPLANNER_DB under a missing /proc path gave a traceback.
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(DatabaseError, match="cannot create the folder") as exc:
        Store(f"sqlite:///{blocker / 'sub' / 'x.db'}")
    assert "FORGEPLANNER_DB" in str(exc.value)
