"""Models for my Mac: the reverse of Fit. Every model in the database ranked for one machine,
each with its best quantization that fits, its largest context, decode with the context filled
and empty, prefill, the quality cost of the quantization, its licence and what it is for;
filters by family, size, MoE, licence and use; row actions Open in Fit, Recommend hardware and
Add to plan.

The ranking is `forgeplanner.services.models_fit.fit_models` (the `models fit` command),
computed in a worker whenever the machine, context, runtime or decode target changes
(debounced); the filters only hide rows.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.viewstate.fit import InputError, context_presets, parse_context
from forgeplanner.viewstate.speed import range_text
from forgeplanner.viewstate.vocabulary import (
    THIS_MACHINE,
    THIS_MACHINE_NAME,
    machine_choices,
    runtime_choices,
    tokens,
    use_choices,
    verdict_word,
)
from ui import persist, theme
from ui.context import AppContext
from ui.model_actions import ModelActions
from ui.pickers import MachinePicker
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import after_first_paint, configure_table, fit_columns
from ui.workers import Recompute, WorkerError

DEFAULT_MACHINE = "mac-mini-m4-pro-20c-64gb"
DEFAULT_CONTEXT = 16384
SIZES = [  # (label, "low-high" in billions of parameters)
    ("Any size", None),
    ("Up to 10 B", "0-10"),
    ("10-40 B", "10-40"),
    ("40-100 B", "40-100"),
    ("Over 100 B", "100-1000000"),
]


def _tok(v: Any) -> str:
    return f"{int(v):,}"


LIKELY_TIP = (
    "decode with the context filled: 10th-90th percentile of measured / estimated over "
    "held-out published runs of similar setups"
)


def _tps(v: Any) -> str:
    return f"{float(v):,.1f}"


COLUMNS = [
    Column("rank", "#", lambda v: str(int(v))),
    Column("model_id", "Model"),
    Column("verdict", "Fits?", lambda v: verdict_word(v, short=True)),
    Column("best_quant", "Best quantization", missing="none fits"),
    Column("max_context", "Largest context", _tok, "at this GPU limit", missing="-"),
    Column(
        "max_context_raised", "With raised limit", _tok, "with the GPU limit raised", missing="-"
    ),
    Column("decode_tps", "Decode", _tps, "tokens/s with the context filled", missing="-"),
    Column("decode_range", "Likely decode", tooltip=LIKELY_TIP, missing=""),
    Column(
        "decode_tps_empty", "Decode empty", _tps, "tokens/s with the context empty", missing="-"
    ),
    Column("prefill_tps", "Prefill", lambda v: f"{float(v):,.0f}", "prompt tokens/s", missing="-"),
    Column("quality", "Quality cost", tooltip="published perplexity / KL divergence vs 16-bit"),
    Column("params_b", "Size", lambda v: f"{float(v):,.1f} B", "total parameters"),
    Column("moe_text", "MoE"),
    Column("licence", "Licence"),
    Column("uses_text", "Use"),
    Column("family", "Family"),
    Column("reason", "Note", missing=""),
]


def _background(row: dict[str, Any], key: str) -> Any:
    return theme.verdict_tint(row.get("verdict", "")) if key == "verdict" else None


def rows_of(result: Any) -> list[dict[str, Any]]:
    rows = []
    for i, m in enumerate(result.models, 1):
        d = m.to_dict()
        d["rank"] = i
        d["moe_text"] = "MoE" if m.moe else "dense"
        d["uses_text"] = ", ".join(m.uses) or "base model"
        d["quality"] = m.quality or None
        d["decode_range"] = range_text(m.decode_tps_low, m.decode_tps_high) or None
        rows.append(d)
    return rows


class ForMacView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: Any = None
        self.error: str | None = None
        self.machine_picker = MachinePicker()
        self.machine_picker.set_machines(
            [(THIS_MACHINE_NAME, THIS_MACHINE), *machine_choices(ctx.catalog)],
            keep=DEFAULT_MACHINE,
        )
        persist.skip(self.machine_picker)
        self.context_combo = QComboBox()
        self.context_combo.setEditable(True)
        self.context_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for label, n in context_presets(None):
            self.context_combo.addItem(label, n)
        self.context_combo.setCurrentIndex(self.context_combo.findData(DEFAULT_CONTEXT))
        self.runtime_combo = QComboBox()
        for label, value in runtime_choices():
            self.runtime_combo.addItem(label, value)
        self.decode_spin = QDoubleSpinBox()
        self.decode_spin.setRange(0, 1000)
        self.decode_spin.setDecimals(1)
        self.decode_spin.setSuffix(" tok/s")
        self.decode_spin.setSpecialValueText("any speed")
        self.decode_spin.setToolTip("Decode at least this fast with the context filled")
        self.family_combo = QComboBox()
        self.family_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.size_combo = QComboBox()
        for label, value in SIZES:
            self.size_combo.addItem(label, value)
        self.moe_combo = QComboBox()
        for label, value in (("Dense and MoE", None), ("Dense only", False), ("MoE only", True)):
            self.moe_combo.addItem(label, value)
        self.licence_combo = QComboBox()
        self.licence_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.use_combo = QComboBox()
        for label, value in use_choices():
            self.use_combo.addItem(label, value)
        self.fits_only = QCheckBox("Only models that fit")
        self.fits_only.setChecked(True)
        self.summary = QLabel("computing...")
        self.summary.setWordWrap(True)

        self.model = DataFrameTableModel(COLUMNS, key_column="model_id", background=_background)
        self.proxy = make_proxy(self.model, self)
        self.table = QTableView()
        self.table.setObjectName("forMacTable")
        self.table.setModel(self.proxy)
        configure_table(self.table)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.actions = ModelActions(self, self.table, self._current)

        top = QHBoxLayout()
        top.addWidget(QLabel("Machine"))
        top.addWidget(self.machine_picker, 3)
        top.addWidget(QLabel("Context"))
        top.addWidget(self.context_combo)
        top.addWidget(QLabel("Runtime"))
        top.addWidget(self.runtime_combo)
        top.addWidget(self.decode_spin)
        filters = QHBoxLayout()
        for w in (self.family_combo, self.size_combo, self.moe_combo, self.licence_combo,
                  self.use_combo, self.fits_only):  # fmt: skip
            filters.addWidget(w)
        filters.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(self.actions.layout())

        persist.restore(self, "formac")
        self._widths_restored = persist.has_state(self.table, "formac")
        self._compute = Recompute(
            self, self._prepare, self._show, delay_ms=250, pool=ctx.pool, on_error=self._failed
        )
        self.machine_picker.picked.connect(lambda _k: self._compute.schedule())
        self.machine_picker.unknown_text.connect(
            lambda t: self.summary.setText(f"Machine '{t}': no configuration of that name")
        )
        self.context_combo.activated.connect(self._compute.schedule)
        self.context_combo.lineEdit().editingFinished.connect(self._compute.schedule)
        self.runtime_combo.currentIndexChanged.connect(self._compute.schedule)
        self.decode_spin.valueChanged.connect(self._compute.schedule)
        for combo in (self.family_combo, self.size_combo, self.moe_combo, self.licence_combo,
                      self.use_combo):  # fmt: skip
            combo.currentIndexChanged.connect(self._apply_filters)
        self.fits_only.toggled.connect(self._apply_filters)
        self.ctx.models_changed.connect(self._compute.schedule)
        self._first_pending = True
        after_first_paint(self, self._first_run)

    def _first_run(self) -> None:
        self._first_pending = False
        self._compute.run_now()

    # -- inputs ----------------------------------------------------------------------------------
    def context(self) -> int:
        text = self.context_combo.currentText()
        i = self.context_combo.findText(text)
        if i >= 0 and self.context_combo.itemData(i) is not None:
            return int(self.context_combo.itemData(i))
        return parse_context(text, None)

    def _prepare(self) -> Any:
        try:
            context = self.context()
        except InputError as exc:
            self.summary.setText(str(exc))
            return None
        machine = self.machine_picker.key() or DEFAULT_MACHINE
        runtime = self.runtime_combo.currentData()
        target = self.decode_spin.value() or None
        models = list(self.ctx.all_models())
        catalog = self.ctx.catalog
        model = self.model
        self.summary.setText("computing...")

        def work(token: Any) -> Any:
            from forgeplanner.host import host_from_chip, host_this_machine
            from forgeplanner.services.models_fit import fit_models

            if machine == THIS_MACHINE:
                host = host_this_machine()
            else:
                cfg = catalog.configs[machine]
                host = host_from_chip(catalog.chips[cfg.chip_id], cfg.memory_gb, config=cfg)
            result = fit_models(
                models, host, context=context, runtime=runtime, min_decode_tps=target,
                cancelled=lambda: token.cancelled,
            )  # fmt: skip
            return result, model.prepare(rows_of(result))

        return work

    def _failed(self, err: WorkerError) -> None:
        self.error = err.reason
        self.summary.setText(f"Cannot rank the models: {err.reason}")

    def _show(self, payload: Any) -> None:
        result, prepared = payload
        self.result = result
        self.error = None
        self.model.set_frame(prepared)
        if not self._widths_restored:
            fit_columns(self.table, self.model, max_width=300)
        rows = prepared.records
        self._fill(self.family_combo, "All families", sorted({r["family"] for r in rows}))
        self._fill(
            self.licence_combo, "All licences", sorted({r["licence"] for r in rows if r["licence"]})
        )
        self._apply_filters()
        fits = sum(1 for m in result.models if m.verdict == "fits")
        raised = sum(1 for m in result.models if m.verdict == "fits-with-raised-limit")
        target = (
            ""
            if result.min_decode_tps is None
            else f", decode at least {result.min_decode_tps:g} tok/s"
        )
        self.summary.setText(
            f"<b>{result.host}</b>, {tokens(result.context)} tokens of context{target}: "
            f"{fits} models fit, {raised} more with the GPU limit raised. Ranked: "
            f"{result.ranking}."
        )

    @staticmethod
    def _fill(combo: QComboBox, all_label: str, values: list[str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(all_label, None)
        for v in values:
            combo.addItem(v, v)
        i = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(i, 0))
        combo.blockSignals(False)

    def _apply_filters(self, *_: Any) -> None:
        p = self.proxy
        fam = self.family_combo.currentData()
        p.set_predicate("family", None if fam is None else (lambda r, f=fam: r["family"] == f))
        size = self.size_combo.currentData()
        lo, hi = (float(x) for x in size.split("-")) if size else (0.0, 0.0)
        p.set_predicate(
            "size",
            None
            if size is None
            else (lambda r: r["params_b"] is not None and lo <= r["params_b"] < hi),
        )
        moe = self.moe_combo.currentData()
        p.set_predicate("moe", None if moe is None else (lambda r, m=moe: bool(r["moe"]) == m))
        lic = self.licence_combo.currentData()
        p.set_predicate("licence", None if lic is None else (lambda r, x=lic: r["licence"] == x))
        use = self.use_combo.currentData()
        p.set_predicate("use", None if use is None else (lambda r, u=use: u in (r["uses"] or ())))
        p.set_predicate(
            "fits", (lambda r: r["best_quant"] is not None) if self.fits_only.isChecked() else None
        )
        if self.proxy.rowCount() and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)
        self.actions.update()

    def shown_ids(self) -> list[str]:
        return [
            str(self.proxy.index(r, self.model.column_index("model_id")).data())
            for r in range(self.proxy.rowCount())
        ]

    def _current(self) -> tuple[str, str | None, str | None, int | None] | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = self.model.row_dict(self.proxy.mapToSource(rows[0]).row())
        return row["model_id"], self.machine_picker.key(), row.get("best_quant"), row["context"]

    def apply_request(self, machine: str | None = None, context: int | None = None,
                      **_: Any) -> None:  # fmt: skip
        if machine is not None:
            self.machine_picker.set_key(machine)
        if context is not None:
            self.context_combo.setEditText(f"{int(context):,}")
        if not self._first_pending:
            self._compute.run_now()

    def settings_values(self) -> dict[str, Any]:
        return {"machine": self.machine_picker.key() or DEFAULT_MACHINE}

    def apply_settings_values(self, v: dict[str, Any]) -> None:
        self.machine_picker.set_key(str(v.get("machine") or DEFAULT_MACHINE))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.model.frame() is not None:
            self.model.set_frame(self.model.frame())

    def busy(self) -> bool:
        return self._first_pending or self._compute.busy()

    def shutdown(self) -> None:
        self._compute.cancel()


def create_view(ctx: AppContext) -> QWidget:
    return ForMacView(ctx)
