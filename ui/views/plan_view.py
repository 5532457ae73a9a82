"""Plan view: the build plan being edited, its totals, estimates, layouts, measured runs, gate
verdicts and exports; open/save `.fplan`; undo/redo of every edit.

The view binds to `ctx.plan` (a `PlanDocument` holding an immutable `Plan`). An edit is a pure
function from `forgeplanner.plan.edit`; the new plan is recomputed through the engine in a
worker (`forgeplanner.plan.compute.recompute`) and then set on the document with a description,
which pushes an undoable command. Undo/redo swap whole plan values, so the tables always show
one consistent plan.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
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
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.domain.plan import Build, Plan
from forgeplanner.export import tables as t
from ui import theme
from ui.app import settings
from ui.context import AppContext
from ui.errors import show_error
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.workers import start_worker

MAIN_BUILD = "Main build"
EXPORT_FILTERS = {
    "md": "Markdown (*.md)",
    "html": "HTML (*.html)",
    "pdf": "PDF (*.pdf)",
    "csv": "CSV (*.csv)",
    "xlsx": "Excel workbook (*.xlsx)",
    "json": "Evidence record (*.json)",
}
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "70b-home-lab.fplan"
SETTINGS_LAST_FILE = "plan/last_file"
OUTCOME_HUES = {"ALLOW": 120, "ESCALATE": 40, "DENY": 0}


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _gib(v: Any) -> str:
    return t.gib(v)


def _usd(v: Any) -> str:
    return t.usd(v)


def _tps(v: Any) -> str:
    return f"{v:,.1f}"


def _pct(v: Any) -> str:
    return f"{v:+.1f} %"


BOM_COLUMNS = [
    Column("machine", "Machine"),
    Column("config_id", "Configuration"),
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
ESTIMATE_COLUMNS = [
    Column("model_id", "Model"),
    Column("quant", "Quant"),
    Column("target", "Machine"),
    Column("verdict", "Verdict"),
    Column("total_bytes", "Total", _gib),
    Column("gpu_limit_bytes", "GPU limit", _gib),
    Column("headroom_bytes", "Headroom", _gib),
    Column("decode_tps", "Decode tok/s", _tps),
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
    Column("verdict", "Verdict"),
]
RUN_COLUMNS = [
    Column("run_id", "Run"),
    Column("runner", "Runner"),
    Column("model", "Model"),
    Column("host", "Host"),
    Column("estimated_decode_tps", "Decode est.", _tps),
    Column("measured_decode_tps", "Decode meas.", _tps),
    Column("error_pct_decode_tps", "Decode error", _pct),
    Column("estimated_prefill_tps", "Prefill est.", _tps),
    Column("measured_prefill_tps", "Prefill meas.", _tps),
    Column("error_pct_prefill_tps", "Prefill error", _pct),
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
    return None


def _table(columns: list[Column], key: str | None = None) -> tuple[QTableView, DataFrameTableModel]:
    model = DataFrameTableModel(columns, pd.DataFrame(), key_column=key, background=_background)
    view = QTableView()
    view.setModel(make_proxy(model, view))
    view.setSortingEnabled(True)
    view.model().sort(-1)  # keep the plan's own order until the user sorts a column
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setMaximumSectionSize(360)
    view.verticalHeader().setVisible(False)
    return view, model


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame()


_SOURCES: weakref.WeakKeyDictionary[AppContext, Any] = weakref.WeakKeyDictionary()


def plan_sources(ctx: AppContext) -> Any:
    """The engine behind plan edits (catalog and models shared with the other views)."""
    if ctx not in _SOURCES:
        from forgeplanner.plan.sources import EngineSources

        _SOURCES[ctx] = EngineSources(catalog=ctx.catalog, models=ctx.models)
    return _SOURCES[ctx]


def edit_plan(
    ctx: AppContext,
    fn: Callable[[Plan, str], Plan],
    text: str,
    *,
    recompute: bool = True,
    parent: QWidget | None = None,
    on_finished: Callable[[], None] | None = None,
) -> Any:
    """Edit the current plan from any view: `fn(plan, now) -> plan` is a pure edit from
    `forgeplanner.plan.edit`; the result is recomputed through the engine in a worker and set
    on `ctx.plan` as one undoable step named `text`. With no plan open, a new one is started.
    Returns the worker (or None when nothing runs in the background)."""
    from forgeplanner.plan import edit

    plan = ctx.plan.plan
    if plan is None:
        plan = edit.new_plan("Untitled plan", now_iso())
    try:
        edited = fn(plan, now_iso())
    except Exception as exc:
        show_error(parent, exc)
        if on_finished is not None:
            on_finished()
        return None
    if not recompute:
        ctx.plan.set_plan(edited, text)
        if on_finished is not None:
            on_finished()
        return None
    sources = plan_sources(ctx)

    def job(token):
        from forgeplanner.plan.compute import recompute as do_recompute

        yield "recomputing estimates"
        return do_recompute(edited, sources, edited.updated_at)

    return start_worker(
        ctx.pool,
        job,
        on_result=lambda new: ctx.plan.set_plan(new, text),
        on_error=lambda err: show_error(parent, err),
        on_finished=on_finished,
    )


def add_machine_to_plan(
    ctx: AppContext,
    config_id: str,
    count: int = 1,
    condition: str = "new",
    alternative: str | None = None,
    parent: QWidget | None = None,
) -> Any:
    """For other views ("add this choice to the plan"): price the machine through the engine,
    add it, recompute, undoable."""
    from forgeplanner.plan import edit

    try:
        machine = plan_sources(ctx).machine(config_id, count, condition)
    except Exception as exc:
        show_error(parent, exc)
        return None
    return edit_plan(
        ctx, lambda p, now: edit.add_machine(p, machine, now, alternative),
        f"Add {count} x {config_id}", parent=parent,
    )  # fmt: skip


class PlanView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.plan
        self._worker: Any = None
        self._policy_path: str | None = None
        self._build_ui()
        self.doc.plan_changed.connect(self._on_plan_changed)
        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        if self.doc.plan is None:
            self._open_initial()
        else:
            self._on_plan_changed(self.doc.plan)

    # -- layout ---------------------------------------------------------------------------------

    def _build_ui(self) -> None:
        outer = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.new_button = QPushButton("New")
        self.open_button = QPushButton("Open…")
        self.save_button = QPushButton("Save")
        self.save_as_button = QPushButton("Save as…")
        self.undo_action = self.doc.undo_stack.createUndoAction(self, "Undo")
        self.redo_action = self.doc.undo_stack.createRedoAction(self, "Redo")
        # No shortcuts here: the main window's Edit menu binds Ctrl+Z / Ctrl+Shift+Z to the
        # same stack, and a second binding would make the keys ambiguous.
        self.undo_button = QToolButton()
        self.undo_button.setDefaultAction(self.undo_action)
        self.redo_button = QToolButton()
        self.redo_button.setDefaultAction(self.redo_action)
        for w in (
            self.new_button,
            self.open_button,
            self.save_button,
            self.save_as_button,
            self.undo_button,
            self.redo_button,
        ):
            bar.addWidget(w)
        bar.addSpacing(16)
        bar.addWidget(QLabel("Export:"))
        self.export_buttons: dict[str, QPushButton] = {}
        for fmt in EXPORT_FILTERS:
            b = QPushButton(fmt.upper())
            b.setToolTip(f"Export the plan as {EXPORT_FILTERS[fmt]}")
            b.clicked.connect(lambda _=False, f=fmt: self._export_clicked(f))
            self.export_buttons[fmt] = b
            bar.addWidget(b)
        bar.addStretch(1)
        outer.addLayout(bar)
        self.new_button.clicked.connect(self._new_clicked)
        self.open_button.clicked.connect(self._open_clicked)
        self.save_button.clicked.connect(lambda: self.save())
        self.save_as_button.clicked.connect(self._save_as_clicked)

        head = QHBoxLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("plan name")
        self.name_edit.editingFinished.connect(self._rename)
        self.file_label = QLabel()
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head.addWidget(QLabel("Plan:"))
        head.addWidget(self.name_edit, 2)
        head.addWidget(self.file_label, 3)
        head.addWidget(QLabel("Build:"))
        self.build_combo = QComboBox()
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
            grid.addWidget(QLabel(title + ":"), 0, 2 * i)
            grid.addWidget(label, 0, 2 * i + 1)
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
        grid.addWidget(QLabel("Duty cycle:"), 1, 0)
        grid.addWidget(self.duty_spin, 1, 1, 1, 2)
        grid.addWidget(QLabel("Tariff:"), 1, 3)
        grid.addWidget(self.tariff_spin, 1, 4, 1, 2)
        self.power_basis = QLabel()
        self.power_basis.setWordWrap(True)
        grid.addWidget(self.power_basis, 2, 0, 1, 12)
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
        self.config_combo = QComboBox()
        self.config_combo.setEditable(True)
        self.config_combo.setMinimumContentsLength(30)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 64)
        self.condition_combo = QComboBox()
        self.condition_combo.addItems(["new", "used", "refurbished"])
        self.add_machine_button = QPushButton("Add machine")
        self.remove_machine_button = QPushButton("Remove selected")
        self.add_machine_button.clicked.connect(self._add_machine_clicked)
        self.remove_machine_button.clicked.connect(self._remove_machine_clicked)
        for x in (
            QLabel("Configuration:"),
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
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setMinimumContentsLength(24)
        self.quant_edit = QLineEdit("Q4_K_M")
        self.quant_edit.setMaximumWidth(110)
        self.runtime_combo = QComboBox()
        self.runtime_combo.addItems(["llama.cpp", "mlx", "ollama"])
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 2_000_000)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        self.add_model_button = QPushButton("Add model")
        self.remove_model_button = QPushButton("Remove selected")
        self.add_model_button.clicked.connect(self._add_model_clicked)
        self.remove_model_button.clicked.connect(self._remove_model_clicked)
        for x in (
            QLabel("Model:"),
            self.model_combo,
            QLabel("Quant:"),
            self.quant_edit,
            self.runtime_combo,
            QLabel("Context:"),
            self.context_spin,
            self.add_model_button,
            self.remove_model_button,
        ):
            row.addWidget(x)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(QLabel("Estimates (every model on every machine kind of this build):"))
        self.estimate_view, self.estimate_model = _table(ESTIMATE_COLUMNS)
        lay.addWidget(self.estimate_view, 1)
        return w

    def _layouts_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.cluster_summary = QLabel("No inference cluster in this build.")
        self.cluster_summary.setWordWrap(True)
        lay.addWidget(self.cluster_summary)
        self.cluster_view, self.cluster_model = _table(CLUSTER_COLUMNS, "name")
        lay.addWidget(self.cluster_view, 1)
        self.platform_text = QPlainTextEdit()
        self.platform_text.setReadOnly(True)
        self.platform_text.setPlaceholderText("No K3s platform layout in this build.")
        lay.addWidget(QLabel("K3s platform:"))
        lay.addWidget(self.platform_text, 1)
        return w

    def _runs_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.run_view, self.run_model = _table(RUN_COLUMNS, "run_id")
        lay.addWidget(self.run_view, 1)
        row = QHBoxLayout()
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(40)
        self.run_combo.setPlaceholderText("finished benchmark runs (Refresh)")
        self.refresh_runs_button = QPushButton("Refresh")
        self.attach_button = QPushButton("Attach run")
        self.detach_button = QPushButton("Detach selected")
        self.refresh_runs_button.clicked.connect(self.refresh_runs)
        self.attach_button.clicked.connect(self._attach_clicked)
        self.detach_button.clicked.connect(self._detach_clicked)
        for x in (
            QLabel("Run:"),
            self.run_combo,
            self.refresh_runs_button,
            self.attach_button,
            self.detach_button,
        ):
            row.addWidget(x)
        row.addStretch(1)
        lay.addLayout(row)
        return w

    def refresh_runs(self) -> None:
        """List the store's finished runs to attach (newest first)."""
        from forgeplanner.store import BenchRunRepo

        try:
            with self.ctx.store().session() as s:
                runs = BenchRunRepo(s).list(status="ok", limit=500)
        except Exception as exc:
            show_error(self, exc)
            return
        self.run_combo.clear()
        for r in runs:
            model = r.model_ref or r.params.get("model_id") or r.params.get("model") or ""
            label = f"{r.id}: {r.runner} {model} ({r.started_at:%Y-%m-%d %H:%M})"
            self.run_combo.addItem(label, r.id)
        if runs:
            self.run_combo.setCurrentIndex(0)

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
        try:
            configs = sorted(self.ctx.catalog.configs)
            models = sorted(m.id for m in self.ctx.models.all())
        except Exception as exc:  # the catalog failing to load is shown, not swallowed
            show_error(self, exc)
            return
        self.config_combo.addItems(configs)
        self.model_combo.addItems(models)

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

    def _open_initial(self) -> None:
        last = settings().value(SETTINGS_LAST_FILE, "", str)
        for candidate in (last, str(EXAMPLE)):
            if candidate and Path(candidate).is_file():
                try:
                    self.open(candidate)
                    return
                except Exception:  # a stale or broken last file: fall back to the example
                    continue
        from forgeplanner.plan import edit

        self._replace_document(edit.new_plan("Untitled plan", now_iso()), None)

    @property
    def path(self) -> Path | None:
        """The document's file (kept on `ctx.plan`, so it survives the view)."""
        return self.doc.path

    def _replace_document(self, plan: Plan, path: Path | None) -> None:
        """Load without an undo entry: opening a file starts a fresh history."""
        self.doc.replace_plan(plan, path)
        self._update_title()

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
        self.bom_model.set_frame(_frame(t.bom_rows(build)))
        self.model_model.set_frame(_frame(t.model_rows(build)))
        self.estimate_model.set_frame(_frame(t.estimate_rows(build)))
        self.cluster_model.set_frame(_frame(t.cluster_node_rows(build)))
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
        self.run_model.set_frame(_frame(t.run_rows(plan)))
        self.verdict_model.set_frame(_frame(t.verdict_rows(plan)))
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
        name = str(self.path) if self.path else "not saved"
        try:
            clean = self.doc.undo_stack.isClean()
        except RuntimeError:  # the context is being torn down (its stack emits on clear)
            return
        dirty = "" if clean else "  (modified)"
        self.file_label.setText(f"{name}{dirty}")

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

    def add_machine(self, config_id: str, count: int = 1, condition: str = "new") -> None:
        from forgeplanner.plan import edit

        alt = self.alternative()
        try:
            machine = self.sources().machine(config_id, count, condition)
        except Exception as exc:
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
        self, model_id: str, quant: str, runtime: str = "llama.cpp", context: int = 8192
    ) -> None:
        from forgeplanner.plan import edit

        alt = self.alternative()
        try:
            model = self.sources().model(model_id, quant, runtime, context)
        except Exception as exc:
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
        except Exception as exc:
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
        self.add_machine(
            self.config_combo.currentText().strip(),
            self.count_spin.value(),
            self.condition_combo.currentText(),
        )

    def _remove_machine_clicked(self) -> None:
        key = self._selected_key(self.bom_view)
        if key:
            self.remove_machine(key)

    def _add_model_clicked(self) -> None:
        self.add_model(
            self.model_combo.currentText().strip(),
            self.quant_edit.text().strip(),
            self.runtime_combo.currentText(),
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
        except Exception as exc:
            show_error(self, exc)
            return
        self.apply_edit(
            lambda p, now: edit.set_verdicts(p, result.verdicts, now),
            f"Gate: {result.outcome}",
            recompute=False,
        )

    # -- files ----------------------------------------------------------------------------------

    def _new_clicked(self) -> None:
        from forgeplanner.plan import edit

        self._replace_document(edit.new_plan("Untitled plan", now_iso()), None)

    def _open_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open plan", "", "Plans (*.fplan)")
        if path:
            try:
                self.open(path)
            except Exception as exc:
                show_error(self, exc)

    def open(self, path: str | Path) -> None:
        self.doc.open(path)
        self._update_title()
        settings().setValue(SETTINGS_LAST_FILE, str(path))
        self.ctx.status(f"Opened {path}")

    def save(self, path: str | Path | None = None) -> bool:
        plan = self.plan()
        target = Path(path) if path else self.path
        if plan is None:
            return False
        if target is None or (path is None and target == EXAMPLE):
            return self._save_as_clicked()  # never overwrite the shipped example silently
        try:
            self.doc.save(target)
        except Exception as exc:
            show_error(self, exc)
            return False
        settings().setValue(SETTINGS_LAST_FILE, str(target))
        self._update_title()
        self.ctx.status(f"Saved {target}")
        return True

    def _save_as_clicked(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save plan", "", "Plans (*.fplan)")
        return bool(path) and self.save(path)

    def export(self, fmt: str, path: str | Path) -> Path | None:
        from forgeplanner.export.render import export_plan

        plan = self.plan()
        if plan is None:
            return None
        try:
            out = export_plan(plan, fmt, path, now=now_iso())
        except Exception as exc:
            show_error(self, exc)
            return None
        self.ctx.status(f"Exported {out}")
        return out

    def _export_clicked(self, fmt: str) -> None:
        plan = self.plan()
        stem = plan.name if plan else "plan"
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export {fmt.upper()}", f"{stem}.{fmt}", EXPORT_FILTERS[fmt]
        )
        if path:
            self.export(fmt, path)

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        try:
            self.doc.plan_changed.disconnect(self._on_plan_changed)
            self.doc.undo_stack.cleanChanged.disconnect(self._update_title)
        except (RuntimeError, TypeError):  # already disconnected, or the context is gone
            pass


def create_view(ctx: AppContext) -> QWidget:
    return PlanView(ctx)
