"""Recommend view: which machine (new or used), or small cluster, to buy.

Left: the constraints form (the same inputs as `forgeplanner recommend`). Right: price vs
decode speed scatter coloured by max watts with the Pareto frontier drawn through its options;
the ranked table; rejected configurations with their reasons; price observations with their
dates and the CSV import with a preview before anything is written. "Add to plan" puts the
selected option's machines into the current plan (undoable, through the PlanDocument).

The search runs `forgeplanner.services.recommend.build_recommendation` (what the CLI runs) in a
worker thread; the import runs `forgeplanner.services.prices` the same way.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ui import theme
from ui.context import AppContext
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import defer, fit_columns
from ui.workers import start_worker

DEFAULT_MODELS = "llama-3.1-70b"
DEFAULT_QUANT_MIN = "Q4_K_M"
QUANT_MINS = ["(any)", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K"]


def _money(v: Any) -> str:
    return f"${float(v):,.0f}"


def _f1(v: Any) -> str:
    return f"{float(v):.1f}"


def _f0(v: Any) -> str:
    return f"{float(v):.0f}"


OPTION_COLUMNS = [
    Column("pareto_mark", "P", tooltip="on the price / speed / watts Pareto frontier"),
    Column("machines", "machines"),
    Column("runtime", "runtime"),
    Column("quant", "quant"),
    Column("price_usd", "price", _money),
    Column("price_basis", "price basis"),
    Column("decode_tps", "decode t/s", _f1),
    Column("prefill_tps", "prefill t/s", _f0),
    Column("verdict", "verdict"),
    Column("max_w", "max W", _f0),
    Column("annual_energy_kwh", "kWh/yr", _f0),
    Column("annual_energy_cost", "cost/yr", _money),
]
REJECTED_COLUMNS = [Column("config_id", "configuration"), Column("reason", "reason")]
OBS_COLUMNS = [
    Column("date", "date"),
    Column("config", "configuration / machine"),
    Column("price_usd", "price USD", _money),
    Column("condition", "condition"),
    Column("price_type", "type"),
    Column("origin", "origin"),
    Column("source", "source"),
]
PREVIEW_COLUMNS = [
    Column("line", "line"),
    Column("date", "date"),
    Column("price_usd", "price USD", _money),
    Column("original", "original"),
    Column("condition", "condition"),
    Column("config_id", "configuration"),
    Column("match", "match"),
    Column("duplicate_of", "duplicate of"),
]


def _table(model: DataFrameTableModel) -> QTableView:
    view = QTableView()
    view.setModel(make_proxy(model, view))
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    view.verticalHeader().setVisible(False)
    return view


class RecommendView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._worker: Any = None
        self._import_worker: Any = None
        self.result: Any = None
        self.preview: Any = None
        self.error: str | None = None
        self._obs_worker: Any = None
        self._obs_generation = 0
        self._build()
        self._load_observations_in_background()
        self.search()
        # The plot is the page's most expensive widget: built after the first paint, in its
        # own event-loop pass (or at once when a result needs it first).
        defer(self, self._ensure_plot)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        box = QGroupBox("Constraints")
        form = QFormLayout(box)
        self.models_edit = QLineEdit(DEFAULT_MODELS)
        self.models_edit.setToolTip("model ids, comma-separated; every option runs all of them")
        self.quant_combo = QComboBox()
        self.quant_combo.addItems(QUANT_MINS)
        self.quant_combo.setCurrentText(DEFAULT_QUANT_MIN)
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 1_048_576)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        self.decode_spin = self._optional_spin(0, 1000, " t/s")
        self.budget_spin = self._optional_spin(0, 1_000_000, " USD", step=500)
        self.watts_spin = self._optional_spin(0, 10_000, " W", step=10)
        self.condition_combo = QComboBox()
        self.condition_combo.addItems(["any", "new", "used"])
        self.clusters_check = QCheckBox("also 2-4 identical machines")
        self.hours_spin = QDoubleSpinBox()
        self.hours_spin.setRange(0, 24)
        self.hours_spin.setValue(8)
        self.hours_spin.setSuffix(" h/day")
        self.tariff_spin = self._optional_spin(0, 10, " /kWh", step=0.01, decimals=3)
        form.addRow("Models", self.models_edit)
        form.addRow("Lowest quant", self.quant_combo)
        form.addRow("Context", self.context_spin)
        form.addRow("Min decode", self.decode_spin)
        form.addRow("Budget", self.budget_spin)
        form.addRow("Condition", self.condition_combo)
        form.addRow("Max watts", self.watts_spin)
        form.addRow("Clusters", self.clusters_check)
        form.addRow("At load", self.hours_spin)
        form.addRow("Tariff", self.tariff_spin)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        form.addRow(self.search_button)
        self.summary_label = QLabel("searching...")
        self.summary_label.setWordWrap(True)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(box)
        ll.addWidget(self.summary_label)
        ll.addStretch(1)

        # scatter: built on the next event-loop pass (see _ensure_plot)
        self._plot_box = QWidget()
        self._plot_box.setLayout(QVBoxLayout())
        self._plot_box.layout().setContentsMargins(0, 0, 0, 0)
        self._plot_box.setMinimumHeight(220)
        self.plot: Any = None
        self.watts_label = QLabel("colour: max watts (blue = low, red = high)")

        self.option_model = DataFrameTableModel(OPTION_COLUMNS)
        self.option_table = _table(self.option_model)
        self.add_button = QPushButton("Add selected to plan")
        self.add_button.clicked.connect(self.add_selected_to_plan)
        opt_page = QWidget()
        ol = QVBoxLayout(opt_page)
        ol.addWidget(self.option_table)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.add_button)
        ol.addLayout(row)

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
        self.import_button.clicked.connect(self.choose_csv)
        self.commit_button = QPushButton("Commit import")
        self.commit_button.setEnabled(False)
        self.commit_button.clicked.connect(self.commit_import)
        self.import_label = QLabel("")
        self.import_label.setWordWrap(True)
        obs_page = QWidget()
        obl = QVBoxLayout(obs_page)
        obl.addWidget(self.obs_table, 2)
        irow = QHBoxLayout()
        irow.addWidget(QLabel("FX"))
        irow.addWidget(self.fx_edit, 1)
        irow.addWidget(QLabel("decimal"))
        irow.addWidget(self.decimal_combo)
        irow.addWidget(self.dayfirst_check)
        irow.addWidget(self.import_button)
        irow.addWidget(self.commit_button)
        obl.addLayout(irow)
        obl.addWidget(self.import_label)
        obl.addWidget(self.preview_table, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(opt_page, "Ranked options")
        self.tabs.addTab(self.rejected_table, "Rejected")
        self.tabs.addTab(obs_page, "Price observations")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self._plot_box, 2)
        rl.addWidget(self.watts_label)
        rl.addWidget(self.tabs, 3)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        outer = QVBoxLayout(self)
        outer.addWidget(split)

    def _ensure_plot(self) -> None:
        """Price vs decode, coloured by watts; the Pareto frontier as a line."""
        if self.plot is not None:
            return
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(220)
        theme.style_plot(self.plot)
        self.plot.setLabel("bottom", "price (USD)")
        self.plot.setLabel("left", "decode (tokens/s)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.scatter = pg.ScatterPlotItem(size=10, pen=pg.mkPen(None))
        self.frontier = pg.PlotDataItem(pen=pg.mkPen(theme.text_colour(), width=1.5))
        self.plot.addItem(self.frontier)
        self.plot.addItem(self.scatter)
        self._plot_box.layout().addWidget(self.plot)

    @staticmethod
    def _optional_spin(
        lo: float, hi: float, suffix: str, step: float = 1, decimals: int = 1
    ) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setDecimals(decimals)
        spin.setSingleStep(step)
        spin.setSuffix(suffix)
        spin.setSpecialValueText("none")  # 0 = no limit
        return spin

    # -- search ---------------------------------------------------------------------------------
    def request(self) -> dict[str, Any]:
        def opt(spin: QDoubleSpinBox) -> float | None:
            return spin.value() or None

        qmin = self.quant_combo.currentText()
        return {
            "model_ids": [m.strip() for m in self.models_edit.text().split(",") if m.strip()],
            "context": self.context_spin.value(),
            "quant_min": None if qmin.startswith("(") else qmin,
            "min_decode_tps": opt(self.decode_spin),
            "budget_usd": opt(self.budget_spin),
            "condition": self.condition_combo.currentText(),
            "max_watts": opt(self.watts_spin),
            "allow_clusters": self.clusters_check.isChecked(),
            "hours_at_load": self.hours_spin.value(),
            "tariff": opt(self.tariff_spin),
        }

    def search(self) -> None:
        if self._worker is not None:
            return
        req = self.request()
        if not req["model_ids"]:
            self._show_error("give at least one model id")
            return
        self.search_button.setEnabled(False)
        self.summary_label.setText("searching...")

        option_model, rejected_model = self.option_model, self.rejected_model
        ctx = self.ctx

        def job(token: Any):
            from forgeplanner.services.recommend import RecommendRequest, build_recommendation

            yield "searching"
            rec = build_recommendation(RecommendRequest(**req), catalog=ctx.catalog)
            # The tables' cells are prepared here: the GUI thread only swaps them in.
            option_frame, rejected_frame = _result_frames(rec)
            return rec, option_model.prepare(option_frame), rejected_model.prepare(rejected_frame)

        self._worker = start_worker(
            self.ctx.pool,
            job,
            on_result=lambda payload: self._on_result(*payload),
            on_error=lambda err: self._show_error(err.reason),
            on_finished=self._on_finished,
        )

    def _on_finished(self) -> None:
        self._worker = None
        self.search_button.setEnabled(True)

    def _show_error(self, text: str) -> None:
        self.error = text.splitlines()[0] if text else "error"
        self.summary_label.setText(f"Cannot search: {self.error}")

    def _on_result(self, rec: Any, options: Any = None, rejected: Any = None) -> None:
        self.error = None
        if options is None or rejected is None:
            options, rejected = _result_frames(rec)
        self.option_model.set_frame(options)
        price_col = self.option_model.column_index("price_usd")
        self.option_table.sortByColumn(price_col, Qt.SortOrder.AscendingOrder)
        # Widths from the prepared texts (resizeColumnsToContents asks every cell via Python).
        fit_columns(self.option_table, self.option_model)
        self.rejected_model.set_frame(rejected)
        self.result = rec
        self._plot(rec.options)
        c = rec.constraints
        self.summary_label.setText(
            f"{len(rec.options)} option(s), {len(rec.rejected)} configuration(s) rejected; "
            f"prices as of {c['today']}.\n" + "\n".join(f"- {n}" for n in rec.notes)
        )
        self.ctx.status(f"recommend: {len(rec.options)} options for {', '.join(c['models'])}")

    def _plot(self, options: Any) -> None:
        self._ensure_plot()
        pts = [o for o in options if o.price_usd is not None and o.decode_tps is not None]
        if not pts:
            self.scatter.setData([], [])
            self.frontier.setData([], [])
            return
        watts = [o.max_w for o in pts if o.max_w is not None]
        lo, hi = (min(watts), max(watts)) if watts else (0.0, 1.0)
        cmap = pg.colormap.get("CET-D1")  # diverging blue -> red
        brushes = []
        for o in pts:
            if o.max_w is None:
                brushes.append(pg.mkBrush(theme.muted_text()))
                continue
            t = 0.5 if hi == lo else (o.max_w - lo) / (hi - lo)
            brushes.append(pg.mkBrush(QColor(cmap.map(t, mode="qcolor"))))
        self.scatter.setData(
            x=[o.price_usd for o in pts], y=[o.decode_tps for o in pts], brush=brushes
        )
        # The line is the price / speed frontier (each step: the fastest option at or below
        # that price); the table's P column also weighs watts, so it can mark more options.
        xs: list[float] = []
        ys: list[float] = []
        best = float("-inf")
        for o in sorted(pts, key=lambda o: (o.price_usd, -o.decode_tps)):
            if o.decode_tps > best:
                if xs:
                    xs.append(o.price_usd)
                    ys.append(best)
                xs.append(o.price_usd)
                ys.append(o.decode_tps)
                best = o.decode_tps
        self.frontier.setData(xs, ys)
        self.watts_label.setText(
            f"colour: max watts, blue = {lo:g} W ... red = {hi:g} W; line: price / speed "
            "frontier; * in the table: price / speed / watts Pareto frontier"
        )

    # -- plan -----------------------------------------------------------------------------------
    def selected_option(self) -> dict[str, Any] | None:
        rows = self.option_table.selectionModel().selectedRows()
        if not rows:
            return None
        src = self.option_table.model().mapToSource(rows[0])
        return self.option_model.row_dict(src.row())

    def add_selected_to_plan(self, option: dict[str, Any] | None = None) -> bool:
        from forgeplanner.plan.edit import add_machine, new_plan
        from forgeplanner.plan.sources import EngineSources

        opt = option or self.selected_option()
        if not opt:
            self.ctx.status("select an option first")
            return False
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        condition = "used" if str(opt.get("price_basis", "")).startswith("used") else "new"
        machine = EngineSources(catalog=self.ctx.catalog).machine(
            opt["config_id"], int(opt["count"]), condition
        )
        plan = self.ctx.plan.plan or new_plan("Recommended build", now)
        self.ctx.plan.set_plan(
            add_machine(plan, machine, now), f"Add {opt['count']} x {opt['config_id']}"
        )
        self.ctx.status(f"added {opt['count']} x {opt['config_id']} to the plan")
        return True

    # -- observations and import ----------------------------------------------------------------
    def refresh_observations(self) -> None:
        """Re-read the price observations now (after an import was committed)."""
        self._obs_generation += 1  # a background load still running is now stale
        frame, problem = observations_frame(self.ctx.catalog)
        self._apply_observations(frame, problem)

    def _load_observations_in_background(self) -> None:
        """First fill: opening the user database and reading it happen in a worker."""
        generation = self._obs_generation
        ctx, model = self.ctx, self.obs_model

        def job(token: Any):
            yield "observations"
            frame, problem = observations_frame(ctx.catalog)
            return model.prepare(frame), problem

        def done(payload: Any) -> None:
            if generation == self._obs_generation:
                self._apply_observations(*payload)

        self._obs_worker = start_worker(
            self.ctx.pool, job, on_result=done, on_finished=self._obs_finished, owner=self
        )

    def _obs_finished(self) -> None:
        self._obs_worker = None

    def _apply_observations(self, frame: Any, problem: str | None) -> None:
        if problem:
            self.import_label.setText(problem)
        self.obs_model.set_frame(frame)

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
            self.import_label.setText("FX: expected CODE=RATE, e.g. EUR=1.08")
            return
        decimal = self.decimal_combo.currentText()
        dayfirst = self.dayfirst_check.isChecked()
        catalog = self.ctx.catalog
        self.commit_button.setEnabled(False)
        self.import_label.setText(f"reading {path} ...")

        def job(token: Any):
            from forgeplanner.services.prices import ListingFormat, read_listings_file

            yield "reading"
            fmt = ListingFormat(fx=fx, decimal=decimal, dayfirst=dayfirst)
            return read_listings_file(path, fmt, store=self.ctx.store(), catalog=catalog)

        self._import_worker = start_worker(
            self.ctx.pool,
            job,
            on_result=self._on_preview,
            on_error=lambda err: self._import_failed(err.reason),
            on_finished=self._import_finished,
        )

    def _import_finished(self) -> None:
        self._import_worker = None

    def _import_failed(self, text: str) -> None:
        self.preview = None
        self.commit_button.setEnabled(False)
        self.preview_model.set_frame(pd.DataFrame(columns=[c.key for c in PREVIEW_COLUMNS]))
        self.import_label.setText(f"Not imported: {text}")

    def _on_preview(self, imp: Any) -> None:
        self.preview = imp
        rows = []
        for r in imp.rows:
            d = r.to_dict()
            d["original"] = f"{r.currency} {r.original_price:,.2f}"
            d["config_id"] = r.config_id or f"(unmatched) {r.title or ''}"
            rows.append(d)
        self.preview_model.set_frame(pd.DataFrame(rows, columns=[c.key for c in PREVIEW_COLUMNS]))
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

    def shutdown(self) -> None:
        for w in (self._worker, self._import_worker, self._obs_worker):
            if w is not None:
                w.cancel()


def _result_frames(rec: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ranked options' and the rejected configurations' frames (raw values)."""
    rows = []
    for o in rec.options:
        d = o.to_dict()
        (cid, n), *_ = o.machines
        d["machines"] = cid + (f" x{n}" if n > 1 else "")
        d["pareto_mark"] = "*" if o.pareto else ""
        d["config_id"], d["count"] = cid, n
        rows.append(d)
    options = pd.DataFrame(rows, columns=[*(c.key for c in OPTION_COLUMNS), "config_id",
                                          "count"])  # fmt: skip
    rejected = pd.DataFrame([r.to_dict() for r in rec.rejected], columns=["config_id", "reason"])
    return options, rejected


def observations_frame(catalog: Any) -> tuple[pd.DataFrame, str | None]:
    """Shipped and user price observations, newest first, and why the user's could not be
    read (None when they could)."""
    from forgeplanner.services.prices import user_price_observations

    problem = None
    try:
        user, _ = user_price_observations()
    except Exception as exc:  # a broken user database must not break the view; say so
        user = ()
        problem = f"your price observations could not be read: {exc}"
    rows = []
    for o in (*catalog.price_observations, *user):
        rows.append({
            "date": o.date, "config": o.config_id or o.machine_id or o.item,
            "price_usd": o.point_price_usd, "condition": o.condition,
            "price_type": o.price_type, "origin": o.origin, "source": o.source,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=[c.key for c in OBS_COLUMNS])
    return frame.sort_values("date", ascending=False), problem


def create_view(ctx: AppContext) -> QWidget:
    return RecommendView(ctx)
