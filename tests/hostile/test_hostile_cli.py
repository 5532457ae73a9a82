"""Every case of the hostile corpus (tests/hostile/corpus.py) through the real CLI: the exit
code it must give and exactly one line on stderr that matches its error, never a traceback.

The commands run in-process (`forgeplanner.cli.main.main`), against the real catalog, model
database, engine and a SQLite user database in a fresh FORGEPLANNER_HOME per case. Inputs
that read forever (a FIFO nobody writes, /dev/zero) are refused without being opened for a
blocking read, so a regression hangs: every case has a time limit (SIGALRM) to fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from tests.hostile.corpus import CASES, Case

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "70b-home-lab.fplan"
EXAMPLE_POLICY = ROOT / "examples" / "policy.toml"
CASE_SECONDS = 60


def _materialize(case: Case, d: Path) -> dict[str, str]:
    plan = d / "example.fplan"
    shutil.copy(EXAMPLE_PLAN, plan)
    (d / "empty").mkdir()
    fifo = d / "fifo"
    os.mkfifo(fifo)
    os.mkfifo(d / "fifo.csv")
    text = EXAMPLE_PLAN.read_text()
    for name, content in case.files.items():
        target = d / name
        if isinstance(content, int):
            with open(target, "wb") as fh:
                fh.truncate(content)  # sparse: the size is what is refused
        elif callable(content):
            target.write_bytes(content(text))
        else:
            target.write_bytes(content)
    return {"d": str(d), "plan": str(plan), "policy": str(EXAMPLE_POLICY), "fifo": str(fifo)}


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, capsys, monkeypatch) -> None:
    subs = _materialize(case, tmp_path)
    argv = [a.format(**subs) for a in case.argv]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(**subs))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        code = main(argv)
    except _Timeout:
        pytest.fail(f"{case.id}: no answer within {CASE_SECONDS} s (hangs on hostile input)")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("note: ")]
    assert "Traceback" not in err, err
    if case.error is None:
        assert code == case.code and not lines, f"{case.id}: exit {code}, stderr {err!r}"
        return
    assert code == case.code, f"{case.id}: exit {code} (expected {case.code}); stderr {err!r}"
    assert len(lines) == 1, f"{case.id}: expected one error line, got {err!r}"
    assert re.search(case.error, lines[0]), f"{case.id}: {lines[0]!r} !~ {case.error!r}"


def test_corpus_size() -> None:
    """The corpus is the spec: it only grows (the report quotes this count)."""
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
