"""Progress generators driven in the thread pool: progress, result, error, cancel."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QThreadPool

from ui.workers import CancelToken, WorkerError, running_workers, start_worker


@pytest.fixture
def pool():
    # Held by the fixture: a QThreadPool deleted while a job runs waits for it (forever here).
    p = QThreadPool()
    yield p
    p.waitForDone(5000)


def _finish(qtbot, done: list, timeout: int = 10000) -> None:
    qtbot.waitUntil(lambda: done == [True], timeout=timeout)


def counting(n: int, delay: float = 0.0):
    def job(token: CancelToken):
        total = 0
        for i in range(n):
            if token.cancelled:
                return None
            total += i
            if delay:
                time.sleep(delay)
            yield {"done": i + 1, "total": n, "thread": threading.get_ident()}
        return total

    return job


def test_result_and_progress_from_worker_thread(qtbot, pool):
    progress: list[dict] = []
    results: list[int] = []
    done: list = []
    start_worker(
        pool,
        counting(50, 0.001),
        on_progress=progress.append,
        on_result=results.append,
        on_finished=lambda: done.append(True),
    )
    _finish(qtbot, done)
    assert results == [sum(range(50))]
    assert progress, "progress events forwarded"
    assert progress[-1]["done"] == 50  # the last event is always delivered
    assert len(progress) <= 50  # throttled, never more than produced
    assert progress[-1]["thread"] != threading.get_ident()  # ran off the GUI thread
    qtbot.waitUntil(lambda: running_workers() == 0)


def test_progress_is_throttled(qtbot, pool):
    progress: list = []
    done: list = []
    start_worker(
        pool, counting(100_000), on_progress=progress.append, on_finished=lambda: done.append(True)
    )
    _finish(qtbot, done)
    assert progress[-1]["done"] == 100_000
    assert len(progress) < 1000


def test_error_reaches_handler_with_traceback(qtbot, pool):
    def failing(token):
        yield 1
        raise ValueError("node mini-2 needs 41.2 GiB, budget 36.0 GiB")

    errors: list[WorkerError] = []
    done: list = []
    start_worker(pool, failing, on_error=errors.append, on_finished=lambda: done.append(True))
    _finish(qtbot, done)
    assert errors[0].reason == "ValueError: node mini-2 needs 41.2 GiB, budget 36.0 GiB"
    assert "Traceback" in errors[0].details
    assert isinstance(errors[0].original, ValueError)


def test_default_error_handler_opens_dialog(qtbot, pool):
    from ui.errors import open_error_dialogs

    def failing(token):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    done: list = []
    start_worker(pool, failing, on_finished=lambda: done.append(True))
    _finish(qtbot, done)
    qtbot.waitUntil(lambda: len(open_error_dialogs()) == 1)
    box = open_error_dialogs()[0]
    assert box.text() == "RuntimeError: boom"
    assert "Traceback" in box.detailedText()
    box.close()
    qtbot.waitUntil(lambda: not open_error_dialogs())


def test_cancel_stops_generator_and_runs_its_cleanup(qtbot, pool):
    cleaned = threading.Event()

    def endless(token):
        try:
            while True:
                time.sleep(0.002)
                yield "tick"
        finally:
            cleaned.set()

    results: list = []
    cancelled: list = []
    done: list = []
    worker = start_worker(
        pool,
        endless,
        on_result=results.append,
        on_cancelled=lambda: cancelled.append(True),
        on_finished=lambda: done.append(True),
    )
    qtbot.wait(30)
    worker.cancel()
    _finish(qtbot, done)
    qtbot.waitUntil(lambda: cancelled == [True])
    assert results == []
    assert cleaned.is_set()


def test_runner_raising_cancelled_is_a_cancel_not_an_error(qtbot, pool):
    from forgeplanner.bench.progress import Progress, check

    def runner(token):
        while True:
            time.sleep(0.002)
            check(token, "sweep")  # the bench runners' own cancellation check
            yield Progress("run", None)

    errors: list = []
    cancelled: list = []
    done: list = []
    worker = start_worker(
        pool,
        runner,
        on_error=errors.append,
        on_cancelled=lambda: cancelled.append(True),
        on_finished=lambda: done.append(True),
    )
    qtbot.wait(20)
    worker.cancel()
    _finish(qtbot, done)
    assert cancelled == [True]
    assert errors == []


def test_measurement_events_are_never_dropped(qtbot, pool):
    from forgeplanner.bench.progress import Progress

    def runner(token):
        for i in range(500):
            yield Progress("run", i / 500, "plain")  # superseded ones may be coalesced
            yield Progress("run", i / 500, "", metric="copy_gbps", value=float(i))
        return "ok"

    seen: list = []
    done: list = []
    start_worker(pool, runner, on_progress=seen.append, on_finished=lambda: done.append(True))
    _finish(qtbot, done)
    values = [e.value for e in seen if e.metric is not None]
    assert values == [float(i) for i in range(500)]  # every measurement, in order


def test_recompute_debounces_and_keeps_the_latest_inputs(qtbot, qapp):
    """The one debounced-recompute helper: a burst of edits gives one job; an edit while a job
    runs cancels it and runs again with the newest inputs; a stale result is never drawn."""
    import threading

    from PySide6.QtCore import QObject, QThreadPool

    from ui.workers import Recompute

    owner = QObject()
    pool = QThreadPool()
    inputs = {"n": 0}
    started: list[int] = []
    drawn: list[int] = []
    release = threading.Event()

    def prepare():
        n = inputs["n"]

        def work(token):
            started.append(n)
            if n == 1:
                release.wait(5)  # a slow first job, overtaken by a newer edit
            return n

        return work

    r = Recompute(owner, prepare, drawn.append, delay_ms=30, pool=pool)
    for n in (1, 1, 1):
        inputs["n"] = n
        r.schedule()
    qtbot.waitUntil(lambda: started == [1], timeout=5000)
    assert r.busy()
    inputs["n"] = 2
    r.run_now()  # while job 1 runs: remembered, job 1 cancelled
    release.set()
    qtbot.waitUntil(lambda: drawn == [2] and not r.busy(), timeout=5000)
    assert started == [1, 2]  # the burst of three edits made one job
    pool.waitForDone(5000)


def test_recompute_without_a_pool_runs_on_the_gui_thread(qtbot, qapp):
    from PySide6.QtCore import QObject

    from ui.workers import Recompute

    owner = QObject()
    drawn: list[int] = []
    r = Recompute(owner, lambda: lambda _token: 7, drawn.append, delay_ms=0)
    with qtbot.waitSignal(r.applied, timeout=1000):
        r.schedule()
    assert drawn == [7] and not r.busy()
    r.run_now()
    assert drawn == [7, 7]


SHUTDOWN_MID_STEP = """
import sys, time
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
from ui.context import AppContext
from ui.workers import start_worker
ctx = AppContext()
started = []
def job(token):
    started.append(1)
    time.sleep(3.5)  # one step longer than the old 3 s wait that ignores the token (an import)
    yield "step"
    yield "after the step"  # not reached: the token is checked first
    return 1
start_worker(ctx.pool, job)
while not started:
    time.sleep(0.01)
ctx.shutdown()
print("stopped", ctx.pool.activeThreadCount())
"""


def test_shutdown_waits_for_a_job_mid_step_so_no_signal_fires_after_exit(tmp_path):
    """The app's exit path (`AppContext.shutdown`, then interpreter exit) while a job is inside
    a step that ignores its token: the job is cancelled and waited for, so its last signals are
    emitted while their object exists (before: "Signal source has been deleted" tracebacks from
    the worker thread after the process had started to exit)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FORGEPLANNER_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", SHUTDOWN_MID_STEP], capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stopped 0"
    assert "Traceback" not in proc.stderr and "has been deleted" not in proc.stderr, proc.stderr
