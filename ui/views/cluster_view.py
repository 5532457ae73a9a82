"""Cluster view: one model over several Macs.

Node list editor and link type on the left; on the right the layer split drawn per node as
stacked memory bars (weights, KV cache, compute + runtime) against each node's GPU limit,
the cluster's speed and what it means, and the launch commands with copy buttons.

The plan is computed by `forgeplanner.services.cluster.build_cluster` (the same code as the
CLI) in a worker thread; edits are debounced.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ui import theme
from ui.context import AppContext
from ui.table_model import Column, FrameTable
from ui.widgets import defer
from ui.workers import LatestOnly

GiB = 1 << 30
DEFAULT_MODEL = "llama-3.1-70b"
DEFAULT_QUANT = "Q4_K_M"
DEFAULT_NODES = ["mac-mini-m4-pro-20c-64gb", "mac-mini-m4-pro-20c-64gb"]
QUANTS = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "IQ4_XS", "Q3_K_M", "Q2_K", "IQ2_XXS"]
LINKS = ["1gbe", "2.5gbe", "10gbe", "tb3", "tb4", "tb5", "tb5-rdma"]
SERIES = (("weights", "weights"), ("kv_cache", "KV cache"), ("compute", "compute + runtime"))
DEBOUNCE_MS = 150


def _gib(v: Any) -> str:
    return f"{v / GiB:.1f}"


# Raw values in the frame (bytes, seconds), display text from the formatters; the verdict
# cell is tinted by `_verdict_background`.
NODE_COLUMNS = [
    Column("name", "node"),
    Column("config_id", "config"),
    Column("layers", "layers"),
    Column("total_bytes", "total GiB", _gib),
    Column("gpu_limit_bytes", "GPU limit GiB", _gib),
    Column("verdict", "verdict"),
    Column("decode_stage_s", "stage ms", lambda v: f"{v * 1e3:.1f}"),
    Column("holds", "holds"),
]


def _verdict_background(row: dict[str, Any], key: str) -> Any:
    return theme.verdict_tint(row["verdict"]) if key == "verdict" else None


class ClusterView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._runner = LatestOnly(ctx.pool, self.recompute)
        self.result: Any = None
        self.error: str | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.recompute)
        self._build()
        self.recompute()
        # The chart is the page's most expensive widget: build it after the first paint, in
        # its own event-loop pass (or at once if a result needs it first).
        defer(self, self._ensure_plot)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        catalog = self.ctx.catalog
        models = self.ctx.models

        form_box = QGroupBox("Model and link")
        form = QFormLayout(form_box)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        ids = sorted(models.ids())
        self.model_combo.addItems(ids)
        self.model_combo.setCurrentText(DEFAULT_MODEL)
        self.quant_combo = QComboBox()
        self.quant_combo.setEditable(True)
        self.quant_combo.addItems(QUANTS)
        self.quant_combo.setCurrentText(DEFAULT_QUANT)
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 1_048_576)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["pipeline", "tensor"])
        self.split_combo = QComboBox()
        self.split_combo.addItems(["auto", "proportional", "fastest"])
        self.link_combo = QComboBox()
        self.link_combo.addItems(["(fastest all nodes have)", *LINKS])
        form.addRow("Model", self.model_combo)
        form.addRow("Quantization", self.quant_combo)
        form.addRow("Context", self.context_spin)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Split", self.split_combo)
        form.addRow("Link", self.link_combo)

        nodes_box = QGroupBox("Nodes (llama.cpp device order; the last runs llama-server)")
        nl = QVBoxLayout(nodes_box)
        self.node_list = QListWidget()
        self.node_list.addItems(DEFAULT_NODES)
        nl.addWidget(self.node_list)
        add_row = QHBoxLayout()
        self.config_combo = QComboBox()
        self.config_combo.addItems(sorted(catalog.configs))
        self.config_combo.setCurrentText(DEFAULT_NODES[0])
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Up")
        add_row.addWidget(self.config_combo, 1)
        add_row.addWidget(self.add_button)
        nl.addLayout(add_row)
        btn_row = QHBoxLayout()
        btn_row.addWidget(self.remove_button)
        btn_row.addWidget(self.up_button)
        btn_row.addStretch(1)
        nl.addLayout(btn_row)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(form_box)
        ll.addWidget(nodes_box, 1)

        # right: chart (built on the next event-loop pass, see _ensure_plot), speed, commands
        self._plot_box = QWidget()
        self._plot_box.setLayout(QVBoxLayout())
        self._plot_box.layout().setContentsMargins(0, 0, 0, 0)
        self._plot_box.setMinimumHeight(240)
        self.plot: Any = None
        self.bars: dict[str, pg.BarGraphItem] = {}

        self.speed_label = QLabel("computing...")
        self.speed_label.setWordWrap(True)
        self.speed_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.node_table = FrameTable(NODE_COLUMNS, background=_verdict_background)
        self.node_model = self.node_table.source

        cmd_box = QGroupBox("Launch commands")
        self.cmd_layout = QVBoxLayout(cmd_box)
        cmd_scroll = QScrollArea()
        cmd_scroll.setWidgetResizable(True)
        cmd_scroll.setWidget(cmd_box)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self._plot_box, 3)
        rl.addWidget(self.speed_label)
        rl.addWidget(self.node_table, 2)
        rl.addWidget(cmd_scroll, 2)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        outer = QVBoxLayout(self)
        outer.addWidget(split)

        for w in (self.model_combo, self.quant_combo):
            w.currentTextChanged.connect(self.schedule)
        for w in (self.mode_combo, self.split_combo, self.link_combo):
            w.currentIndexChanged.connect(self.schedule)
        self.context_spin.valueChanged.connect(self.schedule)
        self.add_button.clicked.connect(self.add_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.up_button.clicked.connect(self.move_up)

    def _ensure_plot(self) -> None:
        if self.plot is not None:
            return
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(240)
        theme.style_plot(self.plot)
        self.plot.setLabel("left", "memory (GiB)")
        self.plot.showGrid(y=True, alpha=0.3)
        self.plot.addLegend(offset=(10, 10))
        for key, label in SERIES:
            item = pg.BarGraphItem(
                x=[],
                height=[],
                y0=[],
                width=0.6,
                brush=theme.series_colour(
                    theme.SERIES_HUES["compute" if key == "compute" else key]
                ),
                name=label,
            )
            self.plot.addItem(item)
            self.bars[key] = item
        # each node's GPU limit as a thin bar at its height
        self.limit_item = pg.BarGraphItem(
            x=[], height=[], y0=[], width=0.8, brush=theme.text_colour(), name="GPU limit"
        )
        self.plot.addItem(self.limit_item)

        self._plot_box.layout().addWidget(self.plot)

    # -- node editing ---------------------------------------------------------------------------
    def node_ids(self) -> list[str]:
        return [self.node_list.item(i).text() for i in range(self.node_list.count())]

    def set_nodes(self, ids: list[str]) -> None:
        self.node_list.clear()
        self.node_list.addItems(ids)
        self.schedule()

    def add_node(self) -> None:
        self.node_list.addItem(self.config_combo.currentText())
        self.schedule()

    def remove_node(self) -> None:
        row = self.node_list.currentRow()
        if row < 0:
            row = self.node_list.count() - 1
        if row >= 0:
            self.node_list.takeItem(row)
            self.schedule()

    def move_up(self) -> None:
        row = self.node_list.currentRow()
        if row > 0:
            item = self.node_list.takeItem(row)
            self.node_list.insertItem(row - 1, item)
            self.node_list.setCurrentRow(row - 1)
            self.schedule()

    # -- computing ------------------------------------------------------------------------------
    def schedule(self, *_: Any) -> None:
        self._timer.start()

    def request(self) -> Any:
        """The cluster the widgets describe (services.cluster.ClusterRequest)."""
        from forgeplanner.services.cluster import ClusterRequest, NodeGroup

        link = self.link_combo.currentText()
        return ClusterRequest(
            model_id=self.model_combo.currentText().strip(),
            quant=self.quant_combo.currentText().strip(),
            nodes=tuple(NodeGroup(config_id) for config_id in self.node_ids()),
            link_id=None if link.startswith("(") else link,
            mode=self.mode_combo.currentText(),
            split=self.split_combo.currentText(),
            context=self.context_spin.value(),
        )

    def recompute(self) -> None:
        if self._runner.defer_if_busy():
            return
        req = self.request()
        if not req.nodes:
            self._show_error("add at least one node")
            return

        node_model = self.node_model

        def job(token: Any):
            from forgeplanner.services.cluster import build_cluster

            yield "planning"
            result = build_cluster(req)
            # The table's frame is prepared here too: the GUI thread only swaps it in.
            return result, node_model.prepare(_node_frame(result.plan.nodes))

        self._runner.start(
            job,
            on_result=lambda payload: self._on_result(*payload),
            on_error=lambda err: self._show_error(err.reason),
        )

    def _show_error(self, text: str) -> None:
        self.error = text.splitlines()[0] if text else "error"
        self.speed_label.setText(f"Cannot plan this cluster: {self.error}")

    def _on_result(self, result: Any, frame: Any = None) -> None:
        self._ensure_plot()
        self.result = result
        self.error = None
        plan = result.plan
        n = len(plan.nodes)
        xs = list(range(n))
        w = [p.weights_bytes / GiB for p in plan.nodes]
        k = [p.kv_cache_bytes / GiB for p in plan.nodes]
        c = [(p.compute_bytes + p.runtime_bytes) / GiB for p in plan.nodes]
        self.bars["weights"].setOpts(x=xs, height=w, y0=[0] * n, width=0.6)
        self.bars["kv_cache"].setOpts(x=xs, height=k, y0=w, width=0.6)
        self.bars["compute"].setOpts(
            x=xs, height=c, y0=[a + b for a, b in zip(w, k, strict=True)], width=0.6
        )
        top = max([p.gpu_limit_bytes for p in plan.nodes] + [p.total_bytes for p in plan.nodes])
        thick = top / GiB / 150
        self.limit_item.setOpts(
            x=xs,
            height=[thick] * n,
            y0=[p.gpu_limit_bytes / GiB - thick / 2 for p in plan.nodes],
            width=0.8,
        )
        axis = self.plot.getPlotItem().getAxis("bottom")
        axis.setTicks(
            [[(i, f"{p.name} [{p.layers[0]}, {p.layers[1]})") for i, p in enumerate(plan.nodes)]]
        )
        self.plot.getPlotItem().setXRange(-0.6, n - 0.4, padding=0)
        dec = "unknown" if plan.decode_tps is None else f"{plan.decode_tps:.2f} tok/s"
        pre = "unknown" if plan.prefill_tps is None else f"{plan.prefill_tps:.0f} tok/s"
        link = f" over {plan.link.name}" if plan.link else ""
        self.speed_label.setText(
            f"<b>{plan.mode}{link}: decode {dec}, prefill {pre}; verdict {plan.verdict}</b><br>"
            f"{plan.summary}"
            + (f"<br><i>{result.link_default_reason}</i>" if result.link_default_reason else "")
            + "".join(f"<br>- {note}" for note in plan.notes)
        )
        self.node_table.set_frame(frame if frame is not None else _node_frame(plan.nodes))
        self._show_commands(result.commands)
        self.ctx.status(f"cluster: {plan.model_id} {plan.quant} over {n} node(s), {dec}")

    def _show_commands(self, commands: Any) -> None:
        while self.cmd_layout.count():
            item = self.cmd_layout.takeAt(0)
            widget = item.widget()
            if widget is not None:
                widget.deleteLater()
        self.copy_buttons: list[QPushButton] = []
        for cmd in commands:
            row = QWidget()
            rl = QHBoxLayout(row)
            rl.setContentsMargins(0, 0, 0, 0)
            where = f" on {cmd.node}" if cmd.node else ""
            label = QLabel(f"<b>{cmd.engine}{where}</b>: {cmd.purpose}<br><code>"
                           + _html(cmd.command) + "</code>")  # fmt: skip
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            button = QPushButton("Copy")
            button.clicked.connect(lambda _=False, text=cmd.command: self.copy(text))
            self.copy_buttons.append(button)
            rl.addWidget(label, 1)
            rl.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
            self.cmd_layout.addWidget(row)
        self.cmd_layout.addStretch(1)

    def copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.ctx.status("command copied")

    def shutdown(self) -> None:
        self._timer.stop()
        self._runner.cancel()


def _node_frame(nodes: Any) -> Any:
    import pandas as pd

    rows = [
        {
            "name": p.name,
            "config_id": p.config_id or "",
            "layers": f"[{p.layers[0]}, {p.layers[1]})",
            "total_bytes": p.total_bytes,
            "gpu_limit_bytes": p.gpu_limit_bytes,
            "verdict": p.verdict,
            "decode_stage_s": p.decode_stage_s,
            "holds": ", ".join(p.holds),
        }
        for p in nodes
    ]
    return pd.DataFrame(rows, columns=[c.key for c in NODE_COLUMNS])


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
    )


def create_view(ctx: AppContext) -> QWidget:
    return ClusterView(ctx)
