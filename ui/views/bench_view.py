"""Benchmarks view: run benchmarks on this machine, see them beside their estimates, calibrate,
and walk the lab protocols.

- Run: runner (built-in, llama.cpp, Ollama), model (a catalog model benchmarked as a
  random-weight GGUF of its shape, or a GGUF file), a progress bar, a live plot of the values
  the run reports, Cancel. The run is the core's progress generator
  (forgeplanner.bench.session.record_*) driven by `ui.workers` in the thread pool, so the window
  never freezes and Cancel stops the tool process.
- History: every stored run with its machine fingerprint, estimate, measurement and error.
- Estimate vs measured: a scatter of decode and prefill tokens/s against the diagonal (hover a
  dot for its run).
Every figure is labelled with its unit (`forgeplanner.viewstate.vocabulary.METRICS`); a stored
run tells the Plan view's run list (`ctx.runs_changed`), so it needs no Refresh.
- Calibrate: fit this machine from its llama.cpp runs and show the error before and after.
- Labs: L-001 / L-002 as guided steps (procedure, command, recording sheet, observation
  prompts); "Run lab" runs what can run here and stores the lab record.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.domain.runtime import Runtime
from forgeplanner.viewstate.vocabulary import metric_label, metric_unit, metric_words
from ui import persist, theme
from ui.charts import HoverTips, make_plot, nearest, pg
from ui.context import AppContext
from ui.errors import show_error
from ui.table_model import Column, FrameTable
from ui.widgets import after_first_paint, defer
from ui.workers import start_worker

RUNNERS = (
    ("Built-in (memory bandwidth, compute)", "builtin"),
    ("llama.cpp (llama-bench)", Runtime.LLAMA_CPP.value),
    ("Ollama", Runtime.OLLAMA.value),
)
SYNTHETIC_MODELS = ("qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-1.5b", "llama-3.2-3b", "qwen2.5-3b")
SYNTHETIC_QUANTS = ("Q8_0", "Q4_0", "F16")


def _f(v: Any, fmt: str = "{:.2f}") -> str:
    return "" if v is None else fmt.format(v)


def _fmt(fmt: str) -> Any:
    return lambda v: fmt.format(v)


# Raw numbers in the frame; a missing figure reads "" as before (not "unknown": a run that
# did not measure prefill is not an unknown fact).
HISTORY_COLUMNS = [
    Column("id", "Run"),
    Column("started", "Started (UTC)"),
    Column("runner", "Runner"),
    Column("status", "Status"),
    Column("model", "Model"),
    Column("decode_tps", "Decode (tokens/s)", _fmt("{:.2f}"), missing=""),
    Column("estimate_tps", "Estimated decode (tokens/s)", _fmt("{:.2f}"), missing=""),
    Column("error_pct", "Decode error", _fmt("{:+.1f} %"), "measured vs estimate", missing=""),
    Column("prefill_tps", "Prefill (tokens/s)", _fmt("{:.1f}"), missing=""),
    Column("copy_gbps", "Memory copy (GB/s)", _fmt("{:.1f}"), missing=""),
    Column("matmul_gflops", "Compute (GFLOP/s)", _fmt("{:.1f}"), missing=""),
    Column("load", "Load", tooltip="quiet or noisy: the other processes' load during the run"),
    Column("machine", "Machine"),
]
SHEET_COLUMNS = [
    Column("label", "Recording sheet"),
    Column("unit", "Unit"),
    Column("value", "Value", missing=""),
]


def history_frame(runs: list[Any]) -> Any:
    """The History table's rows (raw values) of stored runs, newest first as listed."""
    from forgeplanner.bench.fingerprint import describe
    from forgeplanner.measurement.load import load_summary

    rows = []
    for r in runs:
        m, e, err = r.measured or {}, r.estimate or {}, r.error_pct or {}
        rows.append({
            "id": r.id, "started": r.started_at.strftime("%Y-%m-%d %H:%M"), "runner": r.runner,
            "status": r.status, "model": (r.model_ref or "").rsplit("/", 1)[-1],
            "decode_tps": m.get("decode_tps"), "estimate_tps": e.get("decode_tps"),
            "error_pct": err.get("decode_tps"), "prefill_tps": m.get("prefill_tps"),
            "copy_gbps": m.get("copy_gbps"), "matmul_gflops": m.get("matmul_gflops"),
            "load": load_summary(r.measured) if r.status == "ok" else "",
            "machine": describe(r.fingerprint),
        })  # fmt: skip
    return rows


class BenchView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.worker: Any = None
        self.last_result: Any = None
        self.last_error: str | None = None
        self.builtin_config: Any = None  # None = BuiltinConfig() defaults (tests shrink it)
        self.lab_options: dict[str, Any] = {}
        self._live_x: list[float] = []
        self._live_y: list[float] = []
        self._live_metric: str | None = None
        self._history_runs: list[Any] = []
        self._history_generation = 0
        self._history_worker: Any = None
        self._build()
        self._show_lab(self.lab_combo.currentText())
        persist.restore(self, "bench")
        self._first_pending = True
        after_first_paint(self, self._first_fill)

    def _first_fill(self) -> None:
        self._ensure_live_plot()
        self._first_pending = False
        self._load_history_in_background()
        defer(self, self._ensure_scatter)

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_run_tab(), "Run")
        self.tabs.addTab(self._build_history_tab(), "History")
        # The scatter tab's plot is built on a later event-loop pass (or when first needed):
        # opening the view then costs one plot's construction, not two.
        self._scatter_page = QWidget()
        self._scatter_page.setLayout(QVBoxLayout())
        self._scatter_page.layout().setContentsMargins(0, 0, 0, 0)
        self.scatter_plot: Any = None
        self.tabs.addTab(self._scatter_page, "Estimate vs measured")
        self.tabs.addTab(self._build_lab_tab(), "Labs")
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)

    def _build_run_tab(self) -> QWidget:
        box = QGroupBox("Benchmark")
        form = QFormLayout(box)
        self.runner_combo = QComboBox()
        for label, value in RUNNERS:
            self.runner_combo.addItem(label, value)
        self.model_combo = QComboBox()
        self.model_combo.addItems(SYNTHETIC_MODELS)
        self.quant_combo = QComboBox()
        self.quant_combo.addItems(SYNTHETIC_QUANTS)
        self.gguf_edit = QLineEdit()
        self.gguf_edit.setPlaceholderText("or a GGUF file (overrides the model)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        gguf_row = QHBoxLayout()
        gguf_row.addWidget(self.gguf_edit, 1)
        gguf_row.addWidget(browse)
        self.ollama_model = QLineEdit("llama3.1:8b")
        self.ollama_url = QLineEdit("http://localhost:11434")
        self.prompt_spin = QSpinBox()
        self.prompt_spin.setRange(1, 65536)
        self.prompt_spin.setValue(512)
        self.gen_spin = QSpinBox()
        self.gen_spin.setRange(1, 8192)
        self.gen_spin.setValue(128)
        self.reps_spin = QSpinBox()
        self.reps_spin.setRange(1, 50)
        self.reps_spin.setValue(5)
        form.addRow("Runner", self.runner_combo)
        form.addRow("Model (synthetic GGUF of its shape)", self.model_combo)
        form.addRow("File type", self.quant_combo)
        form.addRow("GGUF file", gguf_row)
        form.addRow("Ollama model", self.ollama_model)
        form.addRow("Ollama URL", self.ollama_url)
        form.addRow("Prompt tokens", self.prompt_spin)
        form.addRow("Generated tokens", self.gen_spin)
        form.addRow("Repetitions", self.reps_spin)
        self.runner_combo.currentIndexChanged.connect(
            lambda _i: self._runner_changed(self.runner_combo.currentData())
        )

        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.start_run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)

        # The live plot is built after the page's first paint (pyqtgraph's import and the
        # plot's first paint are the page's most expensive part): a placeholder until then.
        self._live_box = QWidget()
        self._live_box.setLayout(QVBoxLayout())
        self._live_box.layout().setContentsMargins(0, 0, 0, 0)
        self.live_plot: Any = None
        self.result_text = QPlainTextEdit()
        self.result_text.setReadOnly(True)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(box)
        ll.addLayout(buttons)
        ll.addWidget(self.status_label)
        ll.addStretch(1)
        self.run_right_split = QSplitter(Qt.Orientation.Vertical)
        self.run_right_split.addWidget(self._live_box)
        self.run_right_split.addWidget(self.result_text)
        # The plot (built after the first paint) gets most of the height, the text the rest.
        self._live_box.setMinimumHeight(200)
        self.run_right_split.setStretchFactor(0, 3)
        self.run_right_split.setStretchFactor(1, 1)
        self.run_split = QSplitter()
        self.run_split.addWidget(left)
        self.run_split.addWidget(self.run_right_split)
        self.run_split.setStretchFactor(1, 1)
        self._runner_changed(self.runner_combo.currentData())
        return self.run_split

    def _build_history_tab(self) -> QWidget:
        self.history = FrameTable(HISTORY_COLUMNS)
        self.history_model = self.history.source
        self.history.selectionModel().selectionChanged.connect(self._history_selected)
        self.history_detail = QPlainTextEdit()
        self.history_detail.setReadOnly(True)
        self.calibrate_button = QPushButton("Calibrate this machine")
        self.calibrate_button.clicked.connect(self.start_calibrate)
        self.calibration_label = QLabel(
            "Calibration fits this machine's effective bandwidth, compute and per-token cost "
            "from its llama.cpp runs; later estimates for this machine use them."
        )
        self.calibration_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.calibrate_button)
        row.addStretch(1)
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addLayout(row)
        lay.addWidget(self.calibration_label)
        self.history_split = QSplitter(Qt.Orientation.Vertical)
        self.history_split.addWidget(self.history)
        self.history_split.addWidget(self.history_detail)
        lay.addWidget(self.history_split, 1)
        return w

    def _ensure_live_plot(self) -> None:
        if self.live_plot is not None:
            return
        p = pg()
        self.live_plot = make_plot(
            "livePlot", left=("Measurement", ""), bottom=("Measurement number", ""),
            title="This run",
        )  # fmt: skip
        self.live_curve = self.live_plot.plot(
            [], [], pen=p.mkPen(theme.series_colour(210), width=2), symbol="o", symbolSize=6,
            symbolBrush=theme.series_colour(210),
        )  # fmt: skip
        self.live_hint = p.TextItem(
            "Run a benchmark:\nits measurements appear here",
            color=theme.muted_text(), anchor=(0.5, 0.5),
        )  # fmt: skip
        self.live_plot.addItem(self.live_hint)
        self.live_plot.getPlotItem().hideAxis("left")
        self.live_plot.getPlotItem().hideAxis("bottom")
        self.live_tips = HoverTips(self.live_plot, self._live_tip)
        self._live_box.layout().addWidget(self.live_plot)

    def _ensure_scatter(self) -> None:
        if self.scatter_plot is None:
            self._scatter_page.layout().addWidget(self._build_scatter_tab())
            self._update_scatter(self._history_runs)

    def _build_scatter_tab(self) -> QWidget:
        p = pg()
        self.scatter_plot = make_plot(
            "estimateScatter", left=("Measured", "tokens/s"), bottom=("Estimated", "tokens/s"),
            title="Estimate against measurement", interactive=True,
        )  # fmt: skip
        self.scatter_plot.setLogMode(x=True, y=True)
        self.diagonal = self.scatter_plot.plot(
            [], [], pen=p.mkPen(theme.muted_text(), style=Qt.PenStyle.DashLine)
        )
        self.scatter_decode = p.ScatterPlotItem(brush=theme.series_colour(210), size=9)
        self.scatter_prefill = p.ScatterPlotItem(brush=theme.series_colour(30), size=9)
        self.scatter_plot.addItem(self.scatter_decode)
        self.scatter_plot.addItem(self.scatter_prefill)
        self.scatter_tips = HoverTips(self.scatter_plot, self._scatter_tip)
        self.scatter_note = QLabel("")
        self.scatter_note.setWordWrap(True)
        self.scatter_legend = QLabel()
        self._scatter_legend()
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addWidget(self.scatter_plot, 1)
        lay.addWidget(self.scatter_legend)
        lay.addWidget(self.scatter_note)
        return w

    def _scatter_legend(self) -> None:
        # Under the plot, so it never covers a dot.
        d, f = theme.series_colour(210).name(), theme.series_colour(30).name()
        self.scatter_legend.setText(
            f"<span style='color:{d}'>&#9679;</span> decode &nbsp; "
            f"<span style='color:{f}'>&#9679;</span> prefill &nbsp; dashed: estimate = measured"
        )

    def _scatter_tip(self, x: float, y: float) -> str | None:
        pts = getattr(self, "scatter_runs", [])
        if not pts:
            return None
        import math

        logs = [(math.log10(e), math.log10(m)) for _, _, e, m in pts]
        i = nearest(logs, x, y, self.scatter_plot)
        if i is None:
            return None
        run_id, metric, est, meas = pts[i]
        err = 100.0 * (meas - est) / est
        return (
            f"run {run_id}: {metric_label(metric)}\nestimated {est:,.1f}, measured {meas:,.1f} "
            f"({err:+.1f} %)"
        )

    def _live_tip(self, x: float, y: float) -> str | None:
        pts = list(zip(self._live_x, self._live_y, strict=True))
        i = nearest(pts, x, y, self.live_plot)
        if i is None or self._live_metric is None:
            return None
        return f"{metric_label(self._live_metric)}: measurement {i + 1} = {pts[i][1]:,.2f}"

    def _build_lab_tab(self) -> QWidget:
        from forgeplanner.labs import LABS

        self.lab_combo = QComboBox()
        self.lab_combo.addItems(list(LABS))
        self.lab_combo.currentTextChanged.connect(self._show_lab)
        self.lab_title = QLabel("")
        self.lab_title.setWordWrap(True)
        self.lab_steps = QListWidget()
        self.lab_steps.currentRowChanged.connect(self._lab_step_selected)
        self.lab_step_text = QPlainTextEdit()
        self.lab_step_text.setReadOnly(True)
        self.lab_sheet = FrameTable(SHEET_COLUMNS, sortable=False)
        self.lab_sheet_model = self.lab_sheet.source
        # The answers (manual steps, fields you fill, sign-off, observation prompts) as the
        # same TOML an answers file holds: edited here, used by Run and Save answers.
        self.lab_prompts = QPlainTextEdit()
        self.lab_prompts.setToolTip("Your answers: fill the texts, then Run lab or Save answers")
        self.lab_run_button = QPushButton("Run lab (what can run here)")
        self.lab_run_button.clicked.connect(self.start_lab)
        self.lab_save_button = QPushButton("Save answers")
        self.lab_save_button.setToolTip("Add these answers to the last lab record")
        self.lab_save_button.clicked.connect(self.save_lab_answers)
        self.lab_export_button = QPushButton("Export record...")
        self.lab_export_button.clicked.connect(self._export_lab_dialog)
        self.lab_record_id: int | None = None
        self.lab_ladder = QCheckBox("include the llama.cpp ladder (L-002, minutes)")
        self.lab_ladder.setChecked(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Lab"))
        top.addWidget(self.lab_combo)
        top.addWidget(self.lab_run_button)
        top.addWidget(self.lab_save_button)
        top.addWidget(self.lab_export_button)
        top.addWidget(self.lab_ladder)
        top.addStretch(1)
        steps = QSplitter(Qt.Orientation.Vertical)
        steps.addWidget(self.lab_steps)
        steps.addWidget(self.lab_step_text)
        sheet = QSplitter(Qt.Orientation.Vertical)
        sheet.addWidget(self.lab_sheet)
        sheet.addWidget(self.lab_prompts)
        split = QSplitter()
        split.addWidget(steps)
        split.addWidget(sheet)
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.addLayout(top)
        lay.addWidget(self.lab_title)
        lay.addWidget(split, 1)
        return w

    # -- run ---------------------------------------------------------------------------------
    def _runner_changed(self, runner: str | None) -> None:
        llama = runner == Runtime.LLAMA_CPP
        for w in (self.model_combo, self.quant_combo, self.gguf_edit):
            w.setEnabled(llama)
        for w in (self.ollama_model, self.ollama_url):
            w.setEnabled(runner == Runtime.OLLAMA)
        for w in (self.prompt_spin, self.gen_spin):
            w.setEnabled(llama)
        self.reps_spin.setEnabled(runner != "builtin")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "GGUF file", "", "GGUF (*.gguf)")
        if path:
            self.gguf_edit.setText(path)

    def _job(self):
        """The progress generator for the chosen runner (runs in the worker thread)."""
        from forgeplanner.bench import session

        store = self.ctx.store()
        runner = self.runner_combo.currentData()
        if runner == "builtin":
            from forgeplanner.bench.builtin import BuiltinConfig

            cfg = self.builtin_config or BuiltinConfig()
            return lambda token: session.record_builtin(store, cfg, token)
        if runner == Runtime.OLLAMA:
            from forgeplanner.bench.ollama_runner import OllamaSpec

            spec = OllamaSpec(
                self.ollama_model.text().strip(),
                url=self.ollama_url.text().strip(),
                repetitions=self.reps_spin.value(),
            )
            return lambda token: session.record_ollama(store, spec, token)
        gguf = self.gguf_edit.text().strip()
        model, quant = self.model_combo.currentText(), self.quant_combo.currentText()
        p, n, r = self.prompt_spin.value(), self.gen_spin.value(), self.reps_spin.value()

        def job(token):
            from forgeplanner.bench.llamacpp import LlamaBenchSpec

            if gguf:
                target = session.target_from_gguf(gguf)
            else:
                target = yield from session.target_from_model(model, quant)
            spec = LlamaBenchSpec(str(target.gguf_path), n_prompt=(p,), n_gen=(n,), repetitions=r)
            return (yield from session.record_llamacpp(store, target, spec, token))

        return job

    def start_run(self) -> None:
        if self.worker is not None:
            return
        self._ensure_live_plot()
        self._live_x, self._live_y, self._live_metric = [], [], None
        self.live_curve.setData([], [])
        self.live_hint.setText("Starting...")
        self._start(self._job(), "run")

    def _start(self, job, kind: str) -> None:
        self.last_result = None
        self.last_error = None
        self.progress.setValue(0)
        self.run_button.setEnabled(False)
        self.lab_run_button.setEnabled(False)
        self.calibrate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status_label.setText("Starting...")
        self.worker = start_worker(
            self.ctx.pool,
            job,
            on_progress=self._on_progress,
            on_result=lambda res, k=kind: self._on_result(res, k),
            on_error=self._on_error,
            on_cancelled=self._on_cancelled,
            on_finished=self._on_finished,
        )

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("Cancelling...")

    def _on_progress(self, ev: Any) -> None:
        self._ensure_live_plot()
        if ev.fraction is not None:
            self.progress.setValue(int(ev.fraction * 1000))
        self.status_label.setText(f"{ev.stage}: {ev.message}" if ev.message else ev.stage)
        if ev.metric and ev.value is not None:
            if ev.metric != self._live_metric:
                self._live_metric = ev.metric
                self._live_x, self._live_y = [], []
                pi = self.live_plot.getPlotItem()
                pi.showAxis("left")
                pi.showAxis("bottom")
                pi.getAxis("left").setLabel(metric_label(ev.metric))
                pi.setTitle(f"This run: {metric_label(ev.metric, with_unit=False)}")
                self.live_hint.setText("")
            self._live_x.append(float(len(self._live_x) + 1))
            self._live_y.append(float(ev.value))
            self.live_curve.setData(self._live_x, self._live_y)

    def _on_result(self, res: Any, kind: str) -> None:
        self.last_result = res
        self.progress.setValue(1000)
        if kind == "run":
            from forgeplanner.bench.session import run_summary

            s = run_summary(res)
            self.result_text.setPlainText(_describe_run(s))
            self._show_run_chart(s)
            self.status_label.setText(f"Run {res.id} stored ({res.status}).")
            self.ctx.runs_changed.emit()
        elif kind == "calibrate":
            self._show_calibration(res)
        elif kind == "lab":
            self._show_lab_record(res)
        self.refresh_history()
        status = getattr(self.ctx, "status", None)
        if status is not None:
            status(self.status_label.text())

    def _show_run_chart(self, s: dict[str, Any]) -> None:
        """After a run: its measurements, when no live series showed them (an Ollama or
        llama.cpp run reports its figures at the end)."""
        if self._live_y:
            return
        measured = s.get("measured") or {}
        values = [(k, float(v)) for k, v in measured.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)
                  and metric_unit(k) == "tokens/s"]  # fmt: skip
        if not values:
            self.live_hint.setText("This run reported no series to draw; see its figures below.")
            return
        self._live_metric = "decode_tps"
        self._live_x = [float(i + 1) for i in range(len(values))]
        self._live_y = [v for _, v in values]
        pi = self.live_plot.getPlotItem()
        pi.showAxis("left")
        pi.showAxis("bottom")
        pi.getAxis("left").setLabel("Speed (tokens/s)")
        pi.getAxis("bottom").setTicks([[(i + 1, metric_label(k, False)) for i, (k, _) in
                                        enumerate(values)]])  # fmt: skip
        pi.setTitle(f"Run {s.get('id')}")
        self.live_hint.setText("")
        self.live_curve.setData(self._live_x, self._live_y)

    def _on_error(self, err: Any) -> None:
        self.last_error = err.reason
        self.status_label.setText(f"Failed: {err.reason}")
        show_error(self, err.reason, err.details)
        self.refresh_history()

    def _on_cancelled(self) -> None:
        self.status_label.setText("Cancelled.")
        self.refresh_history()

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.lab_run_button.setEnabled(True)
        self.calibrate_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    # -- history, scatter, calibration --------------------------------------------------------
    def _runs(self) -> list[Any]:
        from forgeplanner.store import BenchRunRepo

        store = self.ctx.store()
        with store.session() as s:
            return BenchRunRepo(s).list(limit=500)

    def refresh_history(self) -> None:
        """Re-read the stored runs now (after a run, a calibration or Refresh)."""
        self._history_generation += 1  # a background load still running is now stale
        runs = self._runs()
        self._apply_history(runs, history_frame(runs))

    def _load_history_in_background(self) -> None:
        """First fill: the store query and the frame in a worker, so opening the view does
        not wait for the database."""
        generation = self._history_generation
        model = self.history_model

        def job(token: Any):
            yield "history"
            runs = self._runs()
            return runs, model.prepare(history_frame(runs))

        def done(payload: Any) -> None:
            if generation == self._history_generation:
                self._apply_history(*payload)

        def finished() -> None:
            self._history_worker = None

        self._history_worker = start_worker(
            self.ctx.pool, job, on_result=done, on_error=self._history_failed,
            on_finished=finished, owner=self,
        )  # fmt: skip

    def _history_failed(self, err: Any) -> None:
        self.history_detail.setPlainText(f"The stored runs could not be read: {err.reason}")

    def _apply_history(self, runs: list[Any], frame: Any) -> None:
        self._history_runs = runs
        self.history.set_frame(frame)
        self._update_scatter(runs)

    def _update_scatter(self, runs: list[Any]) -> None:
        if self.scatter_plot is None:
            self._ensure_scatter()  # builds the tab, then draws `self._history_runs`
            if runs is self._history_runs:
                return
        pts: dict[str, list[tuple[float, float]]] = {"decode_tps": [], "prefill_tps": []}
        for r in runs:
            if r.status != "ok" or not r.estimate or not r.measured:
                continue
            for k in pts:
                est, meas = r.estimate.get(k), r.measured.get(k)
                if est and meas and est > 0 and meas > 0:
                    pts[k].append((est, meas))
        self.scatter_points = pts
        self.scatter_runs = [
            (r.id, k, r.estimate[k], r.measured[k])
            for r in runs
            if r.status == "ok" and r.estimate and r.measured
            for k in ("decode_tps", "prefill_tps")
            if r.estimate.get(k) and r.measured.get(k) and r.estimate[k] > 0 and r.measured[k] > 0
        ]
        self.scatter_decode.setData(
            [p[0] for p in pts["decode_tps"]], [p[1] for p in pts["decode_tps"]]
        )
        self.scatter_prefill.setData(
            [p[0] for p in pts["prefill_tps"]], [p[1] for p in pts["prefill_tps"]]
        )
        allv = [v for series in pts.values() for p in series for v in p]
        if allv:
            lo, hi = min(allv) * 0.8, max(allv) * 1.25
            self.diagonal.setData([lo, hi], [lo, hi])
            self.scatter_note.setText(
                f"{len(pts['decode_tps'])} decode and {len(pts['prefill_tps'])} prefill "
                "measurements; on the dashed line the estimate was exact, above it the machine "
                "was faster than estimated."
            )
        else:
            self.diagonal.setData([], [])
            self.scatter_note.setText("No runs with an estimate yet: run llama.cpp or Ollama.")

    def _history_selected(self, *_: Any) -> None:
        rows = self.history.selected_source_rows()
        if not rows or rows[0] >= len(self._history_runs):
            return
        run = self._history_runs[rows[0]]
        from forgeplanner.bench.session import run_summary

        self.history_detail.setPlainText(_describe_run(run_summary(run), full=True))

    def start_calibrate(self) -> None:
        if self.worker is not None:
            return
        store = self.ctx.store()

        def job(token):
            from forgeplanner.bench.calibrate import calibrate
            from forgeplanner.bench.fingerprint import machine_fingerprint
            from forgeplanner.bench.progress import Progress

            yield Progress("calibrate", 0.1, "fitting this machine's runs")
            return calibrate(store, machine_fingerprint())

        self._start(job, "calibrate")

    def _show_calibration(self, rec: Any) -> None:
        d = rec.to_dict()
        b, a = rec.error_before, rec.error_after
        self.calibration_label.setText(
            f"Calibration {rec.id} (runs {', '.join(map(str, rec.run_ids))}): effective "
            f"bandwidth {_f(d['bandwidth_gbps'])} GB/s, compute {_f(d['compute_gflops'], '{:.1f}')}"
            f" GFLOP/s, per-token cost {_f(d['per_token_ms'])} ms. Decode error "
            f"{_f(b.get('decode_tps_mape'), '{:.1f} %')} before -> "
            f"{_f(a.get('decode_tps_mape'), '{:.1f} %')} after; prefill "
            f"{_f(b.get('prefill_tps_mape'), '{:.1f} %')} -> "
            f"{_f(a.get('prefill_tps_mape'), '{:.1f} %')}."
        )
        self.status_label.setText(f"Calibration {rec.id} stored.")

    # -- labs --------------------------------------------------------------------------------
    def _show_lab(self, lab_id: str) -> None:
        from forgeplanner.labs import get_lab

        if not lab_id:
            return
        lab = get_lab(lab_id)
        self._lab = lab
        self.lab_title.setText(f"<b>{lab.id} {lab.title}</b> ({lab.module})<br>{lab.goal}")
        self.lab_steps.clear()
        for i, s in enumerate(lab.steps, 1):
            tag = " [automated]" if s.automated else " [manual]"
            self.lab_steps.addItem(f"{i}. {s.title}{tag}")
        self._set_sheet([""] * len(lab.sheet))
        from forgeplanner.labs.answers import template

        self.lab_prompts.setPlainText(
            "# Observation prompts and manual steps: answer below (TOML)\n" + template(lab)
        )
        self.lab_record_id = None
        self.lab_steps.setCurrentRow(0)

    def _lab_step_selected(self, row: int) -> None:
        if row < 0 or row >= len(self._lab.steps):
            return
        s = self._lab.steps[row]
        text = s.procedure + "".join(f"\n\n$ {c.text}" for c in s.commands)
        if s.macos_only:
            text += "\n\n(needs a Mac for the full procedure)"
        self.lab_step_text.setPlainText(text)

    def _set_sheet(self, values: list[str]) -> None:
        rows = [
            {"label": f.label, "unit": f.unit, "value": v}
            for f, v in zip(self._lab.sheet, values, strict=True)
        ]
        self.lab_sheet.set_frame(rows)

    def _fill_sheet(self, sheet: dict[str, Any]) -> None:
        values = []
        for f in self._lab.sheet:
            v = sheet.get(f.key)
            if isinstance(v, float):
                v = f"{v:.3g}"
            elif isinstance(v, (dict, list)):
                v = f"{len(v)} entries (see the lab record)"
            values.append("" if v is None else str(v))
        self._set_sheet(values)

    def _mark_steps(self, steps: list[dict[str, Any]]) -> None:
        for i, st in enumerate(steps):
            item = self.lab_steps.item(i)
            if item is not None:
                item.setText(f"{i + 1}. {st['title']} [{st['status']}]")

    def _lab_answers(self):
        """The answers in the editor, or None (the error is shown) when they do not parse."""
        from forgeplanner.errors import DataError
        from forgeplanner.labs.answers import parse_answers

        try:
            return parse_answers(
                self.lab_prompts.toPlainText().encode("utf-8"), self._lab, "answers"
            )
        except DataError as exc:
            self.last_error = str(exc)
            self.status_label.setText(f"Answers: {exc}")
            return None

    def _show_lab_record(self, rec: Any) -> None:
        self.lab_record_id = rec.id
        body = rec.body
        missing = body.get("missing") or []
        self.status_label.setText(
            f"Lab record {rec.id} stored ({body.get('status')})"
            + (f"; missing: {', '.join(missing)}" if missing else ".")
        )
        self._fill_sheet(body.get("sheet", {}))
        self._mark_steps(body.get("steps", []))

    def save_lab_answers(self) -> None:
        """Progress saved: the editor's answers go into the last lab record."""
        if self.lab_record_id is None:
            self.status_label.setText("Run the lab first; its record keeps the answers.")
            return
        answers = self._lab_answers()
        if answers is None:
            return
        from forgeplanner.labs.runner import answer_lab

        record_id = self.lab_record_id
        store = self.ctx.store()
        self._start(lambda token: _as_job(lambda: answer_lab(record_id, answers, store)), "lab")

    def export_lab_record(self, path: str) -> Any:
        from datetime import UTC, datetime
        from pathlib import Path

        from forgeplanner.export.lab_report import export_lab

        fmt = Path(path).suffix.lstrip(".").lower()
        fmt = {"markdown": "md", "htm": "html"}.get(fmt, fmt)
        now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        out = export_lab(self.lab_record_id, fmt, path, self.ctx.store(), now)
        self.status_label.setText(f"Exported lab record {self.lab_record_id} to {out}.")
        return out

    def _export_lab_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from forgeplanner.errors import ForgePlannerError

        if self.lab_record_id is None:
            self.status_label.setText("Run the lab first, then export its record.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export lab record", f"{self._lab.id}-record.pdf",
            "PDF (*.pdf);;Markdown (*.md);;HTML (*.html);;Sealed record (*.json)",
        )  # fmt: skip
        if path:
            try:
                self.export_lab_record(path)
            except ForgePlannerError as exc:
                show_error(self, str(exc), "")

    def start_lab(self) -> None:
        if self.worker is not None:
            return
        from forgeplanner.labs.runner import run_lab

        store = self.ctx.store()
        lab_id = self._lab.id
        options = dict(self.lab_options)
        if self.builtin_config is not None:
            options.setdefault("builtin_config", self.builtin_config)
        if not self.lab_ladder.isChecked():
            options["ladder"] = ()
        answers = self._lab_answers()
        if answers is None:
            return
        workdir = None
        if lab_id == "L-003":
            from datetime import UTC, datetime

            from forgeplanner.paths import data_dir

            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            workdir = data_dir() / "labs" / f"L-003-{stamp}"
        self._start(
            lambda token: run_lab(
                lab_id, store, token, options=options, answers=answers, workdir=workdir
            ),
            "lab",
        )

    def shutdown(self) -> None:
        for w in (self.worker, self._history_worker):
            if w is not None:
                w.cancel()

    def busy(self) -> bool:
        return self._first_pending or self._history_worker is not None or self.scatter_plot is None


def _as_job(fn):
    """A plain call as the progress generator the worker drives."""
    result = fn()
    if False:  # pragma: no cover - makes this a generator
        yield None
    return result


def _value(key: str, v: Any) -> str:
    if v is None:
        return "not measured"
    unit = metric_unit(key)
    return f"{v:,.2f} {unit}".strip() if isinstance(v, (int, float)) else str(v)


def _describe_run(s: dict[str, Any], full: bool = False) -> str:
    """A run in readable labels and units (not the JSON keys)."""
    lines = [f"Run {s['id']} ({s['runner']}, {s['status']}), started {s.get('started_at', '')}"]
    if s["runner"] == "builtin":
        for k in ("copy_gbps", "triad_gbps", "matmul_gflops", "decode_sim_tps", "decode_sim_gbps"):
            lines.append(f"{metric_label(k, with_unit=False)}: {_value(k, s.get(k))}")
        est = (s.get("estimate") or {}).get("memory_bandwidth_gbps")
        err = (s.get("error_pct") or {}).get("memory_bandwidth_gbps")
        if est is not None:
            lines.append(
                f"Memory bandwidth estimated (catalog): {_value('memory_bandwidth_gbps', est)}"
                + ("" if err is None else f", error {err:+.1f} %")
            )
    else:
        m, e, err = s["measured"], s["estimate"], s["error_pct"]
        for k in ("decode_tps", "prefill_tps"):
            error = err.get(k)
            if m.get(k) is None and e.get(k) is None:
                continue
            lines.append(
                f"{metric_label(k, with_unit=False)}: measured {_value(k, m.get(k))}, estimated "
                f"{_value(k, e.get(k))}" + ("" if error is None else f", error {error:+.1f} %")
            )
        if e.get("basis"):
            lines.append(f"Estimate basis: {e['basis']}")
        if e.get("bandwidth_basis"):
            lines.append(f"Host bandwidth: {e['bandwidth_basis']}")
    load = s.get("load") or {}
    if load:
        lines.append(
            f"Load during the run: {s.get('load_verdict')}, other processes "
            f"{100 * load.get('other_cpu_share', 0.0):.0f} % of the CPU time"
        )
        lines.extend(f"Noisy: {metric_words(why)}" for why in load.get("reasons") or [])
    else:
        lines.append("Load during the run: not recorded")
    if s.get("message"):
        lines.append(f"Note: {metric_words(s['message'])}")
    if full:
        from forgeplanner.bench.fingerprint import describe

        lines.append(f"Machine: {describe(s.get('fingerprint') or {})}")
        versions = s.get("tool_versions") or {}
        if versions:
            lines.append("Tools: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return "\n".join(lines)


def create_view(ctx: AppContext) -> QWidget:
    return BenchView(ctx)
