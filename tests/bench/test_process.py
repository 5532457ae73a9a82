"""The one process wrapper, against real child processes."""

from __future__ import annotations

import sys
import threading
import time

import psutil
import pytest

from forgeplanner.bench.process import (
    ProcessTimeout,
    free_port,
    run_process,
    run_to_end,
    tcp_reachable,
)
from forgeplanner.bench.progress import Cancelled, Progress, drive

CHATTY = (
    "import sys, time\n"
    "for i in range(3):\n"
    "    print(f'line {i}', file=sys.stderr, flush=True)\n"
    "print('RESULT', flush=True)\n"
)
SLEEPER = "import sys, time\nprint('started', file=sys.stderr, flush=True)\ntime.sleep(60)\n"


def test_streams_stderr_lines_and_returns_stdout() -> None:
    gen = run_process([sys.executable, "-c", CHATTY], timeout=30)
    lines = []
    while True:
        try:
            lines.append(next(gen))
        except StopIteration as stop:
            res = stop.value
            break
    assert lines == ["line 0", "line 1", "line 2"]
    assert res.returncode == 0 and res.stdout == "RESULT\n" and res.seconds > 0


def _child_pid_after_start(gen) -> int:
    assert next(gen) == "started"
    me = psutil.Process()
    kids = [p for p in me.children() if "time.sleep(60)" in " ".join(p.cmdline())]
    assert len(kids) == 1
    return kids[0].pid


def test_cancel_terminates_the_process() -> None:
    token = threading.Event()
    gen = run_process([sys.executable, "-c", SLEEPER], timeout=60, cancel=token)
    pid = _child_pid_after_start(gen)
    token.set()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        next(gen)
    assert time.monotonic() - t0 < 10
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_timeout_stops_the_process() -> None:
    gen = run_process([sys.executable, "-c", SLEEPER], timeout=1.0)
    pid = _child_pid_after_start(gen)
    with pytest.raises(ProcessTimeout, match="did not finish within 1 s"):
        for _ in gen:
            pass
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_closing_the_generator_stops_the_process() -> None:
    gen = run_process([sys.executable, "-c", SLEEPER], timeout=60)
    pid = _child_pid_after_start(gen)
    gen.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_nonzero_exit_is_reported_not_raised() -> None:
    res = run_to_end([sys.executable, "-c", "import sys; sys.exit(3)"], timeout=30)
    assert res.returncode == 3


def test_ports() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert tcp_reachable("127.0.0.1", port, timeout=1) is not None  # nobody listens


def test_console_driver_returns_the_result(capsys) -> None:
    def gen():
        yield Progress("a", 0.5, "half")
        yield Progress("a", 1.0, "done")
        return 42

    assert drive(gen()) == 42
    err = capsys.readouterr().err
    assert "a: half" in err and "100.0%" in err
