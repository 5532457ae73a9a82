"""Progress events and cancellation shared by every runner.

Long work is a generator: it yields `Progress` events, honours a cancel token (anything with
`is_set()`, e.g. `threading.Event` or `ui.workers.CancelToken`) and returns its result
(`StopIteration.value`). The CLI drives it with a console bar (`drive`), the GUI drives the
same generator in a worker thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, TypeVar

from forgeplanner.errors import ForgePlannerError

T = TypeVar("T")


class CancelLike(Protocol):
    def is_set(self) -> bool: ...


class Cancelled(ForgePlannerError):
    """The user cancelled a run."""

    def __init__(self, what: str = "benchmark") -> None:
        super().__init__(f"{what} cancelled")


def new_token() -> threading.Event:
    return threading.Event()


def check(cancel: CancelLike | None, what: str = "benchmark") -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(what)


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a run. `fraction` in [0, 1] of the whole run (None = unknown);
    `metric`/`value` carry a live measurement the GUI can plot (e.g. "copy_gbps", 11.2)."""

    stage: str
    fraction: float | None
    message: str = ""
    metric: str | None = None
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "fraction": self.fraction,
            "message": self.message,
            "metric": self.metric,
            "value": self.value,
        }


BenchGen = Generator[Progress, None, T]


def drive(gen: Generator[Progress, None, T], *, bar: bool = True, out: TextIO | None = None) -> T:
    """Run a progress generator to the end, drawing a console bar on stderr."""
    out = out or sys.stderr
    draw = bar and out.isatty()
    last_line = ""
    try:
        while True:
            try:
                event = next(gen)
            except StopIteration as stop:
                return stop.value
            if not bar:
                continue
            line = _bar_line(event)
            if draw:
                out.write("\r" + line.ljust(len(last_line)))
                out.flush()
                last_line = line
            elif event.message and line != last_line:
                out.write(line + "\n")
                last_line = line
    finally:
        gen.close()
        if draw and last_line:
            out.write("\n")
            out.flush()


def _bar_line(event: Progress, width: int = 28) -> str:
    if event.fraction is None:
        bar = "[" + "?" * width + "]"
        pct = "  ? %"
    else:
        f = min(max(event.fraction, 0.0), 1.0)
        filled = round(f * width)
        bar = "[" + "#" * filled + "-" * (width - filled) + "]"
        pct = f"{f * 100:5.1f}%"
    text = f"{bar} {pct} {event.stage}"
    if event.message:
        text += f": {event.message}"
    return text[:120]
