"""Plan view: the build plan being edited, its totals, estimates, layouts, measured runs, gate
verdicts and exports; undo/redo of every edit.

The view binds to `ctx.plan` (a `PlanDocument` holding an immutable `Plan`); the file actions
(new, open, save, export) are the File menu's (`ctx.documents`), so the unsaved-changes prompt
and crash recovery cover them here too. An edit is a pure function from `forgeplanner.plan.edit`;
the new plan is recomputed through the engine in a worker (`ui.plan_edits.edit_plan`) and then
set on the document with a description, which pushes an undoable command. The Runs tab lists the
stored benchmark runs and refreshes itself when a run is stored (`ctx.runs_changed`); a run from
a machine that is not in the plan is flagged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSignalBlocker, Qt
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.domain.plan import Build, Plan
from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import ForgePlannerError
from forgeplanner.export import tables as t
from forgeplanner.viewstate.vocabulary import machine_choices, runtime_choices, verdict_word
from ui import persist, theme
from ui.context import AppContext
from ui.document import EXAMPLE, EXPORT_FORMATS, EXPORT_TITLES, now_iso
from ui.errors import show_error
from ui.pickers import MachinePicker, ModelPicker
from ui.plan_edits import add_machine_to_plan, edit_plan, plan_sources
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import after_first_paint, configure_table
from ui.workers import start_worker

MAIN_BUILD = "Main build"
EXPORT_FILTERS = EXPORT_FORMATS
OUTCOME_HUES = {"ALLOW": 120, "ESCALATE": 40, "DENY": 0}
__all__ = ["EXAMPLE", "PlanView", "add_machine_to_plan", "create_view", "edit_plan", "now_iso"]


def _gib(v: Any) -> str:
    return t.gib(v)


def _usd(v: Any) -> str:
    return t.usd(v)


def _tps(v: Any) -> str:
    return f"{v:,.1f}"


def _pct(v: Any) -> str:
    return f"{v:+.1f} %"


BOM_COLUMNS = [
    Column("machine_name", "Machine"),
    Column("count", "Count"),
    Column("unit_price_usd", "Unit price", _usd),
    Column("line_total_usd", "Line total", _usd),
    Column("price_basis", "Basis"),
    Column("condition", "Condition"),
    Column("price_as_of", "Price date"),
    Column("idle_w", "Idle W", lambda v: f"{v:,.0f}"),
    Column("max_w", "Max W", lambda v: f"{v:,.0f}"),
    Column("price_source", "Price source"),
]
MODEL_COLUMNS = [
    Column("model_id", "Model"),
    Column("quant", "Quantization"),
    Column("runtime", "Runtime"),
    Column("context", "Context"),
    Column("license", "Licence"),
]
LIKELY_TIP = (
    "10th-90th percentile of measured / estimated over held-out published runs of similar "
    "setups (runtime, dense or MoE, context)"
)
ESTIMATE_COLUMNS = [
    Column("model_id", "Model"),
    Column("quant", "Quant"),
    Column("target_name", "Machine"),
    Column("verdict", "Verdict", lambda v: verdict_word(v, short=True)),
    Column("total_bytes", "Total", _gib),
    Column("gpu_limit_bytes", "GPU limit", _gib),
    Column("headroom_bytes", "Headroom", _gib),
    Column("decode_tps", "Decode tok/s", _tps),
    Column("decode_range", "Likely decode", tooltip=LIKELY_TIP, missing=""),
    Column("prefill_tps", "Prefill tok/s", _tps),
    Column("max_context_that_fits", "Max context"),
]
CLUSTER_COLUMNS = [
    Column("name", "Node"),
    Column("config_id", "Configuration"),
    Column("layers", "Layers"),
    Column("weights_bytes", "Weights", _gib),
    Column("kv_cache_bytes", "KV cache", _gib),
    Column("total_bytes", "Total", _gib),
    Column("gpu_limit_bytes", "GPU limit", _gib),
    Column("verdict", "Verdict", lambda v: verdict_word(v, short=True)),
]
PLATFORM_COLUMNS = [
    Column("name", "Node"),
    Column("config_id", "Configuration"),
    Column("roles", "Roles"),
    Column("power_w", "Max W", lambda v: f"{v:,.0f}"),
]
RUN_COLUMNS = [
    Column("run_id", "Run"),
    Column("runner", "Runner"),
    Column("model", "Model"),
    Column("label", "Metric"),
    Column("unit", "Unit"),
    Column("estimated", "Estimated", _tps, "the estimate made before the run", missing="none"),
    Column("measured", "Measured", _tps),
    Column("error_pct", "Error", _pct, "(measured - estimated) / estimated", missing=""),
    Column("measured_on", "Measured on"),
    Column("in_plan_text", "In the plan", tooltip="did the run measure a machine of this plan?"),
    Column("started_at", "Started"),
]
VERDICT_COLUMNS = [
    Column("rule", "Rule"),
    Column("subject", "Subject"),
    Column("outcome", "Verdict"),
    Column("observed", "Observed"),
    Column("limit", "Limit"),
    Column("reason", "Reason"),
]


def _background(record: dict[str, Any], key: str):
    if key == "verdict":
        return theme.verdict_tint(str(record.get("verdict")))
    if key == "outcome" and record.get("outcome") in OUTCOME_HUES:
        return theme.tint(OUTCOME_HUES[record["outcome"]])
    if key == "in_plan_text" and record.get("in_plan") is False:
        return theme.tint(40)
    return None


def _table(columns: list[Column], key: str | None = None) -> tuple[QTableView, DataFrameTableModel]:
    model = DataFrameTableModel(columns, [], key_column=key, background=_background)
    view = QTableView()
    view.setModel(make_proxy(model, view))
    configure_table(view, sortable=True)
    view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the plan's own order until sorted
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setMaximumSectionSize(360)
    return view, model


class PlanView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.plan
        self._worker: Any = None
        self._runs_worker: Any = None
        self._first_pending = True
        self._policy_path: str | None = None
        self._build_ui()
        persist.restore(self, "plan")
        self.doc.plan_changed.connect(self._on_plan_changed)
        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        self.ctx.documents.title_changed.connect(self._update_title)
        self.ctx.runs_changed.connect(self.refresh_runs)
        # The tables, charts and run list are filled after the page's first paint (reading the
        # plan file and drawing its charts is the page's most expensive part).
        self._first_pending = True
        after_first_paint(self, self._first_fill)

    def _first_fill(self) -> None:
        self._first_pending = False
        if self.doc.plan is None:
            self.ctx.documents.open_initial()
        else:
            self._on_plan_changed(self.doc.plan)
        self.refresh_runs()

    def busy(self) -> bool:
        return self._first_pending or self._runs_worker is not None

    # -- layout ---------------------------------------------------------------------------------

    def _build_ui(self) -> None:
        outer = QVBoxLayout(self)
        bar = QHBoxLayout()
        docs = self.ctx.documents
        self.new_button = QPushButton("New")
        self.open_button = QPushButton("Open...")
        self.save_button = QPushButton("Save")
        self.save_as_button = QPushButton("Save as...")
        self.undo_action = self.doc.undo_stack.createUndoAction(self, "Undo")
        self.redo_action = self.doc.undo_stack.createRedoAction(self, "Redo")
        # No shortcuts here: the main window's Edit menu binds Ctrl+Z / Ctrl+Shift+Z to the
        # same stack, and a second binding would make the keys ambiguous. The buttons say
        # "Undo" / "Redo" and keep their width; what they undo is in the tooltip (a button
        # that grew with "Undo Rename to ..." moved the toolbar under the cursor).
        self.undo_button = QToolButton()
        self.redo_button = QToolButton()
        for button, action, word in ((self.undo_button, self.undo_action, "Undo"),
                                     (self.redo_button, self.redo_action, "Redo")):  # fmt: skip
            button.setText(word)
            button.clicked.connect(action.trigger)
            action.changed.connect(self._sync_undo_buttons)
            button.setFixedWidth(button.sizeHint().width() + 8)
        self._sync_undo_buttons()
        for w in (self.new_button, self.open_button, self.save_button, self.save_as_button,
                  self.undo_button, self.redo_button):  # fmt: skip
            bar.addWidget(w)
        bar.addSpacing(16)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.export_actions: dict[str, Any] = {}
        for fmt in EXPORT_FILTERS:
            action = menu.addAction(EXPORT_TITLES[fmt])
            action.triggered.connect(lambda _=False, f=fmt: docs.export(f))
            self.export_actions[fmt] = action
        self.export_button.setMenu(menu)
        bar.addWidget(self.export_button)
        self.verify_button = QPushButton("Verify evidence...")
        self.verify_button.setToolTip("Check an evidence record's digests (File > Verify evidence)")
        self.verify_button.clicked.connect(lambda: docs.verify_evidence())
        bar.addWidget(self.verify_button)
        bar.addStretch(1)
        outer.addLayout(bar)
        self.new_button.clicked.connect(self._new_clicked)
        self.open_button.clicked.connect(lambda: docs.open())
        self.save_button.clicked.connect(lambda: self.save())
        self.save_as_button.clicked.connect(self._save_as_clicked)

        head = QHBoxLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("plan name")
        persist.skip(self.name_edit)
        self.name_edit.editingFinished.connect(self._rename)
        self.file_label = QLabel()
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label.setMinimumWidth(40)  # a long path is cut, not a reason to widen
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        head.addWidget(QLabel("Plan:"))
        head.addWidget(self.name_edit, 2)
        head.addWidget(self.file_label, 3)
        head.addWidget(QLabel("Build:"))
        self.build_combo = QComboBox()
        persist.skip(self.build_combo)
        self.build_combo.currentIndexChanged.connect(lambda _: self._refresh())
        head.addWidget(self.build_combo, 2)
        outer.addLayout(head)

        totals = QGroupBox("Totals, power and running cost")
        grid = QGridLayout(totals)
        self.total_labels: dict[str, QLabel] = {}
        for i, (key, title) in enumerate(
            [
                ("machines", "Machines"),
                ("price", "Total price"),
                ("idle", "Idle power"),
                ("max", "Max power"),
                ("kwh", "Energy / year"),
                ("cost", "Cost / year"),
            ]
        ):
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.total_labels[key] = label
            grid.addWidget(QLabel(title + ":"), i // 3, 2 * (i % 3))
            grid.addWidget(label, i // 3, 2 * (i % 3) + 1)
        self.duty_spin = QDoubleSpinBox()
        self.duty_spin.setRange(0, 24)
        self.duty_spin.setSuffix(" h/day at load")
        self.duty_spin.setDecimals(1)
        self.tariff_spin = QDoubleSpinBox()
        self.tariff_spin.setRange(0, 10)
        self.tariff_spin.setDecimals(3)
        self.tariff_spin.setSuffix(" /kWh")
        self.duty_spin.editingFinished.connect(self._power_changed)
        self.tariff_spin.editingFinished.connect(self._power_changed)
        persist.skip(self.duty_spin)
        persist.skip(self.tariff_spin)
        grid.addWidget(QLabel("Duty cycle:"), 2, 0)
        grid.addWidget(self.duty_spin, 2, 1)
        grid.addWidget(QLabel("Tariff:"), 2, 2)
        grid.addWidget(self.tariff_spin, 2, 3)
        grid.setColumnStretch(5, 1)
        self.power_basis = QLabel()
        self.power_basis.setWordWrap(True)
        grid.addWidget(self.power_basis, 3, 0, 1, 6)
        outer.addWidget(totals)

        self.tabs = QTabWidget()
        outer.addWidget(self.tabs, 1)
        self.tabs.addTab(self._bom_tab(), "Bill of materials")
        self.tabs.addTab(self._models_tab(), "Models and estimates")
        self.tabs.addTab(self._layouts_tab(), "Layouts")
        self.tabs.addTab(self._runs_tab(), "Runs: estimate vs measured")
        self.tabs.addTab(self._gate_tab(), "Gate")
        self.tabs.addTab(self._charts_tab(), "Charts")
        self.status = QLabel()
        outer.addWidget(self.status)

    def _bom_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.bom_view, self.bom_model = _table(BOM_COLUMNS, "config_id")
        lay.addWidget(self.bom_view)
        row = QHBoxLayout()
        self.config_combo = MachinePicker()
        self.config_combo.setMinimumContentsLength(28)
        persist.skip(self.config_combo)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 64)
        self.condition_combo = QComboBox()
        self.condition_combo.addItems(["new", "used", "refurbished"])
        self.add_machine_button = QPushButton("Add machine")
        self.remove_machine_button = QPushButton("Remove selected")
        self.add_machine_button.clicked.connect(self._add_machine_clicked)
        self.remove_machine_button.clicked.connect(self._remove_machine_clicked)
        for x in (
            QLabel("Machine:"),
            self.config_combo,
            QLabel("×"),
            self.count_spin,
            self.condition_combo,
            self.add_machine_button,
            self.remove_machine_button,
        ):
            row.addWidget(x)
        row.addStretch(1)
        lay.addLayout(row)
        alt = QHBoxLayout()
        self.add_alt_button = QPushButton("Add alternative…")
        self.add_alt_button.clicked.connect(self._add_alternative_clicked)
        alt.addWidget(self.add_alt_button)
        self.rationale = QLabel()
        self.rationale.setWordWrap(True)
        alt.addWidget(self.rationale, 1)
        lay.addLayout(alt)
        return w

    def _models_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.model_view, self.model_model = _table(MODEL_COLUMNS, "model_id")
        self.model_view.setMaximumHeight(140)
        lay.addWidget(self.model_view)
        row = QHBoxLayout()
        self.model_combo = ModelPicker()
        self.model_combo.setMinimumContentsLength(18)
        persist.skip(self.model_combo)
        self.quant_combo = QComboBox()
        self.runtime_combo = QComboBox()
        for label, value in runtime_choices():
            self.runtime_combo.addItem(label, value)
        self.model_combo.picked.connect(lambda _k: self._fill_quants())
        self.runtime_combo.currentIndexChanged.connect(lambda _i: self._fill_quants())
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 2_000_000)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        self.add_model_button = QPushButton("Add model")
        self.remove_model_button = QPushButton("Remove selected")
        self.add_model_button.clicked.connect(self._add_model_clicked)
        self.remove_model_button.clicked.connect(self._remove_model_clicked)
        for x in (QLabel("Model:"), self.model_combo, QLabel("Quantization:"), self.quant_combo):
            row.addWidget(x)
        row.addStretch(1)
        lay.addLayout(row)
        row2 = QHBoxLayout()
        for x in (QLabel("Runtime:"), self.runtime_combo, QLabel("Context:"), self.context_spin,
                  self.add_model_button, self.remove_model_button):  # fmt: skip
            row2.addWidget(x)
        row2.addStretch(1)
        lay.addLayout(row2)
        lay.addWidget(QLabel("Estimates (every model on every machine kind of this build):"))
        self.estimate_view, self.estimate_model = _table(ESTIMATE_COLUMNS)
        lay.addWidget(self.estimate_view, 1)
        return w

    def _layouts_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.cluster_summary = QLabel("No inference cluster in this build.")
        self.cluster_summary.setWordWrap(True)
        lay.addWidget(QLabel("<b>Inference cluster</b> (add one from the Cluster view)"))
        lay.addWidget(self.cluster_summary)
        self.cluster_view, self.cluster_model = _table(CLUSTER_COLUMNS, "name")
        lay.addWidget(self.cluster_view, 1)
        lay.addWidget(QLabel("<b>K3s platform</b> (add one from the Platform view)"))
        self.platform_summary = QLabel("No K3s platform layout in this build.")
        self.platform_summary.setWordWrap(True)
        lay.addWidget(self.platform_summary)
        self.platform_view, self.platform_model = _table(PLATFORM_COLUMNS, "name")
        lay.addWidget(self.platform_view, 1)
        self.platform_text = QPlainTextEdit()
        self.platform_text.setReadOnly(True)
        self.platform_text.setPlaceholderText("No K3s platform layout in this build.")
        self.platform_text.setMaximumHeight(self.fontMetrics().height() * 6)
        lay.addWidget(self.platform_text)
        return w

    def _runs_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.run_view, self.run_model = _table(RUN_COLUMNS, "run_id")
        lay.addWidget(self.run_view, 1)
        self.run_warnings = QLabel()
        self.run_warnings.setWordWrap(True)
        lay.addWidget(self.run_warnings)
        row = QHBoxLayout()
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(40)
        self.run_combo.setPlaceholderText("no finished benchmark runs yet (Benchmarks view)")
        persist.skip(self.run_combo)
        self.attach_button = QPushButton("Attach run")
        self.detach_button = QPushButton("Detach selected")
        self.attach_button.clicked.connect(self._attach_clicked)
        self.detach_button.clicked.connect(self._detach_clicked)
        for x in (QLabel("Run:"), self.run_combo, self.attach_button, self.detach_button):
            row.addWidget(x)
        row.addStretch(1)
        lay.addLayout(row)
        return w

    def _sync_undo_buttons(self) -> None:
        from shiboken6 import isValid

        for button, action in ((self.undo_button, self.undo_action),
                               (self.redo_button, self.redo_action)):  # fmt: skip
            if not (isValid(button) and isValid(action)):
                return  # the view is being torn down
            button.setEnabled(action.isEnabled())
            button.setToolTip(action.text())

    def refresh_runs(self) -> None:
        """List the store's finished runs to attach (newest first), read in a worker; called
        when the view opens and whenever a run is stored."""
        store = self.ctx.store

        def job(token):
            from forgeplanner.store import BenchRunRepo

            yield "runs"
            with store().session() as s:
                runs = BenchRunRepo(s).list(status="ok", limit=500)
            return [
                (r.id, f"{r.id}: {r.runner} "
                       f"{r.model_ref or r.params.get('model_id') or r.params.get('model') or ''}"
                       f" ({r.started_at:%Y-%m-%d %H:%M})")
                for r in runs
            ]  # fmt: skip

        def done(items: list[tuple[int, str]]) -> None:
            current = self.run_combo.currentData()
            self.run_combo.clear()
            for run_id, label in items:
                self.run_combo.addItem(label, run_id)
            i = self.run_combo.findData(current)
            self.run_combo.setCurrentIndex(i if i >= 0 else (0 if items else -1))

        def finished() -> None:
            self._runs_worker = None

        self._runs_worker = start_worker(
            self.ctx.pool, job, on_result=done, on_finished=finished,
            on_error=lambda err: self.run_warnings.setText(
                f"The stored runs could not be read: {err.reason}"
            ),
            owner=self,
        )  # fmt: skip

    def _charts_tab(self) -> QWidget:
        """The export's own SVG charts (memory, speed vs context, price vs speed), so the view
        and the HTML/PDF show the same picture."""
        area = QScrollArea()
        area.setWidgetResizable(True)
        inner = QWidget()
        self.charts_layout = QVBoxLayout(inner)
        self.chart_widgets: dict[str, QSvgWidget] = {}
        for name in ("memory", "speed", "price_speed"):
            w = QSvgWidget()
            w.setVisible(False)
            self.chart_widgets[name] = w
            self.charts_layout.addWidget(w)
        self.charts_empty = QLabel("No estimates to chart yet.")
        self.charts_layout.addWidget(self.charts_empty)
        self.charts_layout.addStretch(1)
        area.setWidget(inner)
        return area

    def _refresh_charts(self, plan: Plan) -> None:
        from forgeplanner.export.charts import memory_chart, price_speed_chart, speed_chart

        shown = replace(plan, build=self.build())  # memory and speed of the build on show
        svgs = {
            "memory": memory_chart(shown),
            "speed": speed_chart(shown),
            "price_speed": price_speed_chart(plan),  # the plan against its alternatives
        }
        for name, svg in svgs.items():
            w = self.chart_widgets[name]
            w.setVisible(svg is not None)
            if svg is not None:
                w.load(QByteArray(svg.encode("utf-8")))
                w.setFixedSize(w.renderer().defaultSize())
        self.charts_empty.setVisible(not any(svgs.values()))

    def _gate_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        form = QFormLayout()
        row = QHBoxLayout()
        self.policy_label = QLabel("no policy chosen")
        self.policy_button = QPushButton("Choose policy…")
        self.policy_button.clicked.connect(self._choose_policy)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.clicked.connect(lambda: self.evaluate_gate())
        row.addWidget(self.policy_label, 1)
        row.addWidget(self.policy_button)
        row.addWidget(self.evaluate_button)
        form.addRow("Policy:", row)
        lay.addLayout(form)
        self.gate_outcome = QLabel()
        lay.addWidget(self.gate_outcome)
        self.verdict_view, self.verdict_model = _table(VERDICT_COLUMNS)
        lay.addWidget(self.verdict_view, 1)
        return w

    # -- state ----------------------------------------------------------------------------------

    def sources(self) -> Any:
        return plan_sources(self.ctx)

    def _fill_pickers(self) -> None:
        if self.config_combo.count():
            return
        self.config_combo.set_machines(machine_choices(self.ctx.catalog))
        self.model_combo.set_models(self.ctx.all_models(), keep="llama-3.3-70b")
        self._fill_quants("Q4_K_M")

    def _fill_quants(self, prefer: str | None = None) -> None:
        from forgeplanner.engine.quant import quants_for

        keep = prefer or self.quant_combo.currentData() or "Q4_K_M"
        model_id = self.model_combo.key()
        if model_id is None:
            return
        spec = self.ctx.model(model_id)
        self.quant_combo.clear()
        for q in quants_for(spec, self.runtime_combo.currentData()):
            self.quant_combo.addItem(f"{q.name} ({q.bits_per_weight:g} bpw)", q.name)
        i = self.quant_combo.findData(keep)
        if i < 0:
            i = max(self.quant_combo.findData("Q4_K_M"), self.quant_combo.findData("MLX-4bit"))
        self.quant_combo.setCurrentIndex(max(i, 0))

    def plan(self) -> Plan | None:
        return self.doc.plan

    def alternative(self) -> str | None:
        idx = self.build_combo.currentIndex()
        return None if idx <= 0 else self.build_combo.currentText()

    def build(self) -> Build:
        plan = self.plan()
        if plan is None:
            return Build()
        alt = self.alternative()
        if alt is None:
            return plan.build
        try:
            return plan.alternative(alt).build
        except KeyError:
            return plan.build

    @property
    def path(self) -> Path | None:
        """The document's file (kept on `ctx.plan`, so it survives the view)."""
        return self.doc.path

    def _on_plan_changed(self, plan: Plan | None) -> None:
        self._fill_pickers()
        with QSignalBlocker(self.build_combo):
            current = self.build_combo.currentText()
            self.build_combo.clear()
            self.build_combo.addItem(MAIN_BUILD)
            if plan is not None:
                self.build_combo.addItems([a.name for a in plan.alternatives])
            idx = self.build_combo.findText(current)
            self.build_combo.setCurrentIndex(max(idx, 0))
        self._refresh()
        self._update_title()

    def _refresh(self) -> None:
        plan = self.plan()
        if plan is None:
            return
        build = self.build()
        with QSignalBlocker(self.name_edit):
            self.name_edit.setText(plan.name)
        with QSignalBlocker(self.duty_spin), QSignalBlocker(self.tariff_spin):
            self.duty_spin.setValue(plan.power.duty_hours_per_day)
            self.tariff_spin.setValue(plan.power.tariff_per_kwh)
            self.tariff_spin.setPrefix(plan.power.currency + " ")
        tot = t.totals(build)
        price = (
            t.usd(tot["total_price_usd"])
            if tot["total_price_usd"] is not None or not build.machines
            else f"unknown (priced part {t.usd(tot['priced_part_usd'])})"
        )
        values = {
            "machines": str(tot["machines"]),
            "price": price,
            "idle": t.num(tot["idle_w"], 0, " W"),
            "max": t.num(tot["max_w"], 0, " W"),
            "kwh": t.num(tot["annual_kwh"], 0, " kWh"),
            "cost": t.num(tot["annual_cost"], 0, " " + tot["currency"]),
        }
        for key, text in values.items():
            self.total_labels[key].setText(text)
        self.power_basis.setText(f"Basis: {tot['power_basis']}")
        alt = self.alternative()
        self.rationale.setText(plan.alternative(alt).rationale if alt else "")
        self.bom_model.set_frame(t.bom_rows(build))
        self.model_model.set_frame(t.model_rows(build))
        self.estimate_model.set_frame(self._estimate_rows(build))
        self.cluster_model.set_frame(t.cluster_node_rows(build))
        self.platform_model.set_frame(t.platform_node_rows(build))
        if build.cluster is not None:
            res = build.cluster.result
            self.cluster_summary.setText(
                f"{build.cluster.inputs.get('model_id')} {build.cluster.inputs.get('quant')}: "
                f"decode {t.num(res.get('decode_tps'))} tok/s, prefill "
                f"{t.num(res.get('prefill_tps'), 0)} tok/s. {res.get('summary', '')}"
            )
        else:
            self.cluster_summary.setText("No inference cluster in this build.")
        self.platform_text.setPlainText(self._platform_text(build))
        if build.platform is not None:
            inputs = build.platform.inputs
            model = inputs.get("model_id")
            self.platform_summary.setText(
                f"{len(t.platform_node_rows(build))} nodes"
                + (f", serving {model} {inputs.get('quant') or ''}" if model else "")
                + f". {build.platform.basis}"
            )
        else:
            self.platform_summary.setText("No K3s platform layout in this build.")
        run_rows = [dict(r, in_plan_text="yes" if r["in_plan"] else "no")
                    for r in t.run_metric_rows(plan)]  # fmt: skip
        self.run_model.set_frame(run_rows)
        warnings = [r["warning"] for r in t.run_rows(plan) if r["warning"]]
        self.run_warnings.setText("\n".join(f"Warning: {w}." for w in warnings))
        self.verdict_model.set_frame(t.verdict_rows(plan))
        self._show_outcome(plan)
        self._refresh_charts(plan)

    @staticmethod
    def _platform_text(build: Build) -> str:
        if build.platform is None:
            return ""
        lines = [
            f"{n['name']} ({n['config_id']}): {n['roles'] or 'no role'}"
            for n in t.platform_node_rows(build)
        ]
        assignments = build.platform.result.get("assignments") or {}
        if isinstance(assignments, dict):
            lines += [f"  {svc} -> {node}" for svc, node in sorted(assignments.items())]
        return "\n".join(lines)

    def _show_outcome(self, plan: Plan) -> None:
        outcomes = {v.outcome for v in plan.verdicts}
        if not outcomes:
            self.gate_outcome.setText("Not evaluated.")
            return
        overall = (
            "DENY" if "DENY" in outcomes else "ESCALATE" if "ESCALATE" in outcomes else "ALLOW"
        )
        self.gate_outcome.setText(f"Overall: {overall}")

    def _update_title(self, *_: Any) -> None:
        if self.path == EXAMPLE:
            name = "the shipped example"
        elif self.path:
            name = _home_relative(self.path)
        else:
            name = "not saved"
        try:
            clean = self.doc.undo_stack.isClean()
        except RuntimeError:  # the context is being torn down (its stack emits on clear)
            return
        dirty = "" if clean else "  (modified)"
        self.file_label.setText(f"{name}{dirty}")
        self.file_label.setToolTip(
            "Save asks where to keep your copy" if self.path == EXAMPLE else str(self.path or "")
        )

    def _set_busy(self, busy: bool, text: str = "") -> None:
        for w in (
            self.add_machine_button,
            self.remove_machine_button,
            self.add_model_button,
            self.remove_model_button,
            self.attach_button,
            self.detach_button,
            self.add_alt_button,
            self.duty_spin,
            self.tariff_spin,
            self.name_edit,
        ):
            w.setEnabled(not busy)
        self.status.setText(text)

    # -- edits ----------------------------------------------------------------------------------

    def apply_edit(
        self, fn: Callable[[Plan, str], Plan], text: str, recompute: bool = True
    ) -> None:
        """Apply a pure edit, recompute through the engine in a worker, then push it."""
        if recompute:
            self._set_busy(True, f"{text}: recomputing estimates…")
        self._worker = edit_plan(
            self.ctx, fn, text, recompute=recompute, parent=self,
            on_finished=lambda: self._set_busy(False, ""),
        )  # fmt: skip

    def _estimate_rows(self, build: Build) -> list[dict[str, Any]]:
        """The plan's estimates with the likely range of each decode speed (the engine's
        bands for its runtime, dense or MoE, and context; viewstate.speed)."""
        from forgeplanner.viewstate.speed import likely_range, range_text

        rows = t.estimate_rows(build)
        for r in rows:
            try:
                moe = self.ctx.model(r["model_id"]).moe is not None
            except ForgePlannerError:  # a model this installation does not know
                r["decode_range"] = None
                continue
            dr = likely_range(r["decode_tps"], r["runtime"], "decode", moe, int(r["context"]))
            r["decode_range"] = range_text(*dr) if dr else None
        return rows

    def add_machine(self, config_id: str, count: int = 1, condition: str = "new") -> None:
        from forgeplanner.plan import edit

        alt = self.alternative()
        try:
            machine = self.sources().machine(config_id, count, condition)
        except (ValueError, ForgePlannerError) as exc:
            show_error(self, exc)
            return
        self.apply_edit(
            lambda p, now: edit.add_machine(p, machine, now, alt), f"Add {count} x {config_id}"
        )

    def remove_machine(self, config_id: str) -> None:
        from forgeplanner.plan import edit

        alt = self.alternative()
        self.apply_edit(
            lambda p, now: edit.remove_machine(p, config_id, now, alt), f"Remove {config_id}"
        )

    def add_model(
        self, model_id: str, quant: str, runtime: str = Runtime.LLAMA_CPP, context: int = 8192
    ) -> None:
        from forgeplanner.plan import edit

        alt = self.alternative()
        try:
            model = self.sources().model(model_id, quant, runtime, context)
        except (ValueError, ForgePlannerError) as exc:
            show_error(self, exc)
            return
        self.apply_edit(
            lambda p, now: edit.add_model(p, model, now, alt), f"Add {model_id} {quant}"
        )

    def remove_model(self, model_id: str) -> None:
        from forgeplanner.plan import edit

        alt = self.alternative()
        self.apply_edit(
            lambda p, now: edit.remove_model(p, model_id, now, alt), f"Remove {model_id}"
        )

    def add_alternative(self, name: str, rationale: str = "") -> None:
        from forgeplanner.plan import edit

        self.apply_edit(
            lambda p, now: edit.add_alternative(p, name, rationale, now),
            f"Add alternative {name}",
            recompute=False,
        )

    def attach_run(self, run_id: str) -> None:
        from forgeplanner.plan import edit
        from forgeplanner.plan.runs import attached_from_record

        try:
            from forgeplanner.store import BenchRunRepo

            with self.ctx.store().session() as s:
                record = BenchRunRepo(s).get(int(run_id), raw=True)
            run = attached_from_record(record)
        except (ValueError, ForgePlannerError) as exc:
            show_error(self, exc)
            return
        self.apply_edit(
            lambda p, now: edit.attach_run(p, run, now), f"Attach run {run_id}", recompute=False
        )

    def detach_run(self, run_id: str) -> None:
        from forgeplanner.plan import edit

        self.apply_edit(
            lambda p, now: edit.detach_run(p, run_id, now), f"Detach run {run_id}", recompute=False
        )

    def _rename(self) -> None:
        from forgeplanner.plan import edit

        plan = self.plan()
        name = self.name_edit.text().strip()
        if plan is None or not name or name == plan.name:
            return
        self.apply_edit(
            lambda p, now: edit.rename(p, name, now), f"Rename to {name}", recompute=False
        )

    def _power_changed(self) -> None:
        from forgeplanner.domain.plan import PowerSettings
        from forgeplanner.plan import edit

        plan = self.plan()
        if plan is None:
            return
        power = PowerSettings(self.duty_spin.value(), self.tariff_spin.value(), plan.power.currency)
        if power == plan.power:
            return
        self.apply_edit(lambda p, now: edit.set_power(p, power, now), "Change duty cycle/tariff")

    def _selected_key(self, view: QTableView) -> str | None:
        from ui.table_model import ROW_KEY_ROLE

        rows = view.selectionModel().selectedRows()
        if not rows:
            return None
        return str(view.model().data(rows[0], ROW_KEY_ROLE))

    def _add_machine_clicked(self) -> None:
        key = self.config_combo.key()
        if key:
            self.add_machine(key, self.count_spin.value(), self.condition_combo.currentText())

    def _remove_machine_clicked(self) -> None:
        key = self._selected_key(self.bom_view)
        if key:
            self.remove_machine(key)

    def _add_model_clicked(self) -> None:
        key = self.model_combo.key()
        if key:
            self.add_model(
                key,
                self.quant_combo.currentData() or "Q4_K_M",
                self.runtime_combo.currentData(),
                self.context_spin.value(),
            )

    def _remove_model_clicked(self) -> None:
        key = self._selected_key(self.model_view)
        if key:
            self.remove_model(key)

    def _add_alternative_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Add alternative", "Name of the alternative build:")
        if ok and name.strip():
            self.add_alternative(name.strip())

    def _attach_clicked(self) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None:
            self.attach_run(str(run_id))

    def _detach_clicked(self) -> None:
        key = self._selected_key(self.run_view)
        if key:
            self.detach_run(key)

    # -- gate -----------------------------------------------------------------------------------

    def _choose_policy(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Gate policy", "", "Policy (*.toml)")
        if path:
            self.set_policy(path)

    def set_policy(self, path: str) -> None:
        self._policy_path = path
        self.policy_label.setText(path)

    def evaluate_gate(self) -> None:
        from forgeplanner.governance.gate import evaluate
        from forgeplanner.governance.policy import load_policy
        from forgeplanner.plan import edit

        plan = self.plan()
        if plan is None or not self._policy_path:
            self.gate_outcome.setText("Choose a policy file first.")
            return
        try:
            result = evaluate(plan, load_policy(self._policy_path), self.alternative())
        except (ValueError, OSError, ForgePlannerError) as exc:
            show_error(self, exc)
            return
        self.apply_edit(
            lambda p, now: edit.set_verdicts(p, result.verdicts, now),
            f"Gate: {result.outcome}",
            recompute=False,
        )

    # -- files (the File menu's actions, through ctx.documents) --------------------------------

    def _new_clicked(self) -> None:
        self.ctx.documents.new()
        self._update_title()

    def open(self, path: str | Path) -> None:
        if self.ctx.documents.open(path):
            self._update_title()

    def save(self, path: str | Path | None = None) -> bool:
        docs = self.ctx.documents
        ok = docs.save() if path is None else docs.save_as(path)
        self._update_title()
        return ok

    def _save_as_clicked(self) -> bool:
        ok = self.ctx.documents.save_as()
        self._update_title()
        return ok

    def export(self, fmt: str, path: str | Path) -> Path | None:
        return self.ctx.documents.export(fmt, path)

    def shutdown(self) -> None:
        for w in (self._worker, self._runs_worker):
            if w is not None:
                w.cancel()
        try:
            self.doc.plan_changed.disconnect(self._on_plan_changed)
            self.doc.undo_stack.cleanChanged.disconnect(self._update_title)
            self.ctx.runs_changed.disconnect(self.refresh_runs)
            self.ctx.documents.title_changed.disconnect(self._update_title)
        except (RuntimeError, TypeError):  # already disconnected, or the context is gone
            pass


def _home_relative(path: Path) -> str:
    """'~/plans/lab.fplan' for a file under the home folder (shorter, and the same on screen
    for every user); other paths as they are."""
    try:
        return "~/" + str(Path(path).resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def create_view(ctx: AppContext) -> QWidget:
    return PlanView(ctx)
