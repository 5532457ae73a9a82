"""Hardware: every machine configuration of the catalog, sortable and filterable, with a detail
panel that shows each figure's value, source and date (unknown figures say why)."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, QItemSelection, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ui.context import AppContext
from ui.frames import figure_rows, hardware_frame
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import configure_table, fit_columns
from ui.workers import start_worker


def _usd(v: float) -> str:
    return f"${v:,.0f}"


def _num(fmt: str):
    return lambda v: fmt.format(v)


COLUMNS = [
    Column("machine", "Machine"),
    Column("chip", "Chip"),
    Column("memory_gb", "Memory", _num("{} GB"), "unified memory (Apple GB = GiB) or DRAM"),
    Column("bandwidth_gbps", "Bandwidth", _num("{:,.0f} GB/s"), "memory bandwidth, decimal GB/s"),
    Column("price_new_usd", "New", _usd, "Apple list price (launch or later list price)"),
    Column(
        "price_used_usd",
        "Used",
        _usd,
        "used price: median of recent observations, else launch price x fitted depreciation",
    ),
    Column("usd_per_gb_new", "$/GB new", _num("${:,.1f}"), "new price per GB of memory"),
    Column("usd_per_gb_used", "$/GB used", _num("${:,.1f}"), "used price per GB of memory"),
    Column("idle_w", "Idle W", _num("{:g} W")),
    Column("max_w", "Max W", _num("{:g} W")),
    Column("idle_btu_h", "Idle BTU/h", _num("{:,.0f}")),
    Column("max_btu_h", "Max BTU/h", _num("{:,.0f}")),
    Column("year", "Year", str),
    Column("thunderbolt", "Thunderbolt"),
    Column("ethernet", "Ethernet"),
    Column("id", "Id"),
]

KINDS = [("All machines", None), ("Mac mini", "mac-mini"), ("Mac Studio", "mac-studio")]


class HardwareView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model = DataFrameTableModel(COLUMNS, key_column="id", parent=self)
        self.proxy = make_proxy(self.model, self)

        self.search = QLineEdit(placeholderText="Filter: machine, chip, id...")
        self.search.setClearButtonEnabled(True)
        self.kind = QComboBox()
        for label, value in KINDS:
            self.kind.addItem(label, value)
        self.min_memory = QSpinBox()
        self.min_memory.setRange(0, 512)
        self.min_memory.setSingleStep(8)
        self.min_memory.setSuffix(" GB")
        self.min_memory.setPrefix("memory >= ")
        self.apple_only = QCheckBox("Apple Silicon only")
        self.count = QLabel()

        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(self.kind)
        bar.addWidget(self.min_memory)
        bar.addWidget(self.apple_only)
        bar.addStretch(1)
        bar.addWidget(self.count)

        self.table = QTableView()
        self.table.setObjectName("hardwareTable")
        self.table.setModel(self.proxy)
        configure_table(self.table)
        # Cheapest memory first: what people building a lab compare first; unknown last.
        self.table.sortByColumn(
            [c.key for c in COLUMNS].index("usd_per_gb_used"), Qt.SortOrder.AscendingOrder
        )

        self.detail = QTextBrowser()
        self.detail.setObjectName("hardwareDetail")
        self.detail.setOpenExternalLinks(True)
        self.detail.setHtml("<p>Select a configuration to see every figure with its source.</p>")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)

        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.search.textChanged.connect(self._update_count)
        self.kind.currentIndexChanged.connect(self._apply_filters)
        self.min_memory.valueChanged.connect(self._apply_filters)
        self.apple_only.toggled.connect(self._apply_filters)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self._worker = None
        self._load()

    # -- data ----------------------------------------------------------------------------------
    def _load(self) -> None:
        self.count.setText("loading catalog...")
        ctx = self.ctx

        def job(token):
            yield "catalog"
            return hardware_frame(ctx.catalog)

        self._worker = start_worker(ctx.pool, job, on_result=self._on_frame, owner=self)

    def _on_frame(self, frame: Any) -> None:
        self.model.set_frame(frame)
        fit_columns(self.table, self.model, max_width=230)
        self._update_count()
        if self.proxy.rowCount():
            self.table.selectRow(0)
        self.ctx.status(f"Hardware: {len(frame)} configurations", 3000)

    def changeEvent(self, event: QEvent) -> None:
        """Light/dark switch: re-derive the greyed "unknown" colour from the new palette."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.model.frame() is not None:
            self.model.set_frame(self.model.frame())

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _apply_filters(self) -> None:
        kind = self.kind.currentData()
        self.proxy.set_predicate(
            "kind", None if kind is None else (lambda row, k=kind: _kind_of(self, row) == k)
        )
        mem = self.min_memory.value()
        self.proxy.set_predicate(
            "memory",
            None if mem == 0 else (lambda row, m=mem: (row["memory_gb"] or 0) >= m),
        )
        self.proxy.set_predicate(
            "apple",
            (lambda row: _apple_of(self, row)) if self.apple_only.isChecked() else None,
        )
        self._update_count()

    def _update_count(self) -> None:
        self.count.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} configurations")

    # -- detail --------------------------------------------------------------------------------
    def _on_selection(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        src = self.proxy.mapToSource(rows[0])
        self.show_detail(self.model.row_key(src.row()))

    def show_detail(self, config_id: str) -> None:
        cat = self.ctx.catalog
        cfg = cat.configs[config_id]
        self.detail.setHtml(detail_html(cat, cfg, figure_rows(cat, config_id)))


def _kind_of(view: HardwareView, row: dict[str, Any]) -> str:
    return view.ctx.catalog.configs[row["id"]].kind


def _apple_of(view: HardwareView, row: dict[str, Any]) -> bool:
    cat = view.ctx.catalog
    chip = cat.chips.get(cat.configs[row["id"]].chip_id)
    return bool(chip and chip.is_apple_silicon)


def _fmt_value(value: Any, unit: str) -> str:
    if value is None:
        return "<i>unknown</i>"
    if isinstance(value, float):
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    if unit == "USD":
        return f"${text}"
    return f"{text} {unit}".strip()


def detail_html(cat: Any, cfg: Any, figures: list[dict[str, Any]]) -> str:
    e = html.escape
    rows = []
    for f in figures:
        value = _fmt_value(f["value"], f["unit"])
        rows.append(
            "<tr>"
            f"<td><b>{e(f['name'])}</b></td><td>{value}</td>"
            f"<td>{e(f['source'] or '')}</td><td>{e(f['as_of'] or '')}</td>"
            f"<td>{e(f['note'] or '')}</td>"
            "</tr>"
        )
    chip = cat.chips.get(cfg.chip_id)
    head = (
        f"<h3>{e(cfg.machine)}, {cfg.memory_gb} GB, "
        f"{'storage not stated' if cfg.storage_gb is None else f'{cfg.storage_gb} GB SSD'}</h3>"
        f"<p><code>{e(cfg.id)}</code> &middot; chip {e(chip.name if chip else cfg.chip_id)}"
        f"{f' ({chip.gpu_cores}-core GPU)' if chip and chip.gpu_cores else ''}"
        f" &middot; released {e(cfg.release_date)}"
        f"{' &middot; withdrawn ' + e(cfg.withdrawn) if cfg.withdrawn else ''}"
        f" &middot; RAM {'upgradeable' if cfg.ram_upgradeable else 'soldered'}</p>"
    )
    table = (
        "<table cellspacing='0' cellpadding='3' border='1' width='100%'>"
        "<tr><th align='left'>Figure</th><th align='left'>Value</th>"
        "<th align='left'>Source</th><th align='left'>As of</th>"
        "<th align='left'>Note</th></tr>" + "".join(rows) + "</table>"
    )
    notes = f"<p>{e(cfg.notes)}</p>" if cfg.notes else ""
    sources = "".join(f"<li>{e(s)}</li>" for s in cfg.sources)
    return head + table + notes + f"<p><b>Sources</b></p><ul>{sources}</ul>"


def create_view(ctx: AppContext) -> QWidget:
    return HardwareView(ctx)
