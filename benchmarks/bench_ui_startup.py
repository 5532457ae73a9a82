"""The app's first window from process start, and every view's first paint, as the user sees
them (medians over fresh processes).

Two measurements, each in a fresh process that starts the real app through the `forgeplanner`
command's entry point (`forgeplanner gui --view KEY`; offscreen platform; an empty
FORGEPLANNER_HOME = a first start):

- first window: process start (the parent's clock just before it spawns the interpreter) to
  the end of the main window's first paint, starting on each view in turn (`gui --view KEY`).
  Goal: <= 1.5 s.
  Also reported: the process's CPU time (all threads) at that moment, which a loaded machine
  inflates far less than the wall time.
- first paint: in a running app whose window has painted, the time from asking for a view that
  was never opened (what a sidebar click does) to the end of that page's first paint; and to
  "ready" (its background work done and its results drawn). Goal: first paint <= 1.0 s.

"End of a paint" is when the event loop comes back after the window's UpdateRequest (Qt paints
every dirty widget of a window while handling that one event), seen by an event filter.

    .venv/bin/python benchmarks/bench_ui_startup.py [--reps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VIEWS = ("hardware", "models", "fit", "recommend", "cluster", "platform", "bench", "plan")
WINDOW_GOAL_S = 1.5
PAINT_GOAL_S = 1.0
ROOT = Path(__file__).resolve().parents[1]

# Runs in the child process: the real app with an event filter that reports paints.
CHILD = r"""
import json, sys, time
start_view, mode = sys.argv[1], sys.argv[2]
import ui.app as A
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

def emit(name, **kw):
    cpu = time.process_time()  # every thread of this process: less sensitive to other load
    print(json.dumps(dict(event=name, wall=time.time(), cpu=cpu, **kw)), flush=True)

class PaintWatch(QObject):
    def __init__(self):
        super().__init__()
        self.waiting = None  # callback for the next completed paint
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.UpdateRequest and self.waiting is not None:
            cb, self.waiting = self.waiting, None
            QTimer.singleShot(0, cb)  # runs once this paint has finished
        return False

watch = PaintWatch()
orig_show = A.MainWindow.show

def idle(window):
    app = QApplication.instance()
    page = window.page(window.current_view_key() or "")
    busy = getattr(page, "busy", None)
    return window.ctx.pool.activeThreadCount() == 0 and not (callable(busy) and busy())

def wait_idle(window, then, deadline):
    if idle(window) or time.monotonic() > deadline:
        then()
    else:
        QTimer.singleShot(5, lambda: wait_idle(window, then, deadline))

def next_view(window, todo):
    if not todo:
        QApplication.instance().quit()
        return
    key = todo.pop(0)
    t0 = time.perf_counter()
    def painted():
        t1 = time.perf_counter()
        def ready():
            emit("view", key=key, first_paint_s=t1 - t0, ready_s=time.perf_counter() - t0)
            QTimer.singleShot(50, lambda: next_view(window, todo))
        wait_idle(window, ready, time.monotonic() + 15)
    watch.waiting = painted
    window.show_view(key)
    window.update()

def show(self):
    self.installEventFilter(watch)
    def first():
        emit("first_window")
        if mode == "window":
            QApplication.instance().quit()
            return
        todo = [k for k in sys.argv[3].split(",") if k != start_view]
        wait_idle(self, lambda: QTimer.singleShot(50, lambda: next_view(self, todo)),
                  time.monotonic() + 15)
    watch.waiting = first
    orig_show(self)

A.MainWindow.show = show
from forgeplanner.cli.main import main  # the `forgeplanner` command's own entry point
sys.exit(main(["gui", "--view", start_view]))
"""


def _child(env: dict[str, str], view: str, mode: str) -> tuple[float, list[dict]]:
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, view, mode, ",".join(VIEWS)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{view}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return t0, events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # An installed app has its bytecode compiled (pip does it at install): let the interpreter
    # write it here too, and start once before measuring so every measured start finds it.
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        _child(dict(base, FORGEPLANNER_HOME=tmp), "fit", "window")
    window: dict[str, list[float]] = {v: [] for v in VIEWS}
    window_cpu: dict[str, list[float]] = {v: [] for v in VIEWS}
    paint: dict[str, list[float]] = {v: [] for v in VIEWS}
    ready: dict[str, list[float]] = {v: [] for v in VIEWS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for view in VIEWS:
                env = dict(base, FORGEPLANNER_HOME=str(Path(tmp) / f"w{rep}{view}"))
                t0, events = _child(env, view, "window")
                first = next(e for e in events if e["event"] == "first_window")
                window[view].append(first["wall"] - t0)
                window_cpu[view].append(first["cpu"])
            # Every view opened in a running app (started on Hardware, sidebar order).
            env = dict(base, FORGEPLANNER_HOME=str(Path(tmp) / f"p{rep}"))
            _t0, events = _child(env, "hardware", "views")
            for e in events:
                if e["event"] == "view":
                    paint[e["key"]].append(e["first_paint_s"])
                    ready[e["key"]].append(e["ready_s"])
    med = statistics.median
    results = {
        v: {
            "first_window_s": round(med(window[v]), 3),
            "first_window_max_s": round(max(window[v]), 3),
            "first_window_cpu_s": round(med(window_cpu[v]), 3),
            "first_paint_s": round(med(paint[v]), 3) if paint[v] else None,
            "ready_s": round(med(ready[v]), 3) if ready[v] else None,
        }
        for v in VIEWS
    }
    worst_window = max(r["first_window_s"] for r in results.values())
    worst_paint = max((r["first_paint_s"] or 0.0) for r in results.values())
    ok = worst_window <= WINDOW_GOAL_S and worst_paint <= PAINT_GOAL_S
    load = os.getloadavg()
    if args.json:
        print(
            json.dumps(
                {
                    "views": results,
                    "worst_first_window_s": worst_window,
                    "worst_first_paint_s": worst_paint,
                    "goals_s": {"first_window": WINDOW_GOAL_S, "first_paint": PAINT_GOAL_S},
                    "reps": args.reps,
                    "load_average": load,
                },
                indent=2,
            )
        )
    else:
        print(f"medians of {args.reps}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        print(
            f"{'view':<10} {'window s':>9} {'(max)':>7} {'(cpu)':>7} {'paint s':>8} {'ready s':>8}"
        )
        for view, r in results.items():
            paint_s = "-" if r["first_paint_s"] is None else f"{r['first_paint_s']:.3f}"
            ready_s = "-" if r["ready_s"] is None else f"{r['ready_s']:.3f}"
            print(
                f"{view:<10} {r['first_window_s']:>9.3f} {r['first_window_max_s']:>7.3f} "
                f"{r['first_window_cpu_s']:>7.3f} {paint_s:>8} {ready_s:>8}"
            )
        print(
            f"worst first window {worst_window:.3f} s (goal <= {WINDOW_GOAL_S} s), worst first "
            f"paint {worst_paint:.3f} s (goal <= {PAINT_GOAL_S} s): {'OK' if ok else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
