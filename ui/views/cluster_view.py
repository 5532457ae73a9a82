"""Cluster view: one model over several Macs.

Node list editor (machines by name) and link on the left; on the right the layer split drawn
per node as stacked memory bars (weights, KV cache, compute + runtime) against each node's GPU
limit (hover a bar for its figures), the cluster's speed and what it means, the launch commands
with copy buttons, and "Add to plan" (the layout goes into the plan's Layouts tab, computed as
`plan set-cluster` does).

The plan is computed by `forgeplanner.services.cluster.build_cluster` (what the CLI runs) from a
typed `ClusterRequest`, in a worker thread; edits are debounced (`ui.workers.Recompute`).
Quantizations come from the engine for the chosen model, links from the catalog.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt
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

from forgeplanner.domain.runtime import Runtime
from forgeplanner.viewstate.vocabulary import machine_choices, machine_name_of, verdict_word
from ui import persist, theme
from ui.charts import HoverTips, make_plot, pg
from ui.context import AppContext
from ui.pickers import MachinePicker, ModelPicker
from ui.table_model import Column, FrameTable
from ui.widgets import after_first_paint, defer
from ui.workers import Recompute

GiB = 1 << 30
DEFAULT_MODEL = "llama-3.1-70b"
DEFAULT_QUANT = "Q4_K_M"
DEFAULT_NODES = ["mac-mini-m4-pro-20c-64gb", "mac-mini-m4-pro-20c-64gb"]
SERIES = (("weights", "weights"), ("kv_cache", "KV cache"), ("compute", "compute + runtime"))
DEBOUNCE_MS = 150


def _gib(v: Any) -> str:
    return f"{v / GiB:.1f}"


# Raw values in the frame (bytes, seconds), display text from the formatters; the verdict
# cell is tinted by `_verdict_background`.
NODE_COLUMNS = [
    Column("name", "Node"),
    Column("machine", "Machine"),
    Column("layers", "Layers"),
    Column("total_bytes", "Needs (GiB)", _gib),
    Column("gpu_limit_bytes", "GPU limit (GiB)", _gib),
    Column("verdict", "Verdict", lambda v: verdict_word(v, short=True)),
    Column("decode_stage_s", "Stage (ms)", lambda v: f"{v * 1e3:.1f}", "decode time per token"),
    Column("holds", "Holds"),
]


def _verdict_background(row: dict[str, Any], key: str) -> Any:
    return theme.verdict_tint(row["verdict"]) if key == "verdict" else None


class ClusterView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: Any = None
        self.error: str | None = None
        self._first_pending = True
        self._build()
        persist.restore(self, "cluster")
        self._runner = Recompute(
            self,
            self._prepare,
            self._on_result,
            delay_ms=DEBOUNCE_MS,
            pool=ctx.pool,
            on_error=lambda err: self._show_error(err.reason),
        )
        self._connect()
        # The page paints its form first; the quantizations (the engine's import), the first
        # layout and the chart follow.
        self._first_pending = True
        after_first_paint(self, self._first_fill)

    def _first_fill(self) -> None:
        self._fill_quants(self._pending_quant or DEFAULT_QUANT)
        self._first_pending = False
        self.recompute()
        defer(self, self._ensure_plot)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        catalog = self.ctx.catalog
        form_box = QGroupBox("Model and link")
        form = QFormLayout(form_box)
        self.model_picker = ModelPicker()
        self.model_picker.set_models(self.ctx.all_models(), keep=DEFAULT_MODEL)
        self.model_picker.setMinimumContentsLength(12)
        persist.skip(self.model_picker)
        self.quant_combo = QComboBox()
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 1_048_576)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        self.context_spin.setSuffix(" tokens")
        self.mode_combo = QComboBox()
        for label, value in (("pipeline (layers split)", "pipeline"),
                             ("tensor (each layer split)", "tensor")):  # fmt: skip
            self.mode_combo.addItem(label, value)
        self.split_combo = QComboBox()
        for label, value in (("auto", "auto"), ("by memory", "proportional"),
                             ("fastest node first", "fastest")):  # fmt: skip
            self.split_combo.addItem(label, value)
        self.link_combo = QComboBox()
        self.link_combo.addItem("fastest link all nodes have", None)
        for link in catalog.links.values():
            self.link_combo.addItem(link.name, link.id)
        form.addRow("Model", self.model_picker)
        form.addRow("Quantization", self.quant_combo)
        form.addRow("Context", self.context_spin)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Split", self.split_combo)
        form.addRow("Link", self.link_combo)
        persist.skip(self.quant_combo)
        self._pending_quant: str | None = DEFAULT_QUANT

        nodes_box = QGroupBox("Nodes (in llama.cpp device order; the last runs llama-server)")
        nl = QVBoxLayout(nodes_box)
        self.node_list = QListWidget()
        for cid in DEFAULT_NODES:
            self._append_node(cid)
        nl.addWidget(self.node_list)
        add_row = QHBoxLayout()
        self.config_picker = MachinePicker()
        self.config_picker.set_machines(machine_choices(catalog), keep=DEFAULT_NODES[0])
        self.config_picker.setMinimumContentsLength(12)
        persist.skip(self.config_picker)
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Move up")
        add_row.addWidget(self.config_picker, 1)
        add_row.addWidget(self.add_button)
        nl.addLayout(add_row)
        btn_row = QHBoxLayout()
        btn_row.addWidget(self.remove_button)
        btn_row.addWidget(self.up_button)
        btn_row.addStretch(1)
        nl.addLayout(btn_row)
        self.plan_button = QPushButton("Add to plan")
        self.plan_button.setToolTip("Put this layout in the plan (Layouts tab); undoable")

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(form_box)
        ll.addWidget(nodes_box, 1)
        ll.addWidget(self.plan_button)

        # right: chart (built on the next event-loop pass, see _ensure_plot), speed, commands
        self._plot_box = QWidget()
        self._plot_box.setLayout(QVBoxLayout())
        self._plot_box.layout().setContentsMargins(0, 0, 0, 0)
        self._plot_box.setMinimumHeight(200)
        self.plot: Any = None
        self.bars: dict[str, Any] = {}
        self.legend = QLabel()
        self.legend.setWordWrap(True)

        self.speed_label = QLabel("computing...")
        self.speed_label.setWordWrap(True)
        self.speed_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.node_table = FrameTable(NODE_COLUMNS, background=_verdict_background)
        self.node_table.setObjectName("node_table")
        self.node_model = self.node_table.source

        cmd_box = QGroupBox("Launch commands")
        self.cmd_layout = QVBoxLayout(cmd_box)
        cmd_scroll = QScrollArea()
        cmd_scroll.setWidgetResizable(True)
        cmd_scroll.setWidget(cmd_box)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self._plot_box, 3)
        rl.addWidget(self.legend)
        rl.addWidget(self.speed_label)
        rl.addWidget(self.node_table, 2)
        rl.addWidget(cmd_scroll, 2)

        self.split = QSplitter()
        self.split.addWidget(left)
        self.split.addWidget(right)
        self.split.setStretchFactor(1, 3)
        self.split.setSizes([360, 900])
        outer = QVBoxLayout(self)
        outer.addWidget(self.split)

    def _connect(self) -> None:
        self.model_picker.picked.connect(self._model_changed)
        self.quant_combo.currentIndexChanged.connect(self.schedule)
        for w in (self.mode_combo, self.split_combo, self.link_combo):
            w.currentIndexChanged.connect(self.schedule)
        self.context_spin.valueChanged.connect(self.schedule)
        self.add_button.clicked.connect(self.add_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.up_button.clicked.connect(self.move_up)
        self.plan_button.clicked.connect(self.add_to_plan)

    def _fill_quants(self, prefer: str | None = None) -> None:
        from forgeplanner.engine.quant import quants_for

        keep = prefer or self.quant_combo.currentData()
        spec = self.ctx.model(self.model_picker.key() or DEFAULT_MODEL)
        self.quant_combo.blockSignals(True)
        self.quant_combo.clear()
        for q in quants_for(spec, Runtime.LLAMA_CPP):
            self.quant_combo.addItem(f"{q.name}  ({q.bits_per_weight:g} bpw)", q.name)
        i = self.quant_combo.findData(keep)
        self.quant_combo.setCurrentIndex(
            i if i >= 0 else max(0, self.quant_combo.findData(DEFAULT_QUANT))
        )
        self.quant_combo.blockSignals(False)

    def _model_changed(self, _key: str) -> None:
        if not self._first_pending:
            self._fill_quants()
        self.schedule()

    def _ensure_plot(self) -> None:
        if self.plot is not None:
            return
        p = pg()
        self.plot = make_plot("clusterPlot", left=("Memory", "GiB"), title="Memory per node")
        for key, _label in SERIES:
            item = p.BarGraphItem(
                x=[], height=[], y0=[], width=0.6,
                brush=theme.series_colour(theme.SERIES_HUES[key]),
            )  # fmt: skip
            self.plot.addItem(item)
            self.bars[key] = item
        # each node's GPU limit as a thin bar at its height
        self.limit_item = p.BarGraphItem(
            x=[], height=[], y0=[], width=0.8, brush=theme.text_colour()
        )
        self.plot.addItem(self.limit_item)
        self.tips = HoverTips(self.plot, self._tip)
        self._plot_box.layout().addWidget(self.plot)
        self._legend_text()

    def _legend_text(self) -> None:
        # The legend is text under the plot: it never covers a bar.
        parts = [
            f"<span style='color:{theme.series_colour(theme.SERIES_HUES[k]).name()}'>&#9632;</span>"
            f"&nbsp;{label}"
            for k, label in SERIES
        ]
        parts.append(
            f"<span style='color:{theme.text_colour().name()}'>&#9644;</span>&nbsp;GPU limit"
        )
        self.legend.setText(" &nbsp; ".join(parts))

    def _tip(self, x: float, y: float) -> str | None:
        if self.result is None:
            return None
        nodes = self.result.plan.nodes
        i = round(x)
        if not 0 <= i < len(nodes) or abs(x - i) > 0.35:
            return None
        n = nodes[i]
        w, k = n.weights_bytes / GiB, n.kv_cache_bytes / GiB
        c = (n.compute_bytes + n.runtime_bytes) / GiB
        name = machine_name_of(self.ctx.catalog, n.config_id) if n.config_id else ""
        return (
            f"{n.name}: {name}\nlayers {n.layers[0]}-{n.layers[1] - 1}\nweights {w:,.1f} GiB, "
            f"KV cache {k:,.1f} GiB, compute + runtime {c:,.1f} GiB\nGPU limit "
            f"{n.gpu_limit_bytes / GiB:,.1f} GiB: {verdict_word(n.verdict)}"
        )

    # -- node editing ---------------------------------------------------------------------------
    def _append_node(self, config_id: str) -> None:
        from PySide6.QtWidgets import QListWidgetItem

        item = QListWidgetItem(machine_name_of(self.ctx.catalog, config_id))
        item.setData(Qt.ItemDataRole.UserRole, config_id)
        item.setToolTip(config_id)
        self.node_list.addItem(item)

    def node_ids(self) -> list[str]:
        return [
            str(self.node_list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.node_list.count())
        ]

    def set_nodes(self, ids: list[str]) -> None:
        self.node_list.clear()
        for cid in ids:
            self._append_node(cid)
        self.schedule()

    def add_node(self) -> None:
        key = self.config_picker.key()
        if key:
            self._append_node(key)
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
        if not self._first_pending:
            self._runner.schedule()

    def recompute(self) -> None:
        if not self._first_pending:
            self._runner.run_now()

    def request(self) -> Any:
        """The cluster the widgets describe (services.cluster.ClusterRequest): the nodes in
        device order, consecutive identical machines counted in one group."""
        from forgeplanner.services.cluster import ClusterRequest, NodeGroup

        groups: list[NodeGroup] = []
        for cid in self.node_ids():
            if groups and groups[-1].config_id == cid:
                groups[-1] = NodeGroup(cid, groups[-1].count + 1)
            else:
                groups.append(NodeGroup(cid))
        return ClusterRequest(
            model_id=self.model_picker.key() or DEFAULT_MODEL,
            quant=self.quant_combo.currentData() or DEFAULT_QUANT,
            nodes=tuple(groups),
            link_id=self.link_combo.currentData(),
            mode=self.mode_combo.currentData(),
            split=self.split_combo.currentData(),
            context=self.context_spin.value(),
            runtime=Runtime.LLAMA_CPP,
        )

    def _prepare(self) -> Any:
        from forgeplanner.errors import ForgePlannerError

        try:
            req = self.request()
        except ForgePlannerError as exc:
            self._show_error(str(exc))
            return None
        if not req.nodes:
            self._show_error("add at least one node")
            return None
        node_model = self.node_model
        catalog = self.ctx.catalog

        def work(token: Any) -> Any:
            from forgeplanner.services.cluster import build_cluster

            result = build_cluster(req, catalog=catalog)
            # The table's rows are prepared here too: the GUI thread only swaps them in.
            return result, node_model.prepare(_node_rows(result.plan.nodes, catalog))

        return work

    def plan_inputs(self) -> dict[str, Any]:
        """The layout as `plan set-cluster` takes it: consecutive identical nodes counted."""
        req = self.request()
        nodes = [{"config_id": g.config_id, "count": g.count} for g in req.nodes]
        return {
            "model_id": req.model_id, "quant": req.quant, "context": req.context,
            "runtime": req.runtime.value, "nodes": nodes, "link": req.link_id,
            "mode": req.mode,
        }  # fmt: skip

    def add_to_plan(self) -> Any:
        from ui.plan_edits import set_layout_in_plan

        inputs = self.plan_inputs()
        text = f"Cluster: {inputs['model_id']} {inputs['quant']} over {len(self.node_ids())} nodes"
        return set_layout_in_plan(self.ctx, "cluster", inputs, text, parent=self)

    def _show_error(self, text: str) -> None:
        self.error = text.splitlines()[0] if text else "error"
        self.speed_label.setText(f"Cannot plan this cluster: {self.error}")

    def _on_result(self, payload: Any) -> None:
        result, frame = payload
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
        axis.setTicks([[(i, f"{p.name}: layers {p.layers[0]}-{p.layers[1] - 1}")
                        for i, p in enumerate(plan.nodes)]])  # fmt: skip
        self.plot.getPlotItem().setXRange(-0.6, n - 0.4, padding=0)
        self.plot.getPlotItem().setYRange(0, top / GiB * 1.1, padding=0)
        from forgeplanner.viewstate.speed import likely_range, speed_with_range

        moe = self.ctx.model(plan.model_id).moe is not None
        context = self.context_spin.value()
        # The single-machine likely ranges of the engine's speed model (the link adds its own
        # uncertainty on top: the range is a floor on how unsure the figure is).
        dr = likely_range(plan.decode_tps, Runtime.LLAMA_CPP, "decode", moe, context)
        pr = likely_range(plan.prefill_tps, Runtime.LLAMA_CPP, "prefill", moe, context)
        dec = speed_with_range(plan.decode_tps, *(dr or (None, None)), digits=2)
        pre = speed_with_range(plan.prefill_tps, *(pr or (None, None)), digits=0)
        link = f" over {plan.link.name}" if plan.link else ""
        from forgeplanner.viewstate.vocabulary import plain_reason

        reason = plain_reason(result.link_default_reason or "")
        self.speed_label.setText(
            f"<b>{plan.mode}{link}: decode {dec}, prefill {pre}; "
            f"{verdict_word(plan.verdict)}</b><br>{plain_reason(plan.summary)}"
            + (f"<br><i>{reason}</i>" if reason else "")
            + "".join(f"<br>- {plain_reason(note)}" for note in plan.notes)
        )
        self.node_table.set_frame(frame)
        self._show_commands(result.commands)
        self.ctx.status(f"Cluster: {plan.model_id} {plan.quant} over {n} node(s), {dec}")

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

    def apply_request(self, model_id: str | None = None, quant: str | None = None,
                      nodes: list[str] | None = None, **_: Any) -> None:  # fmt: skip
        if model_id is not None:
            self.model_picker.set_key(model_id)
            if self._first_pending:
                self._pending_quant = quant or self._pending_quant
            else:
                self._fill_quants(quant)
        if nodes:
            self.set_nodes(list(nodes))
        self.recompute()

    def settings_values(self) -> dict[str, Any]:
        return {
            "model_id": self.model_picker.key() or DEFAULT_MODEL,
            "nodes": ",".join(self.node_ids()),
        }

    def apply_settings_values(self, v: dict[str, Any]) -> None:
        model = str(v.get("model_id") or DEFAULT_MODEL)
        if self.model_picker.findData(model) >= 0:
            self.model_picker.set_key(model)
        self._pending_quant = str(v.get("quant") or DEFAULT_QUANT)
        ids = [c for c in str(v.get("nodes") or "").split(",") if c in self.ctx.catalog.configs]
        if ids:
            self.node_list.clear()
            for cid in ids:
                self._append_node(cid)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.plot is not None:
            theme.style_plot(self.plot)
            for key, item in self.bars.items():
                item.setOpts(brush=theme.series_colour(theme.SERIES_HUES[key]))
            self.limit_item.setOpts(brush=theme.text_colour())
            self._legend_text()
            self.node_table.set_frame(self.node_model.frame() or [])

    def busy(self) -> bool:
        return self._first_pending or self._runner.busy() or self.plot is None

    def shutdown(self) -> None:
        self._runner.cancel()


def _node_rows(nodes: Any, catalog: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "machine": machine_name_of(catalog, p.config_id) if p.config_id else "",
            "config_id": p.config_id or "",
            "layers": f"{p.layers[0]}-{p.layers[1] - 1}",
            "total_bytes": p.total_bytes,
            "gpu_limit_bytes": p.gpu_limit_bytes,
            "verdict": p.verdict,
            "decode_stage_s": p.decode_stage_s,
            "holds": ", ".join(p.holds),
        }
        for p in nodes
    ]


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
    )


def create_view(ctx: AppContext) -> QWidget:
    return ClusterView(ctx)
