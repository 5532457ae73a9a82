"""Platform (K3s) view: the shelf's nodes with their roles, service placement, power and heat,
the install commands, and a preview and export of the Kubernetes manifests.

Computed by `forgeplanner.services.platform.build_platform` (what the CLI runs) in a worker
thread; export writes the files atomically through `write_manifests`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
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

from ui import theme
from ui.context import AppContext
from ui.errors import show_error
from ui.table_model import Column, FrameTable
from ui.workers import LatestOnly

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
    Column("name", "node"),
    Column("config_id", "config"),
    Column("roles", "roles"),
    Column("k3s", "K3s"),
    Column("cpu_request_millicores", "CPU req", lambda v: f"{v}m"),
    Column("memory_request_bytes", "mem req", lambda v: f"{v / GiB:.1f} GiB"),
    Column("idle_w", "idle W", lambda v: f"{v:.0f}"),
    Column("max_w", "max W", lambda v: f"{v:.0f}"),
]
ASSIGN_COLUMNS = [
    Column("service", "service"),
    Column("node", "node"),
    Column("requests", "requests"),
    Column("source", "source"),
]


def _unplaced_background(row: dict[str, Any], key: str) -> Any:
    return theme.verdict_tint("does-not-fit") if row["node"] == "UNPLACED" else None


class PlatformView(QWidget):
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

    def _build(self) -> None:
        catalog = self.ctx.catalog
        shelf_box = QGroupBox("Shelf")
        sl = QVBoxLayout(shelf_box)
        self.node_list = QListWidget()
        for name, cfg in DEFAULT_SHELF:
            self.node_list.addItem(f"{name}={cfg}")
        sl.addWidget(self.node_list, 1)
        add = QHBoxLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("node name")
        self.config_combo = QComboBox()
        self.config_combo.addItems(sorted(catalog.configs))
        self.config_combo.setCurrentText("mac-mini-2018-i7-32gb")
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        add.addWidget(self.name_edit)
        add.addWidget(self.config_combo, 1)
        add.addWidget(self.add_button)
        sl.addLayout(add)
        sl.addWidget(self.remove_button)

        model_box = QGroupBox("Inference")
        form = QFormLayout(model_box)
        self.serve_check = QCheckBox("serve a model")
        self.serve_check.setChecked(True)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.addItems(sorted(self.ctx.models.ids()))
        self.model_combo.setCurrentText("llama-3.1-70b")
        self.quant_combo = QComboBox()
        self.quant_combo.setEditable(True)
        self.quant_combo.addItems(["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "MLX-4bit"])
        self.quant_combo.setCurrentText("Q4_K_M")
        self.runtime_combo = QComboBox()
        self.runtime_combo.addItems(["ollama", "mlx", "llama.cpp"])
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 1_048_576)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(8192)
        form.addRow(self.serve_check)
        form.addRow("Model", self.model_combo)
        form.addRow("Quantization", self.quant_combo)
        form.addRow("Runtime", self.runtime_combo)
        form.addRow("Context", self.context_spin)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(shelf_box, 1)
        ll.addWidget(model_box)

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

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        QVBoxLayout(self).addWidget(split)

        self.add_button.clicked.connect(self.add_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.serve_check.toggled.connect(self.schedule)
        for w in (self.model_combo, self.quant_combo):
            w.currentTextChanged.connect(self.schedule)
        self.runtime_combo.currentIndexChanged.connect(self.schedule)
        self.context_spin.valueChanged.connect(self.schedule)
        self.file_combo.currentIndexChanged.connect(self._show_file)
        self.export_button.clicked.connect(self.export_dialog)
        self.copy_commands.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.commands_text.toPlainText())
        )

    # -- editing --------------------------------------------------------------------------------
    def node_args(self) -> list[str]:
        return [self.node_list.item(i).text() for i in range(self.node_list.count())]

    def set_nodes(self, pairs: list[tuple[str, str]]) -> None:
        self.node_list.clear()
        for name, cfg in pairs:
            self.node_list.addItem(f"{name}={cfg}")
        self.schedule()

    def add_node(self) -> None:
        name = self.name_edit.text().strip() or f"node-{self.node_list.count() + 1}"
        self.node_list.addItem(f"{name}={self.config_combo.currentText()}")
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
        self._timer.start()

    # -- computing ------------------------------------------------------------------------------
    def recompute(self) -> None:
        if self._runner.defer_if_busy():
            return
        items = self.node_args()  # NAME=CONFIG_ID each (as add_node and set_nodes write them)
        serve = self.serve_check.isChecked()
        model = self.model_combo.currentText().strip() if serve else None
        quant = self.quant_combo.currentText().strip() if serve else None
        runtime = self.runtime_combo.currentText()
        context = self.context_spin.value()

        node_model, assign_model = self.node_model, self.assign_model

        def job(token: Any):
            from forgeplanner.services.platform import (
                PlatformRequest,
                ShelfNode,
                build_platform,
            )

            # Built here, so an impossible request reaches on_error like any other failure.
            nodes = tuple(ShelfNode.parse(item) for item in items)
            request = PlatformRequest(nodes, model, quant, runtime, context)
            yield "placing"
            result = build_platform(request)
            # Tables and manifests are prepared here: the GUI thread only swaps them in.
            node_frame, assign_frame = _frames(result.layout)
            frames = (node_model.prepare(node_frame), assign_model.prepare(assign_frame))
            return result, frames, result.yaml_files()

        self._runner.start(
            job,
            on_result=lambda payload: self._on_result(*payload),
            on_error=lambda err: self._show_error(err.reason),
        )

    def _show_error(self, text: str) -> None:
        self.error = text.splitlines()[0] if text else "error"
        self.summary_label.setText(f"Cannot lay out this shelf: {self.error}")

    def _on_result(self, result: Any, frames: Any = None, yaml: Any = None) -> None:
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
        self.summary_label.setText(
            f"<b>{power}</b>{unplaced}" + "".join(f"<br>- {_h(n)}" for n in lay.notes)
        )
        node_frame, assign_frame = frames if frames is not None else _frames(lay)
        self.node_table.set_frame(node_frame)
        self.assign_table.set_frame(assign_frame)
        self.commands_text.setPlainText(
            "\n".join(f"# {c.node}: {c.purpose}\n{c.command}" for c in result.commands)
        )
        self._yaml = yaml if yaml is not None else result.yaml_files()
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
        self.manifest_text.setPlainText(getattr(self, "_yaml", {}).get(name, ""))

    # -- export ---------------------------------------------------------------------------------
    def export_to(self, directory: Path) -> list[Path]:
        from forgeplanner.services.platform import write_manifests

        if self.result is None:
            raise RuntimeError("no layout to export yet")
        written = write_manifests(self.result, directory)
        self.ctx.status(f"wrote {len(written)} manifest files to {directory}")
        return written

    def export_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export manifests to")
        if not d:
            return
        try:
            self.export_to(Path(d))
        except Exception as exc:
            show_error(self, exc)

    def shutdown(self) -> None:
        self._timer.stop()
        self._runner.cancel()


def _frames(lay: Any) -> tuple[Any, Any]:
    """The node and placement tables' frames (raw values) of a layout."""
    import pandas as pd

    nodes = [
        {
            "name": n.name,
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
    return (
        pd.DataFrame(nodes, columns=[c.key for c in NODE_COLUMNS]),
        pd.DataFrame(placed, columns=[c.key for c in ASSIGN_COLUMNS]),
    )


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "unknown"
    return f"{v:.0f} {unit}".strip()


def _h(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def create_view(ctx: AppContext) -> QWidget:
    return PlatformView(ctx)
