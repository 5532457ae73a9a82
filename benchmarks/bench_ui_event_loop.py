"""Maximum event-loop stall of the desktop app while it works (goal: never over 50 ms).

A 5 ms QTimer heartbeat (Qt.PreciseTimer) runs in the GUI thread; a stall is how late a beat
arrives (gap between beats minus 5 ms). Phases, in one process on the real main window:

0. startup-warmup: the shell's background warm-up (view modules imported, data loaded and
   the engine primed in a worker) right after the first paint, as `ui.app.run` does
1. switch-cold: show every view for the first time (page construction)
2. switch-warm: cycle through the already-built views twice
3. fit-slider: drag the Fit context slider across its range at 60 Hz (one step per 16 ms)
4. sweep: the engine sweep (every catalog configuration x model x quantization x 4 contexts)
   in a worker thread via ui.workers, with a progress bar updated from its progress events

Reports max, p99 and median stall per phase, and the largest GUI-thread CPU time between two
beats (time.thread_time): on a shared machine a stall is our work plus time the OS gave other
processes, the CPU figure is our work alone. Also the cyclic garbage collector's longest
pauses per thread (a collection holds the GIL, so one in a worker stalls the GUI thread too).
Offscreen platform (QT_QPA_PLATFORM=offscreen).

    .venv/bin/python benchmarks/bench_ui_event_loop.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FORGEPLANNER_HOME", tempfile.mkdtemp(prefix="fp-bench-"))

BEAT_MS = 5
GOAL_MS = 50.0


class GcPauses:
    """Durations of the cyclic GC's collections, per thread (gc.callbacks)."""

    def __init__(self) -> None:
        import gc
        import threading

        self._threading = threading
        self._start: dict[int, float] = {}
        self.pauses: list[tuple[float, int, str]] = []  # ms, generation, "gui" | "worker"
        self._gui = threading.get_ident()
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        tid = self._threading.get_ident()
        if phase == "start":
            self._start[tid] = time.perf_counter()
            return
        began = self._start.pop(tid, None)
        if began is not None:
            where = "gui" if tid == self._gui else "worker"
            self.pauses.append(((time.perf_counter() - began) * 1e3, info["generation"], where))

    def report(self) -> dict[str, float]:
        out = {}
        for where in ("gui", "worker"):
            xs = [p[0] for p in self.pauses if p[2] == where]
            out[f"max_{where}_ms"] = round(max(xs), 1) if xs else 0.0
        out["over_10ms"] = sum(1 for p in self.pauses if p[0] > 10)
        return out


class Heartbeat:
    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(BEAT_MS)
        self.timer.timeout.connect(self._beat)
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.phase = "idle"
        self.stalls: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def start(self) -> None:
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.timer.start()

    def _beat(self) -> None:
        now = time.perf_counter()
        cpu = time.thread_time()
        late = max(0.0, (now - self.last) * 1e3 - BEAT_MS)
        self.stalls.setdefault(self.phase, []).append(late)
        # GUI-thread CPU time between two beats: the part of a stall that is our own work
        # (the rest is the OS running other processes on this shared 2-core machine).
        self.cpu.setdefault(self.phase, []).append((cpu - self.last_cpu) * 1e3)
        self.last = now
        self.last_cpu = cpu

    def set_phase(self, name: str) -> None:
        self.phase = name


def run_for(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.0005)


def pump_until(app, cond, timeout: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    poll.timeout.connect(lambda: loop.quit() if cond() else None)
    poll.start()
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec()
    poll.stop()


def schedule(app, steps: list, spacing_ms: int) -> None:
    """Run each callable from the event loop, `spacing_ms` apart, then return."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    for i, step in enumerate(steps):
        QTimer.singleShot(spacing_ms * (i + 1), step)
    QTimer.singleShot(spacing_ms * (len(steps) + 2), loop.quit)
    loop.exec()


def sweep_job(hosts, models, contexts):
    """The engine sweep as a progress generator: one model per step."""

    def job(token):
        from forgeplanner.bench.progress import Progress
        from forgeplanner.domain.estimates import RunOptions
        from forgeplanner.engine.sweep import sweep

        total = 0
        for i, m in enumerate(models):
            if token.is_set():
                return total
            if "gguf" not in m.formats:
                continue
            res = sweep(hosts, [m], contexts, RunOptions())
            total += res.evaluations
            yield Progress("sweep", (i + 1) / len(models), m.id)
        return total

    return job


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from PySide6.QtWidgets import QProgressBar

    from ui.app import MainWindow, create_application, preload_before_show, quiet_offscreen_noise
    from ui.context import AppContext
    from ui.views import VIEW_KEYS
    from ui.workers import start_worker

    gc_pauses = GcPauses()
    load_before = os.getloadavg()[0]
    app = create_application()
    quiet_offscreen_noise()
    ctx = AppContext()
    window = MainWindow(ctx, store_settings=False)
    window.resize(1280, 800)
    preload_before_show()  # as ui.app.run does before the window shows
    window.show()
    hb = Heartbeat()
    run_for(app, 0.2)
    hb.start()
    hb.set_phase("startup-warmup")
    window.start_warmup()  # as ui.app.run does right after the first paint
    pump_until(app, lambda: ctx.pool.activeThreadCount() == 0, 20)
    run_for(app, 0.3)

    # 1-2: switching views
    def cold(key: str) -> None:
        hb.set_phase(f"cold:{key}")
        window.show_view(key)

    schedule(app, [lambda k=k: cold(k) for k in VIEW_KEYS], 400)
    pump_until(app, lambda: ctx.pool.activeThreadCount() == 0, 10)
    hb.stalls["switch-cold"] = [x for k in VIEW_KEYS for x in hb.stalls.get(f"cold:{k}", [])]
    hb.cpu["switch-cold"] = [x for k in VIEW_KEYS for x in hb.cpu.get(f"cold:{k}", [])]
    hb.set_phase("switch-warm")
    schedule(app, [lambda k=k: window.show_view(k) for k in VIEW_KEYS * 2], 120)

    # 3: Fit slider at 60 Hz
    fit = window.show_view("fit")
    run_for(app, 0.3)
    hb.set_phase("fit-slider")
    slider = fit.context_slider
    positions = list(range(slider.minimum(), slider.maximum() + 1))
    positions = positions + positions[::-1]
    schedule(app, [lambda v=v: slider.setValue(v) for v in positions], 16)
    pump_until(app, lambda: not fit.busy(), 5)

    # 4: sweep in a worker
    from forgeplanner.host import host_from_chip

    cat = ctx.catalog
    hosts = [
        (cid, host_from_chip(cat.chips[cfg.chip_id], cfg.memory_gb, config=cfg))
        for cid, cfg in cat.configs.items()
    ]
    models = list(ctx.models.all())
    bar = QProgressBar()
    bar.setRange(0, 1000)
    window.statusBar().addPermanentWidget(bar)
    run_for(app, 0.3)  # let the window re-lay out around the new bar before measuring
    done: list = []
    result: list = []
    hb.set_phase("sweep")
    t0 = time.perf_counter()
    start_worker(
        ctx.pool,
        sweep_job(hosts, models, [2048, 8192, 32768, 131072]),
        on_progress=lambda p: bar.setValue(int(p.fraction * 1000)),
        on_result=result.append,
        on_finished=lambda: done.append(True),
    )
    pump_until(app, lambda: bool(done), 120)
    sweep_s = time.perf_counter() - t0
    hb.set_phase("idle-after")
    run_for(app, 0.2)
    hb.timer.stop()

    report = {}
    for phase in ("startup-warmup", "switch-cold", "switch-warm", "fit-slider", "sweep"):
        xs = sorted(hb.stalls.get(phase, [0.0]))
        report[phase] = {
            "beats": len(xs),
            "max_ms": round(xs[-1], 2),
            "p99_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 2),
            "median_ms": round(statistics.median(xs), 2),
            "max_gui_cpu_ms": round(max(hb.cpu.get(phase, [0.0])), 2),
        }
    report["cold-by-view"] = {
        k: (
            round(max(hb.stalls.get(f"cold:{k}", [0.0])), 1),
            round(max(hb.cpu.get(f"cold:{k}", [0.0])), 1),
        )
        for k in VIEW_KEYS
    }
    report["gc"] = gc_pauses.report()
    report["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    report["sweep"]["evaluations"] = result[0] if result else None
    report["sweep"]["seconds"] = round(sweep_s, 2)
    window.close()
    ctx.shutdown()
    worst = max(report[p]["max_ms"] for p in ("switch-warm", "fit-slider", "sweep"))
    if args.json:
        print(json.dumps({"phases": report, "goal_ms": GOAL_MS}, indent=2))
    else:
        print(
            f"{'phase':<15} {'beats':>6} {'max ms':>8} {'p99 ms':>8} {'median ms':>10} "
            f"{'max GUI CPU ms':>15}"
        )
        for phase, r in report.items():
            if phase in ("cold-by-view", "gc", "load_average"):
                continue
            print(
                f"{phase:<15} {r['beats']:>6} {r['max_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{r['median_ms']:>10.2f} {r['max_gui_cpu_ms']:>15.2f}"
            )
        print("first open, max stall / max GUI CPU by view (ms):", report["cold-by-view"])
        g = report["gc"]
        print(
            f"GC pauses: longest {g['max_gui_ms']} ms in the GUI thread, {g['max_worker_ms']} ms "
            f"in workers; {g['over_10ms']} over 10 ms"
        )
        print(
            f"load average before / after the run: {report['load_average'][0]} / "
            f"{report['load_average'][1]} ({os.cpu_count()} cores)"
        )
        print(
            f"sweep: {report['sweep']['evaluations']} evaluations in "
            f"{report['sweep']['seconds']} s in a worker"
        )
        print(f"goal: max stall <= {GOAL_MS} ms")
    return 0 if worst <= GOAL_MS and report["switch-cold"]["max_ms"] <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
