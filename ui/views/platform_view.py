"""Platform (K3s) view: the shelf's nodes with their roles, service placement, power and heat,
the install commands, and a preview and export of the Kubernetes manifests.

Computed by `forgeplanner.services.platform.build_platform` (what the CLI runs) from a typed
`PlatformRequest`, in a worker thread, debounced (`ui.workers.Recompute`); export writes the
files atomically through `write_manifests`. "Add to plan" puts the layout in the plan's Layouts
tab, computed as `plan set-platform` does. Nodes show their machine names; quantizations come
from the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import ForgePlannerError
from forgeplanner.viewstate.vocabulary import machine_choices, machine_name_of, runtime_label
from ui import persist, theme
from ui.context import AppContext
from ui.errors import show_error
from ui.pickers import MachinePicker, ModelPicker
from ui.table_model import Column, FrameTable
from ui.widgets import after_first_paint
from ui.workers import Recompute

GiB = 1 << 30
DEFAULT_SHELF = [
    ("mini-1", "mac-mini-2018-i7-32gb"),
    ("mini-2", "mac-mini-2018-i5-16gb"),
    ("mini-3", "mac-mini-2018-i7-16gb"),
    ("mini-4", "mac-mini-2018-i3-8gb"),
    ("studio", "mac-studio-m2-ultra-76c-192gb"),
]
DEBOUNCE_MS = 150

# Raw values in the frames (millicores, bytes, watts); display text from the formatters.
NODE_COLUMNS = [
    Column("name", "Node"),
    Column("machine", "Machine"),
    Column("roles", "Roles"),
    Column("k3s", "K3s"),
    Column("cpu_request_millicores", "CPU requests", lambda v: f"{v}m", "millicores"),
    Column("memory_request_bytes", "Memory requests", lambda v: f"{v / GiB:.1f} GiB"),
    Column("idle_w", "Idle W", lambda v: f"{v:.0f}"),
    Column("max_w", "Max W", lambda v: f"{v:.0f}"),
]
ASSIGN_COLUMNS = [
    Column("service", "Service"),
    Column("node", "Node"),
    Column("requests", "Requests"),
    Column("source", "Source"),
]
PLATFORM_RUNTIMES = (
    Runtime.OLLAMA,
    Runtime.MLX,
)  # what the platform's inference node can serve with


def _unplaced_background(row: dict[str, Any], key: str) -> Any:
    return theme.verdict_tint("does-not-fit") if row["node"] == "UNPLACED" else None


class PlatformView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: Any = None
        self.error: str | None = None
        self._yaml: dict[str, str] = {}
        self._first_pending = True
        self._pending_quant: str | None = "Q4_K_M"
        self._build()
        persist.restore(self, "platform")
        self._runner = Recompute(
            self,
            self._prepare,
            self._on_result,
            delay_ms=DEBOUNCE_MS,
            pool=ctx.pool,
            on_error=lambda err: self._show_error(err.reason),
        )
        self._connect()
        # The page paints its form first; the quantizations (the engine's import) and the
        # first layout follow.
        after_first_paint(self, self._first_fill)

    def _first_fill(self) -> None:
        self._fill_quants(self._pending_quant or "Q4_K_M")
        self._first_pending = False
        self.recompute()

    def _build(self) -> None:
        catalog = self.ctx.catalog
        shelf_box = QGroupBox("Shelf")
        sl = QVBoxLayout(shelf_box)
        self.node_list = QListWidget()
        for name, cfg in DEFAULT_SHELF:
            self._append_node(name, cfg)
        sl.addWidget(self.node_list, 1)
        add = QHBoxLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("node name")
        persist.skip(self.name_edit)
        self.config_picker = MachinePicker()
        self.config_picker.set_machines(machine_choices(catalog), keep="mac-mini-2018-i7-32gb")
        self.config_picker.setMinimumContentsLength(12)
        persist.skip(self.config_picker)
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        add.addWidget(self.name_edit)
        add.addWidget(self.config_picker, 1)
        add.addWidget(self.add_button)
        sl.addLayout(add)
        sl.addWidget(self.remove_button)

        model_box = QGroupBox("Inference")
        form = QFormLayout(model_box)
        self.serve_check = QCheckBox("serve a model")
        self.serve_check.setChecked(True)
        self.model_picker = ModelPicker()
        self.model_picker.set_models(self.ctx.all_models(), keep="llama-3.1-70b")
        self.model_picker.setMinimumContentsLength(12)
        persist.skip(self.model_picker)
        self.runtime_combo = QComboBox()
        for rt in PLATFORM_RUNTIMES:
            self.runtime_combo.addItem(runtime_label(rt), rt)
        self.quant_combo = QComboBox()
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 1_048_576)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        self.context_spin.setSuffix(" tokens")
        persist.skip(self.quant_combo)
        form.addRow(self.serve_check)
        form.addRow("Model", self.model_picker)
        form.addRow("Quantization", self.quant_combo)
        form.addRow("Runtime", self.runtime_combo)
        form.addRow("Context", self.context_spin)

        self.plan_button = QPushButton("Add to plan")
        self.plan_button.setToolTip("Put this K3s layout in the plan (Layouts tab); undoable")
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(shelf_box, 1)
        ll.addWidget(model_box)
        ll.addWidget(self.plan_button)

        self.summary_label = QLabel("computing...")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.node_table = FrameTable(NODE_COLUMNS)
        self.node_model = self.node_table.source
        self.assign_table = FrameTable(ASSIGN_COLUMNS, background=_unplaced_background)
        self.assign_model = self.assign_table.source

        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.commands_text = QPlainTextEdit()
        self.commands_text.setReadOnly(True)
        self.commands_text.setFont(mono)
        self.copy_commands = QPushButton("Copy commands")
        cmd_page = QWidget()
        cl = QVBoxLayout(cmd_page)
        cl.addWidget(self.commands_text)
        cl.addWidget(self.copy_commands, 0, Qt.AlignmentFlag.AlignRight)

        self.file_combo = QComboBox()
        self.manifest_text = QPlainTextEdit()
        self.manifest_text.setReadOnly(True)
        self.manifest_text.setFont(mono)
        self.export_button = QPushButton("Export manifests...")
        man_page = QWidget()
        ml = QVBoxLayout(man_page)
        top = QHBoxLayout()
        top.addWidget(QLabel("File"))
        top.addWidget(self.file_combo, 1)
        top.addWidget(self.export_button)
        ml.addLayout(top)
        ml.addWidget(self.manifest_text)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.assign_table, "Placement")
        self.tabs.addTab(cmd_page, "Install commands")
        self.tabs.addTab(man_page, "Manifests")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self.summary_label)
        rl.addWidget(self.node_table, 2)
        rl.addWidget(self.tabs, 3)

        self.split = QSplitter()
        self.split.addWidget(left)
        self.split.addWidget(right)
        self.split.setStretchFactor(1, 3)
        self.split.setSizes([360, 900])
        QVBoxLayout(self).addWidget(self.split)

    def _connect(self) -> None:
        self.add_button.clicked.connect(self.add_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.serve_check.toggled.connect(self.schedule)
        self.model_picker.picked.connect(self._model_changed)
        self.quant_combo.currentIndexChanged.connect(self.schedule)
        self.runtime_combo.currentIndexChanged.connect(self._model_changed)
        self.context_spin.valueChanged.connect(self.schedule)
        self.file_combo.currentIndexChanged.connect(self._show_file)
        self.export_button.clicked.connect(self.export_dialog)
        self.plan_button.clicked.connect(self.add_to_plan)
        self.copy_commands.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.commands_text.toPlainText())
        )

    def _fill_quants(self, prefer: str | None = None) -> None:
        from forgeplanner.engine.quant import quants_for

        keep = prefer or self.quant_combo.currentData()
        spec = self.ctx.model(self.model_picker.key() or "llama-3.1-70b")
        self.quant_combo.blockSignals(True)
        self.quant_combo.clear()
        for q in quants_for(spec, self.runtime_combo.currentData() or Runtime.OLLAMA):
            self.quant_combo.addItem(f"{q.name}  ({q.bits_per_weight:g} bpw)", q.name)
        i = self.quant_combo.findData(keep)
        if i < 0:
            i = max(self.quant_combo.findData("Q4_K_M"), self.quant_combo.findData("MLX-4bit"))
        self.quant_combo.setCurrentIndex(max(i, 0))
        self.quant_combo.blockSignals(False)

    def _model_changed(self, *_: Any) -> None:
        if not self._first_pending:
            self._fill_quants()
        self.schedule()

    # -- editing --------------------------------------------------------------------------------
    def _append_node(self, name: str, config_id: str) -> None:
        from PySide6.QtWidgets import QListWidgetItem

        item = QListWidgetItem(f"{name}: {machine_name_of(self.ctx.catalog, config_id)}")
        item.setData(Qt.ItemDataRole.UserRole, (name, config_id))
        item.setToolTip(config_id)
        self.node_list.addItem(item)

    def nodes(self) -> list[tuple[str, str]]:
        return [
            tuple(self.node_list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.node_list.count())
        ]  # type: ignore[misc]

    def node_args(self) -> list[str]:
        return [f"{name}={cfg}" for name, cfg in self.nodes()]

    def set_nodes(self, pairs: list[tuple[str, str]]) -> None:
        self.node_list.clear()
        for name, cfg in pairs:
            self._append_node(name, cfg)
        self.schedule()

    def add_node(self) -> None:
        name = self.name_edit.text().strip() or f"node-{self.node_list.count() + 1}"
        key = self.config_picker.key()
        if key:
            self._append_node(name, key)
            self.name_edit.clear()
            self.schedule()

    def remove_node(self) -> None:
        row = self.node_list.currentRow()
        if row < 0:
            row = self.node_list.count() - 1
        if row >= 0:
            self.node_list.takeItem(row)
            self.schedule()

    def schedule(self, *_: Any) -> None:
        if not self._first_pending:
            self._runner.schedule()

    # -- computing ------------------------------------------------------------------------------
    def recompute(self) -> None:
        if not self._first_pending:
            self._runner.run_now()

    def _request(self) -> dict[str, Any]:
        """The widgets' values; the worker makes the typed request of them."""
        serve = self.serve_check.isChecked()
        return {
            "nodes": self.nodes(),
            "model_id": (self.model_picker.key() or None) if serve else None,
            "quant": self.quant_combo.currentData() if serve else None,
            "runtime": self.runtime_combo.currentData(),
            "context": self.context_spin.value(),
        }

    def _prepare(self) -> Any:
        req = self._request()
        node_model, assign_model = self.node_model, self.assign_model
        catalog = self.ctx.catalog

        def work(token: Any) -> Any:
            from forgeplanner.services.platform import (
                PlatformRequest,
                ShelfNode,
                build_platform,
            )

            # Built here, so an impossible request reaches on_error like any other failure.
            request = PlatformRequest(
                nodes=tuple(ShelfNode(name, cfg) for name, cfg in req["nodes"]),
                model_id=req["model_id"],
                quant=req["quant"],
                runtime=req["runtime"],
                context=req["context"],
            )
            result = build_platform(request, catalog=catalog)
            # Tables and manifests are prepared here: the GUI thread only swaps them in.
            node_rows, assign_rows = _rows(result.layout, catalog)
            frames = (node_model.prepare(node_rows), assign_model.prepare(assign_rows))
            return result, frames, result.yaml_files()

        return work

    def plan_inputs(self) -> dict[str, Any]:
        req = self._request()
        return {
            "nodes": [{"name": n, "config_id": c} for n, c in self.nodes()],
            "model_id": req["model_id"], "quant": req["quant"], "runtime": req["runtime"],
            "context": req["context"],
        }  # fmt: skip

    def add_to_plan(self) -> Any:
        from ui.plan_edits import set_layout_in_plan

        inputs = self.plan_inputs()
        text = f"K3s platform over {len(inputs['nodes'])} nodes"
        return set_layout_in_plan(self.ctx, "platform", inputs, text, parent=self)

    def _show_error(self, text: str) -> None:
        self.error = text.splitlines()[0] if text else "error"
        self.summary_label.setText(f"Cannot lay out this shelf: {self.error}")

    def _on_result(self, payload: Any) -> None:
        result, frames, yaml = payload
        self.result = result
        self.error = None
        lay = result.layout
        pw = lay.power
        power = (
            f"shelf power {_num(pw.idle_w, 'W')} idle / {_num(pw.max_w, 'W')} max; heat "
            f"{_num(pw.idle_btu_h, 'BTU/h')} idle / {_num(pw.max_btu_h, 'BTU/h')} max"
            + (f" (unknown for {', '.join(pw.unknown)})" if pw.unknown else "")
        )
        unplaced = "".join(
            f"<br><b>unplaced {_h(u.service)}</b>: {_h(u.reason)}" for u in lay.unplaced
        )
        from forgeplanner.viewstate.vocabulary import plain_reason

        self.summary_label.setText(
            f"<b>{power}</b>{unplaced}" + "".join(f"<br>- {_h(plain_reason(n))}" for n in lay.notes)
        )
        node_rows, assign_rows = frames
        self.node_table.set_frame(node_rows)
        self.assign_table.set_frame(assign_rows)
        self.commands_text.setPlainText(
            "\n".join(f"# {c.node}: {c.purpose}\n{c.command}" for c in result.commands)
        )
        self._yaml = yaml
        current = self.file_combo.currentText()
        self.file_combo.blockSignals(True)
        self.file_combo.clear()
        self.file_combo.addItems(sorted(self._yaml))
        if current in self._yaml:
            self.file_combo.setCurrentText(current)
        self.file_combo.blockSignals(False)
        self._show_file()
        self.ctx.status(
            f"platform: {len(lay.nodes)} nodes, {len(lay.assignments)} services placed, "
            f"{len(lay.unplaced)} unplaced"
        )

    def _show_file(self, *_: Any) -> None:
        name = self.file_combo.currentText()
        self.manifest_text.setPlainText(self._yaml.get(name, ""))

    # -- export ---------------------------------------------------------------------------------
    def export_to(self, directory: Path) -> list[Path]:
        from forgeplanner.services.platform import write_manifests

        if self.result is None:
            raise ForgePlannerError("no layout to export yet")
        written = write_manifests(self.result, directory)
        self.ctx.status(f"wrote {len(written)} manifest files to {directory}")
        return written

    def export_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export manifests to")
        if not d:
            return
        try:
            self.export_to(Path(d))
        except ForgePlannerError as exc:
            show_error(self, exc)

    def settings_values(self) -> dict[str, Any]:
        quant = self._pending_quant if self._first_pending else self.quant_combo.currentData()
        return {
            "quant": quant or "Q4_K_M",
            "model_id": self.model_picker.key() or "",
            "nodes": ",".join(f"{n}={c}" for n, c in self.nodes()),
        }

    def apply_settings_values(self, v: dict[str, Any]) -> None:
        model = str(v.get("model_id") or "")
        if self.model_picker.findData(model) >= 0:
            self.model_picker.set_key(model)
        self._pending_quant = str(v.get("quant") or "Q4_K_M")
        pairs = []
        for part in str(v.get("nodes") or "").split(","):
            name, sep, cfg = part.partition("=")
            if sep and name and cfg in self.ctx.catalog.configs:
                pairs.append((name, cfg))
        if pairs:
            self.node_list.clear()
            for name, cfg in pairs:
                self._append_node(name, cfg)

    def busy(self) -> bool:
        return self._first_pending or self._runner.busy()

    def shutdown(self) -> None:
        self._runner.cancel()


def _rows(lay: Any, catalog: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The node and placement tables' rows (raw values) of a layout."""
    nodes = [
        {
            "name": n.name,
            "machine": machine_name_of(catalog, n.config_id),
            "config_id": n.config_id,
            "roles": ", ".join(n.roles) or "-",
            "k3s": n.k3s or "-",
            "cpu_request_millicores": n.cpu_request_millicores,
            "memory_request_bytes": n.memory_request_bytes,
            "idle_w": n.idle_w,
            "max_w": n.max_w,
        }
        for n in lay.nodes
    ]
    services = {s.id: s for s in lay.services}
    placed = []
    for sid, node in sorted(lay.assignments.items()):
        s = services[sid]
        req = []
        if s.cpu_millicores is not None:
            req.append(f"{s.cpu_millicores}m CPU")
        if s.memory_bytes is not None:
            req.append(f"{s.memory_bytes / GiB:.2f} GiB")
        placed.append(
            {"service": sid, "node": node, "requests": ", ".join(req) or "none set",
             "source": s.source}
        )  # fmt: skip
    placed += [
        {"service": u.service, "node": "UNPLACED", "requests": "", "source": u.reason}
        for u in lay.unplaced
    ]
    return nodes, placed


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "unknown"
    return f"{v:.0f} {unit}".strip()


def _h(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def create_view(ctx: AppContext) -> QWidget:
    return PlatformView(ctx)
