"""The user database under stress and the file helpers' promises, on the real SQLite store.

- A write lock held by another process past the busy timeout (a large import) gives one line,
  and the plan file and the database still agree: nothing was written to either.
- The database and its folder are private (0600 / 0700); an empty database file is an error.
- Price observations can be deleted (all or none); an import never silently replaces a model.
- `plan add-model` accepts a model the user imported.
- Atomic writes: a temporary file left by a killed writer is removed by the next write; a
  SIGTERM during a write leaves the old file and no temporary.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forgeplanner import paths
from forgeplanner.cli.main import main
from forgeplanner.plan.files import read_plan
from forgeplanner.store import open_store

ROOT = Path(__file__).resolve().parents[2]
STUDIO = "mac-studio-m4-max-40c-128gb"
MINI = "mac-mini-m4-pro-20c-64gb"


def _db_file() -> Path:
    return paths.data_dir() / "forgeplanner.db"


@pytest.fixture
def plan_file(tmp_path: Path, capsys) -> Path:
    path = tmp_path / "lab.fplan"
    assert main(["plan", "new", "lab", "--out", str(path)]) == 0
    capsys.readouterr()
    return path


def _hold_write_lock() -> sqlite3.Connection:
    conn = sqlite3.connect(_db_file(), isolation_level=None, timeout=1)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_busy_database_one_line_and_file_and_database_agree(plan_file, capsys, monkeypatch):
    from forgeplanner.store import db

    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)
    before = plan_file.read_bytes()
    lock = _hold_write_lock()
    try:
        cases = [
            (["plan", "add-model", str(plan_file), "llama-3.1-8b", "--quant", "Q4_K_M"], None),
            (["plan", "new", "other", "--out", str(plan_file.with_name("o.fplan"))], "o.fplan"),
            (
                [
                    "export",
                    str(plan_file),
                    "--format",
                    "json",
                    "--out",
                    str(plan_file.with_name("e.json")),
                ],
                "e.json",
            ),
        ]
        for argv, created in cases:
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "is busy" in err and "nothing was saved" in err, err
            if created:
                assert not plan_file.with_name(created).exists(), created
    finally:
        lock.rollback()
        lock.close()
    assert plan_file.read_bytes() == before  # the edit did not reach the file either
    with open_store() as store, store.session() as s:
        from forgeplanner.store import PlanRepo

        assert [v.version for v in PlanRepo(s).versions("lab")] == [1]
        assert PlanRepo(s).names() == ["lab"]


def test_database_and_folder_are_private(plan_file) -> None:
    assert stat.S_IMODE(_db_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.data_dir().stat().st_mode) == 0o700
    os.chmod(_db_file(), 0o644)  # an older ForgePlanner's file is tightened on open
    open_store().close()
    assert stat.S_IMODE(_db_file().stat().st_mode) == 0o600


def test_empty_database_file_is_an_error_not_a_new_database(tmp_path, capsys, monkeypatch):
    db_file = tmp_path / "user.db"
    db_file.write_bytes(b"")
    monkeypatch.setenv("FORGEPLANNER_DB", f"sqlite:///{db_file}")
    assert main(["plan", "list"]) == 2
    assert "empty (0-byte) file" in capsys.readouterr().err
    assert db_file.stat().st_size == 0  # left for the user to inspect


def test_price_observations_can_be_deleted(tmp_path, capsys) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(
        "title,price,currency,date,condition,source\n"
        "Mac mini M4 Pro 20-core GPU 64GB,1899,USD,2026-01-10,used,ebay\n"
        "Mac mini M4 Pro 20-core GPU 64GB,18.99,USD,2026-01-11,used,typo\n"
    )
    assert main(["prices", "import", str(csv)]) == 0
    capsys.readouterr()
    assert main(["prices", "list", "--json"]) == 0
    user = [o for o in json.loads(capsys.readouterr().out)["observations"] if o["origin"] == "user"]
    typo = next(o["id"] for o in user if o["price_usd"] < 100)
    # One unknown id: nothing is deleted.
    assert main(["prices", "delete", typo, "user-99999"]) == 2
    assert "unknown price observation '99999'" in capsys.readouterr().err
    assert main(["prices", "delete", typo, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["deleted"]) == 1
    assert main(["prices", "list", "--json"]) == 0
    left = [o for o in json.loads(capsys.readouterr().out)["observations"] if o["origin"] == "user"]
    assert [o["price_usd"] for o in left] == [1899.0]


CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": True,
}


def test_import_never_silently_replaces_and_plans_accept_imports(tmp_path, plan_file, capsys):
    first = tmp_path / "a" / "config.json"
    first.parent.mkdir()
    first.write_text(json.dumps(CONFIG))
    second = tmp_path / "b" / "config.json"
    second.parent.mkdir()
    second.write_text(json.dumps({**CONFIG, "num_hidden_layers": 24}))
    assert main(["models", "import", str(first), "--id", "my-model", "--json"]) == 0
    capsys.readouterr()
    assert main(["models", "import", str(second), "--id", "my-model"]) == 2
    assert "already has 'my-model'" in capsys.readouterr().err
    assert main(["models", "show", "my-model", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["n_layers"] == 16  # the first stayed
    assert main(["models", "import", str(second), "--id", "my-model", "--replace"]) == 0
    capsys.readouterr()
    # A plan takes the imported model like a shipped one, estimates included.
    assert main(["plan", "add-machine", str(plan_file), STUDIO]) == 0
    assert main(["plan", "add-model", str(plan_file), "my-model", "--quant", "Q4_K_M"]) == 0
    plan = read_plan(plan_file)
    assert [m.model_id for m in plan.build.models] == ["my-model"]
    assert plan.build.estimates[0].target == STUDIO and plan.build.estimates[0].decode_tps


def test_stale_temporary_of_a_killed_writer_is_removed(tmp_path) -> None:
    from forgeplanner.fileio import atomic_write

    dest = tmp_path / "report.md"
    dest.write_text("old")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f".report.md.{dead}.0123abcd.tmp"
    stale.write_text("half")
    live = tmp_path / f".report.md.{os.getppid()}.0123abcd.tmp"  # a running process's
    live.write_text("in progress")
    atomic_write(dest, b"new")
    assert dest.read_text() == "new" and not stale.exists() and live.exists()


WRITER = """
import sys, time
from forgeplanner.cli.main import _terminate_cleanly
from forgeplanner.fileio import atomic_path
_terminate_cleanly()
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("partial")
    print("writing", flush=True)
    time.sleep(60)
"""


def test_sigterm_during_a_write_keeps_the_old_file_and_no_temporary(tmp_path) -> None:
    dest = tmp_path / "plan.fplan"
    dest.write_text("old")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(dest)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    proc.stdout.close()
    time.sleep(0.1)
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.fplan"]


def test_recompute_refreshes_edited_prices_and_power(tmp_path, capsys) -> None:
    """`plan recompute` puts the catalog's figures back over hand-edited ones; a price the
    user entered (basis "user") is the user's own data and stays."""
    plan_path = tmp_path / "p.fplan"
    shutil.copy(ROOT / "examples" / "70b-home-lab.fplan", plan_path)
    catalog_price = read_plan(plan_path).build.machines[0].price.usd
    doc = json.loads(plan_path.read_text())
    machine = doc["plan"]["build"]["machines"][0]
    machine["price"]["usd"] = 1.0
    machine["max_w"] = 1.0
    plan_path.write_text(json.dumps(doc))
    assert main(["plan", "recompute", str(plan_path), "--no-db"]) == 0
    fresh = read_plan(plan_path).build.machines[0]
    assert fresh.price.usd == catalog_price and fresh.max_w is not None and fresh.max_w > 1.0
    assert main(["plan", "add-machine", str(plan_path), MINI, "--price-usd", "999", "--no-db"]) == 0
    assert main(["plan", "recompute", str(plan_path), "--no-db"]) == 0
    mini = next(m for m in read_plan(plan_path).build.machines if m.config_id == MINI)
    assert (mini.price.usd, mini.price.basis) == (999.0, "user")


@pytest.mark.parametrize("written", [b"", b"%PDF-1.7\n1 0 obj", b"PK\x03\x04 cut"])
def test_a_writer_that_reports_success_but_wrote_nothing_replaces_nothing(tmp_path, written):
    """Qt's PDF writer returned no error on a full disk and left a 0-byte file, which used to
    replace a good PDF. The helper checks what reached the disk before the swap."""
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.fileio import atomic_path, pdf_verifier, zip_verifier

    for name, verify in (("report.pdf", pdf_verifier), ("report.xlsx", zip_verifier)):
        dest = tmp_path / name
        dest.write_bytes(b"the good file")
        with pytest.raises(ForgePlannerError, match="the old file is unchanged"):
            with atomic_path(dest, verify=verify) as tmp:
                tmp.write_bytes(written)  # the writer "succeeds"
        assert dest.read_bytes() == b"the good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf", "report.xlsx"]
