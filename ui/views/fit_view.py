"""Fit: will this model run on this machine, at which quantization and context, how fast?

Every number on this page comes from `forgeplanner.viewstate.fit.FitState` (which calls the
engine): the decode speed with the chosen context filled and the time to first token for a
prompt of that length, the empty-context figures beside them, the memory used against the GPU
limit, what macOS keeps and physical memory, the largest context under the limit in force and
under the raised one, the sysctl command and the memory it leaves macOS, the quality cost of
the quantization. The page only lays the numbers out.

Responsiveness: one outcome takes a few milliseconds, so the page follows the context slider
synchronously (one recompute per event-loop pass; benchmarks/bench_ui_fit_slider.py); the
every-quantization table is debounced and computed in a worker (`ui.workers.Recompute`). The
plots are built after the page's first paint and updated in place.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from PySide6.QtCore import QEvent, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.domain.estimates import KV_TYPES, Estimate, Explanation
from forgeplanner.domain.units import GiB
from forgeplanner.viewstate.fit import (
    DEFAULT_CONTEXT,
    DEFAULT_MACHINE,
    DEFAULT_MODEL,
    DEFAULT_QUANT,
    FitInputs,
    FitOutcome,
    FitState,
    InputError,
    context_presets,
    gpu_limit_presets,
    parse_context,
    parse_gpu_limit,
)
from forgeplanner.viewstate.speed import range_text
from forgeplanner.viewstate.vocabulary import (
    THIS_MACHINE,
    THIS_MACHINE_NAME,
    machine_choices,
    runtime_choices,
    tokens,
    verdict_word,
)
from ui import persist, theme
from ui.charts import HoverTips, make_plot, nearest, pg
from ui.context import AppContext
from ui.pickers import MachinePicker, ModelPicker
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import after_first_paint, configure_table, defer, fit_columns
from ui.workers import Recompute, WorkerError, start_worker

QUANT_DEBOUNCE_MS = 150
LIKELY_TIP = (
    "10th-90th percentile of measured / estimated over held-out published runs of similar "
    "setups (runtime, dense or MoE, context)"
)
SERIES_KEYS = ("weights", "kv_cache", "compute", "runtime")
SLIDER_STEPS = 96


def gib(n: int | float | None) -> str:
    return "unknown" if n is None else f"{n / GiB:,.1f} GiB"


def _g(v: float) -> str:
    return f"{v:,.1f}"


def _quant_columns(context: int) -> list[Column]:
    at = tokens(context)
    return [
        Column("quant", "Quantization"),
        Column("verdict", "Verdict", lambda v: verdict_word(v)),
        Column("total_gib", "Needs", lambda v: f"{v:,.1f} GiB", "weights + KV + compute + runtime"),
        Column("headroom_gib", "Headroom", lambda v: f"{v:+,.1f} GiB", "GPU limit - needs"),
        Column(
            "max_context",
            "Largest context",
            lambda v: f"{int(v):,}",
            "largest context that fits under the GPU limit in force",
            missing="none fits",
        ),
        Column("decode_tps", f"Decode at {at}", _g, f"tokens/s with {at} tokens in context"),
        Column("decode_range", "Likely decode", tooltip=LIKELY_TIP, missing=""),
        Column("prefill_tps", "Prefill", _g, "prompt tokens/s"),
        Column("prefill_range", "Likely prefill", tooltip=LIKELY_TIP, missing=""),
        Column("ttft_s", f"TTFT {at}", lambda v: f"{v:,.1f} s", f"first token after a {at} prompt"),
        Column("quality", "Quality cost", tooltip="published perplexity / KL divergence vs 16-bit"),
        Column("weights_gib", "Weights", lambda v: f"{v:,.1f} GiB"),
        Column("kv_gib", "KV cache", lambda v: f"{v:,.2f} GiB"),
    ]


QUANT_COLUMNS = _quant_columns(DEFAULT_CONTEXT)

PUBLISHED_COLUMNS = [
    Column("kind", "Measured"),
    Column("tokens_per_s", "Tokens/s", lambda v: f"{v:,.1f}"),
    Column("chip", "Chip"),
    Column("runtime", "Runtime"),
    Column("model", "Model"),
    Column("test", "Test"),
    Column("date", "Date"),
    Column("source_title", "Source"),
    Column("source", "Link", tooltip="double-click a row to open its source"),
]


def quants_rows(quants: Any) -> list[dict[str, Any]]:
    """Rows for the every-quantization table, straight from the engine's QuantsEstimate."""
    from models_db.quant_quality import quality_of

    rows = []
    for e in quants.estimates:
        mem = e.fit.memory
        s = e.speed
        q = quality_of(e.quant)
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
                "decode_range": None
                if s is None
                else range_text(s.decode_tps_low, s.decode_tps_high) or None,
                "prefill_tps": None if s is None else s.prefill_tps,
                "prefill_range": None
                if s is None
                else range_text(s.prefill_tps_low, s.prefill_tps_high, 0) or None,
                "ttft_s": None if s is None else s.ttft_s,
                "quality": q.summary() if q.known else None,
                "best": e.quant == quants.best_quant_that_fits,
            }
        )
    return rows


def _verdict_background(row: dict[str, Any], _col: str) -> Any:
    return theme.verdict_tint(row.get("verdict", ""))


class _Models:
    """The app's models (shipped and imported) as FitState wants them (`.get(id)`)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def get(self, model_id: str) -> Any:
        return self.ctx.model(model_id)


class FitView(QWidget):
    chart_updated = Signal()  # emitted after the page shows the current outcome
    quants_updated = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.state = FitState(ctx.catalog, _Models(ctx))
        self.outcome: FitOutcome | None = None
        self._inputs = FitInputs()
        self._plots_built = False
        self._first_pending = True
        self._host_worker: Any = None
        self._mem_top = 0.0
        self._explain_dirty = False
        self._curve_key: tuple[Any, ...] | None = None
        self._curve: list[tuple[int, float]] = []
        self._steps: list[int] = []
        self._pending_request: dict[str, Any] = {}
        self._build_controls()
        self._build_outputs()
        self._populate()
        persist.restore(self, "fit")
        self._connect()
        self._update = Recompute(self, self._prepare_outcome, self._show, delay_ms=0)
        self._quants = Recompute(
            self,
            self._prepare_quants,
            self._show_quants,
            delay_ms=QUANT_DEBOUNCE_MS,
            pool=ctx.pool,
            on_error=self._quants_failed,
        )
        # The page paints its inputs first; the engine's first call, the quantization list
        # (the engine's import) and the plots come after, one event-loop pass each.
        after_first_paint(self, self._first_compute)

    # -- construction --------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.model_picker = ModelPicker()
        self.model_picker.setToolTip("Model: type its name, id or an alias")
        self.machine_picker = MachinePicker()
        self.machine_picker.setToolTip("Machine: any catalog configuration, or this machine")
        self.runtime_combo = QComboBox()
        for label, value in runtime_choices():
            self.runtime_combo.addItem(label, value)
        self.quant_combo = QComboBox()
        self.kv_combo = QComboBox()
        for k in KV_TYPES:
            self.kv_combo.addItem(k, k)
        self.kv_combo.setToolTip("KV cache type (a quantized V cache needs flash attention)")
        self.flash_combo = QComboBox()
        for label, value in (("auto (runtime default)", "auto"), ("on", "on"), ("off", "off")):
            self.flash_combo.addItem(label, value)
        self.flash_combo.setToolTip(
            "Flash attention: auto is resolved per runtime, model and chip by the engine"
        )
        self.limit_combo = QComboBox()
        self.limit_combo.setEditable(True)
        self.limit_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.limit_combo.setToolTip(
            "The GPU wired limit in force (iogpu.wired_limit_mb): default, or megabytes as "
            "macOS takes them (49152), or GB (48 GB)"
        )
        persist.skip(self.limit_combo)
        self.context_combo = QComboBox()
        self.context_combo.setObjectName("context_combo")
        self.context_combo.setEditable(True)
        self.context_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.context_combo.setToolTip("Context in tokens: type 20000, 20K or max, or pick one")
        self.context_combo.setMinimumContentsLength(9)
        persist.skip(self.context_combo)
        self.context_slider = QSlider(Qt.Orientation.Horizontal)
        self.context_slider.setObjectName("contextSlider")
        self.context_slider.setTracking(True)
        self.context_slider.setToolTip("Context: drag to see the numbers change with it")
        persist.skip(self.context_slider)
        for w in (self.model_picker, self.machine_picker, self.runtime_combo, self.quant_combo,
                  self.kv_combo, self.flash_combo):  # fmt: skip
            persist.skip(w)  # inputs are remembered as one FitInputs (settings_values)

        form = QFormLayout()
        form.addRow("Model", self.model_picker)
        form.addRow("Machine", self.machine_picker)
        form.addRow("Runtime", self.runtime_combo)
        form.addRow("Quantization", self.quant_combo)
        form.addRow("KV cache", self.kv_combo)
        form.addRow("Flash attention", self.flash_combo)
        form.addRow("GPU limit", self.limit_combo)
        ctx_row = QHBoxLayout()
        ctx_row.addWidget(self.context_combo)
        ctx_row.addWidget(self.context_slider, 1)
        form.addRow("Context", ctx_row)
        self.controls = QGroupBox("Inputs")
        self.controls.setLayout(form)

    def _build_outputs(self) -> None:
        self.verdict_label = QLabel()
        self.verdict_label.setObjectName("verdictLabel")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.25)
        big.setBold(True)
        self.verdict_label.setFont(big)
        self.verdict_label.setMargin(6)
        self.summary: dict[str, QLabel] = {}
        grid = QGridLayout()
        rows = (
            ("decode", "Decode"),
            ("ttft", "Time to first token"),
            ("prefill", "Prefill"),
            ("memory", "Memory"),
            ("max_context", "Largest context"),
            ("quality", "Quality cost"),
            ("band", "Speed range"),
            ("basis", "GPU limit basis"),
        )
        for i, (key, title) in enumerate(rows):
            name = QLabel(title + ":")
            value = QLabel()
            value.setObjectName(f"summary_{key}")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.summary[key] = value
            grid.addWidget(name, i, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(value, i, 1)
            if key == "band":
                self._band_name = name
        grid.setColumnStretch(1, 1)
        self.summary["basis"].setEnabled(False)  # quiet: the palette's disabled text

        self.message = QLabel()  # engine refusals and warnings, inline
        self.message.setObjectName("fitMessage")
        self.message.setWordWrap(True)
        self.message.setVisible(False)

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
        self.sysctl_note = QLabel()
        self.sysctl_note.setWordWrap(True)

        self.quant_model = DataFrameTableModel(
            QUANT_COLUMNS, key_column="quant", background=_verdict_background, parent=self
        )
        self.quant_proxy = make_proxy(self.quant_model, self)
        self.quant_table = QTableView()
        self.quant_table.setModel(self.quant_proxy)
        configure_table(self.quant_table, sortable=True)
        self.quant_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # engine order
        self.quant_table.doubleClicked.connect(self._pick_quant_from_table)
        self.quant_table.setToolTip("Double-click a quantization to choose it")
        self.explain = QTextBrowser()
        self.explain.setObjectName("explainPanel")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.quant_table, "Every quantization")
        self.tabs.addTab(self.explain, "Explain")
        self.published_model = DataFrameTableModel(PUBLISHED_COLUMNS, parent=self)
        self.published_table = QTableView()
        self.published_table.setObjectName("publishedRuns")
        self.published_table.setModel(make_proxy(self.published_model, self))
        configure_table(self.published_table, sortable=True)
        self.published_table.setToolTip(
            "The published measurements nearest to this estimate (same chip, runtime and model "
            "first). Double-click a row to open its source."
        )
        self.published_table.doubleClicked.connect(self._open_published_source)
        self.tabs.addTab(self.published_table, "Published runs")
        self.tabs.currentChanged.connect(lambda _i: self._render_explain())

        self.verdict_label.setWordWrap(True)
        left = QVBoxLayout()
        left.addWidget(self.controls)
        left.addWidget(self.verdict_label)
        left.addLayout(grid)
        left.addWidget(self.message)
        left.addLayout(sysctl_row)
        left.addWidget(self.sysctl_note)
        left.addStretch(1)
        left_w = QWidget()
        left_w.setLayout(left)
        # Narrow windows (1024 x 700) scroll the inputs and figures instead of clipping them.
        left_scroll = QScrollArea()
        left_scroll.setWidget(left_w)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(300)

        self.plots_split = QSplitter(Qt.Orientation.Horizontal)
        self.top_split = QSplitter(Qt.Orientation.Horizontal)
        self.top_split.addWidget(left_scroll)
        self.top_split.addWidget(self.plots_split)
        self.top_split.setStretchFactor(0, 0)
        self.top_split.setStretchFactor(1, 1)
        self.outer_split = QSplitter(Qt.Orientation.Vertical)
        self.outer_split.addWidget(self.top_split)
        self.outer_split.addWidget(self.tabs)
        self.outer_split.setStretchFactor(0, 5)
        self.outer_split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.outer_split)

    def _populate(self) -> None:
        self._fill_models()
        self._fill_machines()
        self.model_picker.set_key(DEFAULT_MODEL)
        self.machine_picker.set_key(DEFAULT_MACHINE)
        self._refill_context(DEFAULT_CONTEXT)
        self.limit_combo.addItem("default", None)
        # quantizations and GPU-limit presets come from the engine: filled after the first
        # paint (_first_compute), so opening the page does not wait for the engine's import

    def _fill_models(self) -> None:
        self.model_picker.set_models(self.ctx.all_models(), keep=self.model_picker.key())

    def _fill_machines(self) -> None:
        choices = [(THIS_MACHINE_NAME, THIS_MACHINE), *machine_choices(self.ctx.catalog)]
        self.machine_picker.set_machines(choices, keep=self.machine_picker.key())

    def _connect(self) -> None:
        self.ctx.models_changed.connect(self._fill_models)
        self.model_picker.picked.connect(self._on_model)
        self.model_picker.unknown_text.connect(
            lambda t: self._show_message(f"Model '{t}': no model of that name, id or alias")
        )
        self.machine_picker.picked.connect(self._on_machine)
        self.machine_picker.unknown_text.connect(
            lambda t: self._show_message(f"Machine '{t}': no configuration of that name")
        )
        self.runtime_combo.currentIndexChanged.connect(self._on_runtime)
        self.quant_combo.currentIndexChanged.connect(self._on_input)
        self.kv_combo.currentIndexChanged.connect(self._on_kv)
        self.flash_combo.currentIndexChanged.connect(self._on_input)
        self.limit_combo.lineEdit().editingFinished.connect(self._on_limit_typed)
        self.limit_combo.activated.connect(self._on_limit_picked)
        self.context_combo.lineEdit().editingFinished.connect(self._on_context_typed)
        self.context_combo.activated.connect(self._on_context_picked)
        self.context_slider.valueChanged.connect(self._on_slider)

    # -- plots (built after the first paint) ---------------------------------------------------
    def _first_compute(self) -> None:
        request = self._pending_request
        self._refill_quants(prefer=request.get("quant") or DEFAULT_QUANT)
        self._refill_limits()
        self._build_memory_plot()
        defer(self, self._first_compute_2)

    def _first_compute_2(self) -> None:
        self._build_speed_plot()
        self._attach_plots()
        defer(self, self._first_compute_3)

    def _first_compute_3(self) -> None:
        self._first_pending = False
        request, self._pending_request = self._pending_request, {}
        if request:
            self.apply_request(**request)
        else:
            self.recompute()
        self._quants.run_now()  # first table at once; later ones debounced

    def _build_memory_plot(self) -> None:
        p = pg()
        self.mem_plot = make_plot("memoryPlot", left=("Memory", "GiB"), title="Memory")
        pi = self.mem_plot.getPlotItem()
        pi.getAxis("bottom").setTicks([[(0, "this run")]])
        self.bars: dict[str, Any] = {}
        for key in SERIES_KEYS:
            item = p.BarGraphItem(
                x=[0.0], height=[0.0], y0=[0.0], width=0.6,
                brush=theme.series_colour(theme.SERIES_HUES[key]), pen=p.mkPen(None),
            )  # fmt: skip
            pi.addItem(item)
            self.bars[key] = item
        # What macOS keeps: the band between the GPU limit (raised, if a sysctl is needed) and
        # physical memory, beside the stack rather than on top of it.
        self.macos_band = p.BarGraphItem(
            x=[0.0], height=[0.0], y0=[0.0], width=0.6, brush=theme.tint(0, 0.25),
            pen=p.mkPen(theme.muted_text(), style=Qt.PenStyle.DashLine),
        )  # fmt: skip
        pi.addItem(self.macos_band)
        text = theme.text_colour()
        above = {"position": 0.86, "color": text, "anchors": [(1, 1), (1, 1)]}
        below = {"position": 0.86, "color": text, "anchors": [(1, 0), (1, 0)]}
        self.limit_line = p.InfiniteLine(
            angle=0, pen=p.mkPen(theme.series_colour(40), width=2, style=Qt.PenStyle.DashLine),
            label="GPU limit", labelOpts=dict(above),
        )  # fmt: skip
        self.raised_line = p.InfiniteLine(
            angle=0, pen=p.mkPen(theme.series_colour(120), width=2, style=Qt.PenStyle.DotLine),
            label="raised limit", labelOpts=dict(above),
        )  # fmt: skip
        self.physical_line = p.InfiniteLine(
            angle=0, pen=p.mkPen(text, width=1.5), label="physical", labelOpts=dict(below)
        )
        pi.addItem(self.limit_line)
        pi.addItem(self.raised_line)
        pi.addItem(self.physical_line)
        pi.setXRange(-0.5, 1.1, padding=0)
        self.mem_legend = QLabel()
        self.mem_legend.setObjectName("memoryLegend")
        self.mem_legend.setWordWrap(True)
        self.mem_tips = HoverTips(self.mem_plot, self._memory_tip)

    def _build_speed_plot(self) -> None:
        p = pg()
        text = theme.text_colour()
        self.speed_plot = make_plot(
            "speedPlot",
            left=("Decode", "tokens/s"),
            bottom=("Context filled", "tokens"),
            title="Decode as context fills",
        )
        sp = self.speed_plot.getPlotItem()
        self.curve = sp.plot([], [], pen=p.mkPen(theme.series_colour(210), width=2))
        self.context_marker = p.InfiniteLine(
            angle=90, pen=p.mkPen(text, width=1, style=Qt.PenStyle.DashLine),
            label="context",
            labelOpts={"position": 0.95, "color": text, "anchors": [(0, 0), (0, 0)]},
        )  # fmt: skip
        sp.addItem(self.context_marker)
        self.speed_empty = p.TextItem("", color=text, anchor=(0.5, 0.5))
        sp.addItem(self.speed_empty)
        self.speed_tips = HoverTips(self.speed_plot, self._speed_tip)

    def _attach_plots(self) -> None:
        mem_box = QWidget()
        mem_layout = QVBoxLayout(mem_box)
        mem_layout.setContentsMargins(0, 0, 0, 0)
        mem_layout.addWidget(self.mem_plot, 1)
        mem_layout.addWidget(self.mem_legend)
        for w in (mem_box, self.speed_plot):
            w.setMinimumWidth(150)  # the window, not the plots, decides the width
        self.plots_split.addWidget(mem_box)
        self.plots_split.addWidget(self.speed_plot)
        self.plots_split.setStretchFactor(0, 2)
        self.plots_split.setStretchFactor(1, 3)
        width = max(self.plots_split.width(), 500)
        self.plots_split.setSizes([width * 2 // 5, width * 3 // 5])
        self._plots_built = True

    # -- inputs --------------------------------------------------------------------------------
    def inputs(self) -> FitInputs:
        return self._inputs

    def _read_inputs(self) -> FitInputs:
        flash = {"auto": None, "on": True, "off": False}[self.flash_combo.currentData()]
        return FitInputs(
            model_id=self.model_picker.key() or DEFAULT_MODEL,
            machine=self.machine_picker.key() or DEFAULT_MACHINE,
            runtime=self.runtime_combo.currentData(),
            quant=self.quant_combo.currentData(),
            kv_type=self.kv_combo.currentData(),
            flash_attention=flash,
            gpu_limit_mb=self._inputs.gpu_limit_mb,
            context=self._inputs.context,
        )

    def _refill_quants(self, prefer: str | None = None) -> None:
        model_id = self.model_picker.key() or DEFAULT_MODEL
        runtime = self.runtime_combo.currentData()
        wanted = prefer or self.quant_combo.currentData()
        with QSignalBlocker(self.quant_combo):
            self.quant_combo.clear()
            for label, name in self.state.quant_choices(model_id, runtime):
                self.quant_combo.addItem(label, name)
            pick = self.state.pick_quant(model_id, runtime, wanted)
            self.quant_combo.setCurrentIndex(max(0, self.quant_combo.findData(pick)))

    def _max_context(self) -> int | None:
        spec = self.state.model(self.model_picker.key() or DEFAULT_MODEL)
        return int(spec.max_context) if spec.max_context else None

    def _refill_context(self, keep: int | None = None) -> None:
        """Presets up to the model's maximum; the slider's steps span 256 .. maximum."""
        top = self._max_context() or 131072
        keep = min(keep or self._inputs.context, top)
        with QSignalBlocker(self.context_combo):
            self.context_combo.clear()
            for label, n in context_presets(self._max_context()):
                self.context_combo.addItem(label, n)
        # 256-token multiples spaced geometrically from 512 to the maximum (fine steps where
        # every 256 tokens matter), plus the presets and the maximum itself.
        geometric = {
            max(256, round(512 * (top / 512) ** (i / (SLIDER_STEPS - 1)) / 256) * 256)
            for i in range(SLIDER_STEPS)
        }
        steps = sorted(geometric | {n for _, n in context_presets(top)} | {top})
        self._steps = [s for s in steps if s <= top]
        with QSignalBlocker(self.context_slider):
            self.context_slider.setRange(0, len(self._steps) - 1)
            self.context_slider.setPageStep(8)
        self._set_context(keep, move_slider=True)

    def _set_context(self, n: int, move_slider: bool = True) -> None:
        self._inputs = dataclasses.replace(self._inputs, context=int(n))
        with QSignalBlocker(self.context_combo):
            i = self.context_combo.findData(int(n))
            if i >= 0:
                self.context_combo.setCurrentIndex(i)
            self.context_combo.setEditText(self.context_combo.itemText(i) if i >= 0 else f"{n:,}")
        if move_slider and self._steps:
            nearest_step = min(range(len(self._steps)), key=lambda k: abs(self._steps[k] - n))
            with QSignalBlocker(self.context_slider):
                self.context_slider.setValue(nearest_step)

    def _refill_limits(self, note: str = "") -> None:
        machine = self.machine_picker.key() or DEFAULT_MACHINE
        phys = self.state.physical_bytes(machine)
        with QSignalBlocker(self.limit_combo):
            self.limit_combo.clear()
            host = None if phys is None else self.state.host(machine, None)
            if host is not None and host.is_apple_silicon:
                from forgeplanner.engine.budget import gpu_budget

                b = gpu_budget(host)
                for label, mb in gpu_limit_presets(b.physical_bytes, b.max_raisable_limit_bytes):
                    self.limit_combo.addItem(label, mb)
            else:
                self.limit_combo.addItem("default", None)
            mb = self._inputs.gpu_limit_mb
            i = self.limit_combo.findData(mb)
            if i >= 0:
                self.limit_combo.setCurrentIndex(i)
            self.limit_combo.setEditText("default" if mb is None else f"{mb} MB")
        self.limit_combo.setEnabled(host is None or host.is_apple_silicon)
        if note:
            self._show_message(note)

    def context(self) -> int:
        return self._inputs.context

    def set_context(self, tokens_: int) -> None:
        """Programmatic context change: applied at once."""
        self._set_context(int(tokens_))
        self.recompute()

    def set_gpu_limit(self, text: str) -> None:
        """As if typed into the GPU-limit field."""
        self.limit_combo.setEditText(text)
        self._on_limit_typed()

    def _on_model(self, _key: str) -> None:
        self._refill_quants()
        self._refill_context()
        self.recompute()

    def _on_runtime(self, _i: int) -> None:
        self._refill_quants()
        self.recompute()

    def _on_machine(self, _key: str) -> None:
        before = self._inputs
        after = self.state.limit_fits_machine(self._read_inputs())
        note = ""
        if before.gpu_limit_mb and after.gpu_limit_mb is None:
            note = (
                f"GPU limit {before.gpu_limit_mb} MB is more than this machine's memory: back "
                "to the macOS default"
            )
        self._inputs = after
        self._refill_limits(note)
        self.recompute(keep_message=bool(note))

    def _on_kv(self, _i: int) -> None:
        if self.kv_combo.currentData() != "f16" and self.flash_combo.currentData() == "off":
            with QSignalBlocker(self.flash_combo):
                # a quantized V cache needs flash attention: back to the runtime's auto
                self.flash_combo.setCurrentIndex(self.flash_combo.findData("auto"))
        self.recompute()

    def _on_input(self, *_: Any) -> None:
        self.recompute()

    def _on_limit_picked(self, i: int) -> None:
        self._inputs = dataclasses.replace(self._inputs, gpu_limit_mb=self.limit_combo.itemData(i))
        self._refill_limits()
        self.recompute()

    def _on_limit_typed(self) -> None:
        text = self.limit_combo.currentText()
        try:
            mb = parse_gpu_limit(text)
        except InputError as exc:
            self._refill_limits(str(exc))
            return
        phys = self.state.physical_bytes(self.machine_picker.key() or DEFAULT_MACHINE)
        if mb is not None and phys is not None and mb * (1 << 20) > phys:
            self._refill_limits(
                f"GPU limit '{text}': more than this machine's {phys // (1 << 20)} MB of memory"
            )
            return
        if mb != self._inputs.gpu_limit_mb:
            self._inputs = dataclasses.replace(self._inputs, gpu_limit_mb=mb)
            self.recompute()
        self._refill_limits()

    def _on_context_picked(self, i: int) -> None:
        n = self.context_combo.itemData(i)
        if n is not None:
            self.set_context(int(n))

    def _on_context_typed(self) -> None:
        text = self.context_combo.currentText()
        i = self.context_combo.findText(text)
        try:
            if i >= 0 and self.context_combo.itemData(i) is not None:
                n = int(self.context_combo.itemData(i))
            else:
                n = parse_context(text, self._max_context())
        except InputError as exc:
            self._show_message(str(exc))
            self._set_context(self._inputs.context)
            return
        if n != self._inputs.context:  # editingFinished also comes with nothing changed
            self.set_context(n)

    def _on_slider(self, v: int) -> None:
        if 0 <= v < len(self._steps):
            self._set_context(self._steps[v], move_slider=False)
            self._update.schedule()  # one recompute per event-loop pass

    # -- this machine ---------------------------------------------------------------------------
    def _probe_this_machine(self, gpu_limit_mb: int | None) -> None:
        if self._host_worker is not None:
            return

        def job(token):
            from forgeplanner.host import host_this_machine

            yield "probe"
            return host_this_machine(wired_limit_mb=gpu_limit_mb)

        def done(host: Any) -> None:
            self.state.set_this_machine(host, gpu_limit_mb)
            self._refill_limits()
            self.recompute()

        def failed(err: WorkerError) -> None:
            self._show_message(f"Could not read this machine: {err.reason}")

        def finished() -> None:
            self._host_worker = None

        self._host_worker = start_worker(
            self.ctx.pool, job, on_result=done, on_error=failed, on_finished=finished, owner=self
        )

    # -- computing -----------------------------------------------------------------------------
    def recompute(self, keep_message: bool = False) -> None:
        """Compute and draw the outcome for the current inputs now; the table of every
        quantization follows, debounced, from a worker."""
        self._keep_message = keep_message
        if self._first_pending:
            self._inputs = self._read_inputs()
            return
        self._update.run_now()

    def _prepare_outcome(self) -> Any:
        inputs = self._read_inputs()
        self._inputs = inputs
        if self.state.needs_probe(inputs):
            self._probe_this_machine(inputs.gpu_limit_mb)
        state = self.state
        return lambda _token: (state.compute(inputs), state.curve(inputs))

    def _show(self, payload: tuple[FitOutcome, list[tuple[int, float]]]) -> None:
        outcome, curve = payload
        self.outcome = outcome
        keep = getattr(self, "_keep_message", False)
        self._keep_message = False
        if not outcome.ok:
            self._show_message(outcome.message)
            self._clear()
            self.chart_updated.emit()
            return
        if not keep:
            self._show_message("\n".join(outcome.warnings))
        self._draw(outcome, curve)
        self._show_flash_resolution(outcome.estimate)  # type: ignore[arg-type]
        self._quants.schedule()

    def estimate_now(self) -> Estimate | None:
        return None if self.outcome is None else self.outcome.estimate

    def _show_flash_resolution(self, est: Estimate) -> None:
        """Say what "auto" resolved to for this runtime, model and chip, and why."""
        state = "on" if est.options.flash_attention else "off"
        self.flash_combo.setItemText(self.flash_combo.findData("auto"), f"auto ({state})")
        self.flash_combo.setToolTip(f"flash attention {state}: {est.flash_attention_basis}")

    def _show_message(self, text: str) -> None:
        from forgeplanner.viewstate.vocabulary import plain_reason

        text = plain_reason(text)  # the engine's reasons may name command-line flags
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _set_banner(self, verdict: str | None, text: str) -> None:
        self.verdict_label.setText(text)
        tint = theme.verdict_tint(verdict) if verdict else None
        pal = self.verdict_label.palette()
        if tint is not None:
            pal.setColor(QPalette.ColorRole.Window, tint)
        self.verdict_label.setPalette(pal)
        # No banner without a verdict: never an empty coloured box.
        self.verdict_label.setAutoFillBackground(tint is not None)
        self.verdict_label.setVisible(bool(text))

    def _clear(self) -> None:
        self._set_banner(None, "")
        for lab in self.summary.values():
            lab.setText("")
        self.sysctl.setText("")
        self.sysctl_note.setText("")
        self.copy_button.setEnabled(False)
        self.explain.setHtml("")
        self._explain_dirty = False
        if self._plots_built:
            for item in self.bars.values():
                item.setOpts(height=[0.0], y0=[0.0])
            self.macos_band.setOpts(height=[0.0], y0=[0.0])
            self.mem_legend.setText("")
            self.curve.setData([], [])
            self._curve_key = None
            self.context_marker.setVisible(False)
        self.quant_model.set_frame([])

    def _draw(self, o: FitOutcome, curve: list[tuple[int, float]]) -> None:
        est = o.estimate
        assert est is not None and o.memory is not None and o.headline is not None
        bar = o.memory
        self._set_banner(o.verdict, f"{o.verdict_text} on {o.machine_name}")
        h = o.headline
        self.summary["decode"].setText(f"<b>{h.decode}</b> &nbsp; ({h.decode_empty})")
        self.summary["ttft"].setText(f"<b>{h.ttft}</b> &nbsp; ({h.ttft_empty})")
        self.summary["prefill"].setText(h.prefill)
        fit = est.fit
        self.summary["memory"].setText(
            f"<b>{bar.used_gib:,.1f}</b> of {bar.limit_gib:,.1f} GiB GPU limit "
            f"({fit.headroom_bytes / GiB:+,.1f} GiB); {bar.physical_gib:,.0f} GiB physical, "
            f"{bar.macos_label}"
        )
        self.summary["memory"].setToolTip(fit.budget.basis)
        self.summary["max_context"].setText(o.largest_context)
        self.summary["quality"].setText(f"{est.quant}: {o.quality}")
        self.summary["quality"].setToolTip(o.quality_source)
        runs = len(o.published_runs)
        band = h.band + (
            f". The {runs} nearest published runs are under Published runs." if runs else ""
        )
        self.summary["band"].setText(band)
        self.summary["band"].setVisible(bool(band))
        self._band_name.setVisible(bool(band))
        self.published_model.set_frame([r.as_row() for r in o.published_runs])
        fit_columns(self.published_table, self.published_model, max_width=320)
        self.summary["basis"].setText(fit.budget.basis)
        if o.sysctl:
            self.sysctl.setText(o.sysctl)
            self.sysctl.setToolTip(o.sysctl_note)
            self.sysctl_note.setText(o.sysctl_note)
            self.copy_button.setEnabled(True)
        else:
            self.sysctl.setText(
                "not needed: fits under the current limit"
                if o.verdict == "fits"
                else "no limit makes this fit"
            )
            self.sysctl.setToolTip("")
            self.sysctl_note.setText("")
            self.copy_button.setEnabled(False)
        self.sysctl.setCursorPosition(0)  # a long text shows its start, not its end
        if self._plots_built:
            self._draw_memory(o)
            self._draw_curve(o, curve)
        self._explain_dirty = True
        if self.tabs.currentWidget() is self.explain:
            self._render_explain()
        self.chart_updated.emit()

    def _draw_memory(self, o: FitOutcome) -> None:
        bar = o.memory
        assert bar is not None
        y0 = 0.0
        legend = []
        for key, label, g in bar.parts:
            self.bars[key].setOpts(x=[0.0], height=[g], y0=[y0], width=0.6)
            y0 += g
            colour = theme.series_colour(theme.SERIES_HUES[key]).name()
            item = f"{label} {g:,.1f} GiB".replace(" ", "&nbsp;")  # wrap between items only
            legend.append(f"<span style='color:{colour}'>&#9632;</span>&nbsp;{item}")
        top_of_gpu = bar.raised_gib if bar.raised_gib is not None else bar.limit_gib
        self.macos_band.setOpts(x=[0.75], height=[bar.macos_gib], y0=[top_of_gpu], width=0.35)
        macos = theme.tint(0, 0.25).name()
        legend.append(f"<span style='color:{macos}'>&#9632;</span>&nbsp;{bar.macos_label}")
        self.mem_legend.setText(" &nbsp; ".join(legend))
        self.limit_line.setValue(bar.limit_gib)
        self.raised_line.setVisible(bar.raised_gib is not None)
        if bar.raised_gib is not None:
            self.raised_line.setValue(bar.raised_gib)
        self.physical_line.setValue(bar.physical_gib)
        # Keep the axis still while the slider moves (re-laying out an axis costs more than
        # the estimate); rescale only when the stack outgrows it or shrinks well below.
        top = max(y0, bar.physical_gib) * 1.08
        if top > self._mem_top or top < 0.75 * self._mem_top:
            self._mem_top = top
            self.mem_plot.getPlotItem().setYRange(0, top, padding=0)

    def _draw_curve(self, o: FitOutcome, curve: list[tuple[int, float]]) -> None:
        key = (o.inputs.model_id, o.inputs.quant, o.inputs.machine, o.inputs.gpu_limit_mb,
               o.inputs.runtime, o.inputs.kv_type, o.inputs.flash_attention)  # fmt: skip
        if curve and key != self._curve_key:
            xs = [float(d) for d, _ in curve]
            ys = [float(t) for _, t in curve]
            self.curve.setData(xs, ys)
            pi = self.speed_plot.getPlotItem()
            pi.setYRange(0, max(ys) * 1.1, padding=0)
            pi.setXRange(0, max(xs) or 1.0, padding=0.02)
            self.speed_empty.setText("")
            self._curve_key = key
            self._curve = curve
        elif not curve:
            self.curve.setData([], [])
            reason = o.warnings[-1] if o.warnings else "speed unknown"
            self.speed_empty.setText(reason[:90])
            self.speed_plot.getPlotItem().setXRange(-1, 1, padding=0)
            self.speed_plot.getPlotItem().setYRange(-1, 1, padding=0)
            self.speed_empty.setPos(0, 0)
            self._curve_key = None
            self._curve = []
        self.context_marker.setVisible(bool(curve))
        self.context_marker.setValue(o.inputs.context)

    # -- hover tooltips -------------------------------------------------------------------------
    def _memory_tip(self, x: float, y: float) -> str | None:
        o = self.outcome
        if o is None or o.memory is None:
            return None
        bar = o.memory
        if -0.3 <= x <= 0.3:
            y0 = 0.0
            for _key, label, g in bar.parts:
                if y0 <= y <= y0 + g:
                    return f"{label}: {g:,.2f} GiB (of {bar.used_gib:,.1f} GiB used)"
                y0 += g
        top_of_gpu = bar.raised_gib if bar.raised_gib is not None else bar.limit_gib
        if 0.57 <= x <= 0.93 and top_of_gpu <= y <= bar.physical_gib:
            return f"{bar.macos_label} (physical {bar.physical_gib:,.0f} GiB)"
        tolerance = (self._mem_top or 1.0) * 0.015
        for value, text in (
            (bar.limit_gib, f"GPU limit in force: {bar.limit_gib:,.1f} GiB"),
            (bar.raised_gib, f"raised limit (sysctl): {bar.raised_gib or 0:,.1f} GiB"),
            (bar.physical_gib, f"physical memory: {bar.physical_gib:,.0f} GiB"),
        ):
            if value is not None and abs(y - value) <= tolerance:
                return text
        return None

    def _speed_tip(self, x: float, y: float) -> str | None:
        pts = [(float(d), float(t)) for d, t in self._curve]
        i = nearest(pts, x, y, self.speed_plot)
        if i is None:
            return None
        d, t = self._curve[i]
        return f"{t:,.1f} tokens/s with {d:,} tokens in context"

    # -- explain, copy, quantizations ----------------------------------------------------------
    def _render_explain(self) -> None:
        """Laid out only when visible (a rich-text table costs a few ms per slider step)."""
        est = self.estimate_now()
        if self._explain_dirty and est is not None:
            self.explain.setHtml(explain_html(est))
            self._explain_dirty = False

    def copy_sysctl(self) -> None:
        o = self.outcome
        if o is not None and o.sysctl:
            QGuiApplication.clipboard().setText(o.sysctl)
            self.ctx.status("Copied the sysctl command", 3000)

    def _prepare_quants(self) -> Any:
        from forgeplanner.engine.estimate import estimate_quants

        inputs = self._inputs
        host = self.state.host(inputs.machine, inputs.gpu_limit_mb)
        if host is None or inputs.quant is None:
            return None
        model = self.state.model(inputs.model_id)
        columns = _quant_columns(inputs.context)
        opts = inputs.options(filled=True)

        def work(token: Any) -> Any:
            from ui.table_model import prepare_frame

            q = estimate_quants(model, host, opts)
            if token.cancelled:
                return None
            # Display texts and sort keys are made here; the GUI thread only swaps them in.
            return columns, prepare_frame(columns, quants_rows(q), "quant")

        return work

    def _show_quants(self, payload: Any) -> None:
        if payload is None:
            return
        columns, prepared = payload
        if [c.title for c in columns] != [c.title for c in self.quant_model.columns()]:
            self.quant_model.set_columns(columns)
        self.quant_model.set_frame(prepared)
        fit_columns(self.quant_table, self.quant_model)
        self.quants_updated.emit()

    def _quants_failed(self, err: WorkerError) -> None:
        self._show_message(err.reason)

    def _open_published_source(self, index: Any) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        row = self.published_model.row_dict(self.published_table.model().mapToSource(index).row())
        url = str(row.get("source") or "")
        if url.startswith(("https://", "http://")):
            QDesktopServices.openUrl(QUrl(url))

    def _pick_quant_from_table(self, index: Any) -> None:
        src = self.quant_proxy.mapToSource(index)
        name = self.quant_model.row_key(src.row())
        i = self.quant_combo.findData(name)
        if i >= 0:
            self.quant_combo.setCurrentIndex(i)

    # -- requests from other views, settings, palette ------------------------------------------
    def apply_request(
        self,
        model_id: str | None = None,
        machine: str | None = None,
        quant: str | None = None,
        runtime: str | None = None,
        context: int | None = None,
        **_: Any,
    ) -> None:
        """Show these inputs ("Open in Fit" from another view)."""
        if self._first_pending:  # before the first compute: applied by it
            given = {"model_id": model_id, "machine": machine, "quant": quant,
                     "runtime": runtime, "context": context}  # fmt: skip
            self._pending_request.update({k: v for k, v in given.items() if v is not None})
            with QSignalBlocker(self.machine_picker), QSignalBlocker(self.model_picker):
                if machine is not None:
                    self.machine_picker.set_key(machine)
                if model_id is not None:
                    self.model_picker.set_key(model_id)
                    self.model_picker.lineEdit().setText(self.model_picker.currentText())
            if model_id is not None or context is not None:
                self._refill_context(context)
            return
        if runtime is not None:
            with QSignalBlocker(self.runtime_combo):
                self.runtime_combo.setCurrentIndex(max(0, self.runtime_combo.findData(runtime)))
        if machine is not None:
            with QSignalBlocker(self.machine_picker):
                self.machine_picker.set_key(machine)
            self._inputs = self.state.limit_fits_machine(self._read_inputs())
            self._refill_limits()
        if model_id is not None:
            with QSignalBlocker(self.model_picker):
                self.model_picker.set_key(model_id)
                self.model_picker.lineEdit().setText(self.model_picker.currentText())
        self._refill_quants(prefer=quant)
        self._refill_context(context)
        self.recompute()

    def settings_values(self) -> dict[str, Any]:
        i = self._inputs
        return {
            "model_id": i.model_id, "machine": i.machine, "runtime": i.runtime,
            "quant": i.quant or "", "kv_type": i.kv_type,
            "flash": self.flash_combo.currentData(), "gpu_limit_mb": i.gpu_limit_mb or 0,
            "context": i.context,
        }  # fmt: skip

    def apply_settings_values(self, v: dict[str, Any]) -> None:
        with QSignalBlocker(self.kv_combo), QSignalBlocker(self.flash_combo):
            i = self.kv_combo.findData(v.get("kv_type"))
            if i >= 0:
                self.kv_combo.setCurrentIndex(i)
            i = self.flash_combo.findData(v.get("flash"))
            if i >= 0:
                self.flash_combo.setCurrentIndex(i)
        try:
            limit = int(v.get("gpu_limit_mb") or 0) or None
            context = int(v.get("context") or DEFAULT_CONTEXT)
        except (TypeError, ValueError):
            limit, context = None, DEFAULT_CONTEXT
        machine = str(v.get("machine") or DEFAULT_MACHINE)
        if self.machine_picker.findData(machine) < 0:
            machine = DEFAULT_MACHINE
        model = str(v.get("model_id") or DEFAULT_MODEL)
        if self.model_picker.findData(model) < 0:
            model = DEFAULT_MODEL
        self._inputs = dataclasses.replace(self._inputs, gpu_limit_mb=limit)
        self.apply_request(model_id=model, machine=machine, quant=v.get("quant") or None,
                           runtime=v.get("runtime"), context=context)  # fmt: skip

    def changeEvent(self, event: QEvent) -> None:
        """The system switched light/dark: re-derive every colour from the new palette."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette()

    def apply_palette(self) -> None:
        if not self._plots_built:
            return  # plots not built yet; they take the palette when they are
        p = pg()
        for plot in (self.mem_plot, self.speed_plot):
            theme.style_plot(plot)
        for key, item in self.bars.items():
            item.setOpts(brush=theme.series_colour(theme.SERIES_HUES[key]))
        self.macos_band.setOpts(brush=theme.tint(0, 0.25))
        text = theme.text_colour()
        self.physical_line.setPen(p.mkPen(text, width=1.5))
        self.limit_line.setPen(
            p.mkPen(theme.series_colour(40), width=2, style=Qt.PenStyle.DashLine)
        )
        self.raised_line.setPen(
            p.mkPen(theme.series_colour(120), width=2, style=Qt.PenStyle.DotLine)
        )
        for line in (self.physical_line, self.limit_line, self.raised_line, self.context_marker):
            line.label.setColor(text)
        self.curve.setPen(p.mkPen(theme.series_colour(210), width=2))
        self.quant_model.set_frame(self.quant_model.frame())
        if self.outcome is not None and self.outcome.ok:
            self._curve_key = None
            self._draw(self.outcome, self._curve)

    def busy(self) -> bool:
        """True while a redraw or table update is pending or running (screenshots wait)."""
        return (
            self._first_pending
            or self._update.busy()
            or self._quants.busy()
            or self._host_worker is not None
        )

    def shutdown(self) -> None:
        self._update.cancel()
        self._quants.cancel()
        if self._host_worker is not None:
            self._host_worker.cancel()


def explain_html(est: Estimate) -> str:
    """The formulas behind every number with the numbers filled in, as the engine gave them."""
    e = html.escape
    groups: list[tuple[str, tuple[Explanation, ...]]] = [
        ("Memory", est.fit.memory.explain),
        ("Fit", est.fit.explain),
    ]
    if est.speed is not None:
        groups.append(("Speed", est.speed.explain))
    o = est.options
    out = [
        f"<h3>{e(est.model_id)} {e(est.quant)} on {e(est.host.name)}, "
        f"{o.context:,} tokens, {e(o.runtime)}</h3>"
        f"<p>Decode measured with {o.depth:,} tokens already in context; time to first token "
        f"for a prompt of {o.prompt_tokens:,} tokens.</p>"
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


__all__ = ["FitView", "create_view", "explain_html", "quants_rows"]
