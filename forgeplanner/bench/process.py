"""The one wrapper through which benchmark tools run: argv lists (never a shell string), a
timeout, terminate-then-kill on cancel, stderr lines streamed as they come (for progress),
stdout collected whole for a pure parser.

`run_process` is a generator: it yields each stderr line and returns a `ProcessResult`.
Closing it early (GeneratorExit, e.g. the GUI worker dropping it) also stops the process.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass

from forgeplanner.bench.progress import Cancelled, CancelLike
from forgeplanner.errors import ForgePlannerError

TERMINATE_GRACE_S = 5.0


class ProcessTimeout(ForgePlannerError):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f} s")


@dataclass(frozen=True, slots=True)
class ProcessResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def stop_process(proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)


def _pump(stream, sink: queue.Queue | list, tag: str) -> None:
    for line in iter(stream.readline, ""):
        if isinstance(sink, list):
            sink.append(line)
        else:
            sink.put((tag, line))
    stream.close()
    if not isinstance(sink, list):
        sink.put((tag, None))


def run_process(
    argv: Sequence[str],
    *,
    timeout: float,
    cancel: CancelLike | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Generator[str, None, ProcessResult]:
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    out_lines: list[str] = []
    err_lines: list[str] = []
    lines: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, out_lines, "out"), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, lines, "err"), daemon=True),
    ]
    for r in readers:
        r.start()
    finished = False
    try:
        err_open = True
        while err_open or proc.poll() is None:
            if cancel is not None and cancel.is_set():
                stop_process(proc)
                raise Cancelled(os.path.basename(argv[0]))
            if time.monotonic() - t0 > timeout:
                stop_process(proc)
                raise ProcessTimeout(argv, timeout)
            try:
                _tag, line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                err_open = False
                continue
            err_lines.append(line)
            yield line.rstrip("\n")
        proc.wait()
        for r in readers:
            r.join(timeout=10)
        finished = True
        return ProcessResult(
            argv=tuple(argv),
            returncode=proc.returncode,
            stdout="".join(out_lines),
            stderr="".join(err_lines),
            seconds=time.monotonic() - t0,
        )
    finally:
        if not finished:
            stop_process(proc)
            for r in readers:
                r.join(timeout=10)


def run_to_end(argv: Sequence[str], *, timeout: float, **kw) -> ProcessResult:
    gen = run_process(argv, timeout=timeout, **kw)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when something accepts a TCP connection at host:port, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)
