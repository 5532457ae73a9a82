"""Fit: will this model run on this machine, at which quantization and context, how fast?

Every number on this page comes from the engine (`forgeplanner.engine.estimate`): one
`estimate(...)` call per change for the selected quantization (memory breakdown, GPU budget,
verdict, sysctl, largest context, speed and their explanations), `decode_curve(...)` for
tokens/s across depth, and `estimate_quants(...)` for the table of every quantization. The
UI only lays the numbers out; it never sizes anything itself.

Responsiveness: one estimate takes well under a millisecond, so the chart follows the context
slider synchronously (measured in benchmarks/bench_ui_fit_slider.py); the every-quantization
table (tens of milliseconds) is debounced and computed in a worker thread. Plot items are
created once and updated in place (`setOpts` / `setData`).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.domain.estimates import (
    KV_TYPES,
    RUNTIMES,
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    Estimate,
    Explanation,
    HostSpec,
    RunOptions,
)
from forgeplanner.domain.units import GiB
from ui import theme
from ui.context import AppContext
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import configure_table, defer, fit_columns
from ui.workers import WorkerError, start_worker

THIS_MACHINE = "__this_machine__"
DEFAULT_MODEL = "llama-3.3-70b"
DEFAULT_MACHINE = "mac-mini-m4-pro-20c-64gb"
DEFAULT_QUANT = "Q4_K_M"
SERIES = (  # key, legend
    ("weights", "Weights"),
    ("kv_cache", "KV cache"),
    ("compute", "Compute buffer"),
    ("runtime", "Runtime"),
    ("os_reserve", "OS reserve"),
)
VERDICT_TEXT = {
    VERDICT_FITS: "Fits",
    VERDICT_RAISED: "Fits with a raised GPU limit",
    VERDICT_NO: "Does not fit",
}
QUANT_DEBOUNCE_MS = 150
CURVE_POINTS = 48


def context_steps(max_context: int) -> list[int]:
    """Slider positions: 256-token multiples spaced geometrically from 512 to the model's
    maximum (fine steps at small contexts, where every 256 tokens matter)."""
    top = max(512, int(max_context or 131072))
    n = 96
    raw = np.geomspace(512, top, n)
    powers = {1 << k for k in range(9, 31) if (1 << k) <= top}  # 512, 1k, 2k, ... 128k
    steps = sorted({max(256, int(np.rint(v / 256)) * 256) for v in raw} | powers | {top})
    return [s for s in steps if s <= top]


def gib(n: int | float | None) -> str:
    return "unknown" if n is None else f"{n / GiB:,.1f} GiB"


def _g(v: float) -> str:
    return f"{v:,.1f}"


QUANT_COLUMNS = [
    Column("quant", "Quantization"),
    Column("verdict", "Verdict", lambda v: VERDICT_TEXT.get(v, v)),
    Column("total_gib", "Total", lambda v: f"{v:,.1f} GiB", "weights + KV + compute + runtime"),
    Column("weights_gib", "Weights", lambda v: f"{v:,.1f} GiB"),
    Column("kv_gib", "KV cache", lambda v: f"{v:,.2f} GiB"),
    Column("headroom_gib", "Headroom", lambda v: f"{v:+,.1f} GiB", "GPU limit - total"),
    Column(
        "max_context",
        "Largest context",
        lambda v: f"{int(v):,}",
        "largest context that fits under the current GPU limit",
        missing="none fits",
    ),
    Column("decode_tps", "Decode t/s", _g, "generation speed at depth 0"),
    Column("prefill_tps", "Prefill t/s", _g, "prompt processing speed"),
    Column("ttft_s", "TTFT", lambda v: f"{v:,.2f} s", "time to first token"),
]


def quants_frame(quants: Any) -> Any:
    """Rows for the every-quantization table, straight from QuantsEstimate."""
    import pandas as pd

    rows = []
    for e in quants.estimates:
        mem = e.fit.memory
        s = e.speed
        rows.append(
            {
                "quant": e.quant,
                "verdict": e.fit.verdict,
                "total_gib": mem.total_bytes / GiB,
                "weights_gib": mem.weights_bytes / GiB,
                "kv_gib": mem.kv_cache_bytes / GiB,
                "headroom_gib": e.fit.headroom_bytes / GiB,
                "max_context": e.max_context_that_fits,
                "decode_tps": None if s is None else s.decode_tps,
                "prefill_tps": None if s is None else s.prefill_tps,
                "ttft_s": None if s is None else s.ttft_s,
                "best": e.quant == quants.best_quant_that_fits,
            }
        )
    return pd.DataFrame(rows)


def _verdict_background(row: dict[str, Any], _col: str) -> Any:
    return theme.verdict_tint(row.get("verdict", ""))


class FitView(QWidget):
    chart_updated = Signal()  # emitted after the charts show the current estimate
    quants_updated = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._hosts: dict[tuple[str, int], HostSpec] = {}
        self._steps: list[int] = []
        self._estimate: Estimate | None = None
        self._quant_worker: Any = None
        self._host_worker: Any = None
        self._quant_generation = 0
        self._quant_busy = False
        self._first_pending = True
        self._curve: list[tuple[int, float]] = []
        self._curve_key: tuple | None = None
        self._curve_drawn = False
        self._mem_top = 0.0
        self._explain_dirty = False
        self._build_controls()
        self._build_outputs()
        self._populate()
        self._connect()
        # The first estimate runs on the next event-loop pass, after the page has painted
        # its frame: opening the view is two short stalls instead of one long one.
        self._first_pending = True
        defer(self, self._first_compute)

    def _first_compute(self) -> None:
        # One piece per event-loop pass, each well under the 50 ms stall budget: the memory
        # plot, the speed plot, then the first estimate and the quantization table's worker.
        self._build_memory_plot()
        defer(self, self._first_compute_2)

    def _first_compute_2(self) -> None:
        self._build_speed_plot()
        self._attach_plots()
        defer(self, self._first_compute_3)

    def _first_compute_3(self) -> None:
        self._first_pending = False
        self.recompute()
        self._debounce.stop()
        self._start_quants()  # first table at once; later ones debounced

    # -- construction --------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.completer().setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.model_combo.completer().setFilterMode(Qt.MatchFlag.MatchContains)
        self.machine_combo = QComboBox()
        self.machine_combo.setEditable(True)
        self.machine_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.machine_combo.completer().setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.machine_combo.completer().setFilterMode(Qt.MatchFlag.MatchContains)
        for combo in (self.model_combo, self.machine_combo):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(18)
        self.runtime_combo = QComboBox()
        for r in RUNTIMES:
            self.runtime_combo.addItem(r, r)
        self.quant_combo = QComboBox()
        self.kv_combo = QComboBox()
        for k in KV_TYPES:
            self.kv_combo.addItem(k, k)
        self.flash = QComboBox()
        for label, value in (("auto (runtime default)", None), ("on", True), ("off", False)):
            self.flash.addItem(label, value)
        self.flash.setToolTip(
            "llama.cpp -fa auto|on|off; auto is resolved per runtime, model and chip by the "
            "engine. A quantized V cache (q8_0, q4_0) needs it on."
        )
        self.wired = QSpinBox()
        self.wired.setRange(0, 2_000_000)
        self.wired.setSingleStep(1024)
        self.wired.setSpecialValueText("default")
        self.wired.setSuffix(" MB")
        self.wired.setToolTip("iogpu.wired_limit_mb in force on the Mac (0 = macOS default)")
        self.context_slider = QSlider(Qt.Orientation.Horizontal)
        self.context_slider.setObjectName("contextSlider")
        self.context_slider.setTracking(True)
        self.context_label = QLabel()
        self.context_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("1,048,576 tok"))

        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        form.addRow("Machine", self.machine_combo)
        form.addRow("Runtime", self.runtime_combo)
        form.addRow("Quantization", self.quant_combo)
        form.addRow("KV cache", self.kv_combo)
        form.addRow("Flash attention", self.flash)
        form.addRow("GPU limit", self.wired)
        ctx_row = QHBoxLayout()
        ctx_row.addWidget(self.context_slider, 1)
        ctx_row.addWidget(self.context_label)
        form.addRow("Context", ctx_row)
        self.controls = QGroupBox("Inputs")
        self.controls.setLayout(form)

    def _build_outputs(self) -> None:
        # Summary figures
        self.verdict_label = QLabel()
        self.verdict_label.setObjectName("verdictLabel")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.4)
        big.setBold(True)
        self.verdict_label.setFont(big)
        self.verdict_label.setAutoFillBackground(True)
        self.verdict_label.setMargin(6)
        self.summary = {
            k: QLabel()
            for k in (
                "total",
                "limit",
                "headroom",
                "max_context",
                "decode",
                "prefill",
                "ttft",
                "basis",
            )
        }
        grid = QGridLayout()
        labels = {
            "total": "Needs",
            "limit": "GPU limit",
            "headroom": "Headroom",
            "max_context": "Largest context",
            "decode": "Decode",
            "prefill": "Prefill",
            "ttft": "Time to first token",
            "basis": "Limit basis",
        }
        for i, key in enumerate(("total", "limit", "headroom", "max_context")):
            grid.addWidget(QLabel(labels[key] + ":"), i, 0)
            grid.addWidget(self.summary[key], i, 1)
        for i, key in enumerate(("decode", "prefill", "ttft")):
            grid.addWidget(QLabel(labels[key] + ":"), i, 2)
            grid.addWidget(self.summary[key], i, 3)
        self.summary["basis"].setWordWrap(True)
        self.summary["basis"].setEnabled(False)
        grid.addWidget(self.summary["basis"], 4, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        for lab in self.summary.values():
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.message = QLabel()  # engine refusals (impossible combination) shown inline
        self.message.setObjectName("fitMessage")
        self.message.setWordWrap(True)
        self.message.setVisible(False)

        # sysctl
        self.sysctl = QLineEdit()
        self.sysctl.setObjectName("sysctlCommand")
        self.sysctl.setReadOnly(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the command to the clipboard")
        self.copy_button.clicked.connect(self.copy_sysctl)
        sysctl_row = QHBoxLayout()
        sysctl_row.addWidget(QLabel("sysctl:"))
        sysctl_row.addWidget(self.sysctl, 1)
        sysctl_row.addWidget(self.copy_button)

        # quantization table and explain panel
        self.quant_model = DataFrameTableModel(
            QUANT_COLUMNS, key_column="quant", background=_verdict_background, parent=self
        )
        self.quant_proxy = make_proxy(self.quant_model, self)
        self.quant_table = QTableView()
        self.quant_table.setObjectName("quantTable")
        self.quant_table.setModel(self.quant_proxy)
        configure_table(self.quant_table, sortable=True)
        self.quant_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # engine order
        self.quant_table.doubleClicked.connect(self._pick_quant_from_table)
        self.explain = QTextBrowser()
        self.explain.setObjectName("explainPanel")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.quant_table, "Every quantization")
        self.tabs.addTab(self.explain, "Explain")

        left = QVBoxLayout()
        left.addWidget(self.controls)
        left.addWidget(self.verdict_label)
        left.addLayout(grid)
        left.addWidget(self.message)
        left.addLayout(sysctl_row)
        left.addStretch(1)
        left_w = QWidget()
        left_w.setLayout(left)

        # The plots are built on the next event-loop pass (_first_compute), so opening the
        # view is shorter stalls: controls and table first, plots and numbers next.
        plots = QSplitter(Qt.Orientation.Horizontal)
        self._plots_split = plots
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left_w)
        top.addWidget(plots)
        top.setStretchFactor(0, 0)
        top.setStretchFactor(1, 1)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top)
        outer.addWidget(self.tabs)
        outer.setStretchFactor(0, 5)
        outer.setStretchFactor(1, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(outer)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(QUANT_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._start_quants)
        # Slider moves are coalesced into one recompute per event-loop pass: a burst of
        # valueChanged (fast drag, busy machine) never queues a backlog of redraws.
        self._coalesce = QTimer(self)
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(0)
        self._coalesce.timeout.connect(self.recompute)
        self.tabs.currentChanged.connect(lambda _i: self._render_explain())

    def _fill_models(self) -> None:
        current = self.model_combo.currentData()
        with QSignalBlocker(self.model_combo):
            self.model_combo.clear()
            for m in sorted(self.ctx.all_models(), key=lambda m: m.id):
                label = m.id if m.origin == "catalog" else f"{m.id}  ({m.origin})"
                self.model_combo.addItem(label, m.id)
            if current is not None:
                self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(current)))

    def _on_models_changed(self) -> None:
        self._fill_models()

    def _build_memory_plot(self) -> None:
        # memory bar: one BarGraphItem per component, stacked with y0, created once
        self.mem_plot = pg.PlotWidget()
        self.mem_plot.setObjectName("memoryPlot")
        self.mem_plot.setMenuEnabled(False)
        self.mem_plot.setMouseEnabled(False, False)
        self.mem_plot.hideButtons()
        pi = self.mem_plot.getPlotItem()
        pi.setTitle("Memory (GiB)")
        pi.getAxis("bottom").setTicks([[(0, "this run")]])
        pi.showGrid(x=False, y=True, alpha=0.25)
        self.bars: dict[str, pg.BarGraphItem] = {}
        for key, _label in SERIES:
            colour = theme.series_colour(theme.SERIES_HUES[key])
            item = pg.BarGraphItem(
                x=[0.0], height=[0.0], y0=[0.0], width=0.8, brush=colour, pen=pg.mkPen(None)
            )
            pi.addItem(item)
            self.bars[key] = item
        text = theme.text_colour()
        self.limit_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen(theme.series_colour(40), width=2, style=Qt.PenStyle.DashLine),
            label="GPU limit",
            labelOpts={"position": 0.78, "color": text, "anchors": [(0.5, 1), (0.5, 1)]},
        )
        self.physical_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen(text, width=1.5),
            label="physical",
            labelOpts={"position": 0.78, "color": text, "anchors": [(0.5, 0), (0.5, 0)]},
        )
        # The legend is a label under the plot (with each part's size), not a pyqtgraph
        # legend that would cover the bar in a narrow plot.
        self.mem_legend = QLabel()
        self.mem_legend.setObjectName("memoryLegend")
        self.mem_legend.setWordWrap(True)
        pi.addItem(self.limit_line)
        pi.addItem(self.physical_line)
        pi.setXRange(-0.55, 1.25, padding=0)
        theme.style_plot(self.mem_plot)
        _major_ticks_only(self.mem_plot)

    def _build_speed_plot(self) -> None:
        # tokens/s across depth: one curve, set in place
        text = theme.text_colour()
        self.speed_plot = pg.PlotWidget()
        self.speed_plot.setObjectName("speedPlot")
        self.speed_plot.setMenuEnabled(False)
        self.speed_plot.hideButtons()
        sp = self.speed_plot.getPlotItem()
        sp.setTitle("Decode tokens/s across context depth")  # marker: the selected context
        sp.setLabel("bottom", "tokens already in context")
        sp.setLabel("left", "tokens/s")
        sp.showGrid(x=True, y=True, alpha=0.25)
        self.curve = sp.plot([], [], pen=pg.mkPen(theme.series_colour(210), width=2), name="decode")
        self.context_marker = pg.InfiniteLine(
            angle=90,
            pen=pg.mkPen(text, width=1, style=Qt.PenStyle.DashLine),
            label="context",
            labelOpts={"position": 0.95, "color": text, "anchors": [(0, 0), (0, 0)]},
        )
        sp.addItem(self.context_marker)
        self.speed_empty = pg.TextItem("", color=text, anchor=(0.5, 0.5))
        sp.addItem(self.speed_empty)
        theme.style_plot(self.speed_plot)
        _major_ticks_only(self.speed_plot)

    def _attach_plots(self) -> None:
        mem_box = QWidget()
        mem_layout = QVBoxLayout(mem_box)
        mem_layout.setContentsMargins(0, 0, 0, 0)
        mem_layout.addWidget(self.mem_plot, 1)
        mem_layout.addWidget(self.mem_legend)
        self._plots_split.addWidget(mem_box)
        self._plots_split.addWidget(self.speed_plot)
        self._plots_split.setStretchFactor(0, 2)
        self._plots_split.setStretchFactor(1, 3)
        width = max(self._plots_split.width(), 500)  # already laid out: share 2 : 3
        self._plots_split.setSizes([width * 2 // 5, width * 3 // 5])

    def _populate(self) -> None:
        self._fill_models()
        self.machine_combo.addItem("This machine", THIS_MACHINE)
        cat = self.ctx.catalog
        for cfg in sorted(cat.configs.values(), key=lambda c: (c.kind, c.year, c.id)):
            chip = cat.chips.get(cfg.chip_id)
            bin_ = f" {chip.gpu_cores}c GPU" if chip is not None and chip.gpu_cores else ""
            self.machine_combo.addItem(f"{cfg.machine}{bin_}, {cfg.memory_gb} GB", cfg.id)
            i = self.machine_combo.count() - 1
            self.machine_combo.setItemData(i, cfg.id, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(DEFAULT_MODEL)))
        self.machine_combo.setCurrentIndex(max(0, self.machine_combo.findData(DEFAULT_MACHINE)))
        for combo in (self.model_combo, self.machine_combo):
            combo.lineEdit().setCursorPosition(0)
        self._refill_quants(prefer=DEFAULT_QUANT)
        self._refill_steps(keep=8192)

    def _connect(self) -> None:
        self.ctx.models_changed.connect(self._on_models_changed)
        self.model_combo.currentIndexChanged.connect(self._on_model)
        self.machine_combo.currentIndexChanged.connect(self._on_machine)
        self.runtime_combo.currentIndexChanged.connect(self._on_runtime)
        self.quant_combo.currentIndexChanged.connect(self._on_input)
        self.kv_combo.currentIndexChanged.connect(self._on_kv)
        self.flash.currentIndexChanged.connect(self._on_input)
        self.wired.valueChanged.connect(self._on_input)
        self.context_slider.valueChanged.connect(self._on_slider)

    # -- input handling ------------------------------------------------------------------------
    def model_spec(self) -> Any:
        return self.ctx.model(self.model_combo.currentData())

    def _refill_quants(self, prefer: str | None = None) -> None:
        from forgeplanner.engine.quant import quants_for

        current = prefer or self.quant_combo.currentData()
        blocker = QSignalBlocker(self.quant_combo)
        self.quant_combo.clear()
        for q in quants_for(self.model_spec(), self.runtime_combo.currentData()):
            self.quant_combo.addItem(f"{q.name}  ({q.bits_per_weight:g} bpw)", q.name)
        i = self.quant_combo.findData(current)
        if i < 0:
            i = self.quant_combo.findData("Q4_K_M")
        if i < 0:
            i = self.quant_combo.findData("MLX-4bit")
        self.quant_combo.setCurrentIndex(max(0, i))
        del blocker

    def _refill_steps(self, keep: int | None = None) -> None:
        spec = self.model_spec()
        keep = keep or self.context()
        self._steps = context_steps(spec.max_context)
        blocker = QSignalBlocker(self.context_slider)
        self.context_slider.setRange(0, len(self._steps) - 1)
        self.context_slider.setPageStep(8)
        self.context_slider.setValue(self._nearest_step(keep))
        del blocker
        self._show_context()

    def _nearest_step(self, tokens: int) -> int:
        return int(np.argmin([abs(s - tokens) for s in self._steps]))

    def context(self) -> int:
        if not self._steps:
            return 8192
        return self._steps[self.context_slider.value()]

    def set_context(self, tokens: int) -> None:
        """Programmatic context change: applied at once (no coalescing)."""
        self.context_slider.setValue(self._nearest_step(tokens))
        self.recompute()

    def _show_context(self) -> None:
        self.context_label.setText(f"{self.context():,} tok")

    def _on_model(self, _i: int) -> None:
        if self.model_combo.currentData() is None:
            return
        self._refill_quants()
        self._refill_steps()
        self.recompute()

    def _on_runtime(self, _i: int) -> None:
        self._refill_quants()
        self.recompute()

    def _on_machine(self, _i: int) -> None:
        if self.machine_combo.currentData() is None:
            return
        self.recompute()

    def _on_kv(self, _i: int) -> None:
        if self.kv_combo.currentData() != "f16" and self.flash.currentData() is False:
            with QSignalBlocker(self.flash):
                # a quantized V cache needs flash attention: back to the runtime's auto
                self.flash.setCurrentIndex(self.flash.findData(None))
        self.recompute()

    def _on_input(self, *_: Any) -> None:
        self.recompute()

    def _on_slider(self, _v: int) -> None:
        self._show_context()
        self._coalesce.start()

    # -- host ----------------------------------------------------------------------------------
    def host(self) -> HostSpec | None:
        """The selected machine as a HostSpec (None while "this machine" is being probed)."""
        key = self.machine_combo.currentData()
        wired = self.wired.value() or None
        cache_key = (key, wired or 0)
        if cache_key in self._hosts:
            return self._hosts[cache_key]
        if key == THIS_MACHINE:
            self._probe_this_machine(wired)
            return None
        from forgeplanner.host import host_from_chip

        cat = self.ctx.catalog
        cfg = cat.configs[key]
        host = host_from_chip(
            cat.chips[cfg.chip_id], cfg.memory_gb, config=cfg, wired_limit_mb=wired
        )
        self._hosts[cache_key] = host
        return host

    def _probe_this_machine(self, wired: int | None) -> None:
        if self._host_worker is not None:
            return

        def job(token):
            from forgeplanner.host import host_this_machine

            yield "probe"
            return host_this_machine(wired_limit_mb=wired)

        def done(host: HostSpec) -> None:
            self._hosts[(THIS_MACHINE, wired or 0)] = host
            self.recompute()

        def failed(err: WorkerError) -> None:
            self._show_message(f"Could not read this machine: {err.reason}")

        def finished() -> None:
            self._host_worker = None

        self._show_message("Reading this machine's memory and chip...")
        self._host_worker = start_worker(
            self.ctx.pool,
            job,
            on_result=done,
            on_error=failed,
            on_finished=finished,
            owner=self,
        )

    # -- the estimate --------------------------------------------------------------------------
    def options(self) -> RunOptions:
        return RunOptions(
            context=self.context(),
            kv_type=self.kv_combo.currentData(),
            flash_attention=self.flash.currentData(),
            runtime=self.runtime_combo.currentData(),
        )

    def recompute(self) -> None:
        """One engine call for the selected quantization, drawn in place; the table of every
        quantization follows, debounced, from a worker."""
        from forgeplanner.engine.estimate import estimate

        self._coalesce.stop()
        if self._first_pending:
            return  # the first pass computes with whatever the inputs are by then
        host = self.host()
        if host is None:
            return
        model = self.model_spec()
        quant = self.quant_combo.currentData()
        if quant is None:
            self._show_message(
                f"{model.id} has no weights for {self.runtime_combo.currentData()} "
                f"(available: {', '.join(model.formats)})"
            )
            self._clear()
            return
        try:
            opts = self.options()
            est = estimate(model, quant, host, opts)
            curve = self._curve_for(model, quant, host, opts)
        except (ValueError, Exception) as exc:  # engine refusals are one clear line
            from ui.errors import one_line_reason

            reason = str(exc) if isinstance(exc, ValueError) else one_line_reason(exc)
            self._show_message(reason)
            self._clear()
            return
        self._show_message("")
        self._estimate = est
        self._show_flash_resolution(est)
        self._draw(est, curve)
        self._debounce.start()

    def _show_flash_resolution(self, est: Estimate) -> None:
        """Say what "auto" resolved to for this runtime, model and chip, and why."""
        state = "on" if est.options.flash_attention else "off"
        self.flash.setItemText(self.flash.findData(None), f"auto (runtime default: {state})")
        self.flash.setToolTip(f"flash attention {state}: {est.flash_attention_basis}")

    def _curve_for(
        self, model: Any, quant: str, host: HostSpec, opts: RunOptions
    ) -> list[tuple[int, float]]:
        """Decode tokens/s over depth 0..the model's max context. Depth, not the context
        setting, decides decode speed, so the curve is computed once per model x quant x
        host x runtime x KV setup; the slider only moves the marker."""
        from forgeplanner.engine.estimate import decode_curve

        key = (model.id, quant, id(host), opts.runtime, opts.kv_type, opts.flash_attention)
        if key != self._curve_key:
            top = max(int(model.max_context or 0), opts.context, 2048)
            depths = np.linspace(0, top, CURVE_POINTS).astype(int).tolist()
            self._curve = decode_curve(model, quant, host, opts, depths)
            self._curve_key = key
            self._curve_drawn = False
        return self._curve

    def estimate_now(self) -> Estimate | None:
        return self._estimate

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _clear(self) -> None:
        self._estimate = None
        for item in self.bars.values():
            item.setOpts(height=[0.0], y0=[0.0])
        self.mem_legend.setText("")
        self.curve.setData([], [])
        self.verdict_label.setText("")
        for lab in self.summary.values():
            lab.setText("")
        self.sysctl.setText("")
        self.copy_button.setEnabled(False)
        self.explain.setHtml("")
        self._explain_dirty = False
        self._curve_key = None
        self._curve_drawn = False
        self.context_marker.setVisible(False)
        self.quant_model.set_frame(quants_frame_empty())

    def _draw(self, est: Estimate, curve: list[tuple[int, float]]) -> None:
        fit = est.fit
        mem = fit.memory
        budget = fit.budget
        parts = {
            "weights": mem.weights_bytes,
            "kv_cache": mem.kv_cache_bytes,
            "compute": mem.compute_bytes,
            "runtime": mem.runtime_bytes,
            "os_reserve": budget.os_reserve_bytes,
        }
        y0 = 0.0
        legend = []
        for key, label in SERIES:
            h = parts[key] / GiB
            self.bars[key].setOpts(height=[h], y0=[y0])
            y0 += h
            colour = theme.series_colour(theme.SERIES_HUES[key]).name()
            item = f"{label} {h:,.1f}".replace(" ", "&nbsp;")  # wrap between items only
            legend.append(f"<span style='color:{colour}'>&#9632;</span>&nbsp;{item}")
        self.mem_legend.setText(" &nbsp; ".join(legend) + " GiB")
        self.limit_line.setValue(budget.gpu_limit_bytes / GiB)
        self.physical_line.setValue(budget.physical_bytes / GiB)
        # Keep the axis still while the slider moves (re-laying out an axis costs more than
        # the estimate); rescale only when the stack outgrows it or shrinks well below.
        top = max(y0, budget.physical_bytes / GiB) * 1.08
        if top > self._mem_top or top < 0.75 * self._mem_top:
            self._mem_top = top
            self.mem_plot.getPlotItem().setYRange(0, top, padding=0)

        if curve and not self._curve_drawn:
            xs = np.fromiter((d for d, _ in curve), float, len(curve))
            ys = np.fromiter((t for _, t in curve), float, len(curve))
            self.curve.setData(xs, ys)
            self.speed_plot.getPlotItem().setYRange(0, float(ys.max()) * 1.1, padding=0)
            self.speed_plot.getPlotItem().setXRange(0, float(xs.max()) or 1.0, padding=0.02)
            self.speed_empty.setText("")
            self._curve_drawn = True
        elif not curve:
            self.curve.setData([], [])
            reason = est.warnings[-1] if est.warnings else "speed unknown"
            self.speed_empty.setText(reason[:90])
            self.speed_plot.getPlotItem().setXRange(-1, 1, padding=0)
            self.speed_plot.getPlotItem().setYRange(-1, 1, padding=0)
            self.speed_empty.setPos(0, 0)
            self._curve_drawn = False
        self.context_marker.setVisible(bool(curve))
        self.context_marker.setValue(est.options.context)

        self.verdict_label.setText(VERDICT_TEXT.get(fit.verdict, fit.verdict))
        pal = self.verdict_label.palette()
        tint = theme.verdict_tint(fit.verdict)
        if tint is not None:
            pal.setColor(self.verdict_label.backgroundRole(), tint)
        self.verdict_label.setPalette(pal)
        self.summary["total"].setText(gib(mem.total_bytes))
        self.summary["limit"].setText(
            f"{gib(budget.gpu_limit_bytes)} of {gib(budget.physical_bytes)}"
        )
        self.summary["headroom"].setText(f"{fit.headroom_bytes / GiB:+,.1f} GiB")
        mc = est.max_context_that_fits
        self.summary["max_context"].setText(
            "not even 256 tokens" if mc is None else f"{mc:,} tokens"
        )
        s = est.speed
        self.summary["decode"].setText("unknown" if s is None else f"{s.decode_tps:,.1f} tok/s")
        self.summary["prefill"].setText("unknown" if s is None else f"{s.prefill_tps:,.0f} tok/s")
        self.summary["ttft"].setText(
            "unknown" if s is None else f"{s.ttft_s:,.2f} s ({est.options.prompt_tokens} tok)"
        )
        self.summary["basis"].setText(budget.basis)

        if fit.sysctl_command:
            left = fit.memory_left_for_macos_bytes
            self.sysctl.setText(fit.sysctl_command)
            self.sysctl.setToolTip(
                f"Raises the GPU wired-memory limit until the next reboot; leaves "
                f"{gib(left)} for macOS."
            )
            self.copy_button.setEnabled(True)
        else:
            self.sysctl.setText(
                "not needed: fits under the current limit"
                if fit.verdict == VERDICT_FITS
                else "no limit makes this fit"
            )
            self.sysctl.setToolTip("")
            self.copy_button.setEnabled(False)
        self._explain_dirty = True
        if self.tabs.currentWidget() is self.explain:
            self._render_explain()
        self.chart_updated.emit()

    def _render_explain(self) -> None:
        """The explain panel is laid out only when visible (a rich-text table costs a few
        ms per slider step otherwise)."""
        if self._explain_dirty and self._estimate is not None:
            self.explain.setHtml(explain_html(self._estimate))
            self._explain_dirty = False

    def copy_sysctl(self) -> None:
        est = self._estimate
        if est is not None and est.fit.sysctl_command:
            QGuiApplication.clipboard().setText(est.fit.sysctl_command)
            self.ctx.status("Copied the sysctl command", 3000)

    # -- every quantization (worker) -----------------------------------------------------------
    def _start_quants(self) -> None:
        from forgeplanner.engine.estimate import estimate_quants

        host = self.host()
        if host is None:
            return
        model = self.model_spec()
        opts = self.options()
        quant_model = self.quant_model
        self._quant_generation += 1
        generation = self._quant_generation
        if self._quant_worker is not None:
            self._quant_worker.cancel()

        def job(token):
            yield "quants"
            q = estimate_quants(model, host, opts)
            if token.cancelled:
                return None
            # Display texts and sort keys are made here; the GUI thread only swaps them in.
            return quant_model.prepare(quants_frame(q))

        def done(frame: Any) -> None:
            if frame is None or generation != self._quant_generation:
                return  # a newer request superseded this one
            self.quant_model.set_frame(frame)
            fit_columns(self.quant_table, self.quant_model)
            self.quants_updated.emit()

        def failed(err: WorkerError) -> None:
            if generation == self._quant_generation:
                self._show_message(err.reason)

        def finished() -> None:
            if generation == self._quant_generation:
                self._quant_busy = False

        self._quant_busy = True
        self._quant_worker = start_worker(
            self.ctx.pool,
            job,
            on_result=done,
            on_error=failed,
            on_finished=finished,
            owner=self,
        )

    def changeEvent(self, event: QEvent) -> None:
        """The system switched light/dark: re-derive every colour from the new palette."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette()

    def apply_palette(self) -> None:
        if self._first_pending:
            return  # plots not built yet; they take the palette when they are
        for plot in (self.mem_plot, self.speed_plot):
            theme.style_plot(plot)
        for key, item in self.bars.items():
            item.setOpts(brush=theme.series_colour(theme.SERIES_HUES[key]))
        text = theme.text_colour()
        self.physical_line.setPen(pg.mkPen(text, width=1.5))
        self.limit_line.setPen(
            pg.mkPen(theme.series_colour(40), width=2, style=Qt.PenStyle.DashLine)
        )
        self.curve.setPen(pg.mkPen(theme.series_colour(210), width=2))
        self.quant_model.set_frame(self.quant_model.frame())
        if self._estimate is not None:
            self._draw(self._estimate, self._curve)

    def busy(self) -> bool:
        """True while a redraw or table update is pending or running (screenshots wait)."""
        return (
            self._first_pending
            or self._coalesce.isActive()
            or self._debounce.isActive()
            or self._quant_busy
        )

    def _pick_quant_from_table(self, index: Any) -> None:
        src = self.quant_proxy.mapToSource(index)
        name = self.quant_model.row_key(src.row())
        i = self.quant_combo.findData(name)
        if i >= 0:
            self.quant_combo.setCurrentIndex(i)

    def shutdown(self) -> None:
        self._debounce.stop()
        for w in (self._quant_worker, self._host_worker):
            if w is not None:
                w.cancel()


def _major_ticks_only(plot: pg.PlotWidget) -> None:
    """Major ticks and grid lines only: the minor grid doubles the lines pyqtgraph re-draws
    on every show of the page (measured: Fit page switch 41 -> 25 ms of GUI-thread CPU)."""
    for name in ("left", "bottom"):
        plot.getPlotItem().getAxis(name).setStyle(maxTickLevel=0)


def quants_frame_empty() -> Any:
    import pandas as pd

    return pd.DataFrame({c.key: [] for c in QUANT_COLUMNS})


def explain_html(est: Estimate) -> str:
    """The formulas behind every number with the numbers filled in, as the engine gave them."""
    e = html.escape
    groups: list[tuple[str, tuple[Explanation, ...]]] = [
        ("Memory", est.fit.memory.explain),
        ("Fit", est.fit.explain),
    ]
    if est.speed is not None:
        groups.append(("Speed", est.speed.explain))
    out = [
        f"<h3>{e(est.model_id)} {e(est.quant)} on {e(est.host.name)}, "
        f"{est.options.context:,} tokens, {e(est.options.runtime)}</h3>"
    ]
    for title, items in groups:
        out.append(f"<h4>{title}</h4><table cellpadding='3' border='1' cellspacing='0'>")
        out.append(
            "<tr><th align='left'>Term</th><th align='left'>Formula</th>"
            "<th align='left'>With the numbers</th><th align='left'>Value</th>"
            "<th align='left'>Source</th></tr>"
        )
        for x in items:
            out.append(
                f"<tr><td><b>{e(x.term)}</b></td><td><code>{e(x.formula)}</code></td>"
                f"<td><code>{e(x.numbers)}</code></td><td>{e(x.value)}</td>"
                f"<td>{e(x.source)}</td></tr>"
            )
        out.append("</table>")
    if est.speed is not None and est.speed.basis:
        out.append(f"<p><b>Speed basis:</b> {e(est.speed.basis)}</p>")
    if est.warnings:
        out.append("<p><b>Warnings:</b></p><ul>")
        out.extend(f"<li>{e(w)}</li>" for w in est.warnings)
        out.append("</ul>")
    return "".join(out)


def create_view(ctx: AppContext) -> QWidget:
    return FitView(ctx)


__all__ = ["FitView", "context_steps", "create_view", "explain_html", "quants_frame"]
