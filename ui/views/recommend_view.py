"""Recommend: which machine (new or used), or small cluster, to buy for the models you want to run.

Left: the constraints (the same inputs as `forgeplanner recommend`), the models picked by name,
id or alias. Right: price against decode speed, coloured by max watts, with the price / speed
frontier; the chart and the ranked table are linked (hovering a dot names the option, clicking
it selects its row, selecting a row rings its dot); the selected option's detail (its speed
with the context filled, the sysctl command and the memory it leaves macOS, the quality cost of
its quantization); rejected configurations with their reasons; price observations and the CSV
import (a preview before anything is written). "Add to plan" carries the machines and each
model with its quantization, runtime and context into the plan, as one undoable step.

The search runs `forgeplanner.services.recommend.build_recommendation` (what the CLI runs) with
the typed request of the constraints, in a worker (one at a time; edits re-run it, debounced);
the table rows, the detail and the plan addition come from `forgeplanner.viewstate.recommend`.
The price import runs `forgeplanner.services.prices` the same way.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QSignalBlocker, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.errors import ForgePlannerError
from forgeplanner.viewstate.fit import InputError, context_presets, parse_context
from forgeplanner.viewstate.recommend import (
    CONDITIONS,
    DEFAULT_CONTEXT,
    DEFAULT_MODEL,
    DEFAULT_QUANT_MIN,
    RecommendInputs,
    option_detail,
    option_rows,
    plan_addition,
    quant_min_choices,
    rejected_rows,
)
from forgeplanner.viewstate.vocabulary import machine_name_of, verdict_word
from ui import persist, theme
from ui.charts import HoverTips, make_plot, nearest, pg
from ui.context import AppContext
from ui.errors import show_error
from ui.pickers import ModelPicker
from ui.table_model import ROW_KEY_ROLE, Column, DataFrameTableModel, make_proxy
from ui.widgets import after_first_paint, configure_table, defer, fit_columns
from ui.workers import Recompute, WorkerError, start_worker

SEARCH_DEBOUNCE_MS = 400


def _money(v: Any) -> str:
    return f"${float(v):,.0f}"


def _f1(v: Any) -> str:
    return f"{float(v):.1f}"


def _f0(v: Any) -> str:
    return f"{float(v):,.0f}"


LIKELY_TIP = (
    "10th-90th percentile of measured / estimated over held-out published runs of similar "
    "setups (runtime, dense or MoE, context)"
)
OPTION_COLUMNS = [
    Column("pareto_mark", "Pareto", tooltip="on the price / speed / watts Pareto frontier"),
    Column("machines", "Machines"),
    Column("price_usd", "Price", _money),
    Column("decode_tps", "Decode t/s", _f1, "decode tokens/s the search found for this option"),
    Column("decode_range", "Likely decode", tooltip=LIKELY_TIP, missing=""),
    Column("prefill_tps", "Prefill t/s", _f0),
    Column("prefill_range", "Likely prefill", tooltip=LIKELY_TIP, missing=""),
    Column("quant", "Quantization"),
    Column("quality", "Quality cost", tooltip="published perplexity / KL divergence vs 16-bit"),
    Column("runtime", "Runtime"),
    Column("verdict", "Verdict", lambda v: verdict_word(v, short=True)),
    Column("max_w", "Max W", _f0),
    Column("annual_energy_kwh", "kWh/year", _f0),
    Column("annual_energy_cost", "Cost/year", _money),
    Column("price_basis", "Price basis"),
]
REJECTED_COLUMNS = [Column("machine", "Machine"), Column("reason", "Why not")]
OBS_COLUMNS = [
    Column("date", "Date"),
    Column("config", "Machine"),
    Column("price_usd", "Price USD", _money),
    Column("condition", "Condition"),
    Column("price_type", "Type"),
    Column("origin", "Origin"),
    Column("source", "Source"),
    Column("obs_id", "Id", tooltip="yours are user-N (the id `prices delete` takes)"),
]
PREVIEW_COLUMNS = [
    Column("line", "Line"),
    Column("date", "Date"),
    Column("price_usd", "Price USD", _money),
    Column("original", "Original"),
    Column("condition", "Condition"),
    Column("config_id", "Machine"),
    Column("match", "Match"),
    Column("duplicate_of", "Duplicate of"),
]


def _table(model: DataFrameTableModel) -> QTableView:
    view = QTableView()
    view.setModel(make_proxy(model, view))
    configure_table(view, sortable=True)
    view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
    return view


def _verdict_background(row: dict[str, Any], key: str) -> Any:
    return theme.verdict_tint(row.get("verdict", "")) if key == "verdict" else None


class _Models:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def get(self, model_id: str) -> Any:
        return self.ctx.model(model_id)


class RecommendView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: Any = None
        self.inputs: RecommendInputs = RecommendInputs()
        self._first_pending = True
        self.preview: Any = None
        self.error: str | None = None
        self.detail_value: Any = None
        self._import_worker: Any = None
        self._obs_worker: Any = None
        self._obs_generation = 0
        self._points: list[tuple[float, float]] = []
        self._point_rows: list[int] = []  # option index of each dot
        self.plot: Any = None
        self._build()
        persist.restore(self, "recommend")
        self._connect()
        self._search = Recompute(
            self,
            self._prepare_search,
            self._on_result,
            delay_ms=SEARCH_DEBOUNCE_MS,
            pool=ctx.pool,
            on_error=self._search_failed,
        )
        # The page paints its form first; the quantization list (the engine's import), the
        # first search and the plot follow, after the first paint.
        after_first_paint(self, self._first_fill)

    def _first_fill(self) -> None:
        keep = self._pending_quant_min
        for label, value in quant_min_choices():
            self.quant_combo.addItem(label, value)
        i = self.quant_combo.findData(keep)
        self.quant_combo.setCurrentIndex(
            i if i >= 0 else self.quant_combo.findData(DEFAULT_QUANT_MIN)
        )
        self.quant_combo.currentIndexChanged.connect(self.schedule)
        self._first_pending = False
        self._load_observations_in_background()
        self.search()
        defer(self, self._ensure_plot)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        box = QGroupBox("What you want to run")
        form = QFormLayout(box)
        self.model_picker = ModelPicker()
        self.model_picker.set_models(self.ctx.all_models(), keep=DEFAULT_MODEL)
        self.model_picker.setMinimumContentsLength(12)
        persist.skip(self.model_picker)
        self.add_model_button = QPushButton("Add")
        self.add_model_button.setToolTip("Every option must run all the listed models")
        self.models_list = QListWidget()
        self.models_list.setMaximumHeight(self.fontMetrics().height() * 4 + 10)
        self.remove_model_button = QPushButton("Remove")
        picker_row = QHBoxLayout()
        picker_row.addWidget(self.model_picker, 1)
        picker_row.addWidget(self.add_model_button)
        list_row = QHBoxLayout()
        list_row.addWidget(self.models_list, 1)
        list_row.addWidget(self.remove_model_button, 0, Qt.AlignmentFlag.AlignTop)
        self._set_models([DEFAULT_MODEL])
        self.context_combo = QComboBox()
        self.context_combo.setEditable(True)
        self.context_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for label, n in context_presets(None):
            self.context_combo.addItem(label, n)
        self.context_combo.setCurrentIndex(self.context_combo.findData(DEFAULT_CONTEXT))
        self.context_combo.setToolTip("Context in tokens: 16384, 16K, ...")
        self.quant_combo = QComboBox()  # filled after the first paint (from the engine)
        self.quant_combo.setToolTip("The lowest quantization you accept (lower = smaller, worse)")
        persist.skip(self.quant_combo)
        self._pending_quant_min: str | None = DEFAULT_QUANT_MIN
        self.decode_spin = self._optional_spin(0, 1000, " tok/s")
        self.decode_spin.setToolTip("Decode speed needed with the context filled")
        self.budget_spin = self._optional_spin(0, 1_000_000, " USD", step=500)
        self.condition_combo = QComboBox()
        for label, value in CONDITIONS:
            self.condition_combo.addItem(label, value)
        self.watts_spin = self._optional_spin(0, 10_000, " W", step=10)
        self.clusters_check = QCheckBox("also 2-4 identical machines")
        self.hours_spin = QDoubleSpinBox()
        self.hours_spin.setRange(0, 24)
        self.hours_spin.setValue(8)
        self.hours_spin.setSuffix(" h/day")
        self.tariff_spin = self._optional_spin(0, 10, " per kWh", step=0.01, decimals=3)
        form.addRow("Models", picker_row)
        form.addRow("", list_row)
        form.addRow("Context", self.context_combo)
        form.addRow("Lowest quantization", self.quant_combo)
        form.addRow("Decode at least", self.decode_spin)
        form.addRow("Budget", self.budget_spin)
        form.addRow("Condition", self.condition_combo)
        form.addRow("Max power", self.watts_spin)
        form.addRow("Clusters", self.clusters_check)
        form.addRow("At load", self.hours_spin)
        form.addRow("Electricity", self.tariff_spin)
        self.search_button = QPushButton("Search now")
        form.addRow(self.search_button)
        self.summary_label = QLabel("searching...")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(box)
        ll.addWidget(self.summary_label)
        ll.addStretch(1)

        self._plot_box = QWidget()
        self._plot_box.setLayout(QVBoxLayout())
        self._plot_box.layout().setContentsMargins(0, 0, 0, 0)
        self._plot_box.setMinimumHeight(200)
        self.watts_label = QLabel("Colour: max watts")
        self.watts_label.setWordWrap(True)

        self.option_model = DataFrameTableModel(
            OPTION_COLUMNS, key_column="index", background=_verdict_background
        )
        self.option_table = _table(self.option_model)
        self.option_table.setObjectName("option_table")
        self.option_table.selectionModel().selectionChanged.connect(self._on_row_selected)
        self.detail = QTextBrowser()
        self.detail.setObjectName("optionDetail")
        self.detail.setHtml("<p>Select an option (or click its dot) to see its detail.</p>")
        self.add_button = QPushButton("Add to plan")
        self.add_button.setToolTip("The machines, and each model with its quantization, runtime "
                                   "and context, into the plan (undoable)")  # fmt: skip
        self.add_button.setEnabled(False)
        self.fit_button = QPushButton("Open in Fit")
        self.fit_button.setEnabled(False)
        opt_page = QWidget()
        ol = QVBoxLayout(opt_page)
        ol.setContentsMargins(0, 0, 0, 0)
        self.options_split = QSplitter(Qt.Orientation.Horizontal)
        self.options_split.addWidget(self.option_table)
        detail_box = QWidget()
        dl = QVBoxLayout(detail_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.detail, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.fit_button)
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        dl.addLayout(buttons)
        self.options_split.addWidget(detail_box)
        self.options_split.setStretchFactor(0, 3)
        self.options_split.setStretchFactor(1, 2)
        ol.addWidget(self.options_split)

        self.rejected_model = DataFrameTableModel(REJECTED_COLUMNS)
        self.rejected_table = _table(self.rejected_model)

        self.obs_model = DataFrameTableModel(OBS_COLUMNS)
        self.obs_table = _table(self.obs_model)
        self.preview_model = DataFrameTableModel(PREVIEW_COLUMNS)
        self.preview_table = _table(self.preview_model)
        self.fx_edit = QLineEdit()
        self.fx_edit.setPlaceholderText("EUR=1.08, GBP=1.27 (USD per unit)")
        self.decimal_combo = QComboBox()
        self.decimal_combo.addItems([".", ","])
        self.dayfirst_check = QCheckBox("dates are DD/MM/YYYY")
        self.import_button = QPushButton("Import CSV...")
        self.commit_button = QPushButton("Commit import")
        self.commit_button.setEnabled(False)
        self.delete_button = QPushButton("Delete selected")
        self.delete_button.setToolTip(
            "Delete the selected observations of your own (shipped ones are catalog data)"
        )
        self.delete_button.setEnabled(False)
        self.import_label = QLabel("")
        self.import_label.setWordWrap(True)
        obs_page = QWidget()
        obl = QVBoxLayout(obs_page)
        obl.addWidget(self.obs_table, 2)
        irow = QHBoxLayout()
        irow.addWidget(QLabel("Exchange rates"))
        irow.addWidget(self.fx_edit, 1)
        irow.addWidget(QLabel("Decimal mark"))
        irow.addWidget(self.decimal_combo)
        obl.addLayout(irow)
        irow2 = QHBoxLayout()
        irow2.addWidget(self.dayfirst_check)
        irow2.addStretch(1)
        irow2.addWidget(self.delete_button)
        irow2.addWidget(self.import_button)
        irow2.addWidget(self.commit_button)
        obl.addLayout(irow2)
        obl.addWidget(self.import_label)
        obl.addWidget(self.preview_table, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(opt_page, "Ranked options")
        self.tabs.addTab(self.rejected_table, "Rejected")
        self.tabs.addTab(obs_page, "Price observations")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.right_split = QSplitter(Qt.Orientation.Vertical)
        plot_page = QWidget()
        pl = QVBoxLayout(plot_page)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self._plot_box, 1)
        pl.addWidget(self.watts_label)
        self.right_split.addWidget(plot_page)
        self.right_split.addWidget(self.tabs)
        self.right_split.setStretchFactor(0, 1)
        self.right_split.setStretchFactor(1, 1)
        rl.addWidget(self.right_split)
        # Long model and machine names must not widen the inputs past a narrow window's
        # share (1024 x 700): combos shrink to a few characters and elide the rest.
        for combo in left.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # A narrow window scrolls the inputs sideways rather than clipping them; a wide one
        # gives them all they need (the sizes below).
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setMinimumWidth(280)
        self.main_split = QSplitter()
        self.main_split.addWidget(scroll)
        self.main_split.addWidget(right)
        self.main_split.setStretchFactor(1, 3)
        needs = left.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
        self.main_split.setSizes([needs + 4, 950])
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.main_split)

    def _connect(self) -> None:
        self.add_model_button.clicked.connect(self._add_model)
        self.remove_model_button.clicked.connect(self._remove_model)
        self.model_picker.picked.connect(self._picked_model)
        self.model_picker.unknown_text.connect(
            lambda t: self._show_error(f"Model '{t}': no model of that name, id or alias")
        )
        self.context_combo.lineEdit().editingFinished.connect(self._context_edited)
        self.context_combo.activated.connect(lambda _i: self.schedule())
        self.condition_combo.currentIndexChanged.connect(self.schedule)
        for spin in (self.decode_spin, self.budget_spin, self.watts_spin, self.hours_spin,
                     self.tariff_spin):  # fmt: skip
            spin.valueChanged.connect(self.schedule)
        self.clusters_check.toggled.connect(self.schedule)
        self.search_button.clicked.connect(self.search)
        self.add_button.clicked.connect(lambda: self.add_selected_to_plan())
        self.fit_button.clicked.connect(self._open_in_fit)
        self.import_button.clicked.connect(self.choose_csv)
        self.commit_button.clicked.connect(self.commit_import)
        self.obs_table.selectionModel().selectionChanged.connect(self._obs_selection_changed)
        self.delete_button.clicked.connect(lambda: self.delete_observations())
        self.ctx.models_changed.connect(lambda: self.model_picker.set_models(self.ctx.all_models()))

    def _ensure_plot(self) -> None:
        """Price against decode speed, coloured by watts; the price / speed frontier as a line."""
        if self.plot is not None:
            return
        p = pg()
        self.plot = make_plot(
            "priceSpeedPlot", left=("Decode", "tokens/s"), bottom=("Price", "USD"),
            title="Price against decode speed",
        )  # fmt: skip
        self.frontier = p.PlotDataItem(pen=p.mkPen(theme.text_colour(), width=1.5))
        self.scatter = p.ScatterPlotItem(size=10, pen=p.mkPen(None))
        self.scatter.sigClicked.connect(self._dot_clicked)
        self.selected_dot = p.ScatterPlotItem(
            size=18, pen=p.mkPen(theme.text_colour(), width=2.5), brush=p.mkBrush(None)
        )
        self.plot.addItem(self.frontier)
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.selected_dot)
        self.tips = HoverTips(self.plot, self._dot_tip)
        self._plot_box.layout().addWidget(self.plot)
        if self.result is not None:
            self._plot(self.result.options)

    @staticmethod
    def _optional_spin(
        lo: float, hi: float, suffix: str, step: float = 1, decimals: int = 1
    ) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setDecimals(decimals)
        spin.setSingleStep(step)
        spin.setSuffix(suffix)
        spin.setSpecialValueText("no limit")  # 0 = no limit
        return spin

    # -- models ---------------------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        return [
            str(self.models_list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.models_list.count())
        ]

    def _set_models(self, ids: list[str]) -> None:
        self.models_list.clear()
        for model_id in dict.fromkeys(ids):
            item = QListWidgetItem(model_id)
            item.setData(Qt.ItemDataRole.UserRole, model_id)
            self.models_list.addItem(item)

    def set_models(self, ids: list[str]) -> None:
        self._set_models(ids)
        if ids:
            with QSignalBlocker(self.model_picker):
                self.model_picker.set_key(ids[0])
        self.schedule()

    def _picked_model(self, model_id: str) -> None:
        """Picking a model replaces the one model searched for; Add keeps the others."""
        if self.models_list.count() <= 1:
            self._set_models([model_id])
            self.schedule()

    def _add_model(self) -> None:
        key = self.model_picker.key()
        if key and key not in self.model_ids():
            self._set_models([*self.model_ids(), key])
            self.schedule()

    def _remove_model(self) -> None:
        row = self.models_list.currentRow()
        if row >= 0 and self.models_list.count() > 1:
            self.models_list.takeItem(row)
            self.schedule()

    def _context_edited(self) -> None:
        text = self.context_combo.currentText()
        if self.context_combo.findText(text) >= 0:
            self.schedule()
            return
        try:
            n = parse_context(text, None)
        except InputError as exc:
            self._show_error(str(exc))
            return
        with QSignalBlocker(self.context_combo):
            self.context_combo.setEditText(f"{n:,}")
        self.schedule()

    # -- search ---------------------------------------------------------------------------------
    def read_inputs(self) -> RecommendInputs:
        def opt(spin: QDoubleSpinBox) -> float | None:
            return spin.value() or None

        text = self.context_combo.currentText()
        i = self.context_combo.findText(text)
        try:
            context = int(self.context_combo.itemData(i)) if i >= 0 else parse_context(text, None)
        except InputError:
            context = self.inputs.context
        return RecommendInputs(
            models=tuple(self.model_ids()),
            context=context,
            quant_min=self.quant_combo.currentData(),
            min_decode_tps=opt(self.decode_spin),
            budget_usd=opt(self.budget_spin),
            condition=self.condition_combo.currentData(),
            max_watts=opt(self.watts_spin),
            allow_clusters=self.clusters_check.isChecked(),
            hours_at_load=self.hours_spin.value(),
            tariff=opt(self.tariff_spin),
        )

    def request(self) -> Any:
        """The search the widgets describe (services.recommend.RecommendRequest)."""
        return self.read_inputs().request()

    def schedule(self, *_: Any) -> None:
        if self._first_pending:
            return
        self.summary_label.setText("searching...")
        self._search.schedule()

    def search(self) -> None:
        if self._first_pending:
            return  # the first search runs after the first paint
        self._search.run_now()

    def _prepare_search(self) -> Any:
        inputs = self.read_inputs()
        if not inputs.models:
            self._show_error("pick at least one model")
            return None
        self.inputs = inputs
        self.search_button.setEnabled(False)
        self.summary_label.setText("searching...")
        catalog = self.ctx.catalog
        option_model, rejected_model = self.option_model, self.rejected_model
        try:
            moe = self.ctx.model(inputs.models[0]).moe is not None
        except ForgePlannerError:  # an unknown model: the search itself says so
            moe = False

        def work(token: Any) -> Any:
            from forgeplanner.services.recommend import build_recommendation

            # The request is made here, so constraints it refuses reach on_error like any
            # other failure.
            rec = build_recommendation(inputs.request(), catalog=catalog)
            # The tables' cells are prepared here: the GUI thread only swaps them in.
            return (
                rec,
                option_model.prepare(option_rows(rec, catalog, moe=moe)),
                rejected_model.prepare(rejected_rows(rec, catalog)),
                inputs,
            )

        return work

    def _search_failed(self, err: WorkerError) -> None:
        self.search_button.setEnabled(True)
        self._show_error(err.reason)

    def _show_error(self, text: str) -> None:
        self.error = text.splitlines()[0] if text else "error"
        self.summary_label.setText(f"Cannot search: {self.error}")

    def _on_result(self, payload: Any) -> None:
        rec, options, rejected, inputs = payload
        self.search_button.setEnabled(True)
        self.error = None
        self.inputs = inputs
        self.option_model.set_frame(options)
        price_col = self.option_model.column_index("price_usd")
        self.option_table.sortByColumn(price_col, Qt.SortOrder.AscendingOrder)
        fit_columns(self.option_table, self.option_model)
        self.rejected_model.set_frame(rejected)
        fit_columns(self.rejected_table, self.rejected_model, max_width=420)
        self.result = rec
        self._plot(rec.options)
        self._show_detail(None)
        c = rec.constraints
        from forgeplanner.viewstate.vocabulary import plain_reason

        notes = "\n".join(f"- {plain_reason(n)}" for n in rec.notes)
        self.summary_label.setText(
            f"{len(rec.options)} option(s), {len(rec.rejected)} configuration(s) rejected; "
            f"prices as of {c['today']}.\n{notes}"
        )
        self.ctx.status(f"Recommend: {len(rec.options)} options for {', '.join(c['models'])}")

    def _plot(self, options: Any) -> None:
        self._ensure_plot()
        p = pg()
        pts = [(i, o) for i, o in enumerate(options)
               if o.price_usd is not None and o.decode_tps is not None]  # fmt: skip
        self._points = [(float(o.price_usd), float(o.decode_tps)) for _, o in pts]
        self._point_rows = [i for i, _ in pts]
        if not pts:
            self.scatter.setData([], [])
            self.frontier.setData([], [])
            self.selected_dot.setData([], [])
            return
        watts = [o.max_w for _, o in pts if o.max_w is not None]
        lo, hi = (min(watts), max(watts)) if watts else (0.0, 1.0)
        cmap = p.colormap.get("CET-D1")  # diverging blue -> red, readable on light and dark
        brushes = []
        for _, o in pts:
            if o.max_w is None:
                brushes.append(p.mkBrush(theme.muted_text()))
                continue
            t = 0.5 if hi == lo else (o.max_w - lo) / (hi - lo)
            brushes.append(p.mkBrush(QColor(cmap.map(t, mode="qcolor"))))
        self.scatter.setData(
            x=[x for x, _ in self._points], y=[y for _, y in self._points], brush=brushes,
            data=self._point_rows,
        )  # fmt: skip
        # The line is the price / speed frontier (each step: the fastest option at or below
        # that price); the table's Pareto column also weighs watts, so it can mark more options.
        xs: list[float] = []
        ys: list[float] = []
        best = float("-inf")
        for x, y in sorted(self._points, key=lambda q: (q[0], -q[1])):
            if y > best:
                if xs:
                    xs.append(x)
                    ys.append(best)
                xs.append(x)
                ys.append(y)
                best = y
        self.frontier.setData(xs, ys)
        self.selected_dot.setData([], [])
        self.watts_label.setText(
            f"Colour: max watts, blue {lo:,.0f} W to red {hi:,.0f} W (grey: unknown). Line: the "
            "fastest option at each price. Hover a dot for its option; click it to select it."
        )

    # -- chart <-> table -------------------------------------------------------------------------
    def _dot_tip(self, x: float, y: float) -> str | None:
        i = nearest(self._points, x, y, self.plot)
        if i is None or self.result is None:
            return None
        o = self.result.options[self._point_rows[i]]
        name = machine_name_of(self.ctx.catalog, o.machines[0][0])
        n = o.machines[0][1]
        return (f"{n} x {name}" if n > 1 else name) + (
            f"\n${o.price_usd:,.0f} ({o.price_basis})\n{o.quant} on {o.runtime}: "
            f"{o.decode_tps:,.1f} tok/s decode"
            + ("" if o.max_w is None else f", max {o.max_w:,.0f} W")
        )

    def _dot_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        if len(points):
            self.select_option(int(points[0].data()))

    def select_option(self, index: int) -> bool:
        """Select the option with this index in `result.options` (its row in the table)."""
        proxy = self.option_table.model()
        for r in range(proxy.rowCount()):
            if proxy.index(r, 0).data(ROW_KEY_ROLE) == index:
                self.option_table.selectionModel().select(
                    proxy.index(r, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows,
                )
                self.option_table.scrollTo(proxy.index(r, 0))
                return True
        return False

    def selected_index(self) -> int | None:
        rows = self.option_table.selectionModel().selectedRows()
        if not rows:
            return None
        return int(rows[0].data(ROW_KEY_ROLE))

    def selected_option(self) -> dict[str, Any] | None:
        i = self.selected_index()
        if i is None:
            return None
        src = self.option_table.model().mapToSource(
            self.option_table.selectionModel().selectedRows()[0]
        )
        return self.option_model.row_dict(src.row())

    def _on_row_selected(self, *_: Any) -> None:
        i = self.selected_index()
        self._show_detail(i)
        if self.plot is None:
            return
        if i is not None and i in self._point_rows:
            x, y = self._points[self._point_rows.index(i)]
            self.selected_dot.setData([x], [y])
        else:
            self.selected_dot.setData([], [])

    def _show_detail(self, index: int | None) -> None:
        self.add_button.setEnabled(index is not None)
        self.fit_button.setEnabled(index is not None)
        if index is None or self.result is None:
            self.detail_value = None
            self.detail.setHtml("<p>Select an option (or click its dot) to see its detail.</p>")
            return
        option = self.result.options[index]
        self.detail_value = option_detail(option, self.inputs, self.ctx.catalog, _Models(self.ctx))
        self.detail.setHtml(self.detail_value.html())

    def _open_in_fit(self) -> None:
        i = self.selected_index()
        if i is None or self.result is None:
            return
        o = self.result.options[i]
        add = plan_addition(o, self.inputs)
        model_id, quant, runtime, context = add.models[0]
        self.ctx.request_view(
            "fit", model_id=model_id, machine=o.machines[0][0], quant=quant, runtime=runtime,
            context=context,
        )  # fmt: skip

    # -- plan -----------------------------------------------------------------------------------
    def add_selected_to_plan(self, index: int | None = None) -> bool:
        from ui.plan_edits import add_models_and_machines

        i = self.selected_index() if index is None else index
        if i is None or self.result is None:
            self.ctx.status("Select an option first")
            return False
        add = plan_addition(self.result.options[i], self.inputs)
        text = f"Add {add.describe(self.ctx.catalog)}"
        worker = add_models_and_machines(
            self.ctx, list(add.machines), add.condition, list(add.models), text, parent=self
        )
        if worker is None:
            return False
        self.ctx.status(text)
        return True

    def apply_request(self, model_id: str | None = None, context: int | None = None,
                      **_: Any) -> None:  # fmt: skip
        """ "Recommend hardware" from another view: search for this model (at this context)."""
        if context is not None:
            with QSignalBlocker(self.context_combo):
                i = self.context_combo.findData(int(context))
                if i >= 0:
                    self.context_combo.setCurrentIndex(i)
                else:
                    self.context_combo.setEditText(f"{int(context):,}")
        if model_id is not None:
            self.set_models([model_id])
        self.search()

    def settings_values(self) -> dict[str, Any]:
        quant = self._pending_quant_min if self._first_pending else self.quant_combo.currentData()
        return {"models": ",".join(self.model_ids()), "quant_min": quant or "any"}

    def apply_settings_values(self, v: dict[str, Any]) -> None:
        q = str(v.get("quant_min") or DEFAULT_QUANT_MIN)
        self._pending_quant_min = None if q == "any" else q
        ids = [m for m in str(v.get("models") or "").split(",") if m]
        known = [m for m in ids if self.model_picker.findData(m) >= 0]
        if known:
            self._set_models(known)
            with QSignalBlocker(self.model_picker):
                self.model_picker.set_key(known[0])

    # -- observations and import ----------------------------------------------------------------
    def refresh_observations(self) -> None:
        """Re-read the price observations now (after an import was committed)."""
        self._obs_generation += 1  # a background load still running is now stale
        rows, problem = observation_rows(self.ctx.catalog)
        self._apply_observations(rows, problem)

    def _load_observations_in_background(self) -> None:
        """First fill: opening the user database and reading it happen in a worker."""
        generation = self._obs_generation
        ctx, model = self.ctx, self.obs_model

        def job(token: Any):
            yield "observations"
            rows, problem = observation_rows(ctx.catalog)
            return model.prepare(rows), problem

        def done(payload: Any) -> None:
            if generation == self._obs_generation:
                self._apply_observations(*payload)

        self._obs_worker = start_worker(
            self.ctx.pool, job, on_result=done, on_finished=self._obs_finished, owner=self
        )

    def _obs_finished(self) -> None:
        self._obs_worker = None

    def _apply_observations(self, rows: Any, problem: str | None) -> None:
        if problem:
            self.import_label.setText(problem)
        self.obs_model.set_frame(rows)
        fit_columns(self.obs_table, self.obs_model, max_width=300)

    def _fx(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.fx_edit.text().replace(";", ",").split(","):
            if not part.strip():
                continue
            code, _, rate = part.partition("=")
            out[code.strip().upper()] = float(rate)
        return out

    def choose_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import listings", "", "CSV files (*.csv)")
        if path:
            self.preview_csv(path)

    def preview_csv(self, path: str) -> None:
        """Parse and validate the CSV in a worker; show the preview; write nothing."""
        try:
            fx = self._fx()
        except ValueError:
            self.import_label.setText("Exchange rates: expected CODE=RATE, e.g. EUR=1.08")
            return
        decimal = self.decimal_combo.currentText()
        dayfirst = self.dayfirst_check.isChecked()
        catalog = self.ctx.catalog
        store = self.ctx.store
        self.commit_button.setEnabled(False)
        self.import_label.setText(f"reading {path} ...")

        def job(token: Any):
            from forgeplanner.services.prices import ListingFormat, read_listings_file

            yield "reading"
            fmt = ListingFormat(fx=fx, decimal=decimal, dayfirst=dayfirst)
            return read_listings_file(path, fmt, store=store(), catalog=catalog)

        self._import_worker = start_worker(
            self.ctx.pool,
            job,
            on_result=self._on_preview,
            on_error=lambda err: self._import_failed(err.reason),
            on_finished=self._import_finished,
            owner=self,
        )

    def _import_finished(self) -> None:
        self._import_worker = None

    def _import_failed(self, text: str) -> None:
        self.preview = None
        self.commit_button.setEnabled(False)
        self.preview_model.set_frame([])
        self.import_label.setText(f"Not imported: {text}")

    def _on_preview(self, imp: Any) -> None:
        self.preview = imp
        rows = []
        for r in imp.rows:
            d = r.to_dict()
            d["original"] = f"{r.currency} {r.original_price:,.2f}"
            d["config_id"] = (
                machine_name_of(self.ctx.catalog, r.config_id)
                if r.config_id
                else f"(unmatched) {r.title or ''}"
            )
            rows.append(d)
        self.preview_model.set_frame(rows)
        self.commit_button.setEnabled(bool(imp.new_rows))
        self.import_label.setText(
            f"Preview of {imp.file}: {len(imp.new_rows)} new row(s), {len(imp.duplicates)} "
            f"duplicate(s) skipped; nothing written yet. Commit to import."
        )

    def commit_import(self) -> int:
        from forgeplanner.services.prices import commit_listings

        if self.preview is None:
            return 0
        added = commit_listings(self.preview, store=self.ctx.store())
        self.import_label.setText(f"Imported {len(added)} row(s) from {self.preview.file}.")
        self.preview = None
        self.commit_button.setEnabled(False)
        self.refresh_observations()
        return len(added)

    # -- deleting the user's own observations ---------------------------------------------------
    def selected_observation_ids(self) -> list[str]:
        proxy = self.obs_table.model()
        rows = sorted(
            {proxy.mapToSource(i).row() for i in self.obs_table.selectionModel().selectedRows()}
        )
        return [str(self.obs_model.row_dict(r)["obs_id"]) for r in rows]

    def _obs_selection_changed(self, *_: Any) -> None:
        ids = self.selected_observation_ids()
        self.delete_button.setEnabled(bool(ids) and all(i.startswith("user-") for i in ids))

    def delete_observations(self, ids: list[str] | None = None, confirm: bool = True) -> int:
        """Delete these of the user's own observations (default: the selected rows) from the
        user database through the service `forgeplanner prices delete` calls; shipped ones are
        refused. Asks first unless `confirm` is False. Returns how many were deleted."""
        from forgeplanner.services.prices import delete_observations

        ids = self.selected_observation_ids() if ids is None else list(ids)
        if not ids:
            return 0
        shipped = [i for i in ids if not i.startswith("user-")]
        if shipped:
            self.import_label.setText(
                f"{', '.join(shipped)}: shipped observations are catalog data and cannot be "
                "deleted; only yours (user-N) can."
            )
            return 0
        if confirm:
            answer = QMessageBox.question(
                self, "Delete price observations",
                f"Delete {len(ids)} of your price observation(s) ({', '.join(ids)})? This "
                "cannot be undone.",
            )  # fmt: skip
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        numbers = [int(i.removeprefix("user-")) for i in ids]
        try:
            deleted = delete_observations(numbers, store=self.ctx.store())
        except ForgePlannerError as exc:  # gone meanwhile (another window, the CLI)
            show_error(self, exc)
            self.refresh_observations()
            return 0
        self.import_label.setText(
            "Deleted "
            + ", ".join(f"user-{r.id} ({r.observed_on} ${r.price:,.2f})" for r in deleted)
            + "."
        )
        self.refresh_observations()
        self.schedule()  # the prices the search uses changed
        return len(deleted)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.plot is not None:
            theme.style_plot(self.plot)
            p = pg()
            self.frontier.setPen(p.mkPen(theme.text_colour(), width=1.5))
            self.selected_dot.setPen(p.mkPen(theme.text_colour(), width=2.5))
            for m in (self.option_model, self.rejected_model, self.obs_model):
                m.set_frame(m.frame() if m.frame() is not None else [])
            if self.result is not None:
                self._plot(self.result.options)
                self._on_row_selected()

    def busy(self) -> bool:
        return (
            self._first_pending
            or self._search.busy()
            or self._obs_worker is not None
            or self.plot is None
        )

    def shutdown(self) -> None:
        self._search.cancel()
        for w in (self._import_worker, self._obs_worker):
            if w is not None:
                w.cancel()


def observation_rows(catalog: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Shipped and user price observations, newest first, and why the user's could not be
    read (None when they could)."""
    from forgeplanner.services.prices import user_price_observations

    problem = None
    try:
        user, _ = user_price_observations()
    except ForgePlannerError as exc:  # a broken user database must not break the view; say so
        user = ()
        problem = f"Your price observations could not be read: {exc}"
    rows = []
    for o in (*catalog.price_observations, *user):
        machine = o.config_id or o.machine_id
        rows.append({
            "obs_id": o.id,
            "date": o.date,
            "config": machine_name_of(catalog, o.config_id) if o.config_id else (machine or o.item),
            "price_usd": o.point_price_usd, "condition": o.condition,
            "price_type": o.price_type, "origin": o.origin, "source": o.source,
        })  # fmt: skip
    rows.sort(key=lambda r: str(r["date"]), reverse=True)
    return rows, problem


def create_view(ctx: AppContext) -> QWidget:
    return RecommendView(ctx)
