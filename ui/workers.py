"""Run the core's long work (sweeps, imports, benchmarks) off the GUI thread.

The core writes long work as a *progress generator*: a function that takes a cancel token,
yields progress events and returns its result (``return value`` -> ``StopIteration.value``).
The CLI drives the same generator with a console bar; here a `QRunnable` on the context's
`QThreadPool` drives it and only forwards signals (progress / result / error / cancelled /
finished), queued to the GUI thread because the signal object lives there.

Progress events are coalesced: plain progress events are delivered at most once per
`min_interval_s` (the latest one; the last one always), so a generator that yields 100 000
tiny events cannot flood the event loop; events that carry a measurement (`metric` set, as
`forgeplanner.bench.progress.Progress` does for live plots) are all delivered, in order.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ui.errors import format_details, one_line_reason, show_error


class CancelToken:
    """Cooperative cancellation shared by the GUI thread and the worker. Duck-compatible with
    a `threading.Event` (`is_set`) and with code that reads `.cancelled`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __bool__(self) -> bool:  # `if token:` reads as "is cancelled"
        return self._event.is_set()


class WorkerError(Exception):
    """Carries the worker thread's exception to the GUI thread with its formatted traceback."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(one_line_reason(exc))
        self.original = exc
        self.reason = one_line_reason(exc)
        self.details = format_details(exc)


class WorkerSignals(QObject):
    progress = Signal(object)
    result = Signal(object)
    error = Signal(object)  # WorkerError
    cancelled = Signal()
    finished = Signal()  # always last, after result / error / cancelled


JobFactory = Callable[[CancelToken], Iterator[Any] | Generator[Any, None, Any]]

# Every started worker, kept here until its `finished` signal has been delivered on the GUI
# thread: the Python wrapper (and with it the signal object the thread emits on) must outlive
# the thread's last emit. At shutdown `stop_workers` cancels and waits for them, because a
# worker still running when the interpreter finalises emits on a deleted signal object
# ("Signal source has been deleted").
_running: set[Worker] = set()
_running_lock = threading.Lock()


class Worker(QRunnable):
    def __init__(
        self,
        job: JobFactory,
        token: CancelToken | None = None,
        min_interval_s: float = 0.03,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it (see _running)
        self.job = job
        self.token = token or CancelToken()
        self.signals = WorkerSignals()
        self.min_interval_s = min_interval_s
        self.pool: QThreadPool | None = None
        self.done = threading.Event()  # set by the worker thread after its last emit

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:  # worker thread
        try:
            self._drive()
        finally:
            self.signals.finished.emit()
            self.done.set()

    def _drive(self) -> None:
        last_emit = 0.0
        kept: list[Any] = []  # measurement events since the last flush (never dropped)
        pending: Any = _NOTHING  # the latest plain progress event (supersedes older ones)

        def flush() -> None:
            nonlocal pending, last_emit
            for event in kept:
                self.signals.progress.emit(event)
            kept.clear()
            if pending is not _NOTHING:
                self.signals.progress.emit(pending)
                pending = _NOTHING
            last_emit = time.monotonic()

        try:
            gen = self.job(self.token)
            result: Any = None
            while True:
                if self.token.is_set():
                    _close(gen)
                    self.signals.cancelled.emit()
                    return
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                if getattr(event, "metric", None) is not None:
                    # A live measurement (bench Progress.metric/value) is data for a plot:
                    # keep every one, in order, behind any plain event still pending.
                    if pending is not _NOTHING:
                        kept.append(pending)
                        pending = _NOTHING
                    kept.append(event)
                else:
                    pending = event
                if time.monotonic() - last_emit >= self.min_interval_s:
                    flush()
            flush()
            if self.token.is_set():
                self.signals.cancelled.emit()
                return
            self.signals.result.emit(result)
        except Exception as exc:
            if self.token.is_set():
                # Runners raise their own Cancelled error when they see the token: that is
                # the cancellation the user asked for, not a failure.
                self.signals.cancelled.emit()
                return
            self.signals.error.emit(WorkerError(exc))


_NOTHING = object()


def _close(gen: Any) -> None:
    close = getattr(gen, "close", None)
    if close is not None:
        close()


def start_worker(
    pool: QThreadPool,
    job: JobFactory,
    *,
    on_progress: Callable[[Any], None] | None = None,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[WorkerError], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    token: CancelToken | None = None,
    owner: QObject | None = None,
) -> Worker:
    """Start `job(token)` on `pool`. Errors go to `on_error`, or to the error dialog if none is
    given, never to the console only. With `owner` (the view), callbacks are dropped once the
    owner's C++ object is gone (a result arriving after its view closed), and the job is
    cancelled when the owner is destroyed."""
    worker = Worker(job, token)
    s = worker.signals
    if owner is not None:
        on_progress, on_result, on_error, on_cancelled, on_finished = (
            _guard(owner, cb)
            for cb in (on_progress, on_result, on_error, on_cancelled, on_finished)
        )
        if on_error is None:
            on_error = _guard(owner, _default_error)
        owner.destroyed.connect(worker.token.cancel)
    if on_progress is not None:
        s.progress.connect(on_progress)
    if on_result is not None:
        s.result.connect(on_result)
    s.error.connect(on_error if on_error is not None else _default_error)
    if on_cancelled is not None:
        s.cancelled.connect(on_cancelled)
    if on_finished is not None:
        s.finished.connect(on_finished)
    # Released in the GUI thread after every queued signal was delivered (finished is last).
    s.finished.connect(lambda w=worker: _release(w))
    worker.pool = pool
    with _running_lock:
        _running.add(worker)
    pool.start(worker)
    return worker


def _guard(owner: QObject, callback: Callable[..., None] | None) -> Callable[..., None] | None:
    if callback is None:
        return None
    from shiboken6 import isValid

    def guarded(*args: Any) -> None:
        if isValid(owner):
            callback(*args)

    return guarded


def _release(worker: Worker) -> None:
    with _running_lock:
        _running.discard(worker)


def _default_error(err: WorkerError) -> None:
    show_error(None, err.reason, err.details)


def running_workers() -> int:
    with _running_lock:
        return len(_running)


def stop_workers(pool: QThreadPool, patience_s: float = 10.0) -> None:
    """Cancel every worker started on `pool` and wait until each has made its last emit.

    Called when the app (or a test's context) shuts down, before the objects the workers emit
    on can be deleted. Jobs check their cancel token between steps, so this returns as soon as
    the current step ends; a step that takes longer than `patience_s` (an import, one engine
    call) is still waited for, with one line saying what the app is waiting for."""
    with _running_lock:
        mine = [w for w in _running if w.pool is pool]
    for w in mine:
        w.cancel()
    deadline = time.monotonic() + patience_s
    told = False
    for w in mine:
        while not w.done.wait(0.05):
            if not told and time.monotonic() > deadline:
                left = sum(not x.done.is_set() for x in mine)
                print(
                    f"forgeplanner: waiting for {left} background job(s) to stop", file=sys.stderr
                )
                told = True
    pool.waitForDone()  # the threads return to the pool right after their last emit


class Recompute(QObject):
    """The one debounced-recompute helper of the views.

    `schedule()` (on every input edit) restarts a `delay_ms` timer; when it fires, `prepare()`
    runs on the GUI thread and snapshots the inputs into a `work(token) -> result` function
    (or returns None: nothing to do). With a `pool`, `work` runs in a worker thread and one job
    at a time: a request made while a job runs cancels it and runs again with the latest
    inputs once it has finished, and a stale job's result is dropped. Without a pool, `work`
    runs at once on the GUI thread (for sub-millisecond engine calls). `apply(result)` runs on
    the GUI thread; `on_error(WorkerError)` for failures (default: the error dialog).
    """

    applied = Signal()  # after apply() drew a result

    def __init__(
        self,
        owner: QObject,
        prepare: Callable[[], Callable[[CancelToken], Any] | None],
        apply: Callable[[Any], None],
        *,
        delay_ms: int = 150,
        pool: QThreadPool | None = None,
        on_error: Callable[[WorkerError], None] | None = None,
    ) -> None:
        from PySide6.QtCore import QTimer

        super().__init__(owner)
        self._owner = owner
        self._prepare = prepare
        self._apply = apply
        self._pool = pool
        self._on_error = on_error
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.run_now)
        self._worker: Worker | None = None
        self._pending = False
        self._generation = 0

    def schedule(self, *_: Any) -> None:
        """Recompute after the debounce delay (restarted by every call)."""
        self._timer.start()

    def run_now(self, *_: Any) -> None:
        """Recompute now (programmatic changes, the first fill)."""
        self._timer.stop()
        if self._worker is not None:
            self._pending = True
            self._worker.cancel()
            return
        work = self._prepare()
        if work is None:
            return
        self._generation += 1
        generation = self._generation
        if self._pool is None:
            # A bug here propagates to the GUI's excepthook (the error dialog); refusals of bad
            # input are values of the result, not exceptions.
            self._deliver(generation, work(CancelToken()))
            return

        def job(token: CancelToken):
            yield "recompute"
            return work(token)

        self._worker = start_worker(
            self._pool,
            job,
            on_result=lambda result: self._deliver(generation, result),
            on_error=lambda err: self._failed(err) if generation == self._generation else None,
            on_finished=self._finished,
            owner=self._owner,
        )

    def _deliver(self, generation: int, result: Any) -> None:
        if generation != self._generation or self._pending:
            return  # superseded by newer inputs
        self._apply(result)
        self.applied.emit()

    def _failed(self, err: WorkerError) -> None:
        if self._on_error is not None:
            self._on_error(err)
        else:
            _default_error(err)

    def _finished(self) -> None:
        self._worker = None
        if self._pending:
            self._pending = False
            self.run_now()

    def busy(self) -> bool:
        return self._timer.isActive() or self._worker is not None or self._pending

    def cancel(self) -> None:
        self._timer.stop()
        self._pending = False
        if self._worker is not None:
            self._worker.cancel()
